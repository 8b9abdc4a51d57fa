"""Where in a sentence pair each method's removed tokens lie (evaluation.segments) and segments.csv/.md."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lightning_iba.data.tokens import SpecialTokens
from lightning_iba.errors import LightningIBAError
from lightning_iba.evaluation.degradation import DegradationSettings
from lightning_iba.evaluation.intervals import BootstrapSettings
from lightning_iba.evaluation.segments import ALL_TOKENS, segment_values

SPECIAL = SpecialTokens(pad_id=0, mask_id=103, special_ids=(0, 101, 102, 103))
CLS, SEP = 101, 102
STEPS = 10


def pair(i: int, label: int) -> dict:
    """[CLS] premise (10 pieces: 5 shared with the hypothesis) [SEP] hypothesis (8 pieces) [SEP] [PAD] [PAD]: 22 real tokens,
    so 11 % removes round(0.11 * 22) = 2 with the published count. `premise` ranks two premise-only pieces top,
    `hypothesis` two hypothesis pieces that also occur in the premise."""
    premise = [2000, 2001, 2002, 2003, 2004, 3000, 3001, 3002, 3003, 3004]
    hypothesis = [2000, 2001, 2002, 2003, 2004, 4000, 4001, 4002]
    ids = [CLS, *premise, SEP, *hypothesis, SEP, 0, 0]
    scores = {"premise": [0.0] * len(ids), "hypothesis": [0.0] * len(ids)}
    scores["premise"][6], scores["premise"][7] = 1.0, 0.9  # premise-only pieces 3000, 3001
    scores["hypothesis"][12], scores["hypothesis"][13] = 1.0, 0.9  # hypothesis pieces 2000, 2001, shared
    curve = np.linspace(0.9, 0.1, STEPS).tolist()
    return {"index": i, "id": str(i), "label": label, "input_ids": ids, "scores": scores,
            "remove": {"premise": curve, "hypothesis": curve}, "keep": {"premise": curve[::-1], "hypothesis": curve[::-1]}}


def test_shares_describe_the_tokens_the_degradation_test_removes():
    values = segment_values([pair(0, 0), pair(1, 1)], ["premise", "hypothesis"], SPECIAL, DegradationSettings(count="all"))
    assert values.loc[("premise", 0)].tolist() == [0.0, 0.0]  # both removed pieces in the premise, neither shared
    assert values.loc[("hypothesis", 0)].tolist() == [1.0, 1.0]  # both in the hypothesis, both shared
    # every removable piece: 8 of 18 in the hypothesis; shared: 2000..2004 in each text, 10 of 18
    assert values.loc[(ALL_TOKENS, 1)].tolist() == pytest.approx([8 / 18, 10 / 18])
    assert values.index.get_level_values("method").unique().tolist() == ["premise", "hypothesis", ALL_TOKENS]


def test_instances_too_short_to_lose_a_token_are_left_out_and_a_single_text_is_refused():
    short = pair(2, 0)
    short["input_ids"] = [CLS, 2000, SEP, 4000, SEP]  # 5 real tokens: round(0.11 * 5) = 1 ... and with removable count 2 -> 0
    short["scores"] = {m: [0.0, 1.0, 0.0, 0.5, 0.0] for m in ("premise", "hypothesis")}
    values = segment_values([pair(0, 0), short], ["premise", "hypothesis"], SPECIAL, DegradationSettings(count="removable"))
    assert sorted(values.index.get_level_values("id").unique()) == [0]
    single = pair(3, 0)
    single["input_ids"] = [CLS, 2000, 2001, 2002] + [2003] * 17 + [0, 0]
    with pytest.raises(LightningIBAError, match="not a sentence pair"):
        segment_values([single], ["premise", "hypothesis"], SPECIAL, DegradationSettings())
    cut = pair(4, 0)
    cut["scores"]["premise"] = cut["scores"]["premise"][:-1]
    with pytest.raises(LightningIBAError, match="instance 4: premise has 22 scores for 23 tokens"):
        segment_values([cut], ["premise"], SPECIAL, DegradationSettings())
    with pytest.raises(LightningIBAError, match="store_scores"):
        segment_values([{k: v for k, v in pair(0, 0).items() if k != "scores"}], ["premise"], SPECIAL, DegradationSettings())


def test_write_report_writes_the_segment_files_for_pairs_only(tmp_path):
    from lightning_iba.evaluation.report import write_report

    records = [pair(i, i % 2) for i in range(12)]
    report = write_report(tmp_path, "rte", ["premise", "hypothesis"], records, DegradationSettings(count="all"), "test",
                          BootstrapSettings(resamples=50), pairs=SPECIAL)
    stored = pd.read_csv(tmp_path / "segments.csv")
    pd.testing.assert_frame_equal(report.segments.round(6), stored, check_dtype=False)
    assert stored["label"].unique().tolist() == ["(all)", "entailment", "not_entailment"]
    whole = stored[stored["label"] == "(all)"].set_index("method")
    assert whole.loc["premise", "second_text"] == 0.0 and whole.loc["hypothesis", "second_text"] == 1.0 and whole.loc["hypothesis", "n"] == 12
    differences = pd.read_csv(tmp_path / "segments_differences.csv")
    assert differences.columns[0] == "label" and set(differences["metric"]) == {"second_text", "shared"}
    text = (tmp_path / "segments.md").read_text()
    assert "**second_text**" in text and "**shared**" in text and f"| {ALL_TOKENS} second_text |" in text
    report = write_report(tmp_path, "rte", ["premise", "hypothesis"], records, DegradationSettings(count="all"), "test",
                          BootstrapSettings(resamples=20))  # not given the pair's special tokens: no segment files, old ones removed
    assert report.segments is None and not list(tmp_path.glob("segments*"))
