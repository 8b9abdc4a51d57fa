"""The silent wrong results a researcher could hit in a normal week, each now refused in one line before any work:
resuming onto a retrained model, a model explained on another task, a pretrained encoder with a random
head, unwritable or damaged outputs."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import copy_model, make_tiny_bert
from lightning_iba.cli.attribute import main as attribute
from lightning_iba.cli.evaluate import main as evaluate
from lightning_iba.models.fingerprint import model_fingerprint
from lightning_iba.models.loading import ModelLoadError, load_finetuned
from test_evaluate import COMMON, write_keyword_aclimdb


@pytest.fixture(scope="module")
def keyword_data(tmp_path_factory) -> Path:
    return write_keyword_aclimdb(tmp_path_factory.mktemp("keyword_data"))


@pytest.fixture
def checkpoint(keyword_model_dir, tmp_path) -> Path:
    """A private copy of the keyword model, with the task recorded as `make finetune` exports it."""
    return copy_model(keyword_model_dir, tmp_path / "model", lightning_iba_task="imdb", lightning_iba_max_length=32)


def evaluation(checkpoint: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["--checkpoint", str(checkpoint), "--data_dir", str(data), "--out", str(out), *COMMON, "--methods", "random",
            "--instances", "8", "--wandb", "false", *extra]


def one_line_error(capsys, command, argv) -> str:
    with pytest.raises(SystemExit) as info:
        command(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def retrain_into(folder: Path) -> None:
    """What `make finetune OUT=folder` would do to a model folder: new weights, same place."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(folder)
    with torch.no_grad():
        model.classifier.bias.add_(0.5)
    model.save_pretrained(folder)


def test_the_fingerprint_follows_weights_and_config_not_the_folder(checkpoint, tmp_path):
    copy = Path(shutil.copytree(checkpoint, tmp_path / "copy"))
    assert model_fingerprint(copy) == model_fingerprint(checkpoint)
    retrain_into(copy)
    assert model_fingerprint(copy) != model_fingerprint(checkpoint)


def test_resume_after_retraining_the_checkpoint_is_refused(checkpoint, keyword_data, tmp_path, capsys):
    evaluate(evaluation(checkpoint, keyword_data, tmp_path / "eval"))
    before = model_fingerprint(checkpoint)
    retrain_into(checkpoint)
    err = one_line_error(capsys, evaluate, evaluation(checkpoint, keyword_data, tmp_path / "eval", "--resume", "true"))
    assert "--resume refused" in err and before in err and model_fingerprint(checkpoint) in err
    settings = json.loads((tmp_path / "eval" / "settings.json").read_text())
    assert settings["model_fingerprint"] == before  # the old results are left as they were


def test_a_model_is_explained_on_its_own_task_unless_transfer_is_asked_for(checkpoint, keyword_data, tmp_path, capsys, caplog):
    argv = evaluation(checkpoint, keyword_data, tmp_path / "rt", "--dataset", "rotten_tomatoes", "--source", "local")
    err = one_line_error(capsys, evaluate, argv)
    assert "was fine-tuned on imdb, not rotten_tomatoes; pass --allow_task_transfer true" in err
    err = one_line_error(capsys, attribute, ["--checkpoint", str(checkpoint), "--dataset", "rotten_tomatoes", "--text", "good", "--out", str(tmp_path / "a")])
    assert "was fine-tuned on imdb, not rotten_tomatoes" in err
    # allowed on request, said loudly and recorded (the imdb files stand in for rotten tomatoes' here)
    result = attribute(["--checkpoint", str(checkpoint), "--dataset", "rotten_tomatoes", "--allow_task_transfer", "true",
                        "--text", "a fine film", "--layer", "1", "--estimator.name", "reference", "--out", str(tmp_path / "a")])
    assert result["task_transfer"] is True and "TASK TRANSFER" in caplog.text


def test_a_pretrained_encoder_without_a_fine_tuned_head_is_refused(tmp_path, tokenizer, capsys):
    from transformers import BertModel

    encoder = make_tiny_bert(vocab_size=tokenizer.vocab_size).bert  # the encoder alone: no classification head
    assert isinstance(encoder, BertModel)
    encoder.save_pretrained(tmp_path / "pretrained")
    tokenizer.save_pretrained(tmp_path / "pretrained")
    with pytest.raises(ModelLoadError, match="not a fine-tuned classifier: its weights lack classifier"):
        load_finetuned(tmp_path / "pretrained")
    err = one_line_error(capsys, attribute, ["--checkpoint", str(tmp_path / "pretrained"), "--dataset", "imdb", "--text", "good"])
    assert "random head" in err


def test_unwritable_outputs_fail_before_any_work(checkpoint, keyword_data, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    # IBA with the dataset estimator: a run that got as far as building its methods would fit (and cache) statistics
    iba = lambda out: ["--checkpoint", str(checkpoint), "--data_dir", str(keyword_data), "--out", str(out), *COMMON,  # noqa: E731
                       "--methods", "iba", "--estimator.name", "dataset", "--iba.steps", "2", "--instances", "2", "--wandb", "false"]
    err = one_line_error(capsys, evaluate, iba(blocker / "eval"))
    assert "--out" in err and "is not a folder" in err
    err = one_line_error(capsys, attribute, ["--checkpoint", str(checkpoint), "--text", "good", "--out", str(blocker)])
    assert "exists and is not a folder" in err
    assert not list(checkpoint.glob("iba_statistics-*.pt"))  # nothing was fitted
    evaluate(iba(tmp_path / "eval"))  # the same run with a writable --out fits, and its statistics land where we looked
    assert len(list(checkpoint.glob("iba_statistics-*.pt"))) == 1


def test_damaged_results_on_resume_name_the_file_and_what_to_do(checkpoint, keyword_data, tmp_path, capsys):
    out = tmp_path / "eval"
    evaluate(evaluation(checkpoint, keyword_data, out))
    shard = out / "shards" / "rank-0.jsonl"
    lines = shard.read_text().splitlines()
    shard.write_text("\n".join([lines[0], "null", *lines[1:]]) + "\n")
    err = one_line_error(capsys, evaluate, evaluation(checkpoint, keyword_data, out, "--resume", "true"))
    assert f"{shard}:2: not an evaluation record" in err and "delete that line" in err
    settings = out / "settings.json"
    settings.write_text(settings.read_text()[:40])  # cut short, as by a full disk
    err = one_line_error(capsys, evaluate, evaluation(checkpoint, keyword_data, out, "--resume", "true"))
    assert f"{settings} is damaged" in err
