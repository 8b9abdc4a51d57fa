"""The project's schema: the rows a reader returns (`Rows`) turned into a `datasets.Dataset` of a task's columns."""
from __future__ import annotations

import logging

from datasets import ClassLabel, Dataset, Features, Value

try:
    from datasets import List
except ImportError:  # datasets < 4
    from datasets import Sequence as List

from lightning_iba.data.source_errors import DataSourceError
from lightning_iba.data.tasks import Task

log = logging.getLogger("lightning_iba.data")

Rows = tuple[list[str], list[str], list[str] | None, list[int]]  # ids, texts, text pairs, labels


def features(task: Task) -> Features:
    """The columns of `task`'s splits: id, text (and text_pair), label (and rationale, evidence)."""
    cols = {"id": Value("string"), "text": Value("string")}
    if task.is_pair:
        cols["text_pair"] = Value("string")
    cols["label"] = ClassLabel(names=list(task.label_names))
    if task.rationales:
        cols["rationale"] = List(Value("int8"))  # 0/1 per whitespace word of text
        cols["evidence"] = List(List(Value("int32")))  # [start, end) word offsets of each annotated span
    return Features(cols)


def to_dataset(task: Task, split: str, rows: Rows, origin: str = "") -> Dataset:
    """`rows` of `split` as a Dataset of `task`'s columns; empty texts dropped, labels outside the task's range an error."""
    ids, texts, pairs, labels, *more = rows  # a 5th element: further columns by name (a task's rationales)
    extra: dict[str, list] = more[0] if more else {}
    where = f" ({origin})" if origin else ""
    bad = [(i, y) for i, y in zip(ids, labels) if not 0 <= y < task.num_labels]
    if bad:
        unlabelled = " (-1: an unlabelled split, like the hub's GLUE test splits?)" if bad[0][1] == -1 else ""
        raise DataSourceError(
            f"{task.name} {split}{where}: label {bad[0][1]} of {bad[0][0]!r} is outside 0..{task.num_labels - 1} "
            f"({len(bad)} such rows){unlabelled}"
        )
    keep = [i for i, t in enumerate(texts) if t and t.strip() and (pairs is None or (pairs[i] and pairs[i].strip()))]
    if len(keep) < len(texts):
        log.warning("data: dropped %d empty texts from %s %s", len(texts) - len(keep), task.name, split)
    columns = {"id": [ids[i] for i in keep], "text": [texts[i] for i in keep]}
    if task.is_pair:
        columns["text_pair"] = [pairs[i] for i in keep]  # type: ignore[index]
    columns["label"] = [labels[i] for i in keep]
    for name, values in extra.items():
        columns[name] = [values[i] for i in keep]
    if not keep:
        raise DataSourceError(f"{task.name} {split}{where}: no non-empty texts")
    return Dataset.from_dict(columns, features=features(task))
