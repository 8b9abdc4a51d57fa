"""Fine-tuning safety: the export never silently replaces or half-writes a model, drops the Lightning checkpoint,
bad max_length fails before training, and DDP evaluation counts every example exactly once."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from conftest import REPO
from fixtures_data import write_aclimdb
from lightning_iba.data.datamodule import TextClassificationDataModule
from lightning_iba.errors import LightningIBAError
from lightning_iba.models.callbacks import ExportBestModel
from lightning_iba.models.classifier import SequenceClassifier

MAX_LENGTH = 32


@pytest.fixture(scope="module")
def imdb_dir(tmp_path_factory) -> Path:
    """aclImdb with 8 train reviews (6 train + 2 validation after the carve) and 8 test reviews."""
    return write_aclimdb(tmp_path_factory.mktemp("imdb"), n_per_class=4)


def make_data(model_dir: Path, data_dir: Path, eval_batch_size: int = 4) -> TextClassificationDataModule:
    """The tiny IMDB data, tokenised for `model_dir`."""
    return TextClassificationDataModule(
        "imdb", "local", str(data_dir), str(model_dir), max_length=MAX_LENGTH, batch_size=2,
        eval_batch_size=eval_batch_size, validation_fraction=0.25,
    )


def make_model(model_dir: Path) -> SequenceClassifier:
    """A classifier on `model_dir` with a learning rate that moves the tiny model within a few steps."""
    return SequenceClassifier(str(model_dir), "imdb", learning_rate=1e-3, warmup_ratio=0.0, max_length=MAX_LENGTH)


def make_trainer(root: Path, export: ExportBestModel, epochs: int = 3, validate: bool = True) -> pl.Trainer:
    """One CPU process, `epochs` epochs of one step each, validated after each (unless not `validate`);
    the best by val_acc is kept as <root>/ckpt/best.ckpt."""
    ckpt = ModelCheckpoint(dirpath=root / "ckpt", monitor="val_acc", mode="max", save_top_k=1, filename="best")
    return pl.Trainer(
        accelerator="cpu", devices=1, max_epochs=epochs, limit_train_batches=1,
        limit_val_batches=None if validate else 0, num_sanity_val_steps=0,
        logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=root,
        callbacks=[ckpt, export],
    )


def checksum(model: torch.nn.Module) -> float:
    """Sum of all parameters in float64: equal weights give equal sums."""
    return sum(p.detach().double().sum().item() for p in model.parameters())


def siblings(out: Path) -> list[str]:
    """Names next to `out` that start with its name: the folder itself and any temporary/old export folders."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(out.name))


def load_exported(out: Path):
    """(model, tokenizer, task) of an exported folder, straight through transformers (independent of loading.py)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    return model, AutoTokenizer.from_pretrained(out), getattr(model.config, "lightning_iba_task", None)


def write_fake_model(out: Path) -> None:
    out.mkdir(parents=True)
    (out / "config.json").write_text("{}")
    (out / "marker.txt").write_text("the previous model")


# (a) an existing model is refused before training; overwrite=True replaces it


def test_existing_model_is_refused_before_training_and_overwrite_replaces_it(tmp_path, tiny_model_dir, imdb_dir):
    out = tmp_path / "model"
    write_fake_model(out)
    trainer = make_trainer(tmp_path, ExportBestModel(str(out)))
    with pytest.raises(LightningIBAError) as err:
        trainer.fit(make_model(tiny_model_dir), datamodule=make_data(tiny_model_dir, imdb_dir))
    assert str(err.value) == f"{out} already holds a model; pass --export.overwrite true to replace it, or choose another --export.dirpath"
    assert trainer.global_step == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "marker.txt"]
    assert not (tmp_path / "ckpt").exists()

    export = ExportBestModel(str(out), overwrite=True)
    assert export.check_destination("imdb") == out
    trainer = make_trainer(tmp_path, export, epochs=1)
    trainer.fit(make_model(tiny_model_dir), datamodule=make_data(tiny_model_dir, imdb_dir))
    assert export.exported == out and not (out / "marker.txt").exists()
    assert siblings(out) == ["model"]
    model, _, task = load_exported(out)
    assert task == "imdb"


def test_check_destination_refuses_files_foreign_folders_and_unwritable_parents(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    assert ExportBestModel(str(tmp_path / "empty")).check_destination() == tmp_path / "empty"
    assert ExportBestModel(str(tmp_path / "new" / "deeper")).check_destination() == tmp_path / "new" / "deeper"
    assert ExportBestModel().check_destination("rte") == Path("runs/rte/model")

    (tmp_path / "file").write_text("x")
    with pytest.raises(LightningIBAError, match="is not a folder"):
        ExportBestModel(str(tmp_path / "file")).check_destination()
    with pytest.raises(LightningIBAError, match="is not a folder"):
        ExportBestModel(str(tmp_path / "file" / "model")).check_destination()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x")
    with pytest.raises(LightningIBAError, match="holds no model"):  # overwrite never deletes a folder that is not a model
        ExportBestModel(str(tmp_path / "notes"), overwrite=True).check_destination()

    monkeypatch.setattr(os, "access", lambda path, mode: False)  # the tests run as root, so chmod would not tell
    with pytest.raises(LightningIBAError) as err:
        ExportBestModel(str(tmp_path / "new" / "model")).check_destination()
    assert str(err.value) == f"export folder {tmp_path / 'new' / 'model'} cannot be written: {tmp_path} is not writable; choose another --export.dirpath"


# (b) a failure mid-export leaves no (partial) model at the destination


@pytest.mark.parametrize("previous", [False, True], ids=["fresh", "overwrite"])
def test_failure_mid_export_leaves_no_partial_model(tmp_path, tiny_model_dir, imdb_dir, monkeypatch, previous):
    out = tmp_path / "model"
    if previous:
        write_fake_model(out)
    data = make_data(tiny_model_dir, imdb_dir)

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device (simulated)")

    monkeypatch.setattr(data.tokenizer, "save_pretrained", disk_full)  # after the model weights are written
    trainer = make_trainer(tmp_path, ExportBestModel(str(out), overwrite=previous), epochs=1)
    with pytest.raises(OSError, match="simulated"):
        trainer.fit(make_model(tiny_model_dir), datamodule=data)
    if previous:  # the old model is untouched
        assert sorted(p.name for p in out.iterdir()) == ["config.json", "marker.txt"]
        assert siblings(out) == ["model"]
    else:
        assert siblings(out) == []


# (c) the Lightning checkpoint is deleted after the export unless keep_checkpoint


@pytest.mark.filterwarnings("ignore:.*could not find the monitored key")  # the no-validation case has no val_acc, by design
@pytest.mark.parametrize("case", ["remove", "keep", "no-validation"])
def test_checkpoint_removed_after_export_unless_kept(tmp_path, tiny_model_dir, imdb_dir, caplog, case):
    out = tmp_path / "model"
    export = ExportBestModel(str(out), keep_checkpoint=case == "keep")
    trainer = make_trainer(tmp_path, export, validate=case != "no-validation")
    model, data = make_model(tiny_model_dir), make_data(tiny_model_dir, imdb_dir)
    with caplog.at_level(logging.INFO, logger="lightning_iba.models"):
        trainer.fit(model, datamodule=data)
    assert trainer.global_step == 3 and ("val_acc" in trainer.callback_metrics) == (case != "no-validation")
    ckpts = sorted(p.name for p in (tmp_path / "ckpt").glob("*.ckpt"))
    removed = [r.getMessage() for r in caplog.records if "removed checkpoint" in r.getMessage()]
    if case == "keep":
        assert ckpts == ["best.ckpt"] and removed == []
        best = torch.load(tmp_path / "ckpt" / "best.ckpt", map_location="cpu", weights_only=False)["state_dict"]
        assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())  # the module holds the best weights
    elif case == "remove":
        assert ckpts == []
        assert len(removed) == 1 and str(tmp_path / "ckpt" / "best.ckpt") in removed[0]
    else:  # no validation, no best checkpoint: the current weights are exported
        assert ckpts == [] and removed == [] and trainer.checkpoint_callback.best_model_path == ""
    exported, tokenizer, task = load_exported(out)
    assert task == "imdb" and exported.config.lightning_iba_max_length == MAX_LENGTH
    assert checksum(exported) == pytest.approx(checksum(model.model), rel=1e-12)
    with torch.no_grad():
        assert exported(**tokenizer("a wonderful film", return_tensors="pt")).logits.shape == (1, 2)
    metrics = trainer.test(model, datamodule=data, verbose=False)[0]  # no ckpt_path: the best weights are in the module
    assert metrics["test_n"] == 8 and 0.0 <= metrics["test_acc"] <= 1.0


# (d) max_length outside [8, position limit] fails before training, in one line


@pytest.mark.parametrize("max_length", [0, 7, 129, 4096])
def test_bad_max_length_fails_in_one_line(tiny_model_dir, max_length):
    with pytest.raises(LightningIBAError) as err:
        SequenceClassifier(str(tiny_model_dir), "imdb", max_length=max_length)
    if max_length >= 8:
        assert str(err.value) == (
            f"max_length {max_length} exceeds the 128 positions of {tiny_model_dir} (config.max_position_embeddings); "
            "pass --data.max_length 128 or less"
        )
        assert SequenceClassifier(str(tiny_model_dir), "imdb", max_length=128).hparams.max_length == 128  # the limit itself is fine
    else:
        assert str(err.value) == f"max_length must be at least 8, got {max_length}"
        with pytest.raises(LightningIBAError, match=f"^max_length must be at least 8, got {max_length}$"):
            TextClassificationDataModule("imdb", "local", None, str(tiny_model_dir), max_length=max_length)


# (e) DDP: every test example counted exactly once

DDP_SCRIPT = '''
"""3-process CPU DDP fit + export + test; rank 0 writes the metrics and each rank's weight checksum as JSON."""
import json
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint

from lightning_iba.data.datamodule import TextClassificationDataModule
from lightning_iba.models.callbacks import ExportBestModel
from lightning_iba.models.classifier import SequenceClassifier


def main(model_dir, data_dir, root, result):
    pl.seed_everything(0)
    data = TextClassificationDataModule("imdb", "local", data_dir, model_dir, max_length={max_length}, batch_size=2,
                                        eval_batch_size=1, validation_fraction=0.25)
    model = SequenceClassifier(model_dir, "imdb", learning_rate=1e-3, warmup_ratio=0.0, max_length={max_length})
    export = ExportBestModel(f"{{root}}/model")
    ckpt = ModelCheckpoint(dirpath=f"{{root}}/ckpt", monitor="val_acc", mode="max", save_top_k=1, filename="best")
    trainer = pl.Trainer(accelerator="cpu", devices=3, strategy="ddp", max_epochs=2, num_sanity_val_steps=0,
                         logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=root,
                         callbacks=[ckpt, export])
    trainer.fit(model, datamodule=data)
    total = torch.tensor([sum(p.detach().double().sum().item() for p in model.model.parameters())], dtype=torch.float64)
    checksums = trainer.strategy.all_gather(total).reshape(-1).tolist()
    metrics = trainer.test(model, datamodule=data, verbose=False)[0]
    if trainer.is_global_zero:
        Path(result).write_text(json.dumps({{
            "world_size": trainer.world_size,
            "metrics": {{k: float(v) for k, v in metrics.items()}},
            "checksums": checksums,
            "exported": str(export.exported),
            "ckpts": sorted(p.name for p in Path(root, "ckpt").glob("*.ckpt")),
        }}))


if __name__ == "__main__":
    main(*sys.argv[1:])
'''


@pytest.mark.slow
def test_ddp_three_cpu_processes_count_each_test_example_once(tmp_path, tiny_model_dir, imdb_dir):
    script, result = tmp_path / "ddp_fit_test.py", tmp_path / "result.json"
    script.write_text(textwrap.dedent(DDP_SCRIPT.format(max_length=MAX_LENGTH)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("MASTER_PORT", None)
    proc = subprocess.run(
        [sys.executable, str(script), str(tiny_model_dir), str(imdb_dir), str(tmp_path), str(result)],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads(result.read_text())
    assert ddp["world_size"] == 3
    assert ddp["metrics"]["test_n"] == 8  # 9 predictions (8 padded to 3 per rank), 8 unique examples
    assert len(set(ddp["checksums"])) == 1, ddp["checksums"]  # every rank tests the same (best) weights
    assert ddp["ckpts"] == [] and ddp["exported"] == str(tmp_path / "model")

    # The same weights in one process give the same accuracy.
    model = SequenceClassifier(ddp["exported"], "imdb", max_length=MAX_LENGTH)
    assert checksum(model.model) == pytest.approx(ddp["checksums"][0], rel=1e-12)
    data = make_data(tiny_model_dir, imdb_dir, eval_batch_size=1)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    single = trainer.test(model, datamodule=data, verbose=False)[0]
    assert single["test_n"] == 8
    assert ddp["metrics"]["test_acc"] == single["test_acc"]
    assert ddp["metrics"]["test_loss"] == pytest.approx(single["test_loss"], rel=1e-5)
    model.eval()
    with torch.no_grad():
        hits = torch.cat([model(b).argmax(-1) == b["labels"] for b in data.test_dataloader()])
    assert single["test_acc"] == hits.float().mean().item()
