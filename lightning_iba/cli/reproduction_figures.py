"""The reproduction's Figure 2 panels, drawn from the finished sweeps: 2a (drop per layer, every dataset) and 2b
(drop per beta, both estimators)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from lightning_iba.cli.reproduction_plans import sweep_rows
from lightning_iba.cli.reproduction_settings import ReproduceSettings
from lightning_iba.evaluation.degradation import drop_column


def sweep_points(metrics_csv: Path, prefix: str, **labels: Any) -> pd.DataFrame:
    """The rows of a sweep's metrics.csv whose label starts with `prefix` ("layer ", "beta "), with the
    label's number as column `value` and `labels` as constant columns."""
    rows = sweep_rows(metrics_csv, prefix).copy()
    rows["value"] = [float(str(i).split()[1]) for i in rows.index]
    return rows.reset_index(drop=True).assign(**labels)


def measured_n(points: pd.DataFrame) -> str:
    """The instances behind the points, as the sweeps' metrics.csv count them: "200", or "180-200" where they differ."""
    counts = sorted({int(n) for n in points["n"]}) if "n" in points.columns else []
    return "?" if not counts else str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"


def write_figure2(s: ReproduceSettings) -> list[Path]:
    """Figure 2a (drop at the headline fraction per layer, every dataset) and 2b (per beta, both estimators,
    with "X only" dashed) as single panels in `results`, from the finished sweeps as collected there (a fresh clone's
    `runs` has only the sweeps of this machine)."""
    from lightning_iba.viz.curves import save_sweep

    written = []
    layers = [sweep_points(f, "layer ", dataset=p.name) for p in s.datasets if (f := Path(s.results) / p.name / "layer-sweep" / "metrics.csv").is_file()]
    if layers:
        points = pd.concat(layers, ignore_index=True).rename(columns={"value": "layer"})
        drop = drop_column(points.columns)
        written.append(save_sweep(Path(s.results) / "figure2a.png", points, "layer", drop, "dataset",
                                  title=f"IBA after each layer, validation (n={measured_n(points)} per dataset)"))
    for p in s.datasets:
        runs = [(e, Path(s.results) / p.name / f"figure2b-{e}" / "metrics.csv") for e in s.figure2b_estimators]
        runs = [(e, f) for e, f in runs if f.is_file()]
        if not runs:
            continue
        points = pd.concat([sweep_points(f, "beta ", estimator=e) for e, f in runs], ignore_index=True).rename(columns={"value": "beta"})
        drop = drop_column(points.columns)
        x_only = pd.concat([pd.read_csv(f, index_col=0).loc[["x only"]].assign(estimator=e) for e, f in runs])
        written.append(save_sweep(Path(s.results) / p.name / "figure2b.png", points, "beta", drop, "estimator", log_x=True,
                                  reference=x_only, title=f"{p.name}: IBA per beta, validation (n={measured_n(points)}); dashed: X only"))
    return written
