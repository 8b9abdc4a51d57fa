"""Where in a sentence pair each method's removed tokens lie (evaluation.segments) and segments.csv/.md."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import pytest

from lightning_iba.data.tokens import SpecialTokens
from lightning_iba.errors import LightningIBAError
from lightning_iba.evaluation.degradation import DegradationSettings
from lightning_iba.evaluation.intervals import BootstrapSettings
from lightning_iba.evaluation.segments import ALL_TOKENS, segment_values

SPECIAL = SpecialTokens(pad_id=0, mask_id=103, special_ids=(0, 101, 102, 103))
CLS, SEP = 101, 102
STEPS = 10
PREMISE = [2000, 2001, 2002, 2003, 2004, 3000, 3001, 3002, 3003, 3004]
HYPOTHESIS = [2000, 2001, 2002, 2003, 2004, 4000, 4001, 4002]


def record(i: int, label: int, ids: list[int], scores: dict[str, list[float]]) -> dict:
    curve = np.linspace(0.9, 0.1, STEPS).tolist()
    return {"index": i, "id": str(i), "label": label, "input_ids": ids, "scores": scores,
            "remove": {m: curve for m in scores}, "keep": {m: curve[::-1] for m in scores}}


def pair(i: int, label: int) -> dict:
    """[CLS] premise (10 pieces, 5 of them also in the hypothesis) [SEP] hypothesis (8 pieces) [SEP], unpadded as records
    are stored: 21 real tokens, so the headline step (1/9 of the way) removes round(21 / 9) = 2 with the published count.
    `premise` ranks two premise-only pieces top, `hypothesis` two hypothesis pieces that also occur in the premise."""
    ids = [CLS, *PREMISE, SEP, *HYPOTHESIS, SEP]
    scores = {"premise": [0.0] * len(ids), "hypothesis": [0.0] * len(ids)}
    scores["premise"][6], scores["premise"][7] = 1.0, 0.9  # premise-only pieces 3000, 3001
    scores["hypothesis"][12], scores["hypothesis"][13] = 1.0, 0.9  # hypothesis pieces 2000, 2001, shared
    return record(i, label, ids, scores)


def test_shares_describe_the_tokens_the_degradation_test_removes():
    values = segment_values([pair(0, 0), pair(1, 1)], ["premise", "hypothesis"], SPECIAL, DegradationSettings(count="all"))
    assert values.loc[("premise", 0)].tolist() == [0.0, 0.0]  # both removed pieces in the premise, neither shared
    assert values.loc[("hypothesis", 0)].tolist() == [1.0, 1.0]  # both in the hypothesis, both shared
    # every removable piece: 8 of 18 in the hypothesis; shared: 2000..2004 in each text, 10 of 18
    assert values.loc[(ALL_TOKENS, 1)].tolist() == pytest.approx([8 / 18, 10 / 18])
    assert values.index.get_level_values("method").unique().tolist() == ["premise", "hypothesis", ALL_TOKENS]


def test_the_count_is_the_grid_points_not_the_rounded_headline():
    """59 real tokens: the drop at "11 %" is read at 1/9 of the way, where round(59 / 9) = 7 tokens go, not round(0.11 * 59) = 6."""
    ids = [CLS, *range(3000, 3030), SEP, *range(4000, 4026), SEP]
    scores = [0.0] * len(ids)
    for position in range(1, 7):
        scores[position] = 10.0 - position  # the six best in the premise ...
    scores[33] = 1.0  # ... the seventh in the hypothesis
    values = segment_values([record(0, 0, ids, {"m": scores})], ["m"], SPECIAL, DegradationSettings(count="all"))
    assert values.loc[("m", 0), "second_text"] == pytest.approx(1 / 7)


def test_instances_too_short_to_lose_a_token_are_left_out_and_bad_inputs_are_refused():
    short = record(2, 0, [CLS, 2000, SEP, 4000, SEP], {m: [0.0, 1.0, 0.0, 0.5, 0.0] for m in ("premise", "hypothesis")})
    # 2 removable tokens: round(2 / 9) = 0 removed, so no share for any method
    values = segment_values([pair(0, 0), short], ["premise", "hypothesis"], SPECIAL, DegradationSettings(count="removable"))
    assert sorted(values.index.get_level_values("id").unique()) == [0]
    single = record(3, 0, [CLS, *PREMISE, *HYPOTHESIS, 2005, SEP], {"premise": [0.0] * 21})
    with pytest.raises(LightningIBAError, match="not a sentence pair"):
        segment_values([single], ["premise"], SPECIAL, DegradationSettings())
    cut = pair(4, 0)
    cut["scores"]["premise"] = cut["scores"]["premise"][:-1]
    with pytest.raises(LightningIBAError, match="instance 4: premise has 20 scores for 21 tokens"):
        segment_values([cut], ["premise"], SPECIAL, DegradationSettings())
    with pytest.raises(LightningIBAError, match="store_scores"):
        segment_values([pair(0, 0), {k: v for k, v in pair(5, 0).items() if k != "scores"}], ["premise"], SPECIAL, DegradationSettings())


def test_a_special_token_inside_the_premise_does_not_move_the_boundary():
    masked = pair(0, 0)
    masked["input_ids"][3] = 103  # a literal [MASK] in the premise
    values = segment_values([masked], ["premise", "hypothesis"], SPECIAL, DegradationSettings(count="all"))
    assert values.loc[("hypothesis", 0), "second_text"] == 1.0 and values.loc[(ALL_TOKENS, 0), "second_text"] == pytest.approx(8 / 17)


def test_write_report_writes_the_segment_files_for_pairs_only(tmp_path):
    from lightning_iba.evaluation.report import write_report

    short = record(99, 1, [CLS, 2000, SEP, 4000, SEP], {m: [0.0, 1.0, 0.0, 0.5, 0.0] for m in ("premise", "hypothesis")})
    records = [pair(i, i % 2) for i in range(12)] + [short]
    removable = DegradationSettings(count="removable")
    report = write_report(tmp_path, "rte", ["premise", "hypothesis"], records, removable, "test", BootstrapSettings(resamples=50), pairs=SPECIAL)
    stored = pd.read_csv(tmp_path / "segments.csv")
    pd.testing.assert_frame_equal(report.segments.round(6), stored, check_dtype=False)
    assert stored["label"].unique().tolist() == ["(all)", "entailment", "not_entailment"]
    whole = stored[stored["label"] == "(all)"].set_index("method")
    assert whole.loc["premise", "second_text"] == 0.0 and whole.loc["hypothesis", "second_text"] == 1.0
    assert whole.loc["hypothesis", "n"] == 12  # the short pair loses no token: left out, and out of n
    assert (stored[stored["label"] == "not_entailment"]["n"] == 6).all()
    differences = pd.read_csv(tmp_path / "segments_differences.csv")
    assert differences.columns[0] == "label" and set(differences["metric"]) == {"second_text", "shared"}
    text = (tmp_path / "segments.md").read_text()
    assert "**second_text**" in text and "**shared**" in text and f"| {ALL_TOKENS} second_text |" in text
    assert "over all instances and within each gold label." in text
    report = write_report(tmp_path, "rte", ["premise", "hypothesis"], records, removable, "test",
                          BootstrapSettings(resamples=20, by_label=False), pairs=SPECIAL)
    assert report.segments["label"].unique().tolist() == ["(all)"]  # no per-label rows without by_label
    assert "over all instances." in (tmp_path / "segments.md").read_text()  # and the page says so

    for rows, pairs in ((records, None), (records[:-1] + [{k: v for k, v in short.items() if k != "scores"}], SPECIAL), ([short], SPECIAL)):
        # not a pair task; a record without scores (a run resumed with store_scores changed); no instance loses a token
        report = write_report(tmp_path, "rte", ["premise", "hypothesis"], rows, removable, "test", BootstrapSettings(resamples=20), pairs=pairs)
        assert report.segments is None and not list(tmp_path.glob("segments*"))  # an earlier report's are removed too
        (tmp_path / "segments.md").write_text("stale")


# ---------------------------------------------------------------- methods restricted to one text: random/premise, ...


class Fixed:
    """An attributor returning given scores (the inner method of InSegment)."""

    name = "fixed"

    def __init__(self, scores):
        self.scores = torch.tensor(scores, dtype=torch.float32)

    def attribute(self, input_ids, attention_mask, target, token_type_ids=None):
        return self.scores.clone()


def test_a_method_restricted_to_one_text_ranks_that_text_first_and_keeps_each_texts_order():
    from lightning_iba.attribution.base import InSegment
    from lightning_iba.evaluation.degradation import removal_masks

    ids = torch.tensor([[CLS, 5, 6, 7, 8, 9, 10, SEP, 11, 12, 13, SEP, 0]])
    types = torch.tensor([[0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0]])
    mask = torch.tensor([[1] * 12 + [0]])
    raw = [[0.0, 0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.0, 5.0, 4.0, -3.0, 0.0, 0.0]]  # the hypothesis scores highest
    target = torch.tensor([0])
    premise = InSegment(Fixed(raw), "premise").attribute(ids, mask, target, types)
    hypothesis = InSegment(Fixed(raw), "hypothesis").attribute(ids, mask, target, types)
    removable = SPECIAL.removable(ids, mask)
    for scores, inside in ((premise, slice(1, 7)), (hypothesis, slice(8, 11))):
        assert scores[0, inside].tolist() == pytest.approx(raw[0][inside])  # inside: the method's own scores
        outside = [i for i in range(1, 11) if i != 7 and not (inside.start <= i < inside.stop)]
        assert scores[0, outside].max() < scores[0, inside].min()  # outside: below every inside score ...
        assert np.argsort(-scores[0, outside].numpy(), kind="stable").tolist() == np.argsort(-np.array(raw[0])[outside], kind="stable").tolist()
        assert scores[0, 12] == 0.0  # ... in their own order; padding stays 0
    top3 = removal_masks(premise, removable, mask, torch.tensor([3 / 9]), count="removable")[0, 0]  # round(9 / 3) = 3 tokens
    assert torch.nonzero(top3).flatten().tolist() == [2, 4, 6]  # the premise's best three, not the hypothesis's
    top3 = removal_masks(hypothesis, removable, mask, torch.tensor([3 / 9]), count="removable")[0, 0]
    assert torch.nonzero(top3).flatten().tolist() == [8, 9, 10]
    top4 = removal_masks(hypothesis, removable, mask, torch.tensor([4 / 9]), count="removable")[0, 0]
    assert torch.nonzero(top4).flatten().tolist() == [2, 8, 9, 10]  # more than the text holds: the other text's best next
    with pytest.raises(LightningIBAError, match="token types"):
        InSegment(Fixed(raw), "premise").attribute(ids, mask, target, None)


def test_segment_suffixes_parse_and_are_refused_on_single_texts():
    from lightning_iba.attribution.registry import build_attributor, check_method, parse_method
    from lightning_iba.data.tasks import get_task

    assert check_method("Random/Premise") == "random/premise"
    assert parse_method("iba:dataset@seed2/hypothesis").label == "iba:dataset@seed2/hypothesis"
    assert parse_method("iba:dataset@seed2/hypothesis").segment == "hypothesis"
    with pytest.raises(LightningIBAError, match="segment suffix is /premise or /hypothesis"):
        check_method("random/middle")
    with pytest.raises(LightningIBAError, match="imdb has single texts"):
        build_attributor("random/premise", torch.nn.Linear(1, 1), None, task=get_task("imdb"))
    restricted = build_attributor("random/premise", torch.nn.Linear(1, 1), None, task=get_task("rte"))
    assert restricted.name.endswith("/premise") and restricted.segment == "premise"
