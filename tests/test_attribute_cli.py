"""attribute.py end to end on the tiny keyword model: printed scores, JSON, HTML, PNG, sweeps, bad input."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from lightning_iba.attribution.cli import default_layer, main

TEXT = "the plot was excellent and the music rather long"


@pytest.fixture
def checkpoint(keyword_model_dir, tmp_path) -> Path:
    return Path(shutil.copytree(keyword_model_dir, tmp_path / "model"))


def run(checkpoint: Path, out: Path, *extra: str) -> dict:
    return main(["--checkpoint", str(checkpoint), "--out", str(out), "--estimator", "reference", *extra])


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
    betas = run(checkpoint, tmp_path / "b", "--text", TEXT, "--layer", "2", "--beta", "1e-6,1e-5,1e-4", "--target", "negative")
    assert betas["rows"] == ["beta 1e-06", "beta 1e-05", "beta 0.0001"] and betas["target"] == 0


def test_dataset_instance_with_dataset_estimator(checkpoint, tmp_path):
    from test_evaluate import write_keyword_aclimdb

    data = write_keyword_aclimdb(tmp_path / "data")
    result = main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "d"), "--dataset", "imdb", "--source", "local",
                   "--data-dir", str(data), "--index", "3", "--layer", "1", "--estimator-texts", "32"])
    assert result["gold"] in (0, 1) and result["target"] == result["gold"]
    assert (checkpoint / "iba_statistics.pt").is_file()  # fitted once, cached with the checkpoint


def test_default_layer_is_the_papers_relative_depth():
    assert default_layer(12) == 8 and default_layer(6) == 3


def test_long_text_is_truncated_with_a_note(checkpoint, tmp_path, caplog):
    run(checkpoint, tmp_path / "t", "--text", " ".join(["word"] * 80), "--max-length", "16", "--layer", "1")
    assert "has 82 tokens; truncated to max_length 16" in caplog.text
    assert len(json.loads((tmp_path / "t" / "attribution.json").read_text())["tokens"]) == 16


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--text", "   "], "the text to explain is empty"),
        (["--text", TEXT, "--layer", "7"], "layer 7 is out of range; valid: 0..3"),
        (["--text", TEXT, "--target", "5"], "target '5' is not a label of this model; valid: 0 (negative), 1 (positive)"),
        (["--text", TEXT, "--beta", "0"], "beta"),
        (["--text", TEXT, "--steps", "0"], "steps"),
        (["--text", TEXT, "--estimator", "magic"], "unknown estimator 'magic'; valid: dataset, reference"),
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
