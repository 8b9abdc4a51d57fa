"""A fine-tune killed mid-way and resumed with --resume equals one that was never interrupted."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import RandomSampler

from conftest import REPO
from fixtures_data import write_aclimdb
from lightning_iba.data.sampling import ResumableRandomSampler, random_states
from lightning_iba.models.classifier import SequenceClassifier


class Interrupted(Exception):
    """Stands in for the kill of a fine-tune."""


def test_the_sampler_shuffles_as_random_sampler_and_continues_an_epoch():
    torch.manual_seed(7)
    expected = [list(RandomSampler(range(37))) for _ in range(2)]
    after = torch.get_rng_state()
    torch.manual_seed(7)
    sampler = ResumableRandomSampler(range(37), batch_size=4)
    first = list(sampler)
    seed, rng = sampler.seed, random_states()  # as a checkpoint in epoch 0 keeps them
    assert [first, list(sampler)] == expected and torch.equal(torch.get_rng_state(), after)  # the same order and draws

    resumed = ResumableRandomSampler(range(37), batch_size=4)
    resumed.resume(seed, 3, rng)
    assert list(resumed) == expected[0][12:]  # the rest of the epoch after 3 batches
    assert list(resumed) == expected[1]  # then the next epoch, drawn from the restored state


def finetune(tmp_path: Path, data: Path, model: Path, *extra: str) -> dict:
    from lightning_iba.cli.train import main

    return main([
        "--config", str(REPO / "configs/finetune/imdb.yaml"), "--config", str(REPO / "configs/finetune/cpu.yaml"),
        "--data.source", "local", "--data.data_dir", str(data), "--data.model_name_or_path", str(model),
        "--data.max_length", "32", "--data.batch_size", "4", "--trainer.max_epochs", "2", "--trainer.val_check_interval", "0.5",
        "--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path),
        "--checkpoint.dirpath", str(tmp_path / "ckpt"), "--export.dirpath", str(tmp_path / "model"), "--resume", "true", *extra,
    ])


@pytest.mark.parametrize("stop_at, interval, resumes_at", [(5, "0.5", 3), (9, "1.0", 7)], ids=["mid-epoch", "after-an-epoch"])
def test_a_resumed_fine_tune_equals_an_uninterrupted_one(tmp_path, tiny_model_dir, monkeypatch, stop_at, interval, resumes_at):
    """28 training reviews, 7 batches an epoch. Validating after every 3 batches, killed at step 5 it resumes from
    step 3, in the middle of epoch 0; validating once an epoch, killed at step 9 it resumes from the end of epoch 0
    (step 7). Dropout is on, so the random state must be restored too."""
    data = write_aclimdb(tmp_path / "data", n_per_class=16)
    # the final weights exported, not the best validation's (which may predate the kill)
    last = ("--checkpoint.monitor", "null", "--trainer.val_check_interval", interval)
    whole = finetune(tmp_path / "whole", data, tiny_model_dir, *last)

    def kill(self, batch, batch_idx):
        if self.global_step == stop_at:
            raise Interrupted

    with monkeypatch.context() as patch:
        patch.setattr(SequenceClassifier, "on_train_batch_start", kill, raising=False)
        with pytest.raises(Interrupted):
            finetune(tmp_path / "killed", data, tiny_model_dir, *last)
    point = tmp_path / "killed" / "ckpt" / "resume.ckpt"
    assert torch.load(point, weights_only=True)["global_step"] == resumes_at and not (tmp_path / "killed" / "model").exists()
    resumed = finetune(tmp_path / "killed", data, tiny_model_dir, *last)

    assert resumed == whole
    a, b = (load_file(tmp_path / run / "model" / "model.safetensors") for run in ("whole", "killed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit for bit
    metrics = [json.loads((tmp_path / run / "model" / "finetune_metrics.json").read_text()) for run in ("whole", "killed")]
    assert metrics[0] == metrics[1] and metrics[0]["global_step"] == 14
    assert not list((tmp_path / "killed" / "ckpt").iterdir())  # checkpoints and settings removed after the export


def test_a_resume_with_other_settings_is_refused(tmp_path, tiny_model_dir, monkeypatch, capsys):
    data = write_aclimdb(tmp_path / "data", n_per_class=16)

    def kill(self, batch, batch_idx):
        if self.global_step == 5:
            raise Interrupted

    with monkeypatch.context() as patch:
        patch.setattr(SequenceClassifier, "on_train_batch_start", kill, raising=False)
        with pytest.raises(Interrupted):
            finetune(tmp_path, data, tiny_model_dir)
    with pytest.raises(SystemExit) as exit_info:
        finetune(tmp_path, data, tiny_model_dir, "--model.learning_rate", "1e-3")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--resume refused" in err and "learning_rate" in err and "1e-3" in err or "0.001" in err, err
