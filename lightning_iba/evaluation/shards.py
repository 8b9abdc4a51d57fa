"""Per-rank result shards: appended batch by batch, so a killed run loses at most the batch in flight."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from pytorch_lightning.callbacks import BasePredictionWriter

from lightning_iba.errors import LightningIBAError

SHARD_DIR = "shards"


def timing_files(out: Path) -> list[Path]:
    return sorted((out / SHARD_DIR).glob("timing-rank-*.jsonl"))


def read_timing(out: Path) -> Iterator[dict[str, Any]]:
    """Every complete batch timing entry (EvaluationModule.batch_timing) of every rank; a line cut short by a kill is skipped."""
    for path in timing_files(out):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and {"indices", "device", "seconds"} <= entry.keys():
                yield entry


def shard_files(out: Path) -> list[Path]:
    return sorted((out / SHARD_DIR).glob("rank-*.jsonl"))


RECORD_KEYS = ("index", "id", "label", "original_prob", "remove", "keep")


def read_records(out: Path) -> Iterator[dict[str, Any]]:
    """Every complete record of every shard. A line cut short by a kill (not JSON) is skipped: its
    instance is simply evaluated again. A line that is JSON but not a record is an error naming it."""
    for path in shard_files(out):
        with path.open(encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, start=1):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if not isinstance(record, dict) or any(k not in record for k in RECORD_KEYS) or not isinstance(record["index"], int):
                    raise LightningIBAError(
                        f"{path}:{number}: not an evaluation record ({line.strip()[:60]!r}); delete that line and run "
                        "again with --resume (its instance is then evaluated again)"
                    )
                yield record


def done_indices(out: Path) -> set[int]:
    """Indices (into the evaluated split) of instances already in a shard."""
    return {r["index"] for r in read_records(out)}


class ShardWriter(BasePredictionWriter):
    """Appends each batch's records as JSON lines to `<out>/shards/rank-<global rank>.jsonl`, flushed and fsynced,
    and the batch's running time per method (the module's `batch_timing`) to `timing-rank-<global rank>.jsonl`."""

    def __init__(self, out: str | Path):
        super().__init__(write_interval="batch")
        self.out = Path(out)

    def _path(self, rank: int, kind: str = "") -> Path:
        return self.out / SHARD_DIR / f"{kind}rank-{rank}.jsonl"

    def setup(self, trainer, pl_module, stage: str) -> None:
        for kind in ("", "timing-"):
            path = self._path(trainer.global_rank, kind)
            path.parent.mkdir(parents=True, exist_ok=True)
            # A kill mid-write leaves a line without its newline; start ours on a fresh line.
            if path.exists() and path.stat().st_size:
                with path.open("rb+") as fh:
                    fh.seek(-1, os.SEEK_END)
                    if fh.read(1) != b"\n":
                        fh.write(b"\n")

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx) -> None:
        append(self._path(trainer.global_rank), "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in prediction))
        timing = getattr(pl_module, "batch_timing", None)
        if timing is not None:  # after the records: a kill between the two loses a timing, never a record
            append(self._path(trainer.global_rank, "timing-"), json.dumps(timing, separators=(",", ":")) + "\n")


def append(path: Path, text: str) -> None:
    """Appends `text`, flushed and fsynced (a kill loses at most the line being written)."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
