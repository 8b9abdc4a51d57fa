"""The fine-tuning command: LightningCLI over SequenceClassifier and TextClassificationDataModule."""
from __future__ import annotations

import logging
import sys
from typing import Any

from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from lightning_iba.data.datamodule import TextClassificationDataModule
from lightning_iba.errors import exit_on_user_error
from lightning_iba.models.callbacks import ExportBestModel
from lightning_iba.models.classifier import SequenceClassifier


def setup_logging() -> None:
    """Project log lines (data source fallbacks, dropped rows, exports) on stderr."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("httpx", "urllib3", "datasets", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class FinetuneCLI(LightningCLI):
    """Adds the best-checkpoint and export callbacks as `--checkpoint.*` and `--export.*`, and ties model and data together."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.monitor": "val_acc", "checkpoint.mode": "max", "checkpoint.save_top_k": 1, "checkpoint.filename": "best"})
        parser.add_lightning_class_args(ExportBestModel, "export")
        parser.link_arguments("data.dataset", "model.dataset")
        parser.link_arguments("data.model_name_or_path", "model.model_name_or_path")
        parser.link_arguments("data.max_length", "model.max_length")


@exit_on_user_error
def main(args: list[str] | None = None) -> dict[str, Any]:
    """Fine-tunes, tests the best checkpoint on the held-out split, exports it; returns the test metrics."""
    setup_logging()
    cli = FinetuneCLI(
        SequenceClassifier,
        TextClassificationDataModule,
        run=False,
        args=args,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"description": "Fine-tune a BERT-family classifier (see configs/finetune/)."},
    )
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    trainer.fit(model, datamodule=data)
    ckpt = "best" if trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_path else None
    metrics = trainer.test(model, datamodule=data, ckpt_path=ckpt)[0]
    export = next(c for c in trainer.callbacks if isinstance(c, ExportBestModel))
    if trainer.is_global_zero:
        n = len(data.splits["test"])
        print(f"held-out test accuracy: {metrics['test_acc']:.4f} (n={n}, {data.task.name}, source {data.hparams.source})")
        print(f"model exported to {export.exported}")
    return metrics
