"""Callbacks of the fine-tuning run: export of the best checkpoint as a Hugging Face model folder."""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytorch_lightning as pl
from lightning_fabric.utilities.cloud_io import get_filesystem
from pytorch_lightning.callbacks import ModelCheckpoint

from lightning_iba.errors import LightningIBAError
from lightning_iba.files import check_writable

log = logging.getLogger("lightning_iba.models")


def _dataset_name(pl_module: pl.LightningModule) -> str | None:
    """The task name of a SequenceClassifier (None for other modules): the default export folder follows it."""
    return getattr(getattr(pl_module, "task", None), "name", None)


class ExportBestModel(pl.Callback):
    """At the end of `fit`, loads the best checkpoint on every rank and exports it once (rank 0) to `dirpath`.

    `dirpath` None means `runs/<dataset>/model`. That folder is what attribution and evaluation load.

    - An existing model folder is replaced only with `overwrite=True`; a non-empty folder that holds no model
      (no config.json) is never replaced. `check_destination` says so before training (in `setup`).
    - The export is written to a sibling `<dirpath>.tmp-<pid>` and renamed into place, so an interrupted
      export never leaves a half-written model at `dirpath`.
    - After the export the Lightning checkpoint files of the run's ModelCheckpoint callbacks are deleted
      (they hold optimizer state too, hundreds of MB) unless `keep_checkpoint=True`; the callbacks' paths are
      cleared with them, so `trainer.test(model)` must run without `ckpt_path` (the module holds the best
      weights on every rank after `fit`).

    Args:
        dirpath: export folder (null: runs/<dataset>/model).
        overwrite: replace a model already in dirpath.
        keep_checkpoint: keep the intermediate Lightning checkpoint (weights and optimizer state) after the export.
    """

    def __init__(self, dirpath: str | None = None, overwrite: bool = False, keep_checkpoint: bool = False):
        self.dirpath = dirpath
        self.overwrite = overwrite
        self.keep_checkpoint = keep_checkpoint
        self.exported: Path | None = None

    def destination(self, dataset_name: str | None = None) -> Path:
        """The export folder: `dirpath`, or `runs/<dataset_name>/model` when dirpath is None."""
        if self.dirpath:
            return Path(self.dirpath)
        if not dataset_name:
            raise LightningIBAError("no export destination: pass --export.dirpath")
        return Path("runs") / dataset_name / "model"

    def check_destination(self, dataset_name: str | None = None) -> Path:
        """The export folder, if the export may write it; else a one-line LightningIBAError.

        Refused: an existing file; a non-empty folder without overwrite (or, even with it, one that holds
        no model); a folder whose nearest existing parent is not a writable folder.
        """
        out = self.destination(dataset_name)
        if out.exists() or out.is_symlink():
            if not out.is_dir():
                raise LightningIBAError(f"{out} exists and is not a folder; choose another --export.dirpath")
            if any(out.iterdir()):
                if not (out / "config.json").is_file():
                    raise LightningIBAError(
                        f"{out} is a non-empty folder that holds no model; refusing to replace it, choose another --export.dirpath"
                    )
                if not self.overwrite:
                    raise LightningIBAError(
                        f"{out} already holds a model; pass --export.overwrite true to replace it, or choose another --export.dirpath"
                    )
        # The export creates a sibling folder and renames it: the parent (or the first existing ancestor,
        # where the missing folders get created) must be a writable folder.
        check_writable(out, "export folder", "choose another --export.dirpath", parent=True)
        return out

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.check_destination(_dataset_name(pl_module))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        strategy = trainer.strategy
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if best:  # every rank, so that a later trainer.test(model) sees the same (best) weights everywhere
            strategy.load_model_state_dict(strategy.load_checkpoint(best, weights_only=False))
            if trainer.is_global_zero:
                log.info("export: best checkpoint %s", best)
        elif trainer.is_global_zero:
            log.info("export: no best checkpoint (no validation or no ModelCheckpoint); exporting the current weights")
        out = self.destination(_dataset_name(pl_module))
        error: BaseException | None = None
        if trainer.is_global_zero:
            try:
                tokenizer = getattr(trainer.datamodule, "tokenizer", None)
                if tokenizer is None:
                    raise LightningIBAError("the export needs trainer.fit(model, datamodule=...) with a datamodule that has a tokenizer")
                self._write(pl_module, tokenizer, out)
            except BaseException as err:  # tell the other ranks before raising, or they wait forever
                error = err
        failed = strategy.broadcast(error is not None, src=0)
        if error is not None:
            raise error
        if failed:
            raise LightningIBAError(f"the export to {out} failed on rank 0")
        self.exported = out
        if not self.keep_checkpoint:
            self._remove_checkpoints(trainer)
        strategy.barrier("export")

    def _write(self, pl_module: pl.LightningModule, tokenizer, out: Path) -> None:
        """Exports into `<out>.tmp-<pid>`, then renames it to `out` (moving an old model aside until then)."""
        self.check_destination(_dataset_name(pl_module))  # again: something may have appeared since setup
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
        if tmp.exists():
            shutil.rmtree(tmp)
        try:
            pl_module.export(tmp, tokenizer)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        if out.exists():  # a model folder, and overwrite is set (checked above)
            old = out.with_name(f"{out.name}.old-{os.getpid()}")
            if old.exists():
                shutil.rmtree(old)
            os.replace(out, old)
            try:
                os.replace(tmp, out)
            except BaseException:
                os.replace(old, out)
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            shutil.rmtree(old, ignore_errors=True)
            log.info("export: replaced the model at %s", out)
        else:
            os.replace(tmp, out)

    @staticmethod
    def _remove_checkpoints(trainer: pl.Trainer) -> None:
        """Deletes (rank 0) the files the ModelCheckpoint callbacks wrote and clears their paths on every rank."""
        paths: list[str] = []
        for cb in trainer.checkpoint_callbacks:
            if not isinstance(cb, ModelCheckpoint):
                continue
            for path in [*cb.best_k_models, cb.best_model_path, cb.last_model_path]:
                if path and str(path) not in paths:
                    paths.append(str(path))
            cb.best_k_models, cb.kth_best_model_path = {}, ""
            cb.best_model_path, cb.last_model_path = "", ""
        if not paths or not trainer.is_global_zero:
            return
        removed, size = [], 0
        for path in paths:
            fs = get_filesystem(path)
            if os.path.islink(path):  # save_last="link"; it may dangle by now
                os.unlink(path)
            elif fs.exists(path):
                size += fs.size(path) if fs.isfile(path) else 0
                trainer.strategy.remove_checkpoint(path)
            else:
                continue
            removed.append(path)
        if removed:
            log.info(
                "export: removed checkpoint %s (%.0f MB); pass --export.keep_checkpoint true to keep it",
                ", ".join(removed), size / 2**20,
            )
