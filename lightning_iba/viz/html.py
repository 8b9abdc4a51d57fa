"""Token scores as a standalone HTML page: each token's background intensity = its score."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Sequence

import numpy as np

from lightning_iba.viz.tokens import ScoreLike, as_array, check_lengths, join_word_pieces, maxabs, minmax

POSITIVE = (214, 39, 40)  # red: supports the target class / most important
NEGATIVE = (31, 119, 180)  # blue: speaks against it (signed scores only)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 60em; color: #222; }
.example { margin: 1.5em 0; line-height: 2.1; }
.example h2 { font-size: 1em; margin: 0 0 .3em; }
.tok { padding: .15em .05em; border-radius: .2em; }
.legend { display: flex; align-items: center; gap: .5em; font-size: .9em; }
.ramp { width: 12em; height: 1em; border: 1px solid #ccc; }
"""


def _colour(value: float) -> str:
    rgb = POSITIVE if value >= 0 else NEGATIVE
    return f"rgba({rgb[0]}, {rgb[1]}, {rgb[2]}, {abs(float(value)):.3f})"


def _signed(values: np.ndarray, signed: bool | None) -> bool:
    return bool((values < 0).any()) if signed is None else signed


def highlight(tokens: Sequence[str], scores: ScoreLike, signed: bool | None = None, prefix: str = "##") -> str:
    """HTML fragment: escaped tokens in spans coloured by score, word pieces glued together.

    Unsigned (default when no score is negative): min-max normalised red intensity. Signed:
    red for positive, blue for negative, intensity = |score| / max |score|.
    """
    raw = as_array(scores).ravel()
    check_lengths(tokens, raw)
    levels = maxabs(raw) if _signed(raw, signed) else minmax(raw)
    parts = []
    for (text, new_word), level, score, token in zip(join_word_pieces(tokens, prefix), levels, raw, tokens):
        span = (
            f'<span class="tok" style="background-color: {_colour(level)}" '
            f'title="{html.escape(token, quote=True)}: {score:.4g}">{html.escape(text)}</span>'
        )
        parts.append((" " if new_word and parts else "") + span)
    return "".join(parts)


def _legend(signed: bool) -> str:
    if signed:
        ramp = f"linear-gradient(to right, {_colour(-1)}, rgba(255,255,255,0), {_colour(1)})"
        ends = ("against the target", "for the target")
    else:
        ramp = f"linear-gradient(to right, rgba(255,255,255,0), {_colour(1)})"
        ends = ("least important", "most important")
    return (
        f'<div class="legend"><span>{ends[0]}</span><span class="ramp" style="background: {ramp}"></span>'
        f"<span>{ends[1]}</span></div>"
    )


def render_page(examples: Sequence[tuple[str, Sequence[str], ScoreLike]], title: str, signed: bool | None = None) -> str:
    """A complete HTML document: title, legend, and one highlighted block per (caption, tokens, scores)."""
    any_signed = any(_signed(as_array(s).ravel(), signed) for _, _, s in examples)
    blocks = [
        f'<div class="example"><h2>{html.escape(caption)}</h2>{highlight(tokens, scores, signed)}</div>'
        if caption
        else f'<div class="example">{highlight(tokens, scores, signed)}</div>'
        for caption, tokens, scores in examples
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{_legend(any_signed)}\n" + "\n".join(blocks) + "\n</body>\n</html>\n"
    )


def save_html(
    path: str | Path,
    tokens: Sequence[str],
    scores: ScoreLike,
    title: str = "Token attributions",
    caption: str | None = None,
    signed: bool | None = None,
) -> Path:
    """Write one instance's highlighted tokens as a standalone page; returns the path."""
    return save_html_examples(path, [(caption or "", tokens, scores)], title, signed)


def save_html_examples(
    path: str | Path, examples: Sequence[tuple[str, Sequence[str], ScoreLike]], title: str = "Token attributions", signed: bool | None = None
) -> Path:
    """Write several (caption, tokens, scores) blocks on one page; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_page(examples, title, signed), encoding="utf-8")
    return path
