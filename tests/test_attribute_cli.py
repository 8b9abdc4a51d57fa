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


@pytest.fixture(scope="module")
def aclimdb(tmp_path_factory) -> Path:
    """aclImdb with 20 train and 20 test reviews: source local gives train, validation (carved) and test."""
    from fixtures_data import write_aclimdb

    return write_aclimdb(tmp_path_factory.mktemp("aclimdb"), n_per_class=10)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--text", "   "], "the text to explain is empty"),
        (["--text", TEXT, "--text_pair", "  "], "error: the second segment to explain (--text_pair) is empty; leave it out for a single text"),
        (["--index", "20", "--source", "local", "--data_dir", "{data}"], "error: --index 20 is outside 0..19 of imdb test"),
        (["--index", "-1", "--source", "local", "--data_dir", "{data}"], "error: --index -1 is outside 0..19 of imdb test"),
        (["--text", TEXT, "--index", "0"], "error: give --text or --index, not both"),
        (["--index", "0", "--text_pair", "A second text."], "error: --text_pair goes with --text; an --index instance brings its own second segment"),
        (["--text", TEXT, "--text_pair", "A second text."], "error: imdb explains single texts: leave out --text_pair"),
        (["--text", TEXT, "--dataset", "rte"], "error: rte explains sentence pairs: give the second segment with --text_pair too"),
        (["--index", "0", "--source", "local", "--data_dir", "{data}", "--split", "dev"],
         "error: dataset imdb has no split 'dev'; valid: train, validation, test"),
        (["--text", TEXT, "--dataset", "null"], "error: {checkpoint} records no task (not exported by `make finetune`); pass --dataset"),
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
def test_bad_input(checkpoint, aclimdb, tmp_path, capsys, extra, message):
    fill = lambda text: text.replace("{data}", str(aclimdb)).replace("{checkpoint}", str(checkpoint))  # noqa: E731
    with pytest.raises(SystemExit) as info:
        run(checkpoint, tmp_path / "x", *map(fill, extra))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert fill(message) in err and "Traceback" not in err


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


def segment_types(input_ids: list[int], sep_id: int) -> list[int]:
    """What BERT's token_type_ids must be for [CLS] a [SEP] b [SEP]: 0 up to the first [SEP], 1 after it."""
    first = input_ids.index(sep_id)
    return [0] * (first + 1) + [1] * (len(input_ids) - first - 1)


def test_a_sentence_pair_reaches_iba_with_its_second_segment_marked(checkpoint, tokenizer, tmp_path, iba_inputs):
    """--text/--text_pair and --index of a pair task: two segments, token type 1 on the second, in what IBA computes on."""
    from fixtures_data import write_rte

    # the keyword checkpoint records no task: --dataset rte is its task here, no transfer
    pair = ["--checkpoint", str(checkpoint), "--dataset", "rte", "--estimator.name", "reference", "--layer", "1",
            "--iba.steps", "2", "--iba.samples", "2"]
    given = main([*pair, "--text", TEXT, "--text_pair", "The music was long.", "--out", str(tmp_path / "given")])
    assert given["task"] == "rte" and given["text_pair"] == "The music was long."
    assert given["tokens"].count("[SEP]") == 2 and given["tokens"][-3:] == ["long", ".", "[SEP]"]
    expected = tokenizer(TEXT, "The music was long.")
    assert iba_inputs[-1]["input_ids"] == [expected["input_ids"]]
    assert iba_inputs[-1]["token_type_ids"] == [expected["token_type_ids"]] == [segment_types(expected["input_ids"], tokenizer.sep_token_id)]
    assert 1 in iba_inputs[-1]["token_type_ids"][0]

    data = write_rte(tmp_path / "rte", n=20)
    row = main([*pair, "--index", "3", "--source", "local", "--data_dir", str(data), "--out", str(tmp_path / "row")])
    assert (row["text"], row["text_pair"], row["gold"]) == ('The "cat" sat on mat 3.', "A cat sat 3.", 1)  # RTE/dev.tsv row 3
    ids, types = iba_inputs[-1]["input_ids"][0], iba_inputs[-1]["token_type_ids"][0]
    assert ids == tokenizer(row["text"], row["text_pair"])["input_ids"] and types == segment_types(ids, tokenizer.sep_token_id)
