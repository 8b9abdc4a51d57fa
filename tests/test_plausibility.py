"""Plausibility metrics (ERASER's definitions) against numbers worked out by hand, their bootstrap intervals,
and the report-time mapping of stored token scores to words."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lightning_iba.errors import LightningIBAError
from lightning_iba.evaluation.intervals import BootstrapSettings, Derived, _resample_means, bootstrap_values
from lightning_iba.evaluation.plausibility import (
    PlausibilitySettings,
    auprc,
    average_precision,
    eraser_faithfulness,
    fraction_k,
    instance_metrics,
    iou,
    iou_counts,
    micro_f1,
    spans,
    top_k,
    top_k_prf,
)

# A 10-word instance with a 3-word rationale: words 1, 2 and 6 (spans [1, 3) and [6, 7)).
GOLD = np.array([0, 1, 1, 0, 0, 0, 1, 0, 0, 0], dtype=bool)
EVIDENCE = [(1, 3), (6, 7)]
# Ranking: w1 .9, w3 .8, w6 .7, w9 .6, w8 .4, w2 .3, w5 .2, w0 .1, w7 .05, w4 0
SCORES = np.array([0.1, 0.9, 0.3, 0.8, 0.0, 0.2, 0.7, 0.05, 0.4, 0.6])


def test_top_k_token_scores_by_hand():
    # top 3 (k = 3 rationale words): w1, w3, w6 -> 2 of 3 right
    assert top_k(SCORES, 3).nonzero()[0].tolist() == [1, 3, 6]
    assert top_k_prf(SCORES, GOLD) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    # top 10 % of 10 words = 1 word: w1, right -> P 1, R 1/3, F1 2 * 1 * 1/3 / (4/3) = 0.5
    assert fraction_k(10, 0.1) == 1 and fraction_k(3, 0.1) == 1 and fraction_k(25, 0.1) == 2  # round half to even: 2.5 -> 2
    assert top_k_prf(SCORES, GOLD, k=1) == pytest.approx((1.0, 1 / 3, 0.5))
    # ties: the earlier word first
    assert top_k([0.5, 0.5, 0.5], 1).tolist() == [True, False, False]
    assert top_k_prf(np.array([0.5, 0.5, 0.5]), np.array([0, 0, 1])) == (0.0, 0.0, 0.0)


def test_spans_and_iou_by_hand():
    assert spans([0, 1, 1, 0, 1, 0, 0, 1]) == [(1, 3), (4, 5), (7, 8)] and spans([0, 0]) == [] and spans([1, 1]) == [(0, 2)]
    assert iou((1, 2), (1, 3)) == 0.5 and iou((0, 4), (2, 6)) == pytest.approx(2 / 6) and iou((0, 1), (1, 2)) == 0.0
    # the top 3 as spans: [1, 2) (IOU 0.5 with [1, 3): a match at >= 0.5), [3, 4) (no overlap), [6, 7) (IOU 1)
    predicted = spans(top_k(SCORES, 3))
    assert predicted == [(1, 2), (3, 4), (6, 7)]
    assert iou_counts(predicted, EVIDENCE, 0.5) == (2, 3, 2)
    assert iou_counts(predicted, EVIDENCE, 0.51) == (1, 3, 2)  # [1, 2) no longer matches
    assert iou_counts([(0, 2), (2, 4)], [(0, 4)], 0.5) == (2, 2, 1)  # ERASER counts both predicted spans against one gold span
    # micro over instances: (2 TP, 3 predicted, 2 gold) + (0, 1, 1) -> P 2/4, R 2/3, F1 4/7
    p, r, f = micro_f1(np.array([2, 0]).sum(), np.array([3, 1]).sum(), np.array([2, 1]).sum())
    assert (p, r, f) == pytest.approx((0.5, 2 / 3, 4 / 7))
    assert micro_f1(0, 3, 2) == (0.0, 0.0, 0.0)


def test_auprc_and_average_precision_by_hand():
    # ranked truth: 1 0 1 0 0 1 0 0 0 0; (recall, precision) at each cut: (1/3, 1), (1/3, 1/2), (2/3, 2/3), (2/3, 1/2),
    # (2/3, 2/5), (1, 1/2), (1, 3/7), ...
    # average precision: 1/3 * 1 + 1/3 * 2/3 + 1/3 * 1/2 = 13/18
    assert average_precision(SCORES, GOLD) == pytest.approx(13 / 18)
    # ERASER's trapezoids from (0, 1): (0 -> 1/3) at (1 + 1)/2, (1/3 -> 2/3) from 1/2 to 2/3, (2/3 -> 1) from 2/5 to 1/2
    assert auprc(SCORES, GOLD) == pytest.approx(1 / 3 + 7 / 36 + 3 / 20)  # = 61/90
    # tied scores form one threshold: [1, 1, 0] vs [0, 1, 0]: the first cut holds both tied words (P 1/2, R 1)
    assert average_precision(np.array([1.0, 1.0, 0.0]), np.array([0, 1, 0])) == pytest.approx(0.5)
    assert auprc(np.array([1.0, 1.0, 0.0]), np.array([0, 1, 0])) == pytest.approx(0.75)
    assert auprc(SCORES, np.ones(10)) == pytest.approx(1.0) and average_precision(SCORES, np.ones(10)) == pytest.approx(1.0)
    with pytest.raises(LightningIBAError, match="at least one rationale word"):
        auprc(SCORES, np.zeros(10))


def test_auprc_agrees_with_sklearn_as_eraser_computes_it():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _ in range(20):
        gold = rng.random(40) < 0.3
        gold[0] = True
        scores = np.round(rng.normal(size=40), 1)  # with ties
        precision, recall, _ = metrics.precision_recall_curve(gold.astype(int), scores)
        assert auprc(scores, gold) == pytest.approx(metrics.auc(recall, precision))
        assert average_precision(scores, gold) == pytest.approx(metrics.average_precision_score(gold.astype(int), scores))


def test_instance_metrics_and_eraser_faithfulness_by_hand():
    values = instance_metrics(SCORES, GOLD, EVIDENCE, top_fraction=0.1, iou_threshold=0.5, suffix="10")
    assert values == pytest.approx({
        "token_precision": 2 / 3, "token_recall": 2 / 3, "token_f1": 2 / 3,
        "token_precision_10": 1.0, "token_recall_10": 1 / 3, "token_f1_10": 0.5,
        "iou_tp": 2, "iou_predicted": 3, "iou_gold": 2, "auprc": 61 / 90, "average_precision": 13 / 18,
    })
    # without evidence spans the gold spans are the runs of the mask (here the same)
    assert instance_metrics(SCORES, GOLD)["iou_tp"] == 2
    # comprehensiveness: 0.9 - [.8 .6 .5 .3 .1] -> mean(.1 .3 .4 .6 .8) = .44; sufficiency: 0.9 - [.2 .5 .7 .8 .9] -> .28
    out = eraser_faithfulness(0.9, [0.8, 0.6, 0.5, 0.3, 0.1], [0.2, 0.5, 0.7, 0.8, 0.9])
    assert out == pytest.approx({"comprehensiveness_aopc": 0.44, "sufficiency_aopc": 0.28})
    assert eraser_faithfulness(0.9, [0.8], None) == pytest.approx({"comprehensiveness_aopc": 0.1})
    with pytest.raises(LightningIBAError, match="at least one rationale word"):
        instance_metrics(SCORES, np.zeros(10, dtype=bool))


def test_settings_are_checked():
    assert PlausibilitySettings().fraction_name == "10" and PlausibilitySettings(top_fraction=0.05).fraction_name == "5"
    with pytest.raises(LightningIBAError, match="unknown plausibility aggregation 'median'"):
        PlausibilitySettings(aggregation="median")
    with pytest.raises(LightningIBAError, match="bins must be increasing fractions"):
        PlausibilitySettings(bins=[0.5, 0.1])
    with pytest.raises(LightningIBAError, match="top_fraction must be in"):
        PlausibilitySettings(top_fraction=0)
    with pytest.raises(LightningIBAError, match="window_stride must be a positive number"):
        PlausibilitySettings(window_stride=0)


# ---------------------------------------------------------------- intervals


def test_paired_bootstrap_of_plausibility_gives_intervals_and_derived_micro_f1():
    from lightning_iba.evaluation.plausibility_report import plausibility_intervals

    rng = np.random.default_rng(1)
    rows = []
    for method, skill in (("iba", 0.8), ("random", 0.2)):
        for i in range(30):
            tp = int(rng.random() < skill) + int(rng.random() < skill)
            rows.append({"method": method, "id": i, "token_f1": skill + 0.1 * rng.random(), "iou_tp": tp, "iou_predicted": 2 + i % 2, "iou_gold": 2})
    values = pd.DataFrame(rows).set_index(["method", "id"]).astype("float64")
    settings = BootstrapSettings(resamples=300, seed=3)
    intervals = plausibility_intervals(values, settings)
    assert intervals.metrics == ["token_f1", "iou_precision", "iou_recall", "iou_f1"]  # the counts are hidden
    table = intervals.table
    sums = values.groupby(level=0).sum()
    micro = micro_f1(sums["iou_tp"], sums["iou_predicted"], sums["iou_gold"])
    assert table["iou_precision"].tolist() == pytest.approx(micro[0].tolist()) and table["iou_f1"].tolist() == pytest.approx(micro[2].tolist())
    assert (table["iou_f1_lo"] < table["iou_f1"]).all() and (table["iou_f1"] < table["iou_f1_hi"]).all()
    # the interval is the quantiles of the micro F1 of each resample (the same draws as the bootstrap's)
    flat = np.concatenate([values.loc[m].sort_index().to_numpy() for m in ("iba", "random")], axis=1)  # [n, 2 methods x 4 columns]
    means = _resample_means(flat, 300, np.random.default_rng(3)).reshape(300, 2, 4)
    f1s = micro_f1(means[:, :, 1], means[:, :, 2], means[:, :, 3])[2]  # [R, methods]
    assert table["iou_f1_lo"].tolist() == pytest.approx(np.quantile(f1s, 0.025, axis=0).tolist())
    assert table["iou_f1_hi"].tolist() == pytest.approx(np.quantile(f1s, 0.975, axis=0).tolist())
    d = intervals.differences.set_index("metric").loc["iou_f1"]
    assert d["lo"] == pytest.approx(np.quantile(f1s[:, 0] - f1s[:, 1], 0.025)) and bool(d["excludes_zero"])
    # the plain statistics are unchanged by the derived ones
    plain = bootstrap_values(values[["token_f1"]], settings).table
    assert plain["token_f1_lo"].tolist() == table["token_f1_lo"].tolist()
    with pytest.raises(LightningIBAError, match="no column"):
        bootstrap_values(values, settings, derived=[Derived("x", ("nope",), lambda a: a)])


# ---------------------------------------------------------------- stored records -> words


TEXT = "a fine film . it does n't drag at all see it"  # 12 words; "n't" is 3 pieces
RATIONALE = [0, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0]  # fine, does n't drag


def split_of(text=TEXT, rationale=RATIONALE, evidence=((1, 2), (5, 8))):
    from datasets import Dataset

    return Dataset.from_dict({"id": ["r0"], "text": [text], "label": [1], "rationale": [rationale], "evidence": [[list(e) for e in evidence]]})


def test_records_map_to_words_with_truncation_coverage_and_windows(tokenizer):
    from lightning_iba.evaluation.plausibility_report import faithfulness_values, plausibility_values

    ids = tokenizer(TEXT, truncation=True, max_length=6)["input_ids"]  # [CLS] a fine film . [SEP]
    assert tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", "a", "fine", "film", ".", "[SEP]"]
    record = {"index": 0, "id": "r0", "original_prob": 0.9, "input_ids": ids,
              "scores": {"m": [5.0, 0.1, 0.9, 0.2, 0.3, 5.0]},
              "eraser": {"bins": [0.5], "remove": {"m": [0.4]}, "keep": {"m": [0.7]}}}
    values, coverage = plausibility_values([record], split_of(), ["m"], tokenizer, 6, PlausibilitySettings())
    # words seen: a fine film . (4 of 12); rationale words seen: fine (1 of 4)
    assert (coverage.words, coverage.words_seen, coverage.rationale_words, coverage.rationale_words_seen) == (12, 4, 4, 1)
    assert coverage.coverage == 0.25 and coverage.scored == 1
    row = values.loc[("m", 0)]
    assert row["token_f1"] == 1.0 and row["auprc"] == 1.0  # "fine" has the highest score among the 4 seen
    assert row["iou_tp"] == 1 and row["iou_gold"] == 1  # the span [5, 8) lies beyond the window and is dropped
    assert "comprehensiveness_aopc" not in values.columns  # faithfulness is its own table, over every instance
    faith = faithfulness_values([record, {**record, "index": 1, "eraser": {"bins": [0.5], "remove": {"m": [0.9]}, "keep": {}}}], ["m"])
    assert faith.loc[("m", 0), "comprehensiveness_aopc"] == pytest.approx(0.5) and faith.loc[("m", 0), "sufficiency_aopc"] == pytest.approx(0.2)
    assert faith.loc[("m", 1), "comprehensiveness_aopc"] == pytest.approx(0.0) and np.isnan(faith.loc[("m", 1), "sufficiency_aopc"])
    assert faithfulness_values([{k: v for k, v in record.items() if k != "eraser"}], ["m"]) is None

    # windows: scores over every piece of the whole text (no specials), aggregated per word; "n't" = n ' t
    pieces = tokenizer(TEXT)["input_ids"][1:-1]
    assert len(pieces) == 14
    piece_scores = [0.0, 0.1, 0.0, 0.0, 0.1, 0.2, 0.3, 0.3, 0.3, 0.15, 0.0, 0.0, 0.0, 0.0]  # n't sums to 0.9, its pieces' max 0.3
    windowed = {"index": 0, "id": "r0", "original_prob": 0.9, "input_ids": ids, "scores": record["scores"], "window_scores": {"m": piece_scores}}
    values, coverage = plausibility_values([windowed], split_of(), ["m"], tokenizer, 6, PlausibilitySettings())
    assert coverage.coverage == 1.0 and coverage.words_seen == 12
    # sum: n't .9, does .2, drag .15, fine .1 (before "it" .1, a later word): the top 4 are the 4 rationale words
    assert values.loc[("m", 0), "token_f1"] == 1.0 and "comprehensiveness_aopc" not in values.columns
    # max: n't .3, does .2, drag .15, fine .1 -> the same top 4
    assert plausibility_values([windowed], split_of(), ["m"], tokenizer, 6, PlausibilitySettings(aggregation="max"))[0].loc[("m", 0), "token_f1"] == 1.0

    # a record whose tokens are not the text's encoding is refused
    bad = {**record, "input_ids": [101, 1037, 2986, 2143, 1012, 102][::-1]}
    with pytest.raises(LightningIBAError, match="encodes to other tokens than the evaluation stored"):
        plausibility_values([bad], split_of(), ["m"], tokenizer, 6, PlausibilitySettings())
    # no rationale word seen: the instance is left out; none left: an error
    late = split_of(rationale=[0] * 10 + [1, 1], evidence=((10, 12),))
    with pytest.raises(LightningIBAError, match="none of the 1 instances has a rationale word within what the model saw"):
        plausibility_values([record], late, ["m"], tokenizer, 6, PlausibilitySettings())


def test_aggregation_changes_the_ranking(tokenizer):
    """A word with many small pieces wins under sum and loses under max / mean: the setting matters."""
    from lightning_iba.evaluation.plausibility_report import plausibility_values

    text = "unbelievably good"  # un ##bel ##ie ##va ##bly good
    ids = tokenizer(text)["input_ids"]
    assert len(ids) == 8
    record = {"index": 0, "id": "r0", "original_prob": 0.9, "input_ids": ids, "scores": {"m": [0, 0.2, 0.2, 0.2, 0.2, 0.2, 0.5, 0]}}
    split = split_of(text, [1, 0], ((0, 1),))
    f1 = {a: plausibility_values([record], split, ["m"], tokenizer, 8, PlausibilitySettings(aggregation=a))[0].loc[("m", 0), "token_f1"]
          for a in ("sum", "max", "mean")}
    assert f1 == {"sum": 1.0, "max": 0.0, "mean": 0.0}


def test_a_report_without_any_rationale_seen_warns_instead_of_failing_the_run(tokenizer, tmp_path, caplog):
    from types import SimpleNamespace

    from lightning_iba.evaluation.plausibility_report import report_plausibility

    ids = tokenizer(TEXT, truncation=True, max_length=6)["input_ids"]
    record = {"index": 0, "id": "r0", "original_prob": 0.9, "input_ids": ids, "scores": {"m": [0.0] * 6}}
    late = split_of(rationale=[0] * 10 + [1, 1], evidence=((10, 12),))
    report = SimpleNamespace(metrics=None, files={})
    assert report_plausibility(tmp_path, "eraser_movies", "test", ["m"], [record], late, tokenizer, {"max_length": 6},
                               PlausibilitySettings(), BootstrapSettings(resamples=10), report) is None
    assert "plausibility: not reported: none of the 1 instances has a rationale word" in caplog.text
    assert not list(tmp_path.iterdir()) and report.files == {}
