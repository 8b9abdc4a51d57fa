"""The reproduction's settings: the Table 1 datasets (`DatasetPlan`), the plausibility plans against human
rationales (`RationalePlan`), the whole reproduction (`ReproduceSettings`, what configs/reproduce/<profile>.yaml
holds) and where a plausibility plan's outputs go (`rationale_paths`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class DatasetPlan:
    """One Table 1 dataset of the reproduction.

    Args:
        name: the task (imdb, mnli, agnews, rte).
        finetune: config overlays of train.py after configs/finetune/<name>.yaml.
        evaluate: config overlays of evaluate.py after configs/evaluate/<name>.yaml (data source of the test split).
        validation: extra evaluate.py flags for the validation sweeps (e.g. the source of the validation split).
        splits: the test splits evaluated (MNLI: test and test_mismatched).
        test_instances: instances per test split (null: all).
        figure2b: also run the wide beta sweep of Figure 2b on this dataset's validation split.
    """

    name: str
    finetune: list[str] = field(default_factory=list)
    evaluate: list[str] = field(default_factory=list)
    validation: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=lambda: ["test"])
    test_instances: int | None = 1000
    figure2b: bool = False


#: The plausibility plans' methods: Table 1's without ig:published (it explains one class for every review), with bare ig
#: (an ERASER run explains the predicted class: configs/evaluate/eraser_movies.yaml) and the gradient and attention
#: baselines of ERASER-style comparisons.
RATIONALE_METHODS = "iba:dataset,iba:reference,ig,lime,random,attention,gradxinput"


@dataclass
class RationalePlan:
    """One plausibility run of the reproduction: a model explained on a task with human rationales.

    Give exactly one of `model_from` and `finetune`. IBA's layer and beta are always the ones Table 1's
    rule chose for the model on its own task's validation split: for `model_from`, that dataset's
    selection.json; for `finetune`, a layer sweep and a beta sweep of the plan's own validation split.

    Args:
        name: the plan's folder under <runs>/eraser/ and <results>/eraser/ (e.g. imdb-transfer, finetuned).
        dataset: the task with rationales (eraser_movies).
        model_from: a Table 1 dataset whose model and selection.json are reused: a transfer run
            (evaluate.py --allow_task_transfer true; the labels must be the same).
        finetune: config overlays of train.py after configs/finetune/<dataset>.yaml: fine-tune a model on
            the dataset's train split into <runs>/eraser/<name>/model.
        evaluate: config overlays of evaluate.py after configs/evaluate/<dataset>.yaml.
        splits: the splits evaluated with every method (the plausibility tables).
        instances: instances of every evaluation of the plan, sweeps included (null: all).
        methods: the methods of the split evaluations.
        layer_sweep: a model_from plan also sweeps IBA's layer on validation (plausibility per layer); a
            finetune plan always does (the sweep chooses its layer).
        max_length: tokens per input, of the fine-tuning and of every evaluation.
        window_stride: null: plausibility over the first max_length tokens (the share of rationale words
            seen is reported); S: also windows every S word pieces over the whole review (evaluate.py
            --plausibility.window_stride; costs about one attribution per window).
        bin_unit: what ERASER's comprehensiveness / sufficiency bins count (evaluate.py --plausibility.bin_unit):
            "word" (ERASER's unit) or "piece"; named in every stage command, so a finished stage is never
            taken for one computed in another unit.
    """

    name: str
    dataset: str = "eraser_movies"
    model_from: str | None = None
    finetune: list[str] | None = None
    evaluate: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=lambda: ["validation", "test"])
    instances: int | None = None
    methods: str = RATIONALE_METHODS
    layer_sweep: bool = True
    max_length: int = 256
    window_stride: int | None = None
    bin_unit: str = "word"

    @property
    def transfer(self) -> bool:
        return self.model_from is not None


@dataclass
class ReproduceSettings:
    """The reproduction: which datasets, how many validation instances choose the layer and beta, which methods.

    Args:
        runs: folder of the large outputs (models, shards); ignored by git.
        results: folder of the small outputs that are committed (tables, curves, sweeps, README).
        datasets: the datasets, in the order they run.
        validation_instances: validation instances of the layer and beta sweeps that choose IBA's layer and beta.
        selection_betas: the betas the choice is made among.
        methods: the methods of the test evaluation.
        evaluate_flags: evaluate.py flags of every evaluation stage (e.g. the published counting).
        figure2b_instances: validation instances of Figure 2b's beta sweep.
        figure2b_betas: its betas.
        figure2b_estimators: its estimators.
        wandb_project: the W&B project holding every run of the reproduction.
        rationales: the plausibility plans, run after the datasets.
        only: run only these datasets (default: all); "eraser" runs every plausibility plan, "eraser/<name>" one.
        above_chance: a fine-tuned model is explained only if it is above chance on validation (the 95 % Wilson
            interval of its validation accuracy above 1 / labels): near chance every attribution looks alike, so
            its plan stops there, says so, and the other plans go on.
    """

    runs: str = "runs/cpu-minilm"
    results: str = "results/cpu-minilm"
    datasets: list[DatasetPlan] = field(default_factory=list)
    validation_instances: int = 200
    selection_betas: str = "1e-6,1e-5,1e-4,1e-3"
    methods: str = "iba:dataset,iba:reference,ig:gold,ig:published,lime,random"
    evaluate_flags: list[str] = field(default_factory=list)
    figure2b_instances: int = 200
    figure2b_betas: str = "1e-8,1e-7,1e-6,1e-5,1e-4,1e-3,1e-2,1e-1"
    figure2b_estimators: list[str] = field(default_factory=lambda: ["dataset", "reference"])
    wandb_project: str = "lightning-iba-reproduce"
    rationales: list[RationalePlan] = field(default_factory=list)
    only: list[str] | None = None
    above_chance: bool = True

    def beta_from_figure2b(self, plan: DatasetPlan) -> bool:
        """Whether the plan's beta is chosen in Figure 2b's sweep with the dataset estimator rather than in a
        beta-selection stage of its own: that sweep runs the same validation instances at the chosen layer with every
        selection beta among its betas, and a sweep's row for a beta is the run of that beta alone (the noise is seeded
        per instance), so a separate selection would recompute rows the sweep has. The selection rule is the dataset
        estimator's (reproduction_plans.SELECTION_RULE), which is the estimator of that sweep."""
        return (plan.figure2b and "dataset" in self.figure2b_estimators and self.figure2b_instances == self.validation_instances
                and beta_labels(self.selection_betas) <= beta_labels(self.figure2b_betas))

    def runs_plan(self, name: str, rationale: bool = False) -> bool:
        """Whether `--only` lets the dataset (or the plausibility plan) `name` run."""
        if not self.only:
            return True
        return ("eraser" in self.only or f"eraser/{name}" in self.only) if rationale else name in self.only


def beta_labels(spec: str) -> set[str]:
    """The rows a beta sweep over comma-separated `spec` writes, labelled as evaluate.py labels them ("beta 1e-06")."""
    return {f"beta {float(b):g}" for b in str(spec).split(",") if b.strip()}


def rationale_paths(s: ReproduceSettings, plan: RationalePlan) -> tuple[Path, Path]:
    """The plan's large-output folder (<runs>/eraser/<name>) and small-output folder (<results>/eraser/<name>)."""
    return Path(s.runs) / "eraser" / plan.name, Path(s.results) / "eraser" / plan.name
