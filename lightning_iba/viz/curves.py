"""Degradation curves as PNG line plots: one line per method (Figure 1) or per sweep value
(layers, Figure 2a / 4; betas, Figure 2b / 5). The curves are computed elsewhere (the evaluation's
metrics); this module only draws them."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure  # no pyplot: no global state, renders with Agg

from lightning_iba.errors import LightningIBAError
from lightning_iba.viz.figures import save_png

Y_LABELS = {"normalised": "normalised drop $\\bar d_k$", "prob": "mean $p(y\\mid x')$"}


def save_curves(
    path: str | Path,
    curves: pd.DataFrame,
    by: str = "method",
    value: str = "normalised",
    title: str | None = None,
    legend_title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Plot one line per `by` group of a curves frame (columns `by`, `fraction` and `value`, e.g.
    the evaluation's curves.csv) against the % of tokens removed. Returns the path."""
    missing = [c for c in (by, "fraction", value) if c not in curves.columns]
    if missing:
        raise LightningIBAError(f"curves to plot lack column(s) {', '.join(missing)}")
    data = curves.assign(percent=100 * curves["fraction"], **{by: curves[by].astype(str)})  # categorical hue
    fig = Figure(figsize=(6.0, 4.2))
    ax = fig.add_subplot()
    sns.lineplot(data=data, x="percent", y=value, hue=by, marker="o", ax=ax)
    ax.set_xlabel("% of tokens removed")
    ax.set_ylabel(Y_LABELS.get(value, value))
    ax.legend(title=legend_title or by)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return save_png(fig, path, dpi)
