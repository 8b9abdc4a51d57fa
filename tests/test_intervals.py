"""Paired bootstrap intervals (evaluation.intervals) and their way into the report files."""
from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from lightning_iba.errors import LightningIBAError
from lightning_iba.evaluation import intervals as intervals_module
from lightning_iba.evaluation.degradation import DegradationSettings
from lightning_iba.evaluation.intervals import (
    BootstrapSettings,
    paired_bootstrap,
    seed_spread,
)
from lightning_iba.evaluation.metrics import (
    absolute_drop,
    aopc,
    comprehensiveness,
    curves_frame,
    instance_values,
    sufficiency,
    summary,
)

F = np.linspace(0.0, 1.0, 10).tolist()  # the paper's grid; the headline 11 % is step 1
METRICS = ["drop_11", "aopc", "comprehensiveness", "sufficiency"]


def remove_curves(rng: np.random.Generator, n: int, strength: float = 1.0) -> np.ndarray:  # [n, steps], falling from p_0
    p0 = rng.uniform(0.6, 1.0, n)
    decay = np.sort(rng.uniform(1.0 - strength, 1.0, (n, len(F) - 1)), axis=1)[:, ::-1]
    return np.concatenate([p0[:, None], p0[:, None] * decay], axis=1)


def keep_curves(rng: np.random.Generator, n: int) -> np.ndarray:  # [n, steps], rising to p(x) at fraction 1
    p_full = rng.uniform(0.6, 1.0, n)
    rise = np.sort(rng.uniform(0.0, 1.0, (n, len(F) - 1)), axis=1)
    return np.concatenate([p_full[:, None] * rise, p_full[:, None]], axis=1)


def frames(n: int, methods=("iba", "ig", "random"), seed: int = 0, ids=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = list(range(n)) if ids is None else ids
    strength = {"iba": 1.0, "ig": 0.8, "random": 0.3}
    remove = pd.concat([curves_frame(m, remove_curves(rng, n, strength.get(m, 0.5)), F, ids) for m in methods], ignore_index=True)
    keep = pd.concat([curves_frame(m, keep_curves(rng, n), F, ids) for m in methods], ignore_index=True)
    return remove, keep


def width(result, method: str, metric: str) -> float:
    return float(result.table.loc[method, f"{metric}_hi"] - result.table.loc[method, f"{metric}_lo"])


# ---------------------------------------------------------------- point estimates and intervals


def test_point_estimates_are_summarys_numbers_exactly():
    remove, keep = frames(400)
    table = summary(remove, keep, headline=0.11)
    result = paired_bootstrap(remove, keep, headline=0.11, settings=BootstrapSettings(resamples=100))
    assert result.metrics == METRICS
    # both go through instance_values and group_means, so comparing them with each other proves nothing: each is
    # checked against the metrics' own definitions (computed the old way, per group, without instance_values)
    for point in (table, result.table):
        assert point["drop_11"].to_dict() == pytest.approx(absolute_drop(remove, 0.11).to_dict(), rel=1e-12)
        assert point["aopc"].to_dict() == pytest.approx(aopc(remove).to_dict(), rel=1e-12)
        assert point["comprehensiveness"].to_dict() == pytest.approx(comprehensiveness(remove).to_dict(), rel=1e-12)
        assert point["sufficiency"].to_dict() == pytest.approx(sufficiency(keep).to_dict(), rel=1e-12)


def test_without_a_keep_frame_there_is_no_sufficiency():
    remove, _ = frames(50)
    result = paired_bootstrap(remove, headline=0.11, settings=BootstrapSettings(resamples=20))
    assert result.metrics == METRICS[:3] and "sufficiency_lo" not in result.table
    assert set(result.differences["metric"]) == set(METRICS[:3])


def test_intervals_contain_the_estimate_and_shrink_with_n():
    small = paired_bootstrap(*frames(100), settings=BootstrapSettings(resamples=500))
    large = paired_bootstrap(*frames(10_000), settings=BootstrapSettings(resamples=500))
    for result in (small, large):
        for metric in METRICS:
            lo, point, hi = (result.table[f"{metric}{s}"] for s in ("_lo", "", "_hi"))
            assert ((lo < point) & (point < hi)).all(), (metric, result.table)
    for method in ("iba", "ig", "random"):
        for metric in METRICS:
            # the standard error falls as 1/sqrt(n): 100x the instances, about 1/10 of the width
            assert 0.05 < width(large, method, metric) / width(small, method, metric) < 0.2, (method, metric)


def test_intervals_are_the_percentiles_of_the_resampled_means():
    """The bincount-and-matmul resampling against the obvious loop, with the same Generator draws."""
    remove, keep = frames(37, methods=("iba", "random"))
    settings = BootstrapSettings(resamples=300, level=0.9, seed=5)
    result = paired_bootstrap(remove, keep, headline=0.11, settings=settings)
    values = instance_values(remove, keep, headline=0.11)
    idx = np.random.default_rng(5).integers(0, 37, size=(300, 37))
    boot = {m: values.loc[m].sort_index().to_numpy()[idx].mean(axis=1) for m in ("iba", "random")}  # [R, metrics]
    for j, metric in enumerate(METRICS):
        lo, hi = np.quantile(boot["iba"][:, j], [0.05, 0.95])
        assert result.table.loc["iba", f"{metric}_lo"] == pytest.approx(lo, abs=1e-12)
        assert result.table.loc["iba", f"{metric}_hi"] == pytest.approx(hi, abs=1e-12)
        row = result.differences.set_index("metric").loc[metric]
        d_lo, d_hi = np.quantile(boot["iba"][:, j] - boot["random"][:, j], [0.05, 0.95])
        assert (row["lo"], row["hi"]) == pytest.approx((d_lo, d_hi), abs=1e-12)


def test_constant_values_give_a_zero_width_interval():
    probs = np.tile([0.9, 0.6, 0.5, 0.4, 0.3, 0.2, 0.2, 0.1, 0.1, 0.0], (50, 1))  # every instance the same curve
    result = paired_bootstrap(curves_frame("iba", probs, F), settings=BootstrapSettings(resamples=200))
    for metric in ("drop_11", "aopc", "comprehensiveness"):
        point = result.table.loc["iba", metric]
        assert result.table.loc["iba", f"{metric}_lo"] == pytest.approx(point, abs=1e-12)
        assert result.table.loc["iba", f"{metric}_hi"] == pytest.approx(point, abs=1e-12)
    assert result.table.loc["iba", "drop_11"] == pytest.approx(0.3)


def test_a_constant_per_instance_difference_has_a_zero_width_interval_though_each_method_varies():
    """What pairing buys: B is A made 0.05 less degraded on every instance, so every resample puts the
    difference of the drops at exactly 0.05, while either method alone varies a lot from resample to resample."""
    rng = np.random.default_rng(3)
    a = remove_curves(rng, 300)
    b = a.copy()
    b[:, 1:] += 0.05
    remove = pd.concat([curves_frame("A", a, F), curves_frame("B", b, F)], ignore_index=True)
    result = paired_bootstrap(remove, settings=BootstrapSettings(resamples=1000))
    diffs = result.differences.set_index("metric")
    expected = {"drop_11": 0.05, "comprehensiveness": 0.05, "aopc": 0.05 * 9 / 10}  # AOPC averages step 0 in too
    for metric, d in expected.items():
        row = diffs.loc[metric]
        assert (row["method_a"], row["method_b"]) == ("A", "B")
        assert row["diff"] == pytest.approx(d, abs=1e-12)
        assert row["lo"] == pytest.approx(d, abs=1e-12) and row["hi"] == pytest.approx(d, abs=1e-12), row
        assert bool(row["excludes_zero"])
        assert width(result, "A", metric) > 0.02 and width(result, "B", metric) > 0.02  # each method alone: wide


def test_same_seed_same_intervals_another_seed_others():
    remove, keep = frames(200)
    one = paired_bootstrap(remove, keep, settings=BootstrapSettings(resamples=300, seed=1))
    again = paired_bootstrap(remove, keep, settings=BootstrapSettings(resamples=300, seed=1))
    other = paired_bootstrap(remove, keep, settings=BootstrapSettings(resamples=300, seed=2))
    pd.testing.assert_frame_equal(one.table, again.table, check_exact=True)
    pd.testing.assert_frame_equal(one.differences, again.differences, check_exact=True)
    assert not one.table["drop_11_lo"].equals(other.table["drop_11_lo"])


def test_the_order_of_the_instances_does_not_matter():
    remove, keep = frames(150)
    shuffled_ids = np.random.default_rng(9).permutation(150)

    def shuffle(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.set_index(["method", "id"]).loc[[(m, i) for m in ("iba", "ig", "random") for i in shuffled_ids]].reset_index()

    settings = BootstrapSettings(resamples=300)
    straight = paired_bootstrap(remove, keep, settings=settings)
    shuffled = paired_bootstrap(shuffle(remove), shuffle(keep), settings=settings)
    bounds = [c for c in straight.table.columns if c.endswith(("_lo", "_hi"))]
    pd.testing.assert_frame_equal(straight.table[bounds], shuffled.table[bounds], check_exact=True)
    pd.testing.assert_frame_equal(straight.differences[["lo", "hi"]], shuffled.differences[["lo", "hi"]], check_exact=True)
    assert shuffled.table[METRICS].to_numpy() == pytest.approx(straight.table[METRICS].to_numpy(), rel=1e-12)


def test_the_chunking_of_the_resamples_does_not_matter(monkeypatch):
    remove, keep = frames(120)
    settings = BootstrapSettings(resamples=250, seed=4)
    whole = paired_bootstrap(remove, keep, settings=settings)
    monkeypatch.setattr(intervals_module, "CHUNK_ELEMENTS", 7 * 120)  # 7 resamples a chunk, the last one short
    chunked = paired_bootstrap(remove, keep, settings=settings)
    # the same draws (another draw would move the bounds by ~1e-3); the matrix product may round differently by chunk shape
    pd.testing.assert_frame_equal(whole.table, chunked.table, check_exact=False, rtol=0, atol=1e-12)
    pd.testing.assert_frame_equal(whole.differences, chunked.differences, check_exact=False, rtol=0, atol=1e-12)


def test_differences_cover_every_pair_in_the_methods_order():
    result = paired_bootstrap(*frames(80), settings=BootstrapSettings(resamples=50))
    pairs = list(dict.fromkeys(zip(result.differences["method_a"], result.differences["method_b"])))
    assert pairs == [("iba", "ig"), ("iba", "random"), ("ig", "random")]
    assert list(result.differences.columns) == ["method_a", "method_b", "metric", "diff", "lo", "hi", "excludes_zero"]
    assert len(result.differences) == 3 * 4
    row = result.differences.set_index(["method_a", "method_b", "metric"]).loc[("iba", "random", "drop_11")]
    assert row["diff"] == result.table.loc["iba", "drop_11"] - result.table.loc["random", "drop_11"]
    assert bool(row["excludes_zero"]) and row["lo"] > 0  # iba degrades far faster than random here


def test_methods_with_different_instances_are_refused():
    remove, _ = frames(30, methods=("iba",))
    fewer = curves_frame("random", remove_curves(np.random.default_rng(1), 29), F, list(range(29)))
    with pytest.raises(LightningIBAError, match="same instances for every method"):
        paired_bootstrap(pd.concat([remove, fewer], ignore_index=True), settings=BootstrapSettings(resamples=10))
    shifted = curves_frame("random", remove_curves(np.random.default_rng(1), 30), F, list(range(1, 31)))  # as many, other ids
    with pytest.raises(LightningIBAError, match="'random' has 30 \\(1 that 'iba' lacks\\)"):
        paired_bootstrap(pd.concat([remove, shifted], ignore_index=True), settings=BootstrapSettings(resamples=10))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"resamples": 0}, "resamples must be a whole number of at least 1"),
        ({"resamples": -5}, "resamples must be a whole number of at least 1"),
        ({"resamples": 2.5}, "resamples must be a whole number of at least 1"),
        ({"resamples": True}, "resamples must be a whole number of at least 1"),
        ({"level": 0.0}, "level must be a confidence level strictly between 0 and 1"),
        ({"level": 1.0}, "level must be a confidence level strictly between 0 and 1"),
        ({"level": 95}, "level must be a confidence level strictly between 0 and 1"),
        ({"level": -0.5}, "level must be a confidence level strictly between 0 and 1"),
        ({"seed": -1}, "seed must be a whole number of at least 0"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(LightningIBAError, match=message):
        BootstrapSettings(**kwargs)


def test_bootstrap_flags_parse_and_bad_ones_are_refused():
    from lightning_iba.cli.evaluate import parse

    s = parse(["--bootstrap.resamples", "200", "--bootstrap.level", "0.9", "--bootstrap.seed", "3"])
    assert s.bootstrap == BootstrapSettings(resamples=200, level=0.9, seed=3)
    assert parse([]).bootstrap == BootstrapSettings()
    with pytest.raises(LightningIBAError, match="level must be"):
        parse(["--bootstrap.level", "1.5"])
    with pytest.raises(LightningIBAError, match="resamples must be"):
        parse(["--bootstrap.resamples", "0"])


# ---------------------------------------------------------------- seed-to-seed spread


def test_seed_spread_over_the_seed_suffixed_runs():
    table = pd.DataFrame(
        {"n": [10, 10, 10, 10], "drop_11": [0.30, 0.34, 0.26, 0.01], "drop_11_lo": [0.2, 0.2, 0.2, 0.0], "aopc": [0.5, 0.6, 0.7, 0.1]},
        index=pd.Index(["iba:dataset", "iba:dataset@seed1", "iba:dataset@seed2", "random"], name="method"),
    )
    spread = seed_spread(table)
    assert list(spread.index) == ["iba:dataset", "random"]
    assert list(spread.columns) == ["seeds", "drop_11_mean", "drop_11_std", "aopc_mean", "aopc_std"]
    assert spread.loc["iba:dataset", "seeds"] == 3 and spread.loc["random", "seeds"] == 1
    assert spread.loc["iba:dataset", "drop_11_mean"] == pytest.approx(0.30)
    assert spread.loc["iba:dataset", "drop_11_std"] == pytest.approx(0.04)  # sample std of .30, .34, .26
    assert spread.loc["iba:dataset", "aopc_std"] == pytest.approx(0.1)
    assert pd.isna(spread.loc["random", "drop_11_std"])  # one run: no spread to speak of
    only = seed_spread(table, metrics=["aopc"])
    assert list(only.columns) == ["seeds", "aopc_mean", "aopc_std"]
    with pytest.raises(LightningIBAError, match="no column"):
        seed_spread(table, metrics=["sufficiency"])


# ---------------------------------------------------------------- the report files


def records(n: int, methods=("iba", "random")) -> list[dict]:
    rng = np.random.default_rng(0)
    curves = {m: remove_curves(rng, n, {"iba": 1.0, "random": 0.2}[m]) for m in methods}
    kept = {m: keep_curves(rng, n) for m in methods}
    return [
        {"index": i, "id": str(i), "label": i % 2, "remove": {m: curves[m][i].tolist() for m in methods},
         "keep": {m: kept[m][i].tolist() for m in methods}}
        for i in range(n)
    ]


def test_write_report_writes_the_intervals_and_the_differences(tmp_path):
    from lightning_iba.evaluation.report import write_report

    report = write_report(tmp_path, "imdb", ["iba", "random"], records(60), DegradationSettings(), "test",
                          BootstrapSettings(resamples=200, level=0.9))
    for name in ("table1.csv", "table1.md", "metrics.csv", "differences.csv", "differences.md", "curves.csv", "curves.png"):
        assert (tmp_path / name).is_file() and report.files[name] == tmp_path / name

    table1 = pd.read_csv(tmp_path / "table1.csv")
    assert list(table1.columns) == ["method", "dataset", "n", "original_prob", "drop_11", "drop_11_lo", "drop_11_hi"]
    assert (table1["drop_11_lo"] < table1["drop_11"]).all() and (table1["drop_11"] < table1["drop_11_hi"]).all()

    md = (tmp_path / "table1.md").read_text().splitlines()
    assert md[0] == "| method | dataset | n | original_prob | drop_11 [90% CI] |"
    iba = table1.set_index("method").loc["iba"]
    assert md[2] == f"| iba | imdb | 60 | {iba.original_prob:.3f} | {iba.drop_11:.3f} [{iba.drop_11_lo:.3f}, {iba.drop_11_hi:.3f}] |"
    assert all(re.search(r"\| \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\] \|$", line) for line in md[2:])

    metrics = pd.read_csv(tmp_path / "metrics.csv", index_col=0)
    assert list(metrics.columns) == [
        "n", "o", "p_11",
        "drop_11", "drop_11_lo", "drop_11_hi", "aopc", "aopc_lo", "aopc_hi",
        "comprehensiveness", "comprehensiveness_lo", "comprehensiveness_hi",
        "sufficiency", "sufficiency_lo", "sufficiency_hi",
    ]
    assert list(metrics.index) == ["iba", "random"]
    for metric in METRICS:
        assert (metrics[f"{metric}_lo"] <= metrics[metric]).all() and (metrics[metric] <= metrics[f"{metric}_hi"]).all(), metric

    differences = pd.read_csv(tmp_path / "differences.csv")
    assert list(differences.columns) == ["method_a", "method_b", "metric", "diff", "lo", "hi", "excludes_zero"]
    assert differences[["method_a", "method_b"]].drop_duplicates().values.tolist() == [["iba", "random"]]
    assert differences["metric"].tolist() == METRICS
    drop = differences.set_index("metric").loc["drop_11"]
    assert drop["diff"] == pytest.approx(metrics.loc["iba", "drop_11"] - metrics.loc["random", "drop_11"], abs=2e-4)
    assert drop["lo"] > 0 and bool(drop["excludes_zero"])
    pd.testing.assert_frame_equal(report.differences.round(6), differences, check_dtype=False)

    text = (tmp_path / "differences.md").read_text()
    assert "200 resamples" in text and "same 60 instances" in text
    assert "| method_a | method_b | metric | diff [90% CI] | excludes 0 |" in text
    assert re.search(r"\| iba \| random \| drop_11 \| \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\] \| yes \|", text), text


def test_a_single_method_reports_no_differences(tmp_path):
    from lightning_iba.evaluation.report import write_report

    report = write_report(tmp_path, "imdb", ["iba"], records(20, methods=("iba",)), DegradationSettings(), "test",
                          BootstrapSettings(resamples=50))
    assert report.differences.empty
    assert pd.read_csv(tmp_path / "differences.csv").columns.tolist() == ["method_a", "method_b", "metric", "diff", "lo", "hi", "excludes_zero"]
    assert "nothing to compare" in (tmp_path / "differences.md").read_text()


# ---------------------------------------------------------------- settings.json: reporting, not identity


def test_bootstrap_settings_are_stored_but_never_block_a_resume(tmp_path):
    from lightning_iba.cli.evaluate import identity, parse
    from lightning_iba.evaluation.settings import (
        check_resumable,
        read_settings,
        write_settings,
    )

    model = SimpleNamespace(path=str(tmp_path), fingerprint="abc123", task="imdb")
    first = parse(["--methods", "random"])
    changed = parse(["--methods", "random", "--bootstrap.resamples", "50", "--bootstrap.level", "0.8", "--bootstrap.seed", "7"])
    ident = identity(first, model, "imdb", 3, "local")
    assert "bootstrap" not in ident
    assert identity(changed, model, "imdb", 3, "local") == ident

    write_settings(tmp_path, ident, first.execution(), {"bootstrap": {"resamples": 1000, "level": 0.95, "seed": 0}})
    stored = read_settings(tmp_path)
    assert stored["report"] == {"bootstrap": {"resamples": 1000, "level": 0.95, "seed": 0}}
    assert json.loads((tmp_path / "settings.json").read_text())["model_fingerprint"] == "abc123"
    check_resumable(tmp_path, identity(changed, model, "imdb", 3, "local"), resume=True)  # other bootstrap settings: fine
    with pytest.raises(LightningIBAError, match="instances: 1000 -> 30"):
        check_resumable(tmp_path, identity(parse(["--methods", "random", "--instances", "30"]), model, "imdb", 3, "local"), resume=True)


def test_offline_wandb_run_logs_the_intervals_and_the_differences(tmp_path):
    from lightning_iba.evaluation.report import write_report
    from lightning_iba.evaluation.wandb_report import log_to_wandb

    report = write_report(tmp_path, "imdb", ["iba", "random"], records(30), DegradationSettings(), "test", BootstrapSettings(resamples=50))
    run_dir = Path(log_to_wandb(report, tmp_path, {"bootstrap": {"resamples": 50}}, "lightning-iba-test", "intervals", group="imdb-group"))
    assert run_dir.name.startswith("offline-run-"), run_dir
    assert b"imdb-group" in next(run_dir.glob("*.wandb")).read_bytes()  # the run is filed under its dataset's group
    media = run_dir / "files" / "media" / "table"
    table1 = json.loads(next(media.rglob("table1_*.table.json")).read_text())
    assert table1["columns"][-3:] == ["drop_11", "drop_11_lo", "drop_11_hi"]
    metrics = json.loads(next(media.rglob("metrics_*.table.json")).read_text())
    assert {"aopc_lo", "aopc_hi", "sufficiency_lo", "sufficiency_hi"} <= set(metrics["columns"])
    differences = json.loads(next(media.rglob("differences_*.table.json")).read_text())
    assert differences["columns"] == ["method_a", "method_b", "metric", "diff", "lo", "hi", "excludes_zero"] and len(differences["data"]) == 4
    strata = json.loads(next(media.rglob("strata_*.table.json")).read_text())  # default: quartiles of p_0
    assert strata["columns"][:6] == ["stratum", "p0_min", "p0_max", "p0_mean", "n", "method"] and len(strata["data"]) == 4 * 2
    labels = json.loads(next(media.rglob("labels_*.table.json")).read_text())  # default: per gold label too
    assert labels["columns"][0] == "label" and sorted({row[0] for row in labels["data"]}) == ["neg", "pos"]


def test_paired_difference_reads_either_orientation_and_flips_the_interval():
    from lightning_iba.evaluation.intervals import paired_difference

    d = pd.DataFrame([("iba", "ig", "drop_11", 0.05, 0.01, 0.09, True), ("iba", "ig", "aopc", -0.02, -0.04, 0.01, False)],
                     columns=["method_a", "method_b", "metric", "diff", "lo", "hi", "excludes_zero"])
    assert paired_difference(d, "iba", "ig", "drop_11") == pytest.approx((0.05, 0.01, 0.09))
    assert paired_difference(d, "ig", "iba", "drop_11") == pytest.approx((-0.05, -0.09, -0.01))
    assert paired_difference(d, "ig", "iba", "aopc") == pytest.approx((0.02, -0.01, 0.04))
    assert paired_difference(d, "iba", "lime", "drop_11") is None


def test_wilson_interval_matches_the_textbook_values_and_stays_in_the_unit_interval():
    from lightning_iba.evaluation.intervals import wilson_interval

    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)  # Wilson (1927), p = 0.5, n = 10
    lo, hi = wilson_interval(0, 20)
    assert lo == pytest.approx(0.0, abs=1e-12) and 0.1 < hi < 0.2  # not empty at 0 correct: [0, 0.161]
    assert wilson_interval(20, 20)[1] == pytest.approx(1.0)
    with pytest.raises(LightningIBAError, match="at least one instance"):
        wilson_interval(0, 0)


def test_a_run_from_before_erasers_word_bins_resumes_as_the_piece_unit_it_used(tmp_path):
    from lightning_iba.evaluation.plausibility import PlausibilitySettings
    from lightning_iba.evaluation.settings import check_resumable, write_settings

    base = {"model_fingerprint": "sha256:x", "checkpoint": "m", "dataset": "eraser_movies"}
    write_settings(tmp_path, {**base, "plausibility": {"bins": [0.01, 0.05, 0.1, 0.2, 0.5], "window_stride": None}}, {})  # the old identity
    now = {**base, "target": "gold"}  # nor was the target a setting then: it explained the gold label
    check_resumable(tmp_path, {**now, "plausibility": PlausibilitySettings(bin_unit="piece").identity()}, resume=True)
    with pytest.raises(LightningIBAError, match="bin_unit"):
        check_resumable(tmp_path, {**now, "plausibility": PlausibilitySettings(bin_unit="word").identity()}, resume=True)
    with pytest.raises(LightningIBAError, match="target: 'gold' -> 'predicted'"):
        check_resumable(tmp_path, {**now, "target": "predicted", "plausibility": PlausibilitySettings(bin_unit="piece").identity()}, resume=True)
