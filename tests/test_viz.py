"""Visualisations: files are written, non-empty, well-formed; HTML is escaped."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from PIL import Image

from lightning_iba.errors import LightningIBAError
from lightning_iba.viz.curves import save_curves
from lightning_iba.viz.heatmap import save_heatmap
from lightning_iba.viz.html import highlight, save_html, save_html_examples
from lightning_iba.viz.terminal import render_terminal
from lightning_iba.viz.tokens import join_word_pieces, minmax, real_tokens

TOKENS = ["[CLS]", "a", "wonder", "##ful", "<script>", "film", "[SEP]"]
SCORES = [0.0, 0.1, 0.9, 0.8, 0.5, 0.3, 0.0]


def _png(path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_terminal_bars_scale_with_min_max_score():
    text = render_terminal(TOKENS, SCORES, width=10, title="ig")
    lines = text.splitlines()
    assert lines[0] == "ig" and len(lines) == 1 + len(TOKENS)
    bars = {t: line.count("█") for t, line in zip(TOKENS, lines[1:])}
    assert bars["wonder"] == 10 and bars["[CLS]"] == 0 and bars["<script>"] == 5
    assert lines[1].startswith("[CLS]") and "0.9" in lines[3]
    with pytest.raises(LightningIBAError, match="7 tokens but 6 scores"):
        render_terminal(TOKENS, SCORES[:-1])


def test_html_page_escapes_and_highlights(tmp_path):
    path = save_html(tmp_path / "out" / "page.html", TOKENS, torch.tensor(SCORES), title="IBA <b>", caption="label: pos")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "IBA &lt;b&gt;" in page and "least important" in page
    assert "wonder</span><span" in page  # word pieces joined without a space
    assert "rgba(214, 39, 40, 1.000)" in page and "rgba(214, 39, 40, 0.000)" in page  # min-max intensity


def test_html_signed_scores_use_two_colours(tmp_path):
    fragment = highlight(["good", "bad"], [0.5, -1.0])
    assert "rgba(214, 39, 40, 0.500)" in fragment and "rgba(31, 119, 180, 1.000)" in fragment
    path = save_html_examples(tmp_path / "many.html", [("one", ["x"], [1.0]), ("two", ["y", "z"], [-1.0, 2.0])])
    assert path.read_text().count('class="example"') == 2


def test_heatmap_png(tmp_path):
    rows = np.random.default_rng(0).random((4, len(TOKENS)))
    path = save_heatmap(tmp_path / "heat.png", TOKENS, rows, row_labels=[f"layer {i}" for i in range(4)], ylabel="layer")
    assert path.stat().st_size > 0 and _png(path)[0] > 100
    single = save_heatmap(tmp_path / "one.png", TOKENS, SCORES)
    assert _png(single)[0] > 100
    with pytest.raises(LightningIBAError):
        save_heatmap(tmp_path / "bad.png", TOKENS, rows[:, :3])


def test_long_heatmap_wraps_into_panels(tmp_path):
    tokens = [f"t{i}" for i in range(130)]
    scores = np.random.default_rng(1).random(130)
    wide_w, wide_h = _png(save_heatmap(tmp_path / "wide.png", tokens, scores, wrap=None))
    wrapped_w, wrapped_h = _png(save_heatmap(tmp_path / "wrapped.png", tokens, scores, wrap=48))
    assert wrapped_w < wide_w / 2 and wrapped_h > 2 * wide_h  # three panels of 48 tokens instead of one strip


def test_curve_plots_png(tmp_path):
    f = np.linspace(0, 1, 10)
    curves = pd.DataFrame({"method": ["iba"] * 10 + ["random"] * 10, "fraction": np.tile(f, 2),
                           "prob": np.r_[0.9 - 0.8 * f, 0.9 - 0.3 * f], "normalised": np.r_[1 - f, 1 - 0.4 * f]})
    assert _png(save_curves(tmp_path / "fig1.png", curves))[0] > 100
    assert _png(save_curves(tmp_path / "raw.png", curves, value="prob"))[0] > 100
    sweep = curves.assign(layer=curves["method"].map({"iba": 8, "random": 9})).drop(columns="method")
    assert _png(save_curves(tmp_path / "sweep.png", sweep, by="layer"))[0] > 100


def test_token_helpers(tokenizer):
    ids = torch.tensor([101, 2307, 102, 0, 0])
    tokens, scores = real_tokens(tokenizer, ids, torch.arange(5.0), ids != 0)
    assert tokens == ["[CLS]", "great", "[SEP]"] and scores.tolist() == [0.0, 1.0, 2.0]
    assert join_word_pieces(["wonder", "##ful", "film"]) == [("wonder", True), ("ful", False), ("film", True)]
    assert minmax([2.0, 4.0, 3.0]).tolist() == [0.0, 1.0, 0.5] and minmax([1.0, 1.0]).tolist() == [0.0, 0.0]
