"""`train.py`: LightningCLI over SequenceClassifier and TextClassificationDataModule.

Settings come from `configs/finetune/base.yaml` (every science default) and a thin per-dataset
overlay (`configs/finetune/<dataset>.yaml`), plus `cpu.yaml` on machines without a GPU. Folders
that depend on the dataset (run root, checkpoints, export, logger names) are derived from it when
a config leaves them null.
"""
from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from lightning_iba.cli.common import base_config, setup_logging
from lightning_iba.data.datamodule import TextClassificationDataModule
from lightning_iba.data.files_source import run_data_identity
from lightning_iba.errors import LightningIBAError, exit_on_user_error
from lightning_iba.models.callbacks import ExportBestModel
from lightning_iba.models.classifier import SequenceClassifier


log = logging.getLogger("lightning_iba.models")
#: Beside the checkpoints of a --resume fine-tune: its settings, compared when it resumes.
RUN_SETTINGS = "run_settings.json"
#: The checkpoint a --resume fine-tune writes at every validation and continues from: <checkpoint.dirpath>/resume.ckpt.
RESUME_POINT = "resume"


class FinetuneCLI(LightningCLI):
    """Adds the best-checkpoint and export callbacks as `--checkpoint.*` and `--export.*`, and ties model and data together."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.monitor": "val_acc", "checkpoint.mode": "max", "checkpoint.save_top_k": 1, "checkpoint.filename": "best"})
        parser.add_lightning_class_args(ExportBestModel, "export")
        parser.add_argument("--resume", type=bool, default=False,
                            help="write <checkpoint.dirpath>/resume.ckpt at every validation and continue an interrupted fine-tune "
                                 "from it: the same settings, and on one process exactly the run it would have been")
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
    last = None
    if cli.config.resume:
        last = resume_checkpoint(cli)
        trainer.callbacks.append(resume_point(cli.config.checkpoint.dirpath))
    trainer.fit(model, datamodule=data, ckpt_path=last)
    metrics = trainer.test(model, datamodule=data)[0]  # the best weights: the export loaded them into the module
    if trainer.is_global_zero:
        n = int(metrics.get("test_n", len(data.splits["test"])))
        print(f"held-out test accuracy: {metrics['test_acc']:.4f} (n={n}, {data.task.name}, source {data.hparams.source})")
        print(f"model exported to {export.exported}")
        if export.exported is not None:
            write_finetune_metrics(Path(export.exported), trainer, metrics, data)
        if cli.config.resume and not export.keep_checkpoint:
            (Path(cli.config.checkpoint.dirpath) / RUN_SETTINGS).unlink(missing_ok=True)
    return metrics


def run_settings(cli: FinetuneCLI) -> dict[str, Any]:
    """The settings that decide a fine-tune's result: the whole parsed config but --resume and the --config paths."""
    settings = json.loads(cli.parser.dump(cli.config, format="json", skip_none=False))
    for key in ("resume", "config"):
        settings.pop(key, None)
    return settings


def resume_point(dirpath: str) -> ModelCheckpoint:
    """The checkpoint --resume continues from, written at every validation (the best-model checkpoint is written
    only when validation improves, and Lightning's last.ckpt only with it)."""
    return ModelCheckpoint(dirpath=dirpath, filename=RESUME_POINT, monitor=None, save_top_k=1, enable_version_counter=False)


def resume_checkpoint(cli: FinetuneCLI) -> str | None:
    """With --resume: `resume.ckpt` of an interrupted fine-tune with the same settings, or None (a fresh start,
    whose settings are written beside the checkpoints); a LightningIBAError when the settings differ."""
    folder = Path(cli.config.checkpoint.dirpath)
    point, stored = folder / f"{RESUME_POINT}{ModelCheckpoint.FILE_EXTENSION}", folder / RUN_SETTINGS
    settings = run_settings(cli)
    if cli.trainer.is_global_zero and point.is_file():
        before = json.loads(stored.read_text()) if stored.is_file() else None
        if before != settings:
            diff = "no settings file" if before is None else "; ".join(
                f"{k}: {before.get(k)!r} -> {settings.get(k)!r}" for k in sorted(set(before) | set(settings)) if before.get(k) != settings.get(k))
            raise LightningIBAError(f"--resume refused: {point} is of a fine-tune with other settings ({diff}); "
                                    f"delete {folder} to start over, or fine-tune into another --trainer.default_root_dir")
        log.info("fine-tune: resuming from %s", point)
    if not point.is_file():
        if cli.trainer.is_global_zero:
            folder.mkdir(parents=True, exist_ok=True)
            stored.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
        return None
    return str(point)
