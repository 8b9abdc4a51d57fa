"""evaluate.py end to end on the keyword task: faithfulness, DDP = 1 process, kill + resume = uninterrupted, W&B, bad input."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO
from keyword_task import make_keyword_texts
from lightning_iba.cli.evaluate import main

COMMON = ["--dataset", "imdb", "--source", "local", "--max_length", "32", "--layer", "1", "--estimator.texts", "64", "--batch_size", "4"]


def write_keyword_aclimdb(root: Path) -> Path:
    """The keyword task written as aclImdb/{train,test}/{pos,neg}/*.txt."""
    for split, seed, n in (("train", 11, 80), ("test", 12, 60)):
        for i, (text, label) in enumerate(make_keyword_texts(n, seed=seed)):
            folder = root / "aclImdb" / split / ("pos" if label else "neg")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}_{9 if label else 2}.txt").write_text(text)
    return root


@pytest.fixture(scope="module")
def keyword_data(tmp_path_factory) -> Path:
    return write_keyword_aclimdb(tmp_path_factory.mktemp("keyword_data"))


@pytest.fixture
def checkpoint(keyword_model_dir, tmp_path) -> Path:
    """A private copy of the keyword model (the dataset estimator caches its statistics in the folder)."""
    return Path(shutil.copytree(keyword_model_dir, tmp_path / "model"))


def args(checkpoint: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["--checkpoint", str(checkpoint), "--data_dir", str(data), "--out", str(out), *COMMON, *extra]


def run_script(argv: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "evaluate.py", *argv], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_iba_beats_random_through_the_whole_pipeline(checkpoint, keyword_data, tmp_path):
    report = main(args(checkpoint, keyword_data, tmp_path / "eval", "--methods", "iba,random", "--instances", "40", "--wandb", "false"))
    table = pd.read_csv(tmp_path / "eval" / "table1.csv")
    assert list(table.columns) == ["method", "dataset", "n", "original_prob", "drop_11", "drop_11_lo", "drop_11_hi"]
    drops = table.set_index("method")["drop_11"]
    assert list(table["n"]) == [40, 40]
    assert drops["iba"] > drops["random"] + 0.2, table  # removing the keyword first flips the prediction
    for name in ("table1.md", "curves.csv", "curves.png", "metrics.csv", "differences.csv", "differences.md", "settings.json", "report.html"):
        assert (tmp_path / "eval" / name).is_file(), name
    curves = pd.read_csv(tmp_path / "eval" / "curves.csv")
    assert set(curves["method"]) == {"iba", "random"} and len(curves) == 20
    assert report.metrics.loc["iba", "comprehensiveness"] > report.metrics.loc["random", "comprehensiveness"]
    drop = report.differences.set_index(["method_a", "method_b", "metric"]).loc[("iba", "random", "drop_11")]
    assert drop["lo"] > 0 and bool(drop["excludes_zero"])  # the paired interval of iba - random clears zero
    assert json.loads((tmp_path / "eval" / "settings.json").read_text())["report"] == {"bootstrap": {"resamples": 1000, "level": 0.95, "seed": 0}}

    # other bootstrap settings on a finished run: not refused, nothing attributed again, just re-reported
    shards = sorted((tmp_path / "eval" / "shards").glob("*.jsonl"))
    before = [p.read_text() for p in shards]
    again = main(args(checkpoint, keyword_data, tmp_path / "eval", "--methods", "iba,random", "--instances", "40", "--wandb", "false",
                      "--resume", "true", "--bootstrap.resamples", "200", "--bootstrap.level", "0.8", "--bootstrap.seed", "1"))
    assert [p.read_text() for p in shards] == before
    assert json.loads((tmp_path / "eval" / "settings.json").read_text())["report"] == {"bootstrap": {"resamples": 200, "level": 0.8, "seed": 1}}
    assert again.table1["drop_11"].tolist() == report.table1["drop_11"].tolist()
    width = lambda r: r.metrics["drop_11_hi"] - r.metrics["drop_11_lo"]  # noqa: E731
    assert width(again)["iba"] < width(report)["iba"] and (width(again) <= width(report)).all(), (report.metrics, again.metrics)  # 80 % vs 95 %
    assert "drop_11 [80% CI]" in (tmp_path / "eval" / "table1.md").read_text()


@pytest.mark.slow
def test_two_process_ddp_equals_one_process(checkpoint, keyword_data, tmp_path):
    extra = ["--methods", "iba,random,occlusion", "--instances", "24", "--iba.steps", "4", "--wandb", "false", "--accelerator", "cpu"]
    main(args(checkpoint, keyword_data, tmp_path / "one", *extra))
    proc = run_script(args(checkpoint, keyword_data, tmp_path / "two", *extra, "--devices", "2"))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert len(list((tmp_path / "two" / "shards").glob("rank-*.jsonl"))) == 2  # both ranks wrote their share
    for name in ("table1.csv", "curves.csv", "metrics.csv"):
        assert (tmp_path / "one" / name).read_text() == (tmp_path / "two" / name).read_text(), name


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_table(checkpoint, keyword_data, tmp_path):
    extra = ["--methods", "iba,random", "--instances", "32", "--iba.steps", "4", "--wandb", "false", "--batch_size", "2"]
    main(args(checkpoint, keyword_data, tmp_path / "whole", *extra))
    # The statistics are cached now, so the killed run starts attributing at once.
    proc = run_script(args(checkpoint, keyword_data, tmp_path / "killed", *extra), start_new_session=True)
    shard = tmp_path / "killed" / "shards" / "rank-0.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and (not shard.exists() or shard.read_text().count("\n") < 4):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    lines = shard.read_text().count("\n")
    assert 4 <= lines < 32, f"the run was not killed mid-way ({lines} lines)"
    with shard.open("a") as fh:
        fh.write('{"index": 3, "id": "cut sho')  # a record cut short by the kill
    with pytest.raises(SystemExit):
        main(args(checkpoint, keyword_data, tmp_path / "killed", *extra))  # without --resume: refused
    main(args(checkpoint, keyword_data, tmp_path / "killed", *extra, "--resume", "true"))
    for name in ("table1.csv", "curves.csv"):
        assert (tmp_path / "whole" / name).read_text() == (tmp_path / "killed" / name).read_text(), name
    records = [json.loads(l) for l in shard.read_text().splitlines() if l.startswith('{"index"') and l.endswith("}")]
    assert len({r["index"] for r in records}) == 32


def test_offline_wandb_run_holds_table_and_curve(checkpoint, keyword_data, tmp_path):
    report = main(args(checkpoint, keyword_data, tmp_path / "eval", "--methods", "random,occlusion", "--instances", "8"))
    run_dir = report.files["wandb"]
    assert run_dir.name.startswith("offline-run-"), run_dir
    tables = {p.name.split("_")[0] for p in (run_dir / "files" / "media" / "table").rglob("*.table.json")}
    assert {"table1", "degradation"} <= tables, tables
    curve = next((run_dir / "files" / "media" / "table").rglob("degradation_curve*.table.json"))
    assert "occlusion" in curve.read_text() and "random" in curve.read_text()
    assert b"model_fingerprint" in next(run_dir.glob("run-*.wandb")).read_bytes()  # the settings went in as config


def test_bad_input(checkpoint, keyword_data, tmp_path, capsys, caplog):
    def error_in(out: Path, *extra: str) -> str:
        with pytest.raises(SystemExit) as info:
            main(args(checkpoint, keyword_data, out, "--wandb", "false", *extra))
        assert info.value.code == 2
        return capsys.readouterr().err

    error = lambda *extra: error_in(tmp_path / "bad", *extra)  # noqa: E731

    assert "unknown method 'shap'; valid: iba, ig, lime, random" in error("--methods", "iba,shap")
    assert "has 2 labels but dataset agnews has 4" in error("--methods", "random", "--dataset", "agnews")
    assert "layer 9 is out of range; valid: 0..3" in error("--methods", "iba", "--layer", "9")
    assert "max_length must be at least 8 tokens, got 0" in error("--max_length", "0")
    assert "headline fraction 0.11 is not on the fraction grid [0, 0.5, 1]" in error("--degradation.fractions", "3")
    main(args(checkpoint, keyword_data, tmp_path / "first", "--methods", "random", "--instances", "500", "--wandb", "false"))
    assert "--instances 500 is more than the split holds (60); using all of them" in caplog.text
    assert pd.read_csv(tmp_path / "first" / "table1.csv")["n"].tolist() == [60]
    err = error_in(tmp_path / "first", "--methods", "random", "--instances", "30", "--resume", "true")
    assert "--resume with different settings" in err and "instances: 500 -> 30" in err


def test_protocol_variants_and_seed_repeats_in_one_run(checkpoint, keyword_data, tmp_path):
    """Both estimators, both IG targets and an IBA repeat with another seed, one table; the repeat's spread is reported."""
    methods = "iba:dataset,iba:reference,iba:dataset@seed1,ig:gold,ig:class0"
    main(args(checkpoint, keyword_data, tmp_path / "eval", "--methods", methods, "--instances", "12", "--iba.steps", "4",
              "--ig.n_steps", "4", "--wandb", "false", "--degradation.sufficiency", "false"))
    table = pd.read_csv(tmp_path / "eval" / "table1.csv").set_index("method")
    assert list(table.index) == methods.split(",")
    # (the keyword model is saturated, so the variants' drops coincide here; their scores are compared in
    # test_baselines.py and test_iba_optimizer.py)
    assert table["n"].eq(12).all() and table["drop_11"].notna().all()
    spread = pd.read_csv(tmp_path / "eval" / "seed_spread.csv").set_index("method")
    assert spread.loc["iba:dataset", "seeds"] == 2 and spread.loc["iba:dataset", "drop_11_std"] >= 0
    assert spread.loc["ig:gold", "seeds"] == 1
    settings = json.loads((tmp_path / "eval" / "settings.json").read_text())
    assert settings["methods"] == methods.split(",")  # the variants are part of the run's identity


def test_records_keep_token_ids_and_scores_unless_told_not_to(checkpoint, keyword_data, tmp_path):
    from lightning_iba.evaluation.shards import read_records

    main(args(checkpoint, keyword_data, tmp_path / "with", "--methods", "random,occlusion", "--instances", "6", "--wandb", "false"))
    records = list(read_records(tmp_path / "with"))
    assert len(records) == 6
    for r in records:
        assert len(r["input_ids"]) == r["length"] and set(r["scores"]) == {"random", "occlusion"}
        assert all(len(v) == r["length"] for v in r["scores"].values())
        assert r["predicted"] in (0, 1) and abs(sum(r["probs"]) - 1) < 1e-4 and r["probs"][r["label"]] == pytest.approx(r["original_prob"], abs=1e-5)
    main(args(checkpoint, keyword_data, tmp_path / "without", "--methods", "random", "--instances", "6", "--wandb", "false", "--store_scores", "false"))
    assert all("scores" not in r and "input_ids" not in r for r in read_records(tmp_path / "without"))
