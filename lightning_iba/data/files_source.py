"""Sources `files` and `disk`: tables read through `datasets`, turned into the rows of the project's schema.

`files` works like Hugging Face's run_glue.py (`--train_file`, `--validation_file`, `--test_file`): one
file a split, csv / tsv / json / json lines / parquet, or a `datasets.save_to_disk` Dataset folder.
`disk` reads a `datasets.save_to_disk` DatasetDict folder laid out as the task's hub dataset (its split
names and columns, `Task.hub_splits` and `Task.hub_fields`).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from datasets import DatasetDict

from lightning_iba.data.schema import Rows
from lightning_iba.data.source_errors import DataSourceError
from lightning_iba.data.tables import DatasetTable, Table, read_saved, read_table
from lightning_iba.data.tasks import Task

#: canonical split -> the DataFiles setting naming its file
SPLIT_FILES = {"train": "train_file", "validation": "validation_file", "test": "test_file", "test_mismatched": "test_mismatched_file"}
ID_COLUMNS = ("idx", "index", "id")


@dataclass
class DataFiles:
    """The files of source `files`, one a split, as run_glue.py's --train_file etc.: `files.*` in the configs.

    Args:
        train_file: training rows: .csv, .tsv, .json, .jsonl, .parquet, or a datasets.save_to_disk
            folder (null: no train split; then nothing is carved either).
        validation_file: validation rows (null: carved out of train).
        test_file: test rows (null: carved out of train).
        test_mismatched_file: MNLI's mismatched test rows.
        column_names: the columns of a csv or tsv file without a header line, in order (null: the header line).
        text_columns: the text column(s) (null: the task's hub columns: text, sentence1 and sentence2, or
            premise and hypothesis); several for a single-text task are joined with one space. A file
            without them but with the hub columns (a save_to_disk split of the hub dataset) is read with those.
        label_column: the label column.
        label_values: the values the files give the task's labels, in the task's label order, e.g. [1, 2, 3, 4]
            (null: the label names or the ids 0..k-1).
    """

    train_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    test_mismatched_file: str | None = None
    column_names: list[str] | None = None
    text_columns: list[str] | None = None
    label_column: str = "label"
    label_values: list[int | str] | None = None

    def given(self) -> dict[str, str]:
        """Canonical split -> file, for the files that are set."""
        return {split: getattr(self, attr) for split, attr in SPLIT_FILES.items() if getattr(self, attr)}


def as_data_files(files: DataFiles | dict | None) -> DataFiles | None:
    """`files` as a DataFiles (configs may hand over a plain mapping)."""
    if files is None or isinstance(files, DataFiles):
        return files
    return DataFiles(**dict(files))


# ---------------------------------------------------------------- the two sources


def load_files(task: Task, files: DataFiles | dict | None) -> tuple[dict[str, Rows], dict[str, str]]:
    """The splits named by `files` (rows, and each split's file for messages)."""
    files = as_data_files(files)
    given = files.given() if files is not None else {}
    if not given:
        raise DataSourceError(
            "source 'files' needs at least one of files.train_file, files.validation_file, files.test_file"
            + (", files.test_mismatched_file" if "test_mismatched" in task.hub_splits else "")
        )
    if "test_mismatched" in given and "test_mismatched" not in task.hub_splits:
        raise DataSourceError(f"files.test_mismatched_file is for mnli only; {task.name} has no test_mismatched split")
    texts = _text_columns(task, files.text_columns)
    labels = _LabelMap(task, files.label_values)
    raw, origin = {}, {}
    for split, value in given.items():
        setting = f"files.{SPLIT_FILES[split]}"
        table = read_table(Path(value).expanduser(), setting, files.column_names)
        text_setting = "files.text_columns" if files.text_columns else f"the {task.name} text column (files.text_columns)"
        raw[split] = _to_rows(table, task, split, texts, files.label_column, labels, text_setting)
        origin[split] = str(table.path)
    return raw, origin


def load_disk(task: Task, data_dir) -> tuple[dict[str, Rows], dict[str, str]]:
    """The splits of a save_to_disk DatasetDict folder, named and laid out as the task's hub dataset."""
    hub = f"{task.hub_id}" + (f" ({task.hub_config})" if task.hub_config else "")
    if data_dir is None:
        raise DataSourceError(f"source 'disk' needs data_dir, a datasets.save_to_disk folder of {hub} (splits {', '.join(task.hub_splits.values())})")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataSourceError(f"data_dir {str(root)!r} is not a folder")
    saved = read_saved(root, "data_dir")
    if not isinstance(saved, DatasetDict):
        raise DataSourceError(
            f"{root}: a single split saved with save_to_disk, not a DatasetDict; read it with source files (e.g. files.test_file {root})"
        )
    present = {canonical: name for canonical, name in task.hub_splits.items() if name in saved}
    if not present:
        raise DataSourceError(
            f"{root}: none of the splits of {hub} ({', '.join(task.hub_splits.values())}); the folder has {', '.join(saved) or 'none'}"
        )
    raw, origin = {}, {}
    labels = _LabelMap(task, None, settable=False)
    for canonical, name in present.items():
        table = DatasetTable(root / name, saved[name])
        raw[canonical] = _to_rows(table, task, canonical, list(task.hub_fields), "label", labels, f"the {hub} text column", f"the {hub} label column")
        origin[canonical] = f"{root / name}"
    return raw, origin


def _text_columns(task: Task, columns: list[str] | None) -> list[str]:
    columns = list(task.hub_fields) if columns is None else [str(c) for c in ([columns] if isinstance(columns, str) else columns)]
    if task.is_pair and len(columns) != 2:
        raise DataSourceError(f"{task.name} is a sentence-pair task: files.text_columns needs exactly 2 columns, got {columns}")
    if not columns:
        raise DataSourceError("files.text_columns is empty; name at least one text column")
    return columns


# ---------------------------------------------------------------- labels


def _key(value: Any) -> str:
    """A label value as text, so that 1, 1.0 and "1" from different formats compare equal."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


class _LabelMap:
    """File label values -> task label ids: `label_values` when given, else the label names or the ids 0..k-1."""

    def __init__(self, task: Task, label_values: list | None, settable: bool = True):
        self.explicit, self.settable = label_values is not None, settable
        if label_values is not None:
            if len(label_values) != task.num_labels:
                raise DataSourceError(
                    f"files.label_values has {len(label_values)} values but {task.name} has {task.num_labels} labels "
                    f"({', '.join(task.label_names)}); give one value a label, in that order"
                )
            self.map = {_key(v): i for i, v in enumerate(label_values)}
            if len(self.map) != task.num_labels:
                raise DataSourceError(f"files.label_values {list(label_values)} repeats a value")
            self.valid = f"{', '.join(_key(v) for v in label_values)} (files.label_values)"
        else:
            self.map = {name: i for i, name in enumerate(task.label_names)} | {str(i): i for i in range(task.num_labels)}
            self.valid = f"{', '.join(task.label_names)} or 0..{task.num_labels - 1}"

    def convert(self, values: list, locate: Callable[[int], str], class_names: list[str] | None = None) -> list[int]:
        out = []
        # a ClassLabel column with the task's label names, in whatever order: read by name; other ClassLabels: ids
        named = class_names is not None and not self.explicit and all(name in self.map for name in class_names)
        for row, value in enumerate(values):
            if named and isinstance(value, int) and 0 <= value < len(class_names):
                value = class_names[value]
            label = self.map.get(_key(value)) if value is not None else None
            if label is None:
                raise self.error(value, locate(row))
            out.append(label)
        return out

    def error(self, value: Any, where: str) -> DataSourceError:
        hint = ""
        if value is None or value == "":
            hint = " (an empty label)"
        elif _key(value) == "-1":
            hint = " (-1: an unlabelled split, like the hub's GLUE test splits?)"
        elif not self.explicit and self.settable:
            hint = "; set files.label_values if the file spells the labels otherwise, e.g. [1, 2, 3, 4]"
        return DataSourceError(f"{where}: label {_key(value) if value is not None else ''!r} is not one of {self.valid}{hint}")


# ---------------------------------------------------------------- rows


def _to_rows(table: Table, task: Task, split: str, texts: list[str], label: str, labels: _LabelMap, text_setting: str,
             label_setting: str = "files.label_column") -> Rows:
    """The project's rows of one table: ids, texts (joined when several single-text columns), pairs, label ids."""
    have = table.columns
    if any(t not in have for t in texts) and all(t in have for t in task.hub_fields):
        texts = list(task.hub_fields)  # e.g. a save_to_disk split of the hub dataset next to files of other columns
    for name, setting in [*((t, text_setting) for t in texts), (label, label_setting)]:
        if name not in have:
            hint = table.header_hint() if not any(c in have for c in [*texts, label]) else ""  # no column found: the header is data?
            raise DataSourceError(f"{table.path}: no column {name!r} ({setting}); the file has {', '.join(map(repr, have))}{hint}")
    values = [[_text(v) for v in table.column(t)] for t in texts]
    n = len(values[0])
    if n == 0:
        raise DataSourceError(f"{table.path}: no rows")
    ids = table.keys()
    if ids is None:
        id_column = next((c for c in ID_COLUMNS if c in have and c not in texts and c != label), None)
        ids = [str(v) for v in table.column(id_column)] if id_column else [f"{split}-{i}" for i in range(n)]
    y = labels.convert(table.column(label), table.locate, table.class_names(label))
    if task.is_pair:
        return ids, values[0], values[1], y
    joined = values[0] if len(values) == 1 else [" ".join(p for p in parts if p) for parts in zip(*values)]
    return ids, joined, None, y


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


# ---------------------------------------------------------------- identity: what a run's results depend on


def data_identity(source: str, data_dir: str | None, files: DataFiles | dict | None) -> dict[str, Any] | None:
    """Content digests of the data of sources `files` and `disk` (None for other sources): a changed file is a different run."""
    if source == "files":
        files = as_data_files(files)
        given = files.given() if files is not None else {}
        return {split: {"path": str(Path(p).expanduser().resolve()), "sha256": _digest(Path(p).expanduser())} for split, p in given.items()}
    if source == "disk" and data_dir is not None:
        return {"path": str(Path(data_dir).expanduser().resolve()), "sha256": _digest(Path(data_dir).expanduser())}
    return None


def run_data_identity(sources: list[str], data_dir: str | None, files: DataFiles | dict | None) -> dict[str, Any]:
    """The `files` settings and the content digests (`data`) of a run's sources (its own and its estimator's), for
    its settings.json: a different file, or the same file changed, is a different run."""
    files = as_data_files(files)
    used = dict.fromkeys(s for s in sources if s in ("files", "disk"))
    data = {s: data_identity(s, data_dir, files) for s in used}
    return {"files": asdict(files) if "files" in used and files is not None else None, "data": data or None}


def statistics_source(source: str, data_dir: str | None, files: DataFiles | dict | None) -> str:
    """The source as the estimator's cache key names it: sources files and disk with a digest of their data and settings."""
    identity = data_identity(source, data_dir, files)
    if identity is None:
        return source
    files = as_data_files(files)
    settings = asdict(files) if source == "files" and files is not None else {}
    digest = hashlib.sha256(json.dumps([identity, settings], sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{source}:{digest}"


def _digest(path: Path) -> str | None:
    """sha256 of a file; of a save_to_disk folder, over its small metadata files (their fingerprints) and file sizes."""
    h = hashlib.sha256()
    if path.is_file():
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(path)).encode() + b"\0" + str(f.stat().st_size).encode() + b"\0")
            if f.suffix == ".json":
                h.update(f.read_bytes())
        return h.hexdigest()
    return None
