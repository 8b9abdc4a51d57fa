"""Per-rank result shards: appended batch by batch, so a killed run loses at most the batch in flight."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from pytorch_lightning.callbacks import BasePredictionWriter

SHARD_DIR = "shards"


def shard_files(out: Path) -> list[Path]:
    return sorted((out / SHARD_DIR).glob("rank-*.jsonl"))


def read_records(out: Path) -> Iterator[dict[str, Any]]:
    """Every complete record of every shard; a line cut short by a kill is skipped."""
    for path in shard_files(out):
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue


def done_indices(out: Path) -> set[int]:
    """Indices (into the evaluated split) of instances already in a shard."""
    return {r["index"] for r in read_records(out)}


class ShardWriter(BasePredictionWriter):
    """Appends each batch's records as JSON lines to `<out>/shards/rank-<global rank>.jsonl`, flushed and fsynced."""

    def __init__(self, out: str | Path):
        super().__init__(write_interval="batch")
        self.out = Path(out)

    def _path(self, rank: int) -> Path:
        return self.out / SHARD_DIR / f"rank-{rank}.jsonl"

    def setup(self, trainer, pl_module, stage: str) -> None:
        path = self._path(trainer.global_rank)
        path.parent.mkdir(parents=True, exist_ok=True)
        # A kill mid-write leaves a line without its newline; start ours on a fresh line.
        if path.exists() and path.stat().st_size:
            with path.open("rb+") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx) -> None:
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in prediction)
        with self._path(trainer.global_rank).open("a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
