"""The headline statistics within strata of the original probability (evaluation.strata) and strata.csv/.md."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lightning_iba.errors import LightningIBAError
from lightning_iba.evaluation.degradation import DegradationSettings
from lightning_iba.evaluation.intervals import BootstrapSettings
from lightning_iba.evaluation.metrics import curves_frame, instance_values
from lightning_iba.evaluation.strata import label_frames, strata_frames, stratum_of

F = np.linspace(0.0, 1.0, 10).tolist()  # the headline 11 % is step 1


def confident_curves(p0: np.ndarray, drop: np.ndarray) -> np.ndarray:  # [n, steps]: p_0, then p_0 - drop everywhere
    return np.concatenate([p0[:, None], np.repeat((p0 - drop)[:, None], len(F) - 1, axis=1)], axis=1)


def test_strata_cut_the_instances_by_their_original_probability_into_equal_counts():
    p0 = np.array([0.9, 0.1, 0.5, 0.5, 0.3, 0.99, 0.7])  # ids 10..16; 0.5 twice: the tie goes by id
    frame = curves_frame("iba", confident_curves(p0, np.zeros(7)), F, ids=range(10, 17))
    stratum = stratum_of(frame, 3)
    assert stratum.index.tolist() == list(range(10, 17))
    # sorted by p_0: 11 (0.1), 14 (0.3), 12 (0.5), 13 (0.5), 16 (0.7), 10 (0.9), 15 (0.99) -> 3, 2, 2
    assert stratum.to_dict() == {11: 1, 14: 1, 12: 1, 13: 2, 16: 2, 10: 3, 15: 3}
    assert stratum_of(frame, 1).eq(1).all()
    with pytest.raises(LightningIBAError, match="7 instances cannot be cut into 8 strata"):
        stratum_of(frame, 8)
    with pytest.raises(LightningIBAError, match="at least 1"):
        stratum_of(frame, 0)


def test_each_stratum_reports_its_own_instances_means_with_an_interval_around_them():
    rng = np.random.default_rng(0)
    n = 200
    p0 = rng.uniform(0.05, 1.0, n)
    iba = rng.uniform(0.0, 1.0, n) * p0  # the drop shrinks with the confidence: it is a share of p_0 ...
    random = np.full(n, 0.01)  # ... while random's does not move
    remove = pd.concat([curves_frame("iba", confident_curves(p0, iba), F), curves_frame("random", confident_curves(p0, random), F)],
                       ignore_index=True)
    table, differences = strata_frames(remove, instance_values(remove, None, "method", 0.11), 4, BootstrapSettings(resamples=300))
    assert table.columns.tolist()[:6] == ["stratum", "p0_min", "p0_max", "p0_mean", "n", "method"]
    assert table["stratum"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4] and table["method"].tolist() == ["iba", "random"] * 4
    assert (table["n"] == 50).all()
    order = np.argsort(p0, kind="stable")
    for k in range(4):
        members = order[50 * k:50 * (k + 1)]
        row = table[(table["stratum"] == k + 1) & (table["method"] == "iba")].iloc[0]
        assert row["p0_min"] == pytest.approx(p0[members].min()) and row["p0_max"] == pytest.approx(p0[members].max())
        assert row["p0_mean"] == pytest.approx(p0[members].mean())
        assert row["drop_11"] == pytest.approx(iba[members].mean())
        assert row["drop_11_lo"] < row["drop_11"] < row["drop_11_hi"]
        assert row["aopc"] == pytest.approx(iba[members].mean() * 9 / 10)  # step 0 loses nothing
    iba_rows = table[table["method"] == "iba"]
    assert iba_rows["drop_11"].is_monotonic_increasing  # what the whole-table mean hides
    assert table[table["method"] == "random"]["drop_11"].to_numpy() == pytest.approx([0.01] * 4)
    assert differences.columns.tolist() == ["stratum", "method_a", "method_b", "metric", "diff", "lo", "hi", "excludes_zero"]
    drops = differences[differences["metric"] == "drop_11"].set_index("stratum")
    assert drops[["method_a", "method_b"]].drop_duplicates().values.tolist() == [["iba", "random"]]
    for k in range(1, 5):  # iba's paired lead over random, stratum by stratum
        iba_k = table[(table["stratum"] == k) & (table["method"] == "iba")]["drop_11"].iloc[0]
        assert drops.loc[k, "diff"] == pytest.approx(iba_k - 0.01)
        assert drops.loc[k, "lo"] <= drops.loc[k, "diff"] <= drops.loc[k, "hi"]
    assert bool(drops.loc[4, "excludes_zero"]) and drops.loc[4, "lo"] > drops.loc[1, "hi"]  # the confident quarter loses more
    whole = instance_values(remove, None, "method", 0.11).xs("iba", level="method")["drop_11"].mean()
    assert iba_rows["drop_11"].mean() == pytest.approx(whole)  # equal strata: their mean is the whole mean


def records(n: int) -> list[dict]:
    rng = np.random.default_rng(0)
    p0 = rng.uniform(0.2, 1.0, n)
    curves = {"iba": confident_curves(p0, 0.5 * p0), "random": confident_curves(p0, np.full(n, 0.02))}
    kept = confident_curves(p0, 0.1 * p0)[:, ::-1]
    return [{"index": i, "id": str(i), "label": i % 2, "remove": {m: c[i].tolist() for m, c in curves.items()},
             "keep": {m: kept[i].tolist() for m in curves}} for i in range(n)]


def test_write_report_writes_the_strata_files_when_there_are_enough_instances(tmp_path):
    from lightning_iba.evaluation.report import write_report
    report = write_report(tmp_path, "imdb", ["iba", "random"], records(40), DegradationSettings(), "test",
                          BootstrapSettings(resamples=50, strata=4))
    assert report.files["strata.csv"] == tmp_path / "strata.csv"
    stored = pd.read_csv(tmp_path / "strata.csv")
    pd.testing.assert_frame_equal(report.strata.round(6), stored, check_dtype=False)
    paired = pd.read_csv(report.files["strata_differences.csv"])
    assert paired["stratum"].unique().tolist() == [1, 2, 3, 4] and len(paired) == 4 * 4  # one pair, four statistics
    lines = (tmp_path / "strata.md").read_text().splitlines()
    assert "4 equal-count strata" in lines[0] and "50 resamples" in lines[0]
    assert lines[2] == "| stratum | p_0 | mean p_0 | n | iba drop_11 | random drop_11 |"
    assert len(lines) == 4 + 4 and lines[4].startswith("| 1 | ") and "| 10 |" in lines[4]

    for strata, n in ((0, 40), (4, 3)):  # switched off, or too few instances: no strata files
        out = tmp_path / f"s{strata}-{n}"
        out.mkdir()
        report = write_report(out, "imdb", ["iba", "random"], records(n), DegradationSettings(), "test",
                              BootstrapSettings(resamples=20, strata=strata))
        assert report.strata is None and not list(out.glob("strata*")) and "strata.md" not in report.files
    # re-reported without strata, a folder keeps none of the earlier report's (they would contradict its settings)
    write_report(tmp_path, "imdb", ["iba", "random"], records(40), DegradationSettings(), "test", BootstrapSettings(resamples=20, strata=0))
    assert not list(tmp_path.glob("strata*")) and (tmp_path / "table1.csv").is_file()


@pytest.mark.parametrize("bad", [-1, 1.5, True, "4"])
def test_bad_strata_settings_are_refused(bad):
    with pytest.raises(LightningIBAError, match="strata must be a whole number"):
        BootstrapSettings(strata=bad)


def test_each_gold_label_reports_its_own_instances_means_named_as_the_task_names_them():
    rng = np.random.default_rng(1)
    n = 90
    p0 = rng.uniform(0.3, 1.0, n)
    labels = (2 - np.arange(n)) % 3  # 2, 1, 0, ...: first seen is not the task's order; the method works on label 1 only
    iba = np.where(labels == 1, 0.5 * p0, 0.02)
    ids = (1000 - 7 * np.arange(n)).tolist()  # ids that are not positions
    remove = pd.concat([curves_frame("iba", confident_curves(p0, iba), F, ids, labels.tolist()),
                        curves_frame("random", confident_curves(p0, np.full(n, 0.02)), F, ids, labels.tolist())], ignore_index=True)
    values = instance_values(remove, None, "method", 0.11)
    table, differences = label_frames(remove, values, ["world", "sports", "business", "sci/tech"], BootstrapSettings(resamples=200))
    assert table["label"].tolist() == ["world", "world", "sports", "sports", "business", "business"]  # task order, present only
    for k, name in enumerate(["world", "sports", "business"]):
        members = labels == k
        row = table[(table["label"] == name) & (table["method"] == "iba")].iloc[0]
        assert row["n"] == members.sum() and row["p0_mean"] == pytest.approx(p0[members].mean())
        assert row["drop_11"] == pytest.approx(iba[members].mean())
    drops = differences[differences["metric"] == "drop_11"].set_index("label")
    assert bool(drops.loc["sports", "excludes_zero"]) and drops.loc["world", "diff"] == pytest.approx(0.0)
    assert differences.columns.tolist()[0] == "label"
    ids, _ = label_frames(remove, values, None, BootstrapSettings(resamples=20))
    assert ids["label"].unique().tolist() == [0, 1, 2]  # without names: the ids
    with pytest.raises(LightningIBAError, match="out of range"):
        label_frames(remove, values, ["neg", "pos"], BootstrapSettings(resamples=20))


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_bad_by_label_settings_are_refused(bad):
    with pytest.raises(LightningIBAError, match="by_label must be true or false"):
        BootstrapSettings(by_label=bad)



def test_write_report_writes_the_label_files_with_two_labels_or_more(tmp_path):
    from lightning_iba.evaluation.report import write_report
    flipped = [dict(r, label=1 - r["label"]) for r in records(40)]  # the first instance is pos: rows still in the task's order
    report = write_report(tmp_path, "imdb", ["iba", "random"], flipped, DegradationSettings(), "test", BootstrapSettings(resamples=50))
    stored = pd.read_csv(tmp_path / "labels.csv")
    pd.testing.assert_frame_equal(report.labels.round(6), stored, check_dtype=False)
    assert stored["label"].unique().tolist() == ["neg", "pos"] and (stored["n"] == 20).all()
    assert pd.read_csv(report.files["labels_differences.csv"])["label"].unique().tolist() == ["neg", "pos"]
    lines = (tmp_path / "labels.md").read_text().splitlines()
    assert "within each gold label" in lines[0] and lines[2] == "| label | p_0 | mean p_0 | n | iba drop_11 | random drop_11 |"
    assert lines[4].startswith("| neg | ") and lines[5].startswith("| pos | ")
    one_label = [dict(r, label=1) for r in records(40)]
    for settings, rows in ((BootstrapSettings(resamples=20, by_label=False), records(40)), (BootstrapSettings(resamples=20), one_label)):
        report = write_report(tmp_path, "imdb", ["iba", "random"], rows, DegradationSettings(), "test", settings)
        assert report.labels is None and not list(tmp_path.glob("labels*"))  # an earlier report's are removed too
