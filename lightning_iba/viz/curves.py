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


def save_sweep(
    path: str | Path,
    points: pd.DataFrame,
    x: str,
    y: str = "drop_11",
    series: str = "dataset",
    log_x: bool = False,
    reference: pd.DataFrame | None = None,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """A sweep summary (Figure 2 as one panel): `y` against `x` (layer index, or beta with `log_x`), one
    line per `series` value, with a band from the columns `<y>_lo`/`<y>_hi` where present. `reference`
    (columns `series` and `y`) adds a dashed horizontal line per series, e.g. the "X only" score."""
    missing = [c for c in (x, y, series) if c not in points.columns]
    if missing:
        raise LightningIBAError(f"sweep points to plot lack column(s) {', '.join(missing)}")
    fig = Figure(figsize=(6.0, 4.2))
    ax = fig.add_subplot()
    palette = sns.color_palette(n_colors=max(1, points[series].nunique()))
    for color, (name, group) in zip(palette, points.groupby(series, sort=False)):
        group = group.sort_values(x)
        ax.plot(group[x], group[y], marker="o", color=color, label=str(name))
        if f"{y}_lo" in group and f"{y}_hi" in group:
            ax.fill_between(group[x], group[f"{y}_lo"], group[f"{y}_hi"], color=color, alpha=0.15, linewidth=0)
        if reference is not None:
            for value in reference.loc[reference[series] == name, y]:
                ax.axhline(value, color=color, linestyle="--", linewidth=1)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(y.replace("drop_", "drop of p(y|x') at ") + (" %" if y.startswith("drop_") else ""))
    ax.legend(title=series)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return save_png(fig, path, dpi)
