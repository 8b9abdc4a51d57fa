"""Logging an evaluation's table and curves to Weights & Biases (offline unless an API key is configured)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning_iba.evaluation.degradation import drop_column
from lightning_iba.evaluation.report import Report
from lightning_iba.loggers import wandb_configured


def log_to_wandb(report: Report, out: Path, config: dict[str, Any], project: str, name: str, tables: dict[str, Any] | None = None,
                 group: str | None = None) -> str:
    """One W&B run with the settings as config, Table 1, the metrics (both with their bootstrap intervals,
    `<metric>_lo`/`_hi`) and the paired differences as wandb.Tables, and the curves as a line series;
    `tables`: further DataFrames logged as wandb.Tables under their names (e.g. plausibility); `group`: the W&B
    group (the dataset), so a project holding several datasets' runs shows each dataset's runs together.

    Returns the run's local folder (sync an offline one with `wandb sync <folder>`).
    """
    import wandb

    run = wandb.init(project=project, name=name, group=group, dir=str(out), config=config, job_type="evaluation", mode="online" if wandb_configured() else "offline", reinit="create_new")
    try:
        curves = report.curves
        methods = list(dict.fromkeys(curves["method"]))
        xs = sorted(curves["fraction"].unique().tolist())
        ys = [curves[curves["method"] == m].sort_values("fraction")["normalised"].tolist() for m in methods]
        run.log(
            {
                "table1": wandb.Table(dataframe=report.table1),
                "metrics": wandb.Table(dataframe=report.metrics.reset_index()),
                **({"differences": wandb.Table(dataframe=report.differences)} if len(report.differences) else {}),
                **({"strata": wandb.Table(dataframe=report.strata)} if report.strata is not None else {}),
                **({"labels": wandb.Table(dataframe=report.labels)} if report.labels is not None else {}),
                **({"segments": wandb.Table(dataframe=report.segments)} if report.segments is not None else {}),
                "degradation_curve": wandb.plot.line_series(xs=xs, ys=ys, keys=methods, title="Normalised drop of p(y|x') (Figure 1)", xname="fraction of tokens removed"),
                "curves_png": wandb.Image(str(report.files["curves.png"])),
                **{key: wandb.Table(dataframe=frame) for key, frame in (tables or {}).items()},
            }
        )
        drop = drop_column(report.table1.columns)  # e.g. drop_11
        for column in (drop, f"{drop}_lo", f"{drop}_hi"):
            for method, value in zip(report.table1["method"], report.table1[column]):
                run.summary[f"{column}/{method}"] = value
        return str(Path(run.dir).parent)
    finally:
        run.finish()
