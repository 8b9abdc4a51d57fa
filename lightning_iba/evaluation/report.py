"""Merging the shards into the paper's outputs: Table 1, the degradation curves, and further metrics."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from lightning_iba.errors import LightningIBAError
from lightning_iba.evaluation.degradation import DegradationSettings
from lightning_iba.evaluation.metrics import curves_frame, normalised_curves, summary
from lightning_iba.evaluation.shards import read_records
from lightning_iba.viz.curves import save_curves


@dataclass
class Report:
    table1: pd.DataFrame  # method, dataset, n, original_prob, drop_<headline %>; one row per method
    metrics: pd.DataFrame  # per method: n, o, p_<headline %>, drop_<headline %>, aopc, comprehensiveness, sufficiency
    curves: pd.DataFrame  # per method and step: fraction, prob (mean), normalised
    files: dict[str, Path]


def merged_records(out: Path, indices: Sequence[int]) -> list[dict[str, Any]]:
    """One record per evaluated instance (first one wins where a rank repeated it), in index order."""
    wanted = set(indices)
    records: dict[int, dict[str, Any]] = {}
    for r in read_records(out):
        if r["index"] in wanted:
            records.setdefault(r["index"], r)
    missing = wanted - set(records)
    if missing:
        raise LightningIBAError(f"{len(missing)} of {len(wanted)} instances have no result in {out}/shards; run again with --resume")
    return [records[i] for i in sorted(records)]


def frames(records: list[dict[str, Any]], methods: Sequence[str], fractions: Sequence[float]) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Long remove- and keep-frames (see metrics) for `methods`, in that order; no keep-frame without sufficiency."""
    ids = [r["index"] for r in records]
    labels = [r["label"] for r in records]
    build = lambda key: pd.concat(  # noqa: E731
        [curves_frame(m, np.array([r[key][m] for r in records]), fractions, ids, labels) for m in methods], ignore_index=True
    )
    return build("remove"), (build("keep") if records and records[0]["keep"] else None)


def write_report(out: Path, dataset: str, methods: Sequence[str], records: list[dict[str, Any]],
                 degradation: DegradationSettings, title: str) -> Report:
    """Writes table1.csv/.md, metrics.csv, curves.csv and curves.png into `out`, with the fraction grid
    and headline fraction the results were computed with (read from settings.json by the caller)."""
    remove, keep = frames(records, methods, degradation.grid)
    name = degradation.headline_name
    metrics = summary(remove, keep, headline=degradation.headline).reindex(list(methods))
    table1 = pd.DataFrame(
        {
            "method": list(methods),
            "dataset": dataset,
            "n": metrics["n"].astype(int).to_numpy(),
            "original_prob": metrics["o"].round(4).to_numpy(),
            name: metrics[name].round(4).to_numpy(),
        }
    )
    curves = normalised_curves(remove)
    files = {
        "table1.csv": out / "table1.csv",
        "table1.md": out / "table1.md",
        "metrics.csv": out / "metrics.csv",
        "curves.csv": out / "curves.csv",
        "curves.png": out / "curves.png",
    }
    table1.to_csv(files["table1.csv"], index=False)
    files["table1.md"].write_text(markdown_table(table1) + "\n")
    metrics.round(4).to_csv(files["metrics.csv"])
    curves.round(6).to_csv(files["curves.csv"], index=False)
    save_curves(files["curves.png"], curves, "method", "normalised", title=title)
    return Report(table1, metrics, curves, files)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of a small frame."""
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])
