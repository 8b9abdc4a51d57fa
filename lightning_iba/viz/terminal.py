"""Token scores as text: one line per token with a unicode bar, for logs and terminals."""
from __future__ import annotations

from typing import Sequence

from lightning_iba.viz.tokens import ScoreLike, as_array, check_lengths, minmax

EIGHTHS = " ▏▎▍▌▋▊▉"  # partial blocks, 0/8 .. 7/8
FULL = "█"


def bar(value: float, width: int) -> str:
    """A bar of `value` in [0, 1] times `width` cells, drawn in eighth-blocks."""
    eighths = int(round(max(0.0, min(1.0, value)) * width * 8))
    full, rest = divmod(eighths, 8)
    return (FULL * full + (EIGHTHS[rest] if rest else "")).ljust(width)


def render_terminal(tokens: Sequence[str], scores: ScoreLike, width: int = 30, title: str | None = None) -> str:
    """One line per token: the token, a bar scaled by the min-max normalised score, the raw score."""
    raw = as_array(scores).ravel()
    check_lengths(tokens, raw)
    norm = minmax(raw)
    pad = max((len(t) for t in tokens), default=0)
    lines = [title] if title else []
    lines += [f"{t:<{pad}} {bar(v, width)} {s: .4g}" for t, v, s in zip(tokens, norm, raw)]
    return "\n".join(lines)
