"""The explorer page's data, without a browser: drops, disagreement, levels, escaping, old records, the attribute.py command."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from lightning_iba.evaluation.degradation import DegradationSettings
from lightning_iba.evaluation.report_page import attribute_command, explorer_instances
from lightning_iba.viz.explorer import (
    compared_pair,
    disagreement,
    drop_at,
    embed_json,
    explorer_instance,
    levels,
    render_explorer,
    spearman,
)

METHODS = ["iba", "ig", "random"]


def page_data(page: str) -> dict:
    """The JSON blob a page embeds, read back as the browser reads it."""
    blob = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', page, re.S).group(1)
    return json.loads(blob)


def record(index: int, label: int = 1, predicted: int | None = 1, scores: bool = True) -> dict:
    r = {
        "index": index, "id": f"doc-{index}", "label": label, "length": 6, "original_prob": 0.9,
        "remove": {"iba": [0.9, 0.2, 0.1], "ig": [0.9, 0.5, 0.2], "random": [0.9, 0.85, 0.3]}, "keep": {},
    }
    if predicted is not None:
        r.update(predicted=predicted, probs=[0.1, 0.9])
    if scores:
        r["input_ids"] = [101, 6581, 3185, 2001, 102]  # [CLS] excellent movie was [SEP]
        r["scores"] = {"iba": [0.0, 3.0, 1.0, 0.5, 0.0], "ig": [0.1, 0.8, -0.2, 0.1, 0.0], "random": [0.3, 0.1, 0.9, 0.4, 0.2]}
    return r


def test_drop_is_the_first_point_minus_the_headline_point():
    assert drop_at([0.9, 0.2, 0.1], 1) == pytest.approx(0.7)
    grid = DegradationSettings(fractions=[0.0, 0.11, 1.0], headline=0.11)
    x = explorer_instances([record(3)], METHODS, grid)[0]
    assert x["d"] == [0.7, 0.4, 0.05] and x["x"] == pytest.approx(0.3)  # iba - ig
    assert compared_pair(["random", "ig:class0", "iba:reference", "iba"]) == ("iba:reference", "ig:class0")
    assert compared_pair(["iba", "lime"]) is None


def test_disagreement_is_one_minus_mean_pairwise_spearman():
    a, b = [1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]
    assert spearman(a, b) == pytest.approx(1.0) and spearman(a, b[::-1]) == pytest.approx(-1.0)
    assert spearman(a, [1.0, 1.0, 1.0, 1.0]) is None
    assert disagreement({"iba": a, "ig": b}) == 0.0
    assert disagreement({"iba": a, "ig": b[::-1]}) == 2.0
    assert disagreement({"iba": a, "ig": b, "random": b[::-1]}) == 0.0  # random is left out
    assert disagreement({"iba": a, "ig": b[::-1], "lime": b}) == pytest.approx(1 - (-1 + 1 - 1) / 3, abs=1e-4)  # rounded to 4 places
    # the mask leaves [CLS]/[SEP] out: only the middle tokens count
    assert disagreement({"iba": [9.0, 1.0, 2.0, 3.0, 9.0], "ig": [-9.0, 1.0, 2.0, 3.0, -9.0]}, mask=[False, True, True, True, False]) == 0.0
    assert disagreement({"iba": a}) is None


def test_levels_follow_attribute_pys_html():
    assert levels([0.0, 2.0, 4.0]) == [0, 50, 100]  # unsigned: min-max
    assert levels([1.0, 3.0]) == [0, 100]
    assert levels([-2.0, 1.0, 0.0]) == [-100, 50, 0]  # signed: by the largest magnitude


def test_records_become_tokens_scores_and_rationale(tokenizer):
    grid = DegradationSettings()
    rows = [record(0), record(1, label=0, predicted=1)]
    x = explorer_instances(rows, METHODS, grid, tokenizer, rationales={1: [0, 1, 0, 0, 0]})
    assert x[0]["t"] == ["[CLS]", "excellent", "movie", "was", "[SEP]"]
    assert x[0]["s"][0] == [0, 100, 33, 17, 0] and x[0]["s"][1] == [12, 100, -25, 12, 0]
    assert x[0]["r"] is None and x[1]["r"] == [0, 100, 0, 0, 0]
    assert x[1]["y"] == 0 and x[1]["p"] == 1  # a wrong prediction
    assert x[0]["g"] is not None


def test_old_records_without_scores_or_predictions_still_render(tokenizer):
    rows = [record(0, predicted=None, scores=False), record(1, predicted=None, scores=False)]
    instances = explorer_instances(rows, METHODS, DegradationSettings(), tokenizer)
    assert instances[0]["t"] is None and instances[0]["s"] is None and instances[0]["g"] is None and instances[0]["p"] is None
    page = render_explorer("old run", METHODS, ["negative", "positive"], instances, 0.11)
    assert "no heatmaps" in page and "wrong-predictions filter is off" in page
    assert 'id="wrong" type="checkbox" disabled' in page
    assert len(page_data(page)["instances"]) == 2


def test_texts_and_names_cannot_break_out_of_the_page():
    evil = "</script><script>alert(1)</script><!--"
    x = explorer_instance(0, evil, 1, {"iba": 0.1}, ["iba"], 0.9, 1, [0.1, 0.9], ["[CLS]", evil, "[SEP]"], {"iba": [0.0, 1.0, 0.0]})
    table = pd.DataFrame({"method": [evil], "drop_11": [0.1]})
    page = render_explorer(evil, ["iba"], ["negative", evil], [x], 0.11, settings={"checkpoint": evil}, summary={"model": evil},
                           tables=[("Table 1", table)], command=f"python attribute.py --index {{index}} # {evil}")
    assert page.count("</script>") == 2 and "<!--" not in page  # the data blob's end and the script's end
    assert "<script>alert" not in page
    data = page_data(page)
    assert data["instances"][0]["t"][1] == evil and data["labels"][1] == evil and data["title"] == evil
    assert "\\u003c/script>" in embed_json(evil)


def test_attribute_command_reproduces_the_run():
    settings = {"checkpoint": "/runs/my model", "dataset": "imdb", "split": "test", "source": "local", "data_dir": "/data",
                "layer": 3, "max_length": 128, "seed": 0, "sweep": None, "iba": {"beta": 1e-5, "steps": 10, "loss": "code"},
                "estimator": {"name": "dataset", "texts": 1000, "split": "train", "seed": 0, "source": None, "cache_dir": None}}
    command, note = attribute_command(settings, ["iba", "ig"])
    assert command == (
        "python attribute.py --checkpoint '/runs/my model' --dataset imdb --split test --source local --data_dir /data "
        "--index {index} --layer 3 --max_length 128 --seed 0 --iba.beta 1e-05 --iba.steps 10 --iba.loss code "
        "--estimator.name dataset --estimator.texts 1000 --estimator.split train --estimator.seed 0"
    )
    sweep, _ = attribute_command({**settings, "sweep": "layer"}, ["layer 0"])
    assert "--layers all" in sweep and "--layer 3" not in sweep
    reference, _ = attribute_command({**settings, "estimator": None}, ["iba:reference"])
    assert reference.endswith("--estimator.name reference")
    _, files_note = attribute_command({**settings, "source": "files"}, ["iba"])
    assert "does not read" in files_note


def test_human_rationale_per_stored_token(tokenizer):
    from lightning_iba.evaluation.report_page import token_rationales

    text = "an excellent movie was shown"
    ids = tokenizer(text, truncation=True, max_length=5)["input_ids"]  # [CLS] an excellent movie [SEP]
    split = [{"id": "doc-0", "text": text, "rationale": [0, 1, 1, 0, 0]}, {"id": "doc-1", "text": text, "rationale": None}]
    records = [{**record(0), "input_ids": ids}, {**record(1), "input_ids": ids}, {**record(0, scores=False)}]
    assert token_rationales(records, split, tokenizer, 5) == {0: [0.0, 0.0, 1.0, 1.0, 0.0]}
    assert token_rationales(records, split, tokenizer, 6) == {}  # stored for another max_length: not aligned, left out
