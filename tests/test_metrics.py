"""Summary metrics on small hand-made curves, checked against values computed by hand."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from lightning_iba.errors import LightningIBAError
from lightning_iba.evaluation.metrics import (
    COLUMNS,
    absolute_drop,
    aopc,
    comprehensiveness,
    curves_frame,
    mean_curves,
    normalised_curves,
    original_probability,
    sufficiency,
    summary,
)

F = [0.0, 0.5, 1.0]
A = torch.tensor([[0.9, 0.5, 0.2], [0.7, 0.3, 0.0]])  # mean curve 0.8, 0.4, 0.1
B = torch.tensor([[0.9, 0.8, 0.4], [0.7, 0.6, 0.2]])  # mean curve 0.8, 0.7, 0.3
KEEP_A = torch.tensor([[0.3, 0.6, 0.9], [0.1, 0.5, 0.7]])  # keep top-f; f = 1 is the original


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.concat([curves_frame("A", A, F, labels=[1, 0]), curves_frame("B", B, F, labels=[1, 0])], ignore_index=True)


def test_frame_layout(frame):
    assert tuple(frame.columns) == COLUMNS and len(frame) == 12
    row = frame[(frame.method == "A") & (frame.id == 1) & (frame.step == 2)].iloc[0]
    assert row.prob == pytest.approx(0.0) and row.fraction == 1.0 and row.label == 0


def test_mean_and_original_probability(frame):
    curves = mean_curves(frame)
    assert curves[curves.method == "A"].prob.tolist() == pytest.approx([0.8, 0.4, 0.1])
    assert original_probability(frame).to_dict() == pytest.approx({"A": 0.8, "B": 0.8})


def test_absolute_drop_table1(frame):
    assert absolute_drop(frame, 0.5).to_dict() == pytest.approx({"A": 0.4, "B": 0.1})
    assert absolute_drop(frame, 1.0).to_dict() == pytest.approx({"A": 0.7, "B": 0.5})


def test_a_headline_fraction_off_the_grid_is_an_error_not_a_zero(frame):
    # the paper's 11 % on a 3-step grid (0, 50 %, 100 %): there is no 11 % step to read
    with pytest.raises(LightningIBAError, match="headline fraction 0.11 is not on the fraction grid"):
        absolute_drop(frame, 0.11)
    with pytest.raises(LightningIBAError, match="not on the fraction grid"):
        summary(frame, headline=0.11)


def test_normalised_curve_figure1(frame):
    # m = min(0.1, 0.3) = 0.1; d = (p - 0.1) / (0.8 - 0.1)
    curves = normalised_curves(frame)
    assert curves[curves.method == "A"].normalised.tolist() == pytest.approx([1.0, 0.3 / 0.7, 0.0])
    assert curves[curves.method == "B"].normalised.tolist() == pytest.approx([1.0, 0.6 / 0.7, 0.2 / 0.7])
    # alone, B is normalised by its own end point
    alone = normalised_curves(frame[frame.method == "B"])
    assert alone.normalised.tolist() == pytest.approx([1.0, 0.4 / 0.5, 0.0])


def test_aopc_and_comprehensiveness(frame):
    # AOPC: mean of p0 - pk over instances and all 3 steps: A (0 + .4 + .7) / 3, B (0 + .1 + .5) / 3
    assert aopc(frame).to_dict() == pytest.approx({"A": 1.1 / 3, "B": 0.6 / 3})
    # comprehensiveness: interior steps only (f = 0.5)
    assert comprehensiveness(frame).to_dict() == pytest.approx({"A": 0.4, "B": 0.1})
    assert comprehensiveness(frame, fractions=[0.5, 1.0]).to_dict() == pytest.approx({"A": 0.55, "B": 0.3})


def test_sufficiency_from_keep_frame():
    keep = curves_frame("A", KEEP_A, F)
    # p(full) - p(keep 50 %): 0.9 - 0.6 and 0.7 - 0.5
    assert sufficiency(keep).to_dict() == pytest.approx({"A": 0.25})


def test_summary_and_sweep_grouping(frame):
    table = summary(frame, keep_frame=curves_frame("A", KEEP_A, F), headline=0.5)
    assert table.loc["A", ["n", "o", "p_50", "drop_50"]].tolist() == pytest.approx([2, 0.8, 0.4, 0.4])
    assert table.loc["A", "sufficiency"] == pytest.approx(0.25) and pd.isna(table.loc["B", "sufficiency"])
    sweep = frame.rename(columns={"method": "layer"})
    assert absolute_drop(sweep, 0.5, by="layer").to_dict() == pytest.approx({"A": 0.4, "B": 0.1})


def test_incomplete_or_malformed_results_are_rejected(frame):
    with pytest.raises(LightningIBAError, match="incomplete"):
        aopc(frame.drop(index=[0]))
    with pytest.raises(LightningIBAError, match="column"):
        aopc(frame.drop(columns=["prob"]))
    with pytest.raises(LightningIBAError, match="steps"):
        curves_frame("A", A, [0.0, 1.0])


def test_merged_records_keep_the_first_of_a_repeat_and_name_missing_instances(tmp_path):
    import json
    import re

    from lightning_iba.evaluation.report import merged_records

    record = lambda i, p: {"index": i, "id": f"x{i}", "label": 0, "original_prob": p, "remove": {}, "keep": {}}  # noqa: E731
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "rank-0.jsonl").write_text("".join(json.dumps(record(i, 0.5)) + "\n" for i in (4, 0)))
    (shards / "rank-1.jsonl").write_text("".join(json.dumps(record(i, 0.9)) + "\n" for i in (0, 2, 7)))  # 0 again; 7 not wanted
    merged = merged_records(tmp_path, [0, 2, 4])
    assert [(r["index"], r["original_prob"]) for r in merged] == [(0, 0.5), (2, 0.9), (4, 0.5)]  # index order; rank-0's 0 first
    message = f"2 of 5 instances have no result in {tmp_path}/shards; run again with --resume"
    with pytest.raises(LightningIBAError, match=f"^{re.escape(message)}$"):
        merged_records(tmp_path, [0, 1, 2, 3, 4])
