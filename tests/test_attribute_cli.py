"""attribute.py end to end on the tiny keyword model: printed scores, JSON, HTML, PNG, sweeps, bad input."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from lightning_iba.cli.attribute import main
from lightning_iba.cli.common import default_layer

TEXT = "the plot was excellent and the music rather long"


@pytest.fixture
def checkpoint(keyword_model_dir, tmp_path) -> Path:
    return Path(shutil.copytree(keyword_model_dir, tmp_path / "model"))


def run(checkpoint: Path, out: Path, *extra: str) -> dict:
    return main(["--checkpoint", str(checkpoint), "--dataset", "imdb", "--out", str(out), "--estimator.name", "reference", *extra])


def test_outputs_match_what_is_printed(checkpoint, tmp_path, capsys):
    result = run(checkpoint, tmp_path / "a", "--text", TEXT, "--layer", "1")
    printed = capsys.readouterr().out
    saved = json.loads((tmp_path / "a" / "attribution.json").read_text())
    assert saved["tokens"][0] == "[CLS]" and saved["tokens"][-1] == "[SEP]" and saved["rows"] == ["layer 1"]
    assert saved["target_name"] == "positive" and saved["target"] == saved["predicted"] == 1
    lines = [l for l in printed.splitlines() if l.split(" ")[0] in saved["tokens"]]
    assert len(lines) == len(saved["tokens"])
    for line, token, score in zip(lines, saved["tokens"], saved["scores"][0]):
        assert line.startswith(token) and float(line.split()[-1]) == pytest.approx(score, rel=1e-3)
    html = (tmp_path / "a" / "attribution.html").read_text()
    assert "excellent" in html and "<html" in html.lower()
    assert Image.open(tmp_path / "a" / "attribution.png").size[0] > 100
    assert result == saved


def test_layer_sweep_and_beta_rows(checkpoint, tmp_path):
    layers = run(checkpoint, tmp_path / "l", "--text", TEXT, "--layers", "all")
    assert layers["rows"] == ["layer 0", "layer 1", "layer 2", "layer 3"] and len(layers["scores"]) == 4
    betas = run(checkpoint, tmp_path / "b", "--text", TEXT, "--layer", "2", "--betas", "1e-6,1e-5,1e-4", "--target", "negative")
    assert betas["rows"] == ["beta 1e-06", "beta 1e-05", "beta 0.0001"] and betas["target"] == 0


def test_dataset_instance_with_dataset_estimator(checkpoint, tmp_path):
    from test_evaluate import write_keyword_aclimdb

    data = write_keyword_aclimdb(tmp_path / "data")
    argv = ["--checkpoint", str(checkpoint), "--dataset", "imdb", "--source", "local", "--data_dir", str(data), "--index", "3",
            "--layer", "1", "--estimator.texts", "32"]
    result = main([*argv, "--out", str(tmp_path / "d")])
    assert result["gold"] in (0, 1) and result["target"] == result["gold"]
    assert len(list(checkpoint.glob("iba_statistics-*.pt"))) == 1  # fitted once, cached with the checkpoint under its key
    again = main([*argv, "--out", str(tmp_path / "e")])
    assert again["scores"] == result["scores"] and len(list(checkpoint.glob("iba_statistics-*.pt"))) == 1
    main([*argv, "--out", str(tmp_path / "f"), "--max_length", "24"])  # another max_length: its own fit, never the 32-token one
    assert len(list(checkpoint.glob("iba_statistics-*.pt"))) == 2


def test_statistics_go_elsewhere_when_asked_or_when_the_checkpoint_is_read_only(checkpoint, tmp_path, monkeypatch):
    from test_evaluate import write_keyword_aclimdb

    import lightning_iba.attribution.statistics_cache as cache

    data = write_keyword_aclimdb(tmp_path / "data")
    argv = ["--checkpoint", str(checkpoint), "--dataset", "imdb", "--source", "local", "--data_dir", str(data), "--text", TEXT,
            "--layer", "1", "--estimator.texts", "16"]
    main([*argv, "--out", str(tmp_path / "a"), "--estimator.cache_dir", str(tmp_path / "stats")])
    assert len(list((tmp_path / "stats").glob("iba_statistics-*.pt"))) == 1
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cache, "is_writable", lambda folder: folder != checkpoint)  # as if mounted read-only
    main([*argv, "--out", str(tmp_path / "r")])
    assert not list(checkpoint.glob("iba_statistics-*.pt"))
    assert len(list((tmp_path / "runs" / "statistics").rglob("iba_statistics-*.pt"))) == 1


def test_default_layer_is_the_papers_relative_depth():
    assert default_layer(12) == 8 and default_layer(6) == 3


def test_long_text_is_truncated_with_a_note(checkpoint, tmp_path, caplog):
    run(checkpoint, tmp_path / "t", "--text", " ".join(["word"] * 80), "--max_length", "16", "--layer", "1")
    assert "has 82 tokens; truncated to max_length 16" in caplog.text
    assert len(json.loads((tmp_path / "t" / "attribution.json").read_text())["tokens"]) == 16


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--text", "   "], "the text to explain is empty"),
        (["--text", TEXT, "--layer", "7"], "layer 7 is out of range; valid: 0..3"),
        (["--text", TEXT, "--target", "5"], "target '5' is not a label of this model; valid: 0 (negative), 1 (positive)"),
        (["--text", TEXT, "--iba.beta", "0"], "error: beta must be > 0, not 0.0"),
        (["--text", TEXT, "--iba.steps", "0"], "error: steps must be an integer >= 1, not 0"),
        (["--text", TEXT, "--estimator.name", "magic"], "unknown estimator 'magic'; valid: dataset, reference"),
        (["--text", TEXT, "--layers", ","], "layers must be 'all' or comma-separated layer indices"),
        (["--text", TEXT, "--layers", "1,9"], "layer 9 is out of range; valid: 0..3"),
        (["--text", TEXT, "--max_length", "0"], "max_length must be at least 8 tokens, got 0"),
        (["--text", TEXT, "--max_length", "4096"], "max_length 4096 is longer than the model's 64 positions"),
        (["--text", TEXT, "--dataset", "agnews"], "has 2 labels but dataset agnews has 4"),
        ([], "give --text"),
    ],
)
def test_bad_input(checkpoint, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as info:
        run(checkpoint, tmp_path / "x", *extra)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_checkpoint_says_how_to_make_one(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(tmp_path / "none"), "--text", TEXT])
    assert "no fine-tuned model at" in capsys.readouterr().err


def test_default_checkpoint_is_the_demo_then_imdb(tmp_path, monkeypatch, capsys):
    from lightning_iba.models.loading import default_checkpoint

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["--text", TEXT])
    assert "no fine-tuned model at runs/demo/model or runs/imdb/model; run `make demo` or `make finetune DATASET=imdb`" in capsys.readouterr().err
    (tmp_path / "runs/imdb/model").mkdir(parents=True)
    (tmp_path / "runs/imdb/model/config.json").write_text("{}")
    assert default_checkpoint() == Path("runs/imdb/model")
