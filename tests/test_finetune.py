"""Fine-tuning: a tiny model memorises, the bundled MiniLM learns IMDB, DDP exports once, bad input fails cleanly."""
from __future__ import annotations

import subprocess
import sys

import pytest
import pytorch_lightning as pl
import torch

from conftest import REPO
from fixtures_data import write_aclimdb
from lightning_iba.data.datamodule import TextClassificationDataModule
from lightning_iba.models.classifier import SequenceClassifier
from lightning_iba.models.loading import ModelLoadError, load_finetuned, load_pretrained_classifier


def _run(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    env = {"HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
    import os

    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, **env})


def test_tiny_model_memorises_32_examples(tmp_path, tiny_model_dir):
    data = TextClassificationDataModule("imdb", "local", str(write_aclimdb(tmp_path, n_per_class=18)), str(tiny_model_dir), max_length=32, batch_size=8, validation_fraction=4 / 36)
    data.setup()
    assert len(data.splits["train"]) == 32
    model = SequenceClassifier(str(tiny_model_dir), "imdb", learning_rate=3e-3, warmup_ratio=0.0, max_length=32)
    pl.seed_everything(0)
    trainer = pl.Trainer(max_epochs=15, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=data)
    model.eval()
    with torch.no_grad():
        hits = [(model(b).argmax(-1) == b["labels"]).float() for b in data._loader("train")]
    assert torch.cat(hits).mean().item() == 1.0


@pytest.mark.slow
def test_bundled_minilm_beats_chance_on_held_out_imdb(tmp_path):
    from lightning_iba.cli.train import main

    metrics = main(
        [
            "--config", str(REPO / "configs/finetune/demo.yaml"),
            "--trainer.max_steps", "30", "--trainer.val_check_interval", "30", "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path),
            "--data.max_length", "64", "--data.max_train_samples", "960", "--data.max_eval_samples", "200",
            "--checkpoint.dirpath", str(tmp_path / "ckpt"), "--export.dirpath", str(tmp_path / "model"),
        ]
    )
    assert metrics["test_acc"] > 0.6, metrics  # chance is 0.5; 200 balanced held-out reviews
    loaded = load_finetuned(tmp_path / "model")
    model, tokenizer, task = loaded.model, loaded.tokenizer, loaded.task
    assert task == "imdb" and model.config.id2label == {0: "neg", 1: "pos"}
    enc = tokenizer("a wonderful film", return_tensors="pt")
    assert model(**enc).logits.shape == (1, 2)


@pytest.mark.slow
def test_ddp_two_cpu_processes_export_exactly_one_model(tmp_path, tiny_model_dir):
    data_dir = write_aclimdb(tmp_path / "data", n_per_class=16)
    out, ckpt = tmp_path / "model", tmp_path / "ckpt"
    proc = _run(
        [
            "train.py", "--config", "configs/finetune/imdb.yaml", "--config", "configs/finetune/cpu.yaml",
            "--data.source", "local", "--data.data_dir", str(data_dir), "--data.model_name_or_path", str(tiny_model_dir),
            "--data.max_length", "32", "--data.batch_size", "4",
            "--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.max_steps", "4", "--trainer.val_check_interval", "2",
            "--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path),
            "--checkpoint.dirpath", str(ckpt), "--export.dirpath", str(out),
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("model exported to") == 1, proc.stdout
    assert sorted(p.name for p in out.iterdir() if p.name in ("config.json", "model.safetensors")) == ["config.json", "model.safetensors"]
    assert not list(ckpt.glob("*.ckpt"))  # the intermediate Lightning checkpoint is removed after the export
    assert load_finetuned(out).task == "imdb"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data.dataset", "sst2"], "error: unknown dataset 'sst2'; valid: "),
        (["--data.dataset", "rte", "--data.source", "local", "--data.data_dir", "/nonexistent"], "error: data_dir '/nonexistent' is not a folder"),
        (["--data.dataset", "rte", "--data.source", "hub"], "error: cannot load dataset 'rte' from the hub (HF_HUB_OFFLINE is set)"),
        (["--data.model_name_or_path", "bert-base-uncased"], "error: cannot download model 'bert-base-uncased' (HF_HUB_OFFLINE is set)"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    from lightning_iba.cli.train import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(REPO / "configs/finetune/cpu.yaml"), "--trainer.logger", "false", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_train_py_reports_unknown_dataset_in_one_line():
    proc = _run(["train.py", "--data.dataset", "sst2"], timeout=120)
    assert proc.returncode == 2
    from lightning_iba.data.tasks import TASKS

    assert proc.stderr.strip().splitlines()[-1] == f"error: unknown dataset 'sst2'; valid: {', '.join(sorted(TASKS))}"
    assert "Traceback" not in proc.stderr


def test_missing_checkpoint_says_how_to_make_one(tmp_path):
    with pytest.raises(ModelLoadError, match="no fine-tuned model at .*make finetune"):
        load_finetuned(tmp_path / "nothing")


def test_hub_model_offline_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="cannot download model 'no-such-org/no-such-model'.*bundled-minilm"):
        load_pretrained_classifier("no-such-org/no-such-model", ("a", "b"))
