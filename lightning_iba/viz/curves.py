"""Degradation curves as PNG line plots: one line per method (Figure 1) or per sweep value
(layers, Figure 2a / 4; betas, Figure 2b / 5)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure  # no pyplot: no global state, renders with Agg

from lightning_iba.evaluation.metrics import mean_curves, normalised_curves
from lightning_iba.viz.figures import save_png


def save_curves(
    path: str | Path,
    frame: pd.DataFrame,
    by: str = "method",
    normalised: bool = True,
    title: str | None = None,
    legend_title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Plot the mean curve of each `by` group of a long degradation frame (see metrics) against the
    % of tokens removed: the normalised drop d_k (default) or the raw mean p(y|x'). Returns the path."""
    data = normalised_curves(frame, by) if normalised else mean_curves(frame, by)
    data = data.assign(percent=100 * data["fraction"], **{by: data[by].astype(str)})  # categorical hue
    fig = Figure(figsize=(6.0, 4.2))
    ax = fig.add_subplot()
    sns.lineplot(data=data, x="percent", y="normalised" if normalised else "prob", hue=by, marker="o", ax=ax)
    ax.set_xlabel("% of tokens removed")
    ax.set_ylabel("normalised drop $\\bar d_k$" if normalised else "mean $p(y\\mid x')$")
    ax.legend(title=legend_title or by)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return save_png(fig, path, dpi)


def save_degradation_plot(path: str | Path, frame: pd.DataFrame, normalised: bool = True, title: str | None = None) -> Path:
    """Figure 1: one line per attribution method."""
    return save_curves(path, frame, "method", normalised, title)


def save_sweep_plot(
    path: str | Path, frame: pd.DataFrame, by: str = "layer", normalised: bool = True, title: str | None = None
) -> Path:
    """Figures 2 / 4 / 5: one line per value of the sweep column `by` (e.g. "layer" or "beta")."""
    return save_curves(path, frame, by, normalised, title, legend_title=by)
