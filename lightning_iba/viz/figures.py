"""Writing figures: one place for layout and PNG output."""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure  # no pyplot: no global state, renders with Agg


def save_png(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Lays out and writes a matplotlib figure as PNG, creating the folder; returns the path."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path
