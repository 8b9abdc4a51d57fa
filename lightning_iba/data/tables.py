"""One split's file as a table of columns: csv, tsv, json, json lines, parquet or a save_to_disk folder.

Files are read through `datasets` (`load_dataset("csv" | "json" | "parquet")`, `load_from_disk`), except
a JSON object of row objects (`{"0": {"text_a": ..., "label": ...}, ...}`), which the json module reads.
Every problem is a one-line `DataSourceError` naming the file (and the line, where one can be named).
"""
from __future__ import annotations

import contextlib
import csv
import json
import sys
from pathlib import Path
from typing import Any

import datasets
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from lightning_iba.data.source_errors import DataSourceError, utf8_error

FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


class Table:
    """One file's rows, by column; `locate(row)` names the place of a data row for messages."""

    path: Path

    @property
    def columns(self) -> list[str]:
        raise NotImplementedError

    def column(self, name: str) -> list:
        raise NotImplementedError

    def locate(self, row: int) -> str:
        return f"{self.path}: row {row}"

    def keys(self) -> list[str] | None:
        return None

    def class_names(self, name: str) -> list[str] | None:
        return None

    def header_hint(self) -> str:
        return ""


class DatasetTable(Table):
    """A `datasets.Dataset` (a parquet file, a save_to_disk folder, one split of a DatasetDict)."""

    def __init__(self, path: Path, ds: Dataset):
        self.path, self.ds = path, ds

    @property
    def columns(self) -> list[str]:
        return list(self.ds.column_names)

    def column(self, name: str) -> list:
        return self.ds.select_columns([name]).to_dict()[name]

    def class_names(self, name: str) -> list[str] | None:
        feature = self.ds.features.get(name)
        return list(feature.names) if isinstance(feature, ClassLabel) else None


class _DelimitedTable(DatasetTable):
    """A csv or tsv file; every column read as text, exactly as the file spells it."""

    def __init__(self, path: Path, ds: Dataset, sep: str, header: bool, named: bool):
        super().__init__(path, ds)
        self.sep, self.header, self.named = sep, header, named

    def locate(self, row: int) -> str:
        if self.sep == "\t":  # no quoting: a row is a line (blank lines are skipped)
            return f"{self.path}:{_nth_line(self.path, row + self.header)}"
        with self.path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            for i, record in enumerate(r for r in reader if r):
                if i == row + self.header:
                    return f"{self.path}:{reader.line_num - _lines_in(record) + 1}"
        return f"{self.path}: row {row}"

    def header_hint(self) -> str:
        return "" if self.named else " (a file without a header line needs files.column_names)"  # read its first row as names


def _lines_in(record: list[str]) -> int:
    return 1 + sum(f.count("\n") for f in record)


class _JsonLinesTable(DatasetTable):
    def locate(self, row: int) -> str:
        return f"{self.path}:{_nth_line(self.path, row)}"


class _KeyedJsonTable(Table):
    """A JSON object of row objects, `{"0": {"text_a": ..., "label": ...}, ...}`: the keys are the ids."""

    def __init__(self, path: Path, data: dict[str, dict]):
        self.path, self._keys = path, list(data)
        names = dict.fromkeys(name for row in data.values() for name in row)
        self._columns = {name: [row.get(name) for row in data.values()] for name in names}

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def column(self, name: str) -> list:
        return self._columns[name]

    def keys(self) -> list[str]:
        return self._keys

    def locate(self, row: int) -> str:
        return f"{self.path}: row {self._keys[row]!r}"


def _nth_line(path: Path, row: int) -> int:
    """The line number of the `row`-th (0-based) non-blank line of a text file."""
    with path.open(encoding="utf-8", errors="replace") as fh:
        seen = -1
        for number, line in enumerate(fh, start=1):
            if line.strip():
                seen += 1
                if seen == row:
                    return number
    return row + 1


# ---------------------------------------------------------------- reading a file


def read_table(path: Path, setting: str, column_names: list[str] | None = None) -> Table:
    """One split's file (or save_to_disk folder) as a table, or a one-line DataSourceError naming it."""
    if not path.exists():
        raise DataSourceError(f"missing file: {path} ({setting})")
    if path.is_dir():
        saved = read_saved(path, setting)
        if isinstance(saved, DatasetDict):
            first = next(iter(saved), "SPLIT")
            raise DataSourceError(
                f"{path} ({setting}) holds a DatasetDict (splits {', '.join(saved)}), not one split: "
                f"name a split's folder, e.g. {path / first}, or use source disk with data_dir {path}"
            )
        return DatasetTable(path, saved)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataSourceError(
            f"{path}: unknown file type {path.suffix or '(no extension)'!r} ({setting}); "
            "use .csv, .tsv, .json, .jsonl, .parquet or a datasets.save_to_disk folder"
        )
    if _is_empty(path, kind):
        raise DataSourceError(f"{path}: empty file ({setting})")
    if kind == "csv":
        return _read_delimited(path, column_names)
    if kind == "json":
        keyed = _keyed_json(path)
        if keyed is not None:
            return _KeyedJsonTable(path, keyed)
        return _JsonLinesTable(path, _load_dataset("json", path, "json"))
    return DatasetTable(path, _load_dataset("parquet", path, "parquet"))


def _is_empty(path: Path, kind: str) -> bool:
    size = path.stat().st_size
    if size == 0:
        return True
    if kind == "parquet" or size > 1 << 16:
        return False
    return not path.read_bytes().strip()


def _read_delimited(path: Path, column_names: list[str] | None) -> Table:
    tsv = path.suffix.lower() == ".tsv"
    sep, quoting = ("\t", csv.QUOTE_NONE) if tsv else (",", csv.QUOTE_MINIMAL)
    first = _first_record(path, sep, quoting)
    if column_names is not None:
        names = [str(c) for c in column_names]
        if len(names) != len(first):
            raise DataSourceError(
                f"{path}:1: {len(first)} {'tab' if tsv else 'comma'}-separated columns, but files.column_names names {len(names)} ({', '.join(names)})"
            )
    else:
        names = first
        if len(set(names)) != len(names):
            raise DataSourceError(f"{path}:1: the header line repeats a column name ({', '.join(names)}); a file without a header needs files.column_names")
    features = Features({name: Value("string") for name in names})  # texts exactly as written, labels as the file spells them
    kwargs: dict[str, Any] = {"sep": sep, "quoting": quoting, "na_filter": False, "features": features}
    if column_names is not None:
        kwargs["column_names"] = names
    ds = _load_dataset("csv", path, "tsv" if tsv else "csv", "" if column_names else f" after the header line ({', '.join(names)})", **kwargs)
    return _DelimitedTable(path, ds, sep, header=column_names is None, named=column_names is not None)


def _first_record(path: Path, sep: str, quoting: int) -> list[str]:
    csv.field_size_limit(sys.maxsize)
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for record in csv.reader(fh, delimiter=sep, quoting=quoting):
                if record:
                    return record
    except UnicodeDecodeError:
        raise utf8_error(path) from None
    except csv.Error as err:
        raise DataSourceError(f"{path}:1: malformed {'tsv' if sep == chr(9) else 'csv'} ({err})") from None
    raise DataSourceError(f"{path}: empty file")


def _keyed_json(path: Path) -> dict[str, dict] | None:
    """The rows of a JSON object of row objects, or None for JSON lines or a JSON array (read by datasets)."""
    with path.open("rb") as fh:
        head = fh.read(1 << 16).lstrip()
    if not head.startswith(b"{"):
        return None
    first = head.split(b"\n", 1)[0].strip()
    if first != b"{":
        try:
            row = json.loads(first)
        except ValueError:
            row = None  # the first line of a longer object
        if isinstance(row, dict) and not (row and all(isinstance(v, dict) for v in row.values())):
            return None  # a JSON-lines row
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise utf8_error(path) from None
    except json.JSONDecodeError as err:
        if err.msg == "Extra data":
            return None  # JSON lines
        raise DataSourceError(f"{path}:{err.lineno}: malformed JSON ({err.msg}, column {err.colno})") from None
    if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        return data
    if isinstance(data, dict):
        raise DataSourceError(f"{path}: a JSON object, but not one of row objects ({{\"0\": {{\"text\": ..., \"label\": ...}}, ...}}); use JSON lines")
    return None


@contextlib.contextmanager
def _quiet():
    """No progress bars or builder logs while datasets reads a file."""
    from datasets.utils import logging as ds_logging
    from datasets.utils.tqdm import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    was_disabled, verbosity = are_progress_bars_disabled(), ds_logging.get_verbosity()
    disable_progress_bars()
    ds_logging.set_verbosity(ds_logging.CRITICAL)
    try:
        yield
    finally:
        ds_logging.set_verbosity(verbosity)
        if not was_disabled:
            enable_progress_bars()


def _root(err: BaseException) -> BaseException:
    """The first exception of a chain (the builders wrap the parser's own error)."""
    while err.__cause__ is not None or (err.__context__ is not None and not err.__suppress_context__):
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return err


def _cause(err: BaseException) -> str:
    root = _root(err)
    return " ".join(f"{type(root).__name__}: {root}".split())


def _load_dataset(builder: str, path: Path, what: str, no_rows: str = "", **kwargs) -> Dataset:
    try:
        with _quiet():
            return datasets.load_dataset(builder, data_files={"rows": str(path)}, split="rows", **kwargs)
    except UnicodeDecodeError:
        raise utf8_error(path) from None
    except Exception as err:  # noqa: BLE001  (the builders raise anything; keep the cause in one line)
        if isinstance(_root(err), UnicodeDecodeError):
            raise utf8_error(path) from None
        if "corresponds to no data" in str(err):  # a header line alone
            raise DataSourceError(f"{path}: no rows{no_rows}") from None
        raise DataSourceError(f"{path}: cannot read it as {what} ({_cause(err)})") from None


def read_saved(path: Path, setting: str) -> Dataset | DatasetDict:
    """A datasets.save_to_disk folder (a Dataset or a DatasetDict)."""
    try:
        with _quiet():
            return datasets.load_from_disk(str(path))
    except Exception as err:  # noqa: BLE001
        raise DataSourceError(f"{path} ({setting}): a folder must be a datasets.save_to_disk folder ({_cause(err)})") from None
