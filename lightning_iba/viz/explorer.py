"""The explorer page (`report.html`): one self-contained HTML file that opens from disk in any browser.

It holds a run's settings, tables (Table 1 with intervals, differences, metrics, plausibility where
present) and curves (PNG, embedded as base64), and every instance: its text with one heatmap row per
method aligned token by token (and the human rationale as one more row), gold and predicted label,
probabilities, and each method's drop at the headline fraction. The instances are embedded as one
JSON blob and rendered client-side by plain JavaScript, a page at a time, with sorting (method
disagreement, IBA - IG drop difference), filters (wrong predictions, text search) and a detail view
per instance (`#i=<index>`) that shows what `attribute.py`'s HTML shows, with the command that
reproduces it. No network, no server, no framework.

This module takes plain data (dicts, lists, DataFrames, PNG bytes); the evaluation prepares it.
"""
from __future__ import annotations

import base64
import html
import json
import math
from itertools import combinations
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from lightning_iba.viz.html import NEGATIVE, POSITIVE
from lightning_iba.viz.tokens import as_array, maxabs, minmax

#: Instances per page of the list (a 10,000-instance run renders 50 at a time).
PAGE_SIZE = 50
#: Methods left out of the disagreement score (their scores are noise by design).
DISAGREEMENT_IGNORES = ("random",)


def base_name(method: str) -> str:
    """`iba:dataset@seed1` -> `iba`."""
    return method.split("@", 1)[0].split(":", 1)[0].strip()


def drop_at(curve: Sequence[float], step: int) -> float:
    """An instance's drop at the headline step: p(y|x) (the curve's first point) - p(y|x') at `step`,
    the per-instance value whose mean over instances is Table 1's drop."""
    return float(curve[0]) - float(curve[step])


def levels(scores: Sequence[float]) -> list[int]:
    """Display levels in [-100, 100] (integers, for a compact page) by attribute.py's HTML rule:
    signed scores (any negative) divided by their largest magnitude, unsigned ones min-max normalised."""
    raw = as_array(scores).ravel()
    if raw.size == 0:
        return []
    shown = maxabs(raw) if (raw < 0).any() else minmax(raw)
    return [int(v) for v in np.rint(100 * shown)]


def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties averaged (as Spearman's correlation takes them)."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse.ravel()]


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation; None where it is undefined (a constant vector, < 3 values)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.size < 3 or x.size != y.size:
        return None
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return None if den == 0 else float((rx * ry).sum() / den)


def disagreement(scores: Mapping[str, Sequence[float]], mask: Sequence[bool] | None = None,
                 ignore: Sequence[str] = DISAGREEMENT_IGNORES) -> float | None:
    """How much the methods disagree on one instance: 1 - the mean pairwise Spearman rank correlation of
    their token scores over the tokens in `mask` (e.g. all but [CLS]/[SEP]), methods whose base name is in
    `ignore` left out. 0: the same ranking; 1: unrelated; 2: reversed. None with fewer than two methods
    or where no pair's correlation is defined."""
    keep = np.ones(len(next(iter(scores.values()), [])), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    rows = [np.asarray(v, dtype=np.float64)[keep] for m, v in scores.items() if base_name(m) not in ignore]
    rhos = [r for a, b in combinations(rows, 2) if (r := spearman(a, b)) is not None]
    return round(1.0 - float(np.mean(rhos)), 4) if rhos else None


def compared_pair(methods: Sequence[str]) -> tuple[str, str] | None:
    """The IBA and IG of the "IBA - IG" sort: the first method whose name starts with "iba" and the first
    that starts with "ig"; None where the run lacks either."""
    iba = next((m for m in methods if m.lower().startswith("iba")), None)
    ig = next((m for m in methods if m.lower().startswith("ig")), None)
    return (iba, ig) if iba and ig else None


def explorer_instance(
    index: int,
    id: str,
    label: int,
    drops: Mapping[str, float],
    methods: Sequence[str],
    original_prob: float,
    predicted: int | None = None,
    probs: Sequence[float] | None = None,
    tokens: Sequence[str] | None = None,
    scores: Mapping[str, Sequence[float]] | None = None,
    special: Sequence[bool] | None = None,
    rationale: Sequence[float] | None = None,
) -> dict[str, Any]:
    """One instance as the page embeds it (short keys: the page of a 10,000-instance run stays small).

    `drops`: method -> drop at the headline fraction; `tokens`/`scores` (per method, one per token) may
    be absent (older records, store_scores false); `special` marks the tokens the disagreement leaves out;
    `rationale`: the human rationale per token (0/1 or a soft score in [0, 1])."""
    have_scores = tokens is not None and scores is not None and all(m in scores for m in methods)
    if tokens is not None:
        for m, row in (scores or {}).items():
            if len(row) != len(tokens):
                raise ValueError(f"instance {index}: {len(tokens)} tokens but {len(row)} scores of {m}")
    pair = compared_pair(methods)
    diff = None if pair is None else _number(drops[pair[0]] - drops[pair[1]], 6)
    mask = None if special is None else [not s for s in special]
    return {
        "i": int(index),
        "id": str(id),
        "y": int(label),
        "p": None if predicted is None else int(predicted),
        "pr": None if probs is None else [_number(p) for p in probs],
        "o": _number(original_prob),
        "t": None if tokens is None else [str(t) for t in tokens],
        "s": [levels(scores[m]) for m in methods] if have_scores else None,
        "r": None if rationale is None or tokens is None else [int(round(100 * float(v))) for v in rationale],
        "d": [_number(drops[m]) for m in methods],
        "g": disagreement({m: scores[m] for m in methods}, mask) if have_scores else None,
        "x": diff,
    }


def _number(value: float | None, digits: int = 4) -> float | None:
    """Rounded, or None where not finite (the page's JSON has no NaN)."""
    return None if value is None or not math.isfinite(float(value)) else round(float(value), digits)


def _flatten(settings: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows += _flatten(value, name + ".")
        else:
            rows.append((name, json.dumps(value) if not isinstance(value, str) else value))
    return rows


def _table(frame: pd.DataFrame) -> str:
    numbers = frame.select_dtypes("float").columns
    frame = frame.assign(**{c: frame[c] + 0.0 for c in numbers})  # -0.0 shows as 0
    return frame.to_html(index=False, escape=True, border=0, classes="data", float_format=lambda v: f"{v:.4g}", na_rep="")


def embed_json(data: Any) -> str:
    """JSON safe inside a <script> element: every `<` written as \\u003c (no `</script>`, no `<!--`)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).replace("<", "\\u003c")


def render_explorer(
    title: str,
    methods: Sequence[str],
    label_names: Sequence[str],
    instances: Sequence[Mapping[str, Any]],
    headline: float,
    settings: Mapping[str, Any] | None = None,
    summary: Mapping[str, Any] | None = None,
    tables: Sequence[tuple[str, pd.DataFrame | None]] = (),
    curves_png: bytes | None = None,
    command: str | None = None,
    command_note: str = "",
    notes: Sequence[str] = (),
    page_size: int = PAGE_SIZE,
    target: str = "gold",
) -> str:
    """The page as one string. `instances`: explorer_instance() dicts; `summary`: a few headline settings
    shown at the top; `tables`: (caption, frame) pairs, None frames left out; `command`: the attribute.py
    command with `{index}` where the instance's index goes; `notes`: lines shown above the list."""
    pair = compared_pair(methods)
    has_scores = any(x.get("s") is not None for x in instances)
    has_predictions = any(x.get("p") is not None for x in instances)
    notes = list(notes)
    if instances and not has_scores:
        notes.append("These records hold no token scores (an older run, or store_scores false): no heatmaps and no "
                     "disagreement; run the evaluation again with --store_scores true to see them.")
    elif instances and not all(x.get("s") is not None for x in instances):
        notes.append("Some records hold no token scores (written before store_scores): they are shown without heatmaps.")
    if instances and not has_predictions:
        notes.append("These records hold no predicted class (an older run): the wrong-predictions filter is off.")
    data = {
        "title": title,
        "methods": list(methods),
        "labels": [str(n) for n in label_names],
        "headline": float(headline),
        "pair": list(pair) if pair else None,
        "colours": {"positive": list(POSITIVE), "negative": list(NEGATIVE)},
        "command": command,
        "commandNote": command_note,
        "pageSize": int(page_size),
        "target": str(target),
        "instances": list(instances),
    }
    percent = f"{round(100 * float(headline))} %"
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if summary:
        parts.append('<p class="summary">' + " · ".join(
            f"{html.escape(str(k))} <b>{html.escape(str(v))}</b>" for k, v in summary.items()) + "</p>")
    if settings:
        rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in _flatten(settings))
        parts.append(f'<details class="settings"><summary>Settings (settings.json)</summary><table class="kv">{rows}</table></details>')
    figures = []
    for caption, frame in tables:
        if frame is not None and len(frame):
            figures.append(f'<section class="tbl"><h2>{html.escape(caption)}</h2><div class="scroll">{_table(frame)}</div></section>')
    if curves_png:
        uri = "data:image/png;base64," + base64.b64encode(curves_png).decode("ascii")
        figures.append(f'<section class="tbl"><h2>Degradation curves</h2><img class="curves" alt="degradation curves" src="{uri}"></section>')
    parts.append('<div class="results">' + "".join(figures) + "</div>")
    sort_options = [("index", "index"), ("disagreement", "methods disagree most")]
    if pair:
        sort_options += [("diff", f"largest {pair[0]} − {pair[1]} drop"), ("-diff", f"largest {pair[1]} − {pair[0]} drop")]
    sort_options += [("prob", f"lowest p({target})")]
    options = "".join(f'<option value="{v}">{html.escape(t)}</option>' for v, t in sort_options)
    parts.append(
        '<h2 id="instances">Instances</h2>'
        + "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)
        + '<div class="controls">'
        '<input id="search" type="search" placeholder="search the texts and ids" aria-label="search">'
        f'<label><input id="wrong" type="checkbox"{"" if has_predictions else " disabled"}> wrong predictions only</label>'
        f'<label>sort <select id="sort">{options}</select></label>'
        '<span class="count"><b id="shown">0</b> of <span id="total">0</span> instances</span>'
        '<span class="pager"><button id="prev" type="button">&laquo; prev</button> <span id="page"></span> '
        '<button id="next" type="button">next &raquo;</button></span>'
        "</div>"
        f'<p class="hint">Each row: one method\'s token scores, normalised per instance as attribute.py shows them '
        f"(signed scores: blue against, red for the {target} class, by the largest |score|; unsigned ones min-max). "
        f"drop = p({target}) − p({target}) with the top {percent} of the tokens removed. Disagreement = 1 − mean pairwise "
        "Spearman rank correlation of the methods' token scores (random left out, [CLS]/[SEP] too).</p>"
        '<div id="list"></div>'
        '<section id="detail" hidden></section>'
    )
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n{body}\n"
        f'<script type="application/json" id="explorer-data">{embed_json(data)}</script>\n'
        f"<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )


def save_explorer(path: str | Path, **kwargs: Any) -> Path:
    """Writes render_explorer(**kwargs) to `path`; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_explorer(**kwargs), encoding="utf-8")
    return path


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .3em; }
h2 { font-size: 1.1em; margin: 1em 0 .4em; }
.summary { margin: .2em 0 .6em; }
.settings summary { cursor: pointer; color: #555; }
table.kv { font-size: .85em; border-collapse: collapse; }
table.kv th { text-align: left; font-weight: normal; color: #666; padding: 0 1em 0 0; }
table.kv td { font-family: ui-monospace, monospace; }
.results { display: flex; flex-wrap: wrap; gap: 0 2.5em; align-items: flex-start; }
.tbl { min-width: 0; max-width: 100%; }
.scroll { overflow-x: auto; }
table.data { border-collapse: collapse; font-size: .85em; }
table.data th, table.data td { padding: .15em .6em; border-bottom: 1px solid #ddd; text-align: right; }
table.data th { background: #f4f4f4; }
table.data td:first-child, table.data th:first-child { text-align: left; }
img.curves { max-width: 32em; width: 100%; }
.note { background: #fff6d6; border: 1px solid #ecd98c; padding: .4em .7em; border-radius: .3em; }
.hint { color: #666; font-size: .8em; margin: .3em 0 .8em; }
.controls { display: flex; flex-wrap: wrap; gap: .6em 1.4em; align-items: center; position: sticky; top: 0;
  background: #fff; padding: .5em 0; border-bottom: 1px solid #ddd; z-index: 1; }
#search { width: 18em; padding: .25em .4em; }
.count { color: #444; }
.inst { border-bottom: 1px solid #e4e4e4; padding: .6em 0 .7em; content-visibility: auto; contain-intrinsic-size: auto 12em; }  /* off-screen cards: no style or layout work */
.inst header { font-size: .85em; margin-bottom: .35em; }
.idx { font-weight: bold; margin-right: .4em; }
.sep { color: #bbb; margin: 0 .35em; }
[hidden] { display: none !important; }
.wrong { color: #b00; }
.right { color: #1a7f37; }
.drop { margin-right: .6em; white-space: nowrap; }
.heat .line { margin-bottom: .45em; }
.tk { display: inline-block; vertical-align: top; min-width: 6px; font-size: 13px; line-height: 17px; white-space: pre; }
.tk.w { margin-left: 4px; }
.rows { display: inline-block; vertical-align: top; margin-right: 3px; color: #777; text-align: right; }
.rows span { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; display: block; font-size: 10px; height: 10px; line-height: 10px; margin-top: 1px; }
.rows span:first-child { font-size: 13px; height: 17px; line-height: 17px; margin-top: 0; visibility: hidden; }
#detail .example { margin: 1.2em 0; line-height: 2.1; max-width: 60em; }
#detail .example h3 { font-size: 1em; margin: 0 0 .3em; }
#detail .tok { padding: .15em .05em; border-radius: .2em; }
#detail pre { background: #f6f6f6; padding: .6em; white-space: pre-wrap; word-break: break-all; }
.legend { display: flex; align-items: center; gap: .5em; font-size: .9em; }
.ramp { width: 12em; height: 1em; border: 1px solid #ccc; }
"""

_SCRIPT = r"""
(function () {
"use strict";
var T0 = performance.now();
var D = JSON.parse(document.getElementById("explorer-data").textContent);
var M = D.methods, ALL = D.instances, LABELS = D.labels;
var POS = D.colours.positive, NEG = D.colours.negative;
var byIndex = {};
var TEXT_PX = 17, CELL_PX = 10;
var ROWS_WIDTH = Math.min(160, 8 + 6 * Math.max.apply(null, M.concat(["human"]).map(function (m) { return m.length; })));
var state = {q: "", wrong: false, sort: "index", page: 0, rows: ALL};
var $ = function (id) { return document.getElementById(id); };

function esc(s) {
  return String(s).replace(/[&<>"']/g, function (c) {
    return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
  });
}
function colour(level) {
  var v = level / 100, c = v >= 0 ? POS : NEG;
  return "rgba(" + c[0] + ", " + c[1] + ", " + c[2] + ", " + Math.abs(v).toFixed(3) + ")";
}
function pieces(tokens) {  // [shown text, starts a new word], word pieces glued like attribute.py's HTML
  return tokens.map(function (t, i) {
    var cont = i > 0 && t.indexOf("##") === 0 && t.length > 2;
    return [cont ? t.slice(2) : t, !cont];
  });
}
function label(k) { return k === null || k === undefined ? "?" : (LABELS[k] !== undefined ? LABELS[k] : String(k)); }
function fmt(v, d) { return v === null || v === undefined ? "–" : v.toFixed(d === undefined ? 3 : d); }

ALL.forEach(function (x) { byIndex[x.i] = x; });
var indexed = false;
function searchIndex() {  // each instance's text as shown (word pieces glued) and id, lower-cased; built at the first search
  if (indexed) return;
  ALL.forEach(function (x) {
    var text = x.t ? pieces(x.t).map(function (p, i) { return (p[1] && i ? " " : "") + p[0]; }).join("") : "";
    x._q = (text + " " + x.id).toLowerCase();
  });
  indexed = true;
}

function apply() {
  var terms = state.q.toLowerCase().split(/\s+/).filter(Boolean);
  if (terms.length) searchIndex();
  var rows = ALL.filter(function (x) {
    if (state.wrong && (x.p === null || x.p === x.y)) return false;
    for (var k = 0; k < terms.length; k++) if (x._q.indexOf(terms[k]) < 0) return false;
    return true;
  });
  var key = {
    index: function (x) { return x.i; },
    disagreement: function (x) { return x.g === null ? Infinity : -x.g; },
    diff: function (x) { return x.x === null ? Infinity : -x.x; },
    "-diff": function (x) { return x.x === null ? Infinity : x.x; },
    prob: function (x) { return x.o === null ? Infinity : x.o; }
  }[state.sort] || function (x) { return x.i; };
  rows = rows.map(function (x) { return [key(x), x.i, x]; });
  rows.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; });
  state.rows = rows.map(function (r) { return r[2]; });
  state.page = Math.min(state.page, Math.max(0, Math.ceil(state.rows.length / D.pageSize) - 1));
  render();
}

function header(x, inDetail) {
  var h = '<a class="idx" href="#i=' + x.i + '">#' + x.i + "</a>" + esc(x.id) + '<span class="sep">|</span>gold <b>' + esc(label(x.y)) + "</b>";
  if (x.p !== null) h += ', predicted <b class="' + (x.p === x.y ? "right" : "wrong") + '">' + esc(label(x.p)) + "</b>";
  h += '<span class="sep">|</span>p(' + esc(D.target) + ") " + fmt(x.o);
  if (x.pr) h += " (" + x.pr.map(function (p, k) { return esc(label(k)) + " " + fmt(p); }).join(", ") + ")";
  h += '<span class="sep">|</span>drop at ' + Math.round(100 * D.headline) + " %: ";
  h += M.map(function (m, k) { return '<span class="drop">' + esc(m) + " <b>" + fmt(x.d[k]) + "</b></span>"; }).join("");
  if (x.g !== null) h += '<span class="sep">|</span>disagreement ' + fmt(x.g, 2);
  if (x.x !== null) h += '<span class="sep">|</span>' + esc(D.pair[0]) + " − " + esc(D.pair[1]) + " " + fmt(x.x);
  return inDetail ? h : h + '<span class="sep">|</span><a href="#i=' + x.i + '">detail view</a>';
}

function heat(x, width) {  // lines of whole words that fit `width` px, each led by the row names
  if (!x.t) return "";
  var names = ["token"].concat(x.s ? M : [], x.r ? ["human"] : []);
  var rows = '<span class="rows" style="width: ' + ROWS_WIDTH + 'px">' + names.map(function (n) { return '<span title="' + esc(n) + '">' + esc(n) + "</span>"; }).join("") + "</span>";
  var lines = [], line = "", used = 0;
  pieces(x.t).forEach(function (p, j) {
    var w = Math.max(6, 8 * p[0].length) + (p[1] ? 4 : 0);
    if (p[1] && line && used + w > width) { lines.push(line); line = ""; used = 0; }
    used += w;
    // one element per token: its heat cells are bands of one background under the text (a small DOM: fast pages)
    var stops = [], tip = [x.t[j]], y = TEXT_PX;
    var band = function (level, name) {
      stops.push("transparent " + y + "px " + (y + 1) + "px", colour(level) + " " + (y + 1) + "px " + (y + 1 + CELL_PX) + "px");
      tip.push(name + " " + (level / 100).toFixed(2));
      y += 1 + CELL_PX;
    };
    if (x.s) for (var k = 0; k < M.length; k++) band(x.s[k][j], M[k]);
    if (x.r) band(x.r[j], "human");
    var style = stops.length ? ' style="padding-bottom:' + (y - TEXT_PX) + "px;background-image:linear-gradient(transparent " + TEXT_PX + "px, " + stops.join(", ") + ')"' : "";
    line += '<span class="tk' + (p[1] ? " w" : "") + '"' + style + ' title="' + esc(tip.join("\n")) + '">' + esc(p[0]) + "</span>";
  });
  if (line) lines.push(line);
  x._h = lines.length * (TEXT_PX + 7 + 11 * ((x.s ? M.length : 0) + (x.r ? 1 : 0)));  // for the card's placeholder size
  return '<div class="heat">' + lines.map(function (l) { return '<div class="line">' + rows + l + "</div>"; }).join("") + "</div>";
}

function render() {
  var n = state.rows.length, size = D.pageSize, pages = Math.max(1, Math.ceil(n / size));
  var start = state.page * size, shown = state.rows.slice(start, start + size);
  var width = Math.max(200, ($("list").clientWidth || document.body.clientWidth || 1000) - ROWS_WIDTH - 16);
  $("list").innerHTML = shown.map(function (x) {
    var cells = heat(x, width);
    return '<article class="inst" data-index="' + x.i + '" style="contain-intrinsic-size: auto ' + (60 + (x._h || 0)) + 'px"><header>' + header(x) + "</header>" + cells + "</article>";
  }).join("");
  $("shown").textContent = n;
  $("total").textContent = ALL.length;
  $("page").textContent = "page " + (state.page + 1) + " / " + pages;
  $("prev").disabled = state.page === 0;
  $("next").disabled = state.page >= pages - 1;
}

function highlight(tokens, lv) {  // attribute.py's viz.html.highlight, client-side
  return pieces(tokens).map(function (p, j) {
    var span = '<span class="tok" style="background-color: ' + colour(lv[j]) + '" title="' + esc(tokens[j]) + ": " + (lv[j] / 100).toFixed(2) + '">' + esc(p[0]) + "</span>";
    return (p[1] && j ? " " : "") + span;
  }).join("");
}
function legend(signed) {
  var ramp = signed ? "linear-gradient(to right, " + colour(-100) + ", rgba(255,255,255,0), " + colour(100) + ")"
    : "linear-gradient(to right, rgba(255,255,255,0), " + colour(100) + ")";
  var ends = signed ? ["against the target", "for the target"] : ["least important", "most important"];
  return '<div class="legend"><span>' + ends[0] + '</span><span class="ramp" style="background: ' + ramp + '"></span><span>' + ends[1] + "</span></div>";
}

function detail(x) {
  var h = '<p><a href="#instances">&larr; all instances</a></p><h2>Instance #' + x.i + " (" + esc(x.id) + ")</h2><p>" + header(x, true) + "</p>";
  if (D.command) {
    h += "<p>The same view from attribute.py (IBA towards the " + esc(D.target) + " class; it writes attribution.json, .html and .png):</p><pre><code>" +
      esc(D.command.split("{index}").join(String(x.i)).split("{predicted}").join(String(x.p))) + "</code></pre>";
    if (D.commandNote) h += '<p class="hint">' + esc(D.commandNote) + "</p>";
  }
  if (!x.t || !x.s) return h + '<p class="note">This record holds no token scores: no heatmap.</p>';
  var signed = x.s.some(function (row) { return row.some(function (v) { return v < 0; }); });
  h += legend(signed);
  M.forEach(function (m, k) { h += '<div class="example"><h3>' + esc(m) + "</h3>" + highlight(x.t, x.s[k]) + "</div>"; });
  if (x.r) h += '<div class="example"><h3>human rationale</h3>' + highlight(x.t, x.r) + "</div>";
  return h;
}

function route() {
  var m = /^#i=(-?\d+)$/.exec(location.hash), x = m ? byIndex[+m[1]] : undefined;
  var list = $("list"), det = $("detail"), controls = document.querySelector(".controls");
  if (x) {
    det.innerHTML = detail(x);
    det.hidden = false; list.hidden = true; controls.hidden = true;
    det.scrollIntoView();
  } else {
    det.hidden = true; list.hidden = false; controls.hidden = false;
    if (m) { det.hidden = false; det.innerHTML = '<p class="note">No instance ' + esc(m[1]) + ' in this run. <a href="#instances">All instances</a></p>'; }
  }
}

$("search").addEventListener("input", function (e) { state.q = e.target.value; state.page = 0; apply(); });
$("wrong").addEventListener("change", function (e) { state.wrong = e.target.checked; state.page = 0; apply(); });
$("sort").addEventListener("change", function (e) { state.sort = e.target.value; state.page = 0; apply(); });
$("prev").addEventListener("click", function () { if (state.page > 0) { state.page--; render(); $("instances").scrollIntoView(); } });
$("next").addEventListener("click", function () { state.page++; render(); $("instances").scrollIntoView(); });
window.addEventListener("hashchange", route);
window.explorer = {state: state, apply: apply, route: route};
apply();
route();
window.explorer.initMs = performance.now() - T0;  // parse + first page, for the benchmark
})();
"""
