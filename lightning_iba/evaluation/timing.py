"""What each method cost in an evaluation run: seconds per instance for its attribution and for its degradation
curves, from the per-batch timing files the shard writer keeps beside the records (`shards/timing-rank-*.jsonl`).

Timing is about speed, not results: it is never part of a record (records are the same from run to run), a
resumed run adds its batches to those timed before the kill, and each device (a GPU's name, or the CPU with its
thread count) gets its own rows, so a run resumed on other hardware never mixes the two.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import pandas as pd

from lightning_iba.evaluation.shards import read_timing

log = logging.getLogger("lightning_iba.evaluation")
TIMING_FILE = "timing.csv"
COLUMNS = ["method", "device", "instances", "attribution_s", "degradation_s", "total_s"]


def timing_table(out: Path, methods: Sequence[str]) -> pd.DataFrame:
    """Per method and device: the instances timed and the mean seconds per instance (attribution, degradation,
    their sum). A batch is timed after its records are written, so a killed batch is timed once, by the attempt
    that completes it; an identical repeated entry is dropped. Instances a multi-device run pads with repeats
    are timed like the others (seconds per instance stay right; `instances` may exceed the run's n slightly)."""
    seen: set[tuple[int, ...]] = set()
    rows = []
    for entry in read_timing(out):
        key = tuple(entry["indices"])
        if key in seen:
            continue
        seen.add(key)
        for method, s in entry["seconds"].items():
            if method in methods:
                rows.append({"method": method, "device": entry["device"], "instances": len(key),
                             "attribution": float(s["attribution"]), "degradation": float(s["degradation"])})
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    sums = pd.DataFrame(rows).groupby(["method", "device"], sort=False).sum().reset_index()
    table = pd.DataFrame({
        "method": sums["method"], "device": sums["device"], "instances": sums["instances"].astype(int),
        "attribution_s": sums["attribution"] / sums["instances"], "degradation_s": sums["degradation"] / sums["instances"],
    })
    table["total_s"] = table["attribution_s"] + table["degradation_s"]
    order = {m: i for i, m in enumerate(methods)}
    return table.sort_values(["device", "method"], key=lambda c: c.map(order) if c.name == "method" else c).reset_index(drop=True)


def write_timing(out: Path, methods: Sequence[str]) -> Path | None:
    """Writes `<out>/timing.csv` (seconds per instance, 4 significant digits) and logs a line per method and
    device; None when no batch was timed (a run from before timing was kept)."""
    table = timing_table(out, methods)
    if table.empty:
        return None
    path = out / TIMING_FILE
    for c in ("attribution_s", "degradation_s", "total_s"):
        table[c] = table[c].map(lambda v: float(f"{v:.4g}"))
    table.to_csv(path, index=False)
    for row in table.itertuples():
        log.info("timing: %s on %s: %.3f s per instance (attribution %.3f, degradation %.3f; %d instances timed)",
                 row.method, row.device, row.total_s, row.attribution_s, row.degradation_s, row.instances)
    return path
