"""evaluate.py end to end on the keyword task: faithfulness, DDP = 1 process, kill + resume = uninterrupted, W&B, bad input."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from keyword_task import make_keyword_texts
from lightning_iba.cli.evaluate import main
from lightning_iba.errors import LightningIBAError

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


@pytest.fixture(scope="module")
def sensitive_model_dir(tmp_path_factory, tokenizer) -> Path:
    """A tiny random BERT whose weight matrices are scaled x10, so that p(y|x) depends on every token.

    The keyword model is saturated (p(y|x) = 0.9989 until the keyword goes, whatever else is removed), so
    any two methods that rank the keyword first give the same curves; here another ranking gives another curve.
    """
    import torch

    from conftest import make_tiny_bert

    model = make_tiny_bert(vocab_size=tokenizer.vocab_size)
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() == 2:
                weight.mul_(10)
    folder = tmp_path_factory.mktemp("sensitive_model")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def sensitive_checkpoint(sensitive_model_dir, tmp_path) -> Path:
    return Path(shutil.copytree(sensitive_model_dir, tmp_path / "sensitive_model"))


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
    for name in ("table1.md", "curves.csv", "curves.png", "metrics.csv", "differences.csv", "differences.md", "strata.csv", "strata.md",
                 "labels.csv", "labels.md", "settings.json", "report.html"):
        assert (tmp_path / "eval" / name).is_file(), name
    page = (tmp_path / "eval" / "report.html").read_text()
    assert "Drop within strata of the original probability" in page and "Drop within each gold label" in page
    curves = pd.read_csv(tmp_path / "eval" / "curves.csv")
    assert set(curves["method"]) == {"iba", "random"} and len(curves) == 20
    assert report.metrics.loc["iba", "comprehensiveness"] > report.metrics.loc["random", "comprehensiveness"]
    drop = report.differences.set_index(["method_a", "method_b", "metric"]).loc[("iba", "random", "drop_11")]
    assert drop["lo"] > 0 and bool(drop["excludes_zero"])  # the paired interval of iba - random clears zero
    assert json.loads((tmp_path / "eval" / "settings.json").read_text())["report"] == {"bootstrap": {"resamples": 1000, "level": 0.95, "seed": 0, "strata": 4, "by_label": True}}

    # other bootstrap settings on a finished run: not refused, nothing attributed again, just re-reported
    shards = sorted((tmp_path / "eval" / "shards").glob("*.jsonl"))
    before = [p.read_text() for p in shards]
    again = main(args(checkpoint, keyword_data, tmp_path / "eval", "--methods", "iba,random", "--instances", "40", "--wandb", "false",
                      "--resume", "true", "--bootstrap.resamples", "200", "--bootstrap.level", "0.8", "--bootstrap.seed", "1",
                      "--bootstrap.strata", "2"))
    assert [p.read_text() for p in shards] == before
    assert json.loads((tmp_path / "eval" / "settings.json").read_text())["report"] == {"bootstrap": {"resamples": 200, "level": 0.8, "seed": 1, "strata": 2, "by_label": True}}
    assert again.table1["drop_11"].tolist() == report.table1["drop_11"].tolist()
    width = lambda r: r.metrics["drop_11_hi"] - r.metrics["drop_11_lo"]  # noqa: E731
    assert width(again)["iba"] < width(report)["iba"] and (width(again) <= width(report)).all(), (report.metrics, again.metrics)  # 80 % vs 95 %
    assert "drop_11 [80% CI]" in (tmp_path / "eval" / "table1.md").read_text()
    assert pd.read_csv(tmp_path / "eval" / "strata.csv")["stratum"].tolist() == [1, 1, 2, 2]  # halves now, not quartiles


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
def test_killed_run_resumes_to_the_same_table(checkpoint, keyword_data, tmp_path, capsys):
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
    at_kill = shard.read_bytes()
    written = [line for line in at_kill.decode().splitlines(keepends=True) if line.endswith("}\n")]  # the complete records
    assert len(written) >= 4
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(args(checkpoint, keyword_data, tmp_path / "killed", *extra))  # without --resume: refused, nothing touched
    assert info.value.code == 2
    refusal = f"error: {tmp_path / 'killed'} already holds an evaluation; pass --resume to continue it, or choose another --out"
    assert refusal in capsys.readouterr().err
    assert shard.read_bytes() == at_kill
    main(args(checkpoint, keyword_data, tmp_path / "killed", *extra, "--resume", "true"))
    for name in ("table1.csv", "curves.csv"):
        assert (tmp_path / "whole" / name).read_text() == (tmp_path / "killed" / name).read_text(), name
    after = shard.read_bytes()
    assert after.startswith(at_kill), "the resumed run rewrote the records written before the kill"
    complete = [line for line in after.decode().splitlines(keepends=True) if line.endswith("}\n")]
    assert complete[: len(written)] == written  # byte for byte, in place
    indices = [json.loads(line)["index"] for line in complete]  # a list: an instance evaluated twice shows up twice
    expected = sorted(json.loads(line)["index"] for line in (tmp_path / "whole" / "shards" / "rank-0.jsonl").read_text().splitlines())
    assert len(expected) == 32 and len(set(expected)) == 32
    assert sorted(indices) == expected, f"{len(indices)} complete records for 32 instances: each must be there exactly once"
    # the timing of both attempts, each instance once (a kill between a batch's records and its timing loses that timing)
    timing = pd.read_csv(tmp_path / "killed" / "timing.csv")
    assert list(timing["method"]) == ["iba", "random"]
    assert all(30 <= n <= 32 for n in timing["instances"]), timing


def test_offline_wandb_run_holds_table_and_curve(checkpoint, keyword_data, tmp_path):
    report = main(args(checkpoint, keyword_data, tmp_path / "eval", "--methods", "random,occlusion", "--instances", "8"))
    # what each method cost, beside the results and never in the records (they stay the same from run to run)
    timing = pd.read_csv(report.files["timing.csv"])
    assert list(timing["method"]) == ["random", "occlusion"] and list(timing["instances"]) == [8, 8]
    assert (timing["device"] == f"cpu ({__import__('torch').get_num_threads()} threads)").all()
    assert (timing["total_s"] > 0).all() and np.allclose(timing["total_s"], timing["attribution_s"] + timing["degradation_s"], rtol=1e-3)
    assert timing.loc[1, "attribution_s"] > timing.loc[0, "attribution_s"]  # occlusion runs the model per token; random does not
    records = [json.loads(line) for line in (tmp_path / "eval" / "shards" / "rank-0.jsonl").read_text().splitlines()]
    assert len(records) == 8 and not any("seconds" in r or "device" in r for r in records)
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


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--sweep", "depth"], "unknown sweep 'depth'; valid: layer, beta"),
        (["--instances", "0"], "instances must be at least 1 (or null for the whole split), got 0"),
        (["--precision", "16"], "precision must be 32 or bf16, got '16'"),
        (["--batch_size", "0"], "batch_size must be at least 1, got 0"),
        (["--devices", "0"], "devices must be at least 1, got 0"),
        (["--num_nodes", "-1"], "num_nodes must be at least 1, got -1"),
    ],
)
def test_bad_evaluation_settings_are_one_line_errors_before_any_work(tmp_path, capsys, extra, message):
    from lightning_iba.cli.evaluate import EvaluationSettings

    with pytest.raises(SystemExit) as info:
        main(["--checkpoint", str(tmp_path / "no_model"), "--out", str(tmp_path / "eval"), *extra])  # refused before the model is looked for
    assert info.value.code == 2
    assert capsys.readouterr().err == f"error: {message}\n" and not (tmp_path / "eval").exists()
    name, value = extra[0][2:], extra[1]
    with pytest.raises(LightningIBAError, match=f"^{re.escape(message)}$"):
        EvaluationSettings(**{name: value if name in ("sweep", "precision") else int(value)})


def test_protocol_variants_and_seed_repeats_in_one_run(sensitive_checkpoint, keyword_data, tmp_path):
    """Both estimators, both IG targets and an IBA repeat with another seed, one table; the repeat's spread is reported."""
    from lightning_iba.evaluation.shards import read_records

    methods = "iba:dataset,iba:reference,iba:dataset@seed1,ig:gold,ig:class0,ig:published"
    report = main(args(sensitive_checkpoint, keyword_data, tmp_path / "eval", "--methods", methods, "--instances", "12",
                       "--iba.steps", "4", "--ig.n_steps", "4", "--wandb", "false", "--degradation.sufficiency", "false"))
    table = pd.read_csv(tmp_path / "eval" / "table1.csv").set_index("method")
    assert list(table.index) == methods.split(",")
    assert table["n"].eq(12).all() and table["drop_11"].notna().all()
    records = list(read_records(tmp_path / "eval"))
    assert len(records) == 12 and all(set(r["scores"]) == set(methods.split(",")) for r in records)

    def differ(a: str, b: str, key: str) -> bool:  # somewhere, on some instance
        return any(not np.allclose(r[key][a], r[key][b], rtol=1e-4, atol=1e-7) for r in records)

    # each variant is another computation: the seed changes the bottleneck's noise, the estimator its statistics
    for other in ("iba:dataset@seed1", "iba:reference"):
        assert differ("iba:dataset", other, "scores") and differ("iba:dataset", other, "remove"), other
    # ig:class0 explains class 0 for every instance: the gold class's explanation on label-0 instances, and on a
    # 2-class model with probability outputs (p0 = 1 - p1) exactly its negation on label-1 instances
    by_label = {y: [r for r in records if r["label"] == y] for y in (0, 1)}
    assert by_label[0] and by_label[1]
    for r in by_label[0]:
        assert r["scores"]["ig:class0"] == r["scores"]["ig:gold"] and r["remove"]["ig:class0"] == r["remove"]["ig:gold"], r["index"]
    # ig:published explains the published code's class 0, IMDB's positive (our label 1), for every instance
    for r in by_label[1]:
        assert r["scores"]["ig:published"] == r["scores"]["ig:gold"] and r["remove"]["ig:published"] == r["remove"]["ig:gold"], r["index"]
    for r in by_label[0]:
        assert r["scores"]["ig:published"] != r["scores"]["ig:gold"], r["index"]
    for r in by_label[1]:
        gold, class0 = np.array(r["scores"]["ig:gold"]), np.array(r["scores"]["ig:class0"])
        assert not np.allclose(class0, gold, rtol=1e-3, atol=1e-8), r["index"]
        np.testing.assert_allclose(class0, -gold, rtol=1e-3, atol=1e-4 * np.abs(gold).max())
    spread = pd.read_csv(tmp_path / "eval" / "seed_spread.csv").set_index("method")
    assert spread.loc["iba:dataset", "seeds"] == 2
    assert spread.loc["iba:dataset", ["drop_11_std", "aopc_std", "comprehensiveness_std"]].gt(0).any(), spread
    stds = spread.filter(like="_std").columns
    assert spread.loc[["iba:reference", "ig:gold", "ig:class0", "ig:published"], "seeds"].eq(1).all()
    assert spread.loc[["iba:reference", "ig:gold", "ig:class0", "ig:published"], stds].isna().all().all()  # one run: no spread
    for metric in ("drop_11", "aopc", "comprehensiveness"):  # the spread is over the two runs' own numbers
        pair = report.metrics.loc[["iba:dataset", "iba:dataset@seed1"], metric]
        assert spread.loc["iba:dataset", f"{metric}_std"] == pytest.approx(pair.std(ddof=1), abs=2e-6), metric
    settings = json.loads((tmp_path / "eval" / "settings.json").read_text())
    assert settings["methods"] == methods.split(",")  # the variants are part of the run's identity


def test_evaluate_sweeps_equal_single_runs(sensitive_checkpoint, keyword_data, tmp_path):
    """`--sweep layer` row k is a plain `--methods iba --layer k` run; `--sweep beta` row b a `--iba.beta b` run, plus "x only"."""
    from lightning_iba.evaluation.shards import read_records

    common = ["--instances", "6", "--iba.steps", "2", "--wandb", "false", "--degradation.sufficiency", "false"]
    run = lambda name, *extra: main(args(sensitive_checkpoint, keyword_data, tmp_path / name, *common, *extra))  # noqa: E731
    scores = lambda name: {r["index"]: r["scores"] for r in read_records(tmp_path / name)}  # noqa: E731

    def same_row(sweep, sweep_dir: str, row: str, single, single_dir: str) -> None:
        pd.testing.assert_series_equal(single.metrics.loc["iba"], sweep.metrics.loc[row], check_names=False)
        assert {i: s["iba"] for i, s in scores(single_dir).items()} == {i: s[row] for i, s in scores(sweep_dir).items()}, row

    layers = run("layers", "--sweep", "layer", "--layer", "9")  # a layer sweep runs every layer: a --layer the model lacks is not used
    rows = [f"layer {k}" for k in range(4)]
    assert list(layers.metrics.index) == rows and list(layers.table1["method"]) == rows and layers.table1["n"].eq(6).all()
    assert layers.metrics["aopc"].nunique() == 4  # the layers give different results, so the rows cannot be swapped unnoticed
    for k in range(4):
        same_row(layers, "layers", f"layer {k}", run(f"layer{k}", "--methods", "iba", "--layer", str(k)), f"layer{k}")

    betas = run("betas", "--sweep", "beta", "--betas", "1e-4,0.1")
    assert list(betas.metrics.index) == ["beta 0.0001", "beta 0.1", "x only"]
    assert betas.metrics["aopc"].nunique() == 3
    for beta, row in (("1e-4", "beta 0.0001"), ("0.1", "beta 0.1")):
        same_row(betas, "betas", row, run(f"beta{beta}", "--methods", "iba", "--iba.beta", beta), f"beta{beta}")


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


# ---------------------------------------------------------------- sentence pairs


def test_tokenize_instances_gives_pairs_their_segments(tokenizer, tmp_path):
    from fixtures_data import write_rte
    from lightning_iba.cli.evaluate import tokenize_instances
    from lightning_iba.data.sources import load_splits

    split = load_splits("rte", "local", write_rte(tmp_path, n=12))["test"]
    instances = tokenize_instances(split, [1, 10, 4], tokenizer, 16)
    assert [i.index for i in instances] == [1, 4, 10]  # longest first, then by index: these are equally long
    for inst in instances:
        row = split[inst.index]
        expected = tokenizer(row["text"], row["text_pair"], truncation=True, max_length=16)
        assert (inst.id, inst.label) == (row["id"], row["label"])
        assert inst.input_ids == expected["input_ids"] and inst.token_type_ids == expected["token_type_ids"]
        sep = inst.input_ids.index(tokenizer.sep_token_id)
        assert inst.token_type_ids == [0] * (sep + 1) + [1] * (len(inst.input_ids) - sep - 1)


def test_sentence_pairs_reach_iba_with_their_second_segment_marked(keyword_model_dir, tokenizer, tmp_path, iba_inputs):
    """An RTE evaluation of an IMDB model (a transfer) end to end: each instance of RTE/dev.tsv reaches IBA as
    [CLS] premise [SEP] hypothesis [SEP], token type 1 on the hypothesis."""
    from conftest import copy_model
    from fixtures_data import write_rte

    data = write_rte(tmp_path / "rte", n=20)
    checkpoint = copy_model(keyword_model_dir, tmp_path / "model", lightning_iba_task="imdb")
    report = main(args(checkpoint, data, tmp_path / "eval", "--dataset", "rte", "--allow_task_transfer", "true", "--methods", "iba",
                       "--instances", "6", "--iba.steps", "2", "--iba.samples", "2", "--estimator.texts", "8", "--wandb", "false",
                       "--degradation.sufficiency", "false"))
    assert report.table1["n"].tolist() == [6]
    settings = json.loads((tmp_path / "eval" / "settings.json").read_text())
    assert settings["dataset"] == "rte" and settings["task_transfer"] is True
    segments = pd.read_csv(tmp_path / "eval" / "segments.csv")  # a pair task: where in the pair the removed tokens lie
    assert segments[segments["label"] == "(all)"]["method"].tolist() == ["iba", "(all tokens)"]
    dev = [tokenizer(f'The "cat" sat on mat {i}.', f"A cat sat {i}.", truncation=True, max_length=32) for i in range(20)]  # RTE/dev.tsv
    # input_ids, attention_mask, token_type_ids of each row IBA computed on
    seen = [row for call in iba_inputs for row in zip(call["input_ids"], call["attention_mask"], call["token_type_ids"])]
    assert len(seen) == 6
    matched = set()
    for ids, mask, types in seen:
        n = sum(mask)
        i = next(i for i, enc in enumerate(dev) if enc["input_ids"] == ids[:n])
        assert types[:n] == dev[i]["token_type_ids"] and types[n:] == [0] * (len(ids) - n)
        sep = ids.index(tokenizer.sep_token_id)
        assert types[:n] == [0] * (sep + 1) + [1] * (n - sep - 1) and sep < n - 2
        matched.add(i)
    assert len(matched) == 6


# ---------------------------------------------------------------- non-finite scores


class NaNScores:
    """A method scoring every token 1, but NaN in the rows whose target is `bad_target`, from call `from_call` on."""

    name = "stub"

    def __init__(self, bad_target: int, from_call: int = 1, inner=None):
        self.bad_target, self.from_call, self.inner, self.calls = bad_target, from_call, inner, 0

    def attribute(self, input_ids, attention_mask, target, token_type_ids=None):
        import torch

        self.calls += 1
        scores = torch.ones(input_ids.shape) if self.inner is None else self.inner.attribute(input_ids, attention_mask, target, token_type_ids).clone()
        if self.calls >= self.from_call:
            scores[target == self.bad_target] = float("nan")
        return scores * attention_mask


def test_non_finite_scores_are_one_line_errors_naming_method_and_instances():
    """In the instances' own scores and in the plausibility windows' scores."""
    from conftest import make_tiny_bert
    from lightning_iba.data.tokens import SpecialTokens
    from lightning_iba.evaluation.degradation import DegradationSettings
    from lightning_iba.evaluation.run import EvaluationModule, Instance, collate

    special = SpecialTokens(pad_id=0, mask_id=4, special_ids=(0, 1, 2))  # [PAD], [CLS], [SEP]
    instances = [Instance(0, "a", 1, [1, 10, 11, 12, 2], [0] * 5), Instance(1, "b", 0, [1, 20, 21, 2], [0] * 4),
                 Instance(2, "c", 1, [1, 30, 2], [0] * 3)]
    module = lambda method: EvaluationModule(make_tiny_bert(vocab_size=100, layers=2), [("stub", method)], special,  # noqa: E731
                                             DegradationSettings(), batch_size=4)
    with pytest.raises(LightningIBAError, match=r"^method stub gave non-finite scores for instances \['a', 'c'\]$"):
        module(NaNScores(bad_target=1)).predict_step(collate(instances, 0), 0)
    assert len(module(NaNScores(bad_target=1, from_call=2)).predict_step(collate(instances, 0), 0)) == 3  # finite: records

    instances[1].windows, instances[1].pieces = [(2, [1, 22, 23, 2])], 4  # "b" is longer than its input: one more window
    with pytest.raises(LightningIBAError, match=r"^method stub gave non-finite scores in a window of instances \['b'\]$"):
        module(NaNScores(bad_target=0, from_call=2)).predict_step(collate(instances, 0), 0)


def test_non_finite_scores_stop_evaluate_py_with_one_line(checkpoint, keyword_data, tmp_path, monkeypatch, capsys):
    import lightning_iba.cli.evaluate as cli

    build = cli.build_attributor
    monkeypatch.setattr(cli, "build_attributor", lambda *a, **kw: NaNScores(bad_target=1, inner=build(*a, **kw)))
    with pytest.raises(SystemExit) as info:
        main(args(checkpoint, keyword_data, tmp_path / "eval", "--methods", "random", "--instances", "8", "--batch_size", "8", "--wandb", "false"))
    assert info.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and re.fullmatch(r"error: method random gave non-finite scores for instances \['test/pos/\d+_9'(, 'test/pos/\d+_9')*\]", last), err


class TargetScores:
    """A method whose token ranking depends on the class it explains; remembers the targets it was given."""

    name = "stub"

    def __init__(self):
        self.targets = []

    def attribute(self, input_ids, attention_mask, target, token_type_ids=None):
        self.targets.append(target.tolist())
        return ((input_ids * (target[:, None] + 2)) % 7).float() * attention_mask


def test_target_predicted_explains_and_scores_the_class_the_model_predicts():
    """ERASER's protocol: the method is asked for the predicted class and every curve reads it; the records of a
    gold run whose labels are the predictions are the same (but for the label)."""
    import dataclasses

    import torch
    from conftest import make_tiny_bert
    from lightning_iba.data.tokens import SpecialTokens
    from lightning_iba.evaluation.degradation import DegradationSettings
    from lightning_iba.evaluation.run import EvaluationModule, Instance, collate

    special = SpecialTokens(pad_id=0, mask_id=4, special_ids=(0, 1, 2))
    model = make_tiny_bert(vocab_size=100, layers=2, seed=3)
    rng = np.random.default_rng(0)
    instances = [Instance(k, f"i{k}", k % 2, [1, *rng.integers(5, 100, size=int(n)).tolist(), 2], [0] * (int(n) + 2))
                 for k, n in enumerate(rng.integers(4, 12, size=8))]
    batch = collate(instances, 0)
    with torch.no_grad():
        predicted = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.argmax(-1).tolist()
    assert any(p != i.label for p, i in zip(predicted, instances)) and any(p == i.label for p, i in zip(predicted, instances))

    def run(target, cases):
        method = TargetScores()
        module = EvaluationModule(model, [("stub", method)], special, DegradationSettings(), batch_size=8, target=target)
        return module.predict_step(collate(cases, 0), 0), method.targets

    records, targets = run("predicted", instances)
    assert targets == [predicted]
    for r in records:
        assert r["original_prob"] == pytest.approx(r["probs"][r["predicted"]], abs=1e-6)
        assert r["remove"]["stub"][0] == pytest.approx(r["original_prob"], abs=1e-5)  # the curve starts at p(predicted)
    gold_records, gold_targets = run("gold", instances)
    assert gold_targets == [[i.label for i in instances]]
    assert [r["remove"] for r in gold_records] != [r["remove"] for r in records]
    relabelled, _ = run("gold", [dataclasses.replace(i, label=p) for i, p in zip(instances, predicted)])
    strip = lambda rs: [{k: v for k, v in r.items() if k != "label"} for r in rs]  # noqa: E731
    assert strip(relabelled) == strip(records)
    with pytest.raises(LightningIBAError, match="unknown target 'model'"):
        EvaluationModule(model, [("stub", TargetScores())], special, DegradationSettings(), batch_size=8, target="model")


def test_target_is_a_checked_setting_that_bare_ig_follows():
    from lightning_iba.cli.evaluate import parse
    from lightning_iba.errors import UnknownNameError

    assert parse([]).target == "gold"  # the paper's protocol (configs/evaluate/base.yaml)
    assert parse(["--config", str(REPO / "configs/evaluate/eraser_movies.yaml")]).target == "predicted"  # ERASER's
    with pytest.raises(UnknownNameError, match="target"):
        parse(["--target", "label"])
    with pytest.raises(LightningIBAError, match="ig:gold explains the gold label.*use ig"):
        parse(["--target", "predicted", "--methods", "ig:gold,random"])


def test_a_predicted_target_run_records_it_and_its_page_says_so(checkpoint, keyword_data, tmp_path):
    out = tmp_path / "eval"
    main(args(checkpoint, keyword_data, out, "--methods", "random,lime", "--lime.num_samples", "20", "--instances", "8",
              "--target", "predicted", "--wandb", "false"))
    assert json.loads((out / "settings.json").read_text())["target"] == "predicted"
    records = [json.loads(line) for p in (out / "shards").glob("rank-*.jsonl") for line in p.read_text().splitlines()]
    assert len(records) == 8
    assert all(r["original_prob"] == pytest.approx(max(r["probs"]), abs=1e-6) for r in records)
    page = (out / "report.html").read_text()
    assert "lowest p(predicted)" in page and "--target {predicted}" in page and "p(gold)" not in page
    with pytest.raises(SystemExit):  # a resume may not change the class explained
        main(args(checkpoint, keyword_data, out, "--methods", "random,lime", "--lime.num_samples", "20", "--instances", "8",
                  "--resume", "true", "--wandb", "false"))
