"""Loading a task's splits from the hub, from the original files on disk, or from the bundled CSV.

Every loader returns a `datasets.DatasetDict` in the project's schema (see `Task`): the rest of the
pipeline never sees where the data came from. The readers live in their own modules: `hub_source`,
`bundled`, `local_files` (with `eraser`) and `files_source`; this one picks the source, reads it and
carves the splits a source lacks.
"""
from __future__ import annotations

import logging
import math
import os
from collections import Counter
from typing import TYPE_CHECKING

import numpy as np
from datasets import Dataset, DatasetDict
from datasets.utils.stratify import stratified_shuffle_split_generate_indices

from lightning_iba.data.bundled import bundled_csv_path, load_bundled
from lightning_iba.data.hub_source import load_hub, offline_advice
from lightning_iba.data.local_files import LOCAL_FILES, load_local, local_origin
from lightning_iba.data.schema import Rows, to_dataset
from lightning_iba.data.source_errors import DataSourceError
from lightning_iba.data.tasks import SOURCES, Task, get_task
from lightning_iba.errors import LightningIBAError, UnknownNameError
from lightning_iba.hub import hub_reachable, why_unreachable

if TYPE_CHECKING:
    from lightning_iba.data.files_source import DataFiles

__all__ = ["DataSourceError", "Rows", "bundled_csv_path", "load_splits", "require_split", "resolve_source", "sample_texts", "split_hint"]

log = logging.getLogger("lightning_iba.data")


def resolve_source(task: Task, source: str) -> str:
    """The concrete source for `source` ('auto' picks hub when reachable, else bundled where the task has it)."""
    if source not in SOURCES:
        raise UnknownNameError("source", source, SOURCES)
    if task.hub_id is None:  # no hub dataset: the original files are the only source
        if source in ("auto", "local"):
            return "local"
        raise DataSourceError(
            f"{task.name} is read from its original files only ({', '.join(LOCAL_FILES[task.name])}): "
            f"use source local with data_dir DIR, not source {source!r}"
        )
    if source != "auto":
        return source
    if hub_reachable():
        return "hub"
    if task.bundled_source is not None:
        log.warning("data: the Hugging Face hub is unreachable (%s); using the bundled %s data", why_unreachable(), task.name)
        return "bundled"
    raise DataSourceError(offline_advice(task))


def load_splits(
    task: Task | str,
    source: str = "auto",
    data_dir: str | os.PathLike | None = None,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    files: DataFiles | dict | None = None,
) -> DatasetDict:
    """All canonical splits of `task` in the project's schema.

    Splits a source lacks are carved out of `train`, deterministically (`seed`) and stratified by label:
    `validation` (`validation_fraction`) always, and `test` (`test_fraction`) for sources without one.
    A source without `train` (aclImdb/test alone, a disk folder of dev sets, files without train_file)
    gives only the splits it has: ask for one with `require_split`, which says what is missing.
    `files`: the files of source `files` (a `DataFiles`); `data_dir` serves sources local and disk.
    Empty texts are dropped, with their count in the log; labels outside the task's range are an error.
    Malformed files (bad encoding, wrong column count, unterminated quotes, bad labels, no rows) and
    splits too small to carve raise `DataSourceError` naming the file and line.
    """
    task = get_task(task) if isinstance(task, str) else task
    source = resolve_source(task, source)
    if source in ("files", "disk"):
        from lightning_iba.data.files_source import load_disk, load_files

        raw, origin = load_files(task, files) if source == "files" else load_disk(task, data_dir)
    else:
        # bundled_csv_path as this module names it, so that one patched here serves reader and _origin alike
        raw = load_hub(task) if source == "hub" else load_local(task, data_dir) if source == "local" else load_bundled(task, bundled_csv_path)
        origin = {name: _origin(task, source, data_dir, name) for name in raw}
    splits = {name: to_dataset(task, name, rows, origin[name]) for name, rows in raw.items()}
    if "train" in splits:  # without train nothing can be carved: the absent splits stay absent
        train = f"{task.name} train ({origin['train']})"
        if "test" not in splits:
            splits["train"], splits["test"] = _carve(splits["train"], test_fraction, seed, train, "test")
            train = f"{task.name} train ({origin['train']}, after carving test)"
        if "validation" not in splits:
            splits["train"], splits["validation"] = _carve(splits["train"], validation_fraction, seed, train, "validation")
    else:
        log.info("data: source %s has no %s train split (only %s); nothing carved", source, task.name, ", ".join(splits))
    order = ["train", "validation", "test", *sorted(k for k in splits if k not in ("train", "validation", "test"))]
    return DatasetDict({k: splits[k] for k in order if k in splits})


def require_split(splits: DatasetDict, split: str, task: Task, source: str, needed_by: str, hint: str = "") -> Dataset:
    """`splits[split]`, or a one-line DataSourceError naming the split, the source, the splits it has and `hint`."""
    if split in splits:
        return splits[split]
    have = ", ".join(splits) or "none"
    raise DataSourceError(f"{needed_by} needs the {split!r} split of {task.name}, but source {source!r} has only: {have}" + (f"; {hint}" if hint else ""))


def split_hint(task: Task, source: str, split: str, source_flag: str = "--source", files_flag: str = "--files") -> str:
    """Where a missing split could come from, in the flags of the command asking (`--data.source`, `--estimator.source`)."""
    setting = f"{files_flag}.{split}_file"
    if source == "files":
        return f"set {setting}"
    if split == "train" and task.bundled_source is not None and source != "bundled":
        return f"{source_flag} bundled has {task.name} training data"
    return f"read it with {source_flag} files and {setting} FILE"


def _origin(task: Task, source: str, data_dir: str | os.PathLike | None, split: str) -> str:
    """Where `split` of `task` comes from, for error messages: a file, a folder or the hub."""
    if source == "hub":
        return f"{task.hub_id} {task.hub_splits.get(split, split)} from the hub"
    if source == "bundled":
        return f"{bundled_csv_path()}, rows with source {task.bundled_source}"
    return local_origin(task, data_dir, split)


def _carve(ds: Dataset, fraction: float, seed: int, what: str = "train", part: str = "validation") -> tuple[Dataset, Dataset]:
    """Split `part` (`fraction` of the rows, stratified by label) off `ds`, described as `what` in errors."""
    if not 0 < fraction < 1:
        raise LightningIBAError(f"split fraction must be between 0 and 1, got {fraction}")
    labels = _labels(ds)
    n_test = math.ceil(fraction * len(ds))  # as datasets rounds
    _check_carvable(ds, labels, n_test, fraction, what, part)
    # Dataset.train_test_split(test_size=fraction, stratify_by_column="label", seed=seed), the same indices,
    # without its row-by-row read of the label column (20 s for the 25,000 bundled reviews).
    keep, carved = next(stratified_shuffle_split_generate_indices(labels, len(ds) - n_test, n_test, rng=np.random.default_rng(seed)))
    return ds.select(keep), ds.select(carved)


def _labels(ds: Dataset) -> np.ndarray:
    """The label column as one array, read in one batch."""
    return np.asarray(ds.select_columns(["label"]).with_format("numpy")[:]["label"])


def _check_carvable(ds: Dataset, labels: np.ndarray, n_part: int, fraction: float, what: str, part: str) -> None:
    """The conditions of a stratified split carving `n_part` rows off `ds`, checked up front with a readable error."""
    counts = Counter(labels.tolist())
    n, k = len(ds), len(counts)
    n_keep = n - n_part
    rarest, fewest = min(counts.items(), key=lambda kv: (kv[1], kv[0]))
    if fewest >= 2 and n_part >= k and n_keep >= k:
        return
    name = ds.features["label"].names[rarest]
    raise DataSourceError(
        f"{what} has {n} rows, too few to carve a {part} split ({part}_fraction={fraction:g}) out of it: "
        f"a stratified split needs at least one example of each of its {k} labels in both parts, "
        f"but the parts would get {n_keep} and {n_part} rows and label {name!r} has {fewest}"
    )


def sample_texts(split: Dataset, n: int, seed: int) -> list:
    """`n` texts of a split (pairs as (text, text_pair) tuples), drawn with `seed`: what estimators are fitted on."""
    rows = split.shuffle(seed=seed).select(range(min(n, len(split))))
    return list(zip(rows["text"], rows["text_pair"])) if "text_pair" in rows.column_names else list(rows["text"])
