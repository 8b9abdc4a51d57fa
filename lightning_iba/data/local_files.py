"""Source `local`: a task's original files on disk (aclImdb folders, rt-polarity, AG News csv, GLUE tsv, ERASER)."""
from __future__ import annotations

import csv
import os
import re
import sys
from pathlib import Path

from lightning_iba.data.eraser import eraser_dir, load_eraser
from lightning_iba.data.schema import Rows
from lightning_iba.data.source_errors import DataSourceError, require_file, utf8_error
from lightning_iba.data.tasks import Task

LOCAL_FILES: dict[str, tuple[str, ...]] = {
    "imdb": ("aclImdb/train/pos/*.txt", "aclImdb/train/neg/*.txt", "aclImdb/test/pos/*.txt", "aclImdb/test/neg/*.txt"),
    "rotten_tomatoes": ("rt-polaritydata/rt-polarity.pos", "rt-polaritydata/rt-polarity.neg"),
    "agnews": ("ag_news_csv/train.csv", "ag_news_csv/test.csv"),
    "rte": ("RTE/train.tsv", "RTE/dev.tsv"),
    "mnli": ("MNLI/train.tsv", "MNLI/dev_matched.tsv", "MNLI/dev_mismatched.tsv"),
    "eraser_movies": ("eraser/movies/train.jsonl", "eraser/movies/val.jsonl", "eraser/movies/test.jsonl", "eraser/movies/docs/*"),
}


def local_root(data_dir: str | os.PathLike | None, task: Task) -> Path:
    """The folder holding `task`'s original files: `data_dir`, or its parent where `data_dir` is the task's own folder."""
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


def load_local(task: Task, data_dir) -> dict[str, Rows]:
    """The splits of `task` that its original files under `data_dir` hold."""
    root = local_root(data_dir, task)
    loader = {
        "imdb": _local_imdb,
        "rotten_tomatoes": _local_rotten_tomatoes,
        "agnews": _local_agnews,
        "rte": _local_glue,
        "mnli": _local_glue,
        "eraser_movies": load_eraser,
    }[task.name]
    return loader(task, root)


def local_origin(task: Task, data_dir: str | os.PathLike | None, split: str) -> str:
    """The file or folder that `split` of `task` is read from, for error messages."""
    root = local_root(data_dir, task)
    if task.name == "eraser_movies":
        return str(eraser_dir(root) / f"{task.hub_splits[split]}.jsonl")
    if task.name == "imdb":
        return str(root / "aclImdb" / split)
    if task.name == "rotten_tomatoes":
        return str(root / "rt-polaritydata" / "rt-polarity.{pos,neg}")
    if task.name == "agnews":
        return str(root / "ag_news_csv" / f"{split}.csv")
    return str(root / task.name.upper() / f"{_GLUE_FILES[task.name][split]}.tsv")


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
            d = require_file(root / "aclImdb" / split / folder)
            files = sorted(d.glob("*.txt"), key=lambda p: _natural_key(p.stem))
            if not files:
                raise DataSourceError(f"missing file: {d}/*.txt (no reviews found)")
            for f in files:
                ids.append(f"{split}/{folder}/{f.stem}")
                try:
                    texts.append(f.read_text(encoding="utf-8"))
                except UnicodeDecodeError:
                    raise utf8_error(f) from None
                labels.append(label)
        out[split] = (ids, texts, None, labels)
    return out


def _local_rotten_tomatoes(task: Task, root: Path) -> dict[str, Rows]:
    ids, texts, labels = [], [], []
    for label, suffix in enumerate(task.label_names):
        f = require_file(root / "rt-polaritydata" / f"rt-polarity.{suffix}")
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
    files = {split: require_file(root / "ag_news_csv" / f"{split}.csv") for split in ("train", "test")}
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
        raise utf8_error(f) from None
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
    files = {canonical: require_file(root / folder / f"{stem}.tsv") for canonical, stem in _GLUE_FILES[task.name].items()}
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
        raise utf8_error(f) from None
    if not ids:
        raise DataSourceError(f"{f}: no rows after the header line")
    return ids, texts, pairs, labels


def _natural_key(stem: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", stem)]
