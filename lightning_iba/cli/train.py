"""`train.py`: LightningCLI over SequenceClassifier and TextClassificationDataModule.

Settings come from `configs/finetune/base.yaml` (every science default) and a thin per-dataset
overlay (`configs/finetune/<dataset>.yaml`), plus `cpu.yaml` on machines without a GPU. Folders
that depend on the dataset (run root, checkpoints, export, logger names) are derived from it when
a config leaves them null.
"""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from lightning_iba.cli.common import base_config, setup_logging
from lightning_iba.data.datamodule import TextClassificationDataModule
from lightning_iba.data.files_source import run_data_identity
from lightning_iba.errors import exit_on_user_error
from lightning_iba.models.callbacks import ExportBestModel
from lightning_iba.models.classifier import SequenceClassifier


class FinetuneCLI(LightningCLI):
    """Adds the best-checkpoint and export callbacks as `--checkpoint.*` and `--export.*`, and ties model and data together."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.monitor": "val_acc", "checkpoint.mode": "max", "checkpoint.save_top_k": 1, "checkpoint.filename": "best"})
        parser.add_lightning_class_args(ExportBestModel, "export")
        parser.link_arguments("data.dataset", "model.dataset")
        parser.link_arguments("data.model_name_or_path", "model.model_name_or_path")
        parser.link_arguments("data.max_length", "model.max_length")

    def before_instantiate_classes(self) -> None:
        """Folders a config leaves null follow the dataset: runs/<dataset>/{checkpoints,model,csv,wandb}."""
        c = self.config
        dataset = c.data.dataset
        root = c.trainer.default_root_dir or f"runs/{dataset}"
        c.trainer.default_root_dir = root
        if c.checkpoint.dirpath is None:
            c.checkpoint.dirpath = str(Path(root) / "checkpoints")
        if c.export.dirpath is None:
            c.export.dirpath = str(Path(root) / "model")
        loggers = c.trainer.logger if isinstance(c.trainer.logger, list) else []
        for logger in loggers:
            args = logger.init_args
            if "save_dir" in args and args.save_dir in (None, ""):
                args.save_dir = root
            if str(logger.class_path).endswith("AutoWandbLogger") and not args.get("name"):
                args.name = f"finetune-{dataset}"


@contextmanager
def program_arguments(args: list[str] | None) -> Iterator[None]:
    """With `args` given, the CLI reads them and not the calling program's own command line."""
    if args is None:
        yield
        return
    saved = sys.argv
    sys.argv = [saved[0] if saved else "train.py"]
    try:
        yield
    finally:
        sys.argv = saved


def build_cli(args: list[str] | None = None, with_base_config: bool = True) -> FinetuneCLI:
    """The parsed and instantiated CLI (no fitting); `with_base_config=False` leaves out configs/finetune/base.yaml."""
    with program_arguments(args):
        return FinetuneCLI(
            SequenceClassifier,
            TextClassificationDataModule,
            run=False,
            args=args,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"description": "Fine-tune a BERT-family classifier (see configs/finetune/).",
                           "default_config_files": base_config("finetune") if with_base_config else []},
        )


def write_finetune_metrics(folder: Path, trainer, metrics: dict[str, Any], data) -> Path:
    """`finetune_metrics.json` beside the exported weights: best validation and held-out test accuracy, with
    the splits' sizes, so the numbers reported with a model are the ones it was selected and tested with."""
    checkpoint = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)), None)
    best = checkpoint.best_model_score if checkpoint is not None else None
    record = {
        "dataset": data.task.name,
        "source": data.hparams.source,
        **run_data_identity([getattr(data, "source", data.hparams.source)], data.hparams.get("data_dir"), data.hparams.get("files")),  # + sha256
        "validation_acc": None if best is None else round(float(best), 6),
        "validation_n": len(data.splits["validation"]) if "validation" in data.splits else None,
        "test_acc": round(float(metrics["test_acc"]), 6),
        "test_n": int(metrics.get("test_n", len(data.splits["test"]))),
        "epochs_run": int(trainer.current_epoch),
        "global_step": int(trainer.global_step),
    }
    path = folder / "finetune_metrics.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


@exit_on_user_error
def main(args: list[str] | None = None) -> dict[str, Any]:
    """Fine-tunes, exports the best model, tests it on the held-out split; returns the test metrics."""
    setup_logging()
    cli = build_cli(args)
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    export = next(c for c in trainer.callbacks if isinstance(c, ExportBestModel))
    export.check_destination(data.task.name)  # before any data is loaded or step taken
    trainer.fit(model, datamodule=data)
    metrics = trainer.test(model, datamodule=data)[0]  # the best weights: the export loaded them into the module
    if trainer.is_global_zero:
        n = int(metrics.get("test_n", len(data.splits["test"])))
        print(f"held-out test accuracy: {metrics['test_acc']:.4f} (n={n}, {data.task.name}, source {data.hparams.source})")
        print(f"model exported to {export.exported}")
        if export.exported is not None:
            write_finetune_metrics(Path(export.exported), trainer, metrics, data)
    return metrics
