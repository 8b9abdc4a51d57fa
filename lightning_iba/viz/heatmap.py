"""Rows x tokens heatmaps (per layer like Figure 3, per beta like Figure 5, or one row) as PNG."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure  # no pyplot: no global state, renders with Agg

from lightning_iba.viz.figures import save_png

from lightning_iba.errors import LightningIBAError
from lightning_iba.viz.tokens import ScoreLike, as_array, minmax


def save_heatmap(
    path: str | Path,
    tokens: Sequence[str],
    scores: ScoreLike,  # [rows, tokens] or [tokens]
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
    ylabel: str = "",
    normalise: bool = True,
    cmap: str = "rocket_r",
    dpi: int = 120,
    wrap: int | None = 48,
) -> Path:
    """Heatmap with tokens on the x axis and one row per attribution; rows min-max normalised
    by default (each row is its own instance-level attribution); more than `wrap` tokens are drawn
    as stacked panels of `wrap` tokens. Returns the path written."""
    values = as_array(scores)
    values = values[None, :] if values.ndim == 1 else values
    if values.ndim != 2 or values.shape[1] != len(tokens):
        raise LightningIBAError(f"heatmap needs [rows, {len(tokens)}] scores, got shape {values.shape}")
    labels = [str(r) for r in (row_labels if row_labels is not None else range(values.shape[0]))]
    if len(labels) != values.shape[0]:
        raise LightningIBAError(f"{len(labels)} row labels for {values.shape[0]} rows")
    shown = np.asarray(minmax(values) if normalise else values)
    # Long texts wrap into blocks of `wrap` tokens, one panel each, so the PNG stays readable.
    starts = list(range(0, len(tokens), wrap)) if wrap and len(tokens) > wrap else [0]
    width = len(tokens) if len(starts) == 1 else wrap
    panel = max(1.4, 0.38 * len(labels) + 1.0)
    fig = Figure(figsize=(max(6.0, 0.32 * width + 2), panel * len(starts) + 0.6))
    lo, hi = (0.0, 1.0) if normalise else (float(np.nanmin(shown)), float(np.nanmax(shown)))
    for i, start in enumerate(starts):
        ax = fig.add_subplot(len(starts), 1, i + 1)
        block = slice(start, start + width)
        sns.heatmap(
            shown[:, block], ax=ax, cmap=cmap, xticklabels=list(tokens[block]), yticklabels=labels,
            vmin=lo, vmax=hi, cbar=i == 0, cbar_kws={"label": "normalised score" if normalise else "score"},
        )
        ax.tick_params(axis="x", labelrotation=90)
        ax.tick_params(axis="y", labelrotation=0)
        ax.set_ylabel(ylabel)
        if title and i == 0:
            ax.set_title(title)
    return save_png(fig, path, dpi)
