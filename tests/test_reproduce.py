"""The reproduction driver: finished stages are skipped, failed ones are not, and the layer/beta choice reads the sweep."""
from __future__ import annotations

import json
import sys

import pandas as pd
import pytest

from lightning_iba.cli.reproduce import Stages, best_row
from lightning_iba.errors import LightningIBAError


def test_a_finished_stage_is_skipped_and_a_failed_one_runs_again(tmp_path):
    stages = Stages(tmp_path / "results")
    marker = tmp_path / "count.txt"
    bump = [sys.executable, "-c", f"import pathlib; p = pathlib.Path({str(marker)!r}); p.write_text(str(int(p.read_text() if p.exists() else 0) + 1))"]
    stages.run("a", bump)
    stages.run("a", bump)  # done: skipped
    assert marker.read_text() == "1"
    stages.run("b", bump, done_when=tmp_path / "absent")  # done_when missing: runs every time
    stages.run("b", bump, done_when=tmp_path / "absent")
    assert marker.read_text() == "3"
    with pytest.raises(LightningIBAError, match="stage c failed"):
        stages.run("c", [sys.executable, "-c", "raise SystemExit(3)"])
    rows = [json.loads(line) for line in (tmp_path / "results" / "stages.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows] == ["a", "b", "b", "c"] and rows[-1]["status"] == "failed (3)"
    assert set(stages.done()) == {"a", "b"} and all(r["seconds"] >= 0 and "python" in r["command"] for r in rows)


def test_best_row_takes_the_largest_validation_drop(tmp_path):
    table = pd.DataFrame({"method": ["layer 0", "layer 1", "layer 2", "x only"], "drop_11": [0.1, 0.3, 0.2, 0.9],
                          "drop_11_lo": [0, 0, 0, 0.8]}).set_index("method")
    table.to_csv(tmp_path / "metrics.csv")
    assert best_row(tmp_path / "metrics.csv", "layer ") == ("layer 1", 0.3)  # "x only" is not a candidate
    with pytest.raises(LightningIBAError, match="no rows starting with 'beta '"):
        best_row(tmp_path / "metrics.csv", "beta ")


def test_table1_summary_reads_orderings_against_the_paper(tmp_path):
    from lightning_iba.evaluation.table1_summary import load_column, summary_markdown

    folder = tmp_path / "eval-test"
    folder.mkdir()
    pd.DataFrame({"method": ["iba:reference", "ig:class0", "random"], "dataset": "rte", "n": 277, "original_prob": 0.7,
                  "drop_11": [0.05, 0.08, 0.01], "drop_11_lo": [0.03, 0.06, 0.0], "drop_11_hi": [0.07, 0.10, 0.02]}).to_csv(folder / "table1.csv", index=False)
    pd.DataFrame({"method_a": ["iba:reference", "iba:reference", "ig:class0"], "method_b": ["ig:class0", "random", "random"],
                  "metric": "drop_11", "diff": [-0.03, 0.04, 0.07], "lo": [-0.05, 0.02, 0.05], "hi": [-0.01, 0.06, 0.09],
                  "excludes_zero": True}).to_csv(folder / "differences.csv", index=False)
    assert load_column(tmp_path / "absent", "rte", "test") is None
    page = summary_markdown([load_column(folder, "rte", "test")])
    assert "| iba:reference | 0.050 [0.030, 0.070] |" in page and "RTE (n=277)" in page
    # the paper has IBA 0.059 > IG 0.043 > Random 0.012 on RTE: ours reverses IBA and IG, keeps the rest
    assert "Reversed: IBA − IG = -0.030 [-0.050, -0.010] (excludes 0)" in page
    assert "IBA − Random = +0.040 [+0.020, +0.060] (excludes 0)" in page and "IG − Random = +0.070" in page


def test_figure2_panels_from_the_sweeps(tmp_path):
    from lightning_iba.cli.reproduce import DatasetPlan, ReproduceSettings, sweep_points, write_figure2

    s = ReproduceSettings(runs=str(tmp_path / "runs"), results=str(tmp_path / "results"),
                          datasets=[DatasetPlan("rte"), DatasetPlan("imdb", figure2b=True)])
    for name in ("rte", "imdb"):
        folder = tmp_path / "runs" / name / "layer-sweep"
        folder.mkdir(parents=True)
        pd.DataFrame({"method": [f"layer {i}" for i in range(3)], "drop_11": [0.1, 0.2, 0.15], "drop_11_lo": [0.05, 0.1, 0.1],
                      "drop_11_hi": [0.15, 0.3, 0.2]}).set_index("method").to_csv(folder / "metrics.csv")
    for estimator in ("dataset", "reference"):
        folder = tmp_path / "runs" / "imdb" / f"figure2b-{estimator}"
        folder.mkdir(parents=True)
        pd.DataFrame({"method": ["beta 1e-08", "beta 1e-05", "beta 0.1", "x only"], "drop_11": [0.2, 0.2, 0.1, 0.05]}).set_index(
            "method").to_csv(folder / "metrics.csv")
    points = sweep_points(tmp_path / "runs" / "imdb" / "figure2b-dataset" / "metrics.csv", "beta ", estimator="dataset")
    assert points["value"].tolist() == [1e-8, 1e-5, 0.1] and set(points["estimator"]) == {"dataset"}
    written = write_figure2(s)
    assert [p.name for p in written] == ["figure2a.png", "figure2b.png"] and all(p.stat().st_size > 1000 for p in written)
    assert written[1].parent.name == "imdb"
