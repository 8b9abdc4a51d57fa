"""Callbacks of the fine-tuning run: export of the best checkpoint as a Hugging Face model folder."""
from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
import torch

log = logging.getLogger("lightning_iba.models")


class ExportBestModel(pl.Callback):
    """At the end of `fit`, loads the best checkpoint and exports it once (rank 0) to `dirpath`.

    `dirpath` None means `runs/<dataset>/model`. That folder is what attribution and evaluation load.
    """

    def __init__(self, dirpath: str | None = None):
        self.dirpath = dirpath
        self.exported: Path | None = None

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        out = Path(self.dirpath or f"runs/{pl_module.task.name}/model")
        if trainer.is_global_zero:
            best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
            if best:
                state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
                pl_module.load_state_dict(state)
                log.info("export: best checkpoint %s", best)
            pl_module.export(out, trainer.datamodule.tokenizer)
        trainer.strategy.barrier("export")
        self.exported = out
