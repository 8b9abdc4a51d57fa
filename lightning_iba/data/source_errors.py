"""`DataSourceError`, and the errors every reader of a file raises: a missing file, a file that is not UTF-8."""
from __future__ import annotations

from pathlib import Path

from lightning_iba.errors import LightningIBAError


class DataSourceError(LightningIBAError):
    """A source that cannot provide the task: missing files, unreachable hub, bad labels, malformed files.

    Errors about one place in a file start with `FILE:LINE:`, like a compiler's.
    """


def require_file(path: Path) -> Path:
    """`path`, or a `missing file: PATH` error where nothing is there."""
    if not path.exists():
        raise DataSourceError(f"missing file: {path}")
    return path


def utf8_error(f: Path) -> DataSourceError:
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
