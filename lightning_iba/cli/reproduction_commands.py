"""The reproduction's stage commands: the `train.py` and `evaluate.py` command lines of a Table 1 dataset and of a
plausibility plan (its model, a transfer run's flag, max_length and windows)."""
from __future__ import annotations

import sys
from pathlib import Path

from lightning_iba.cli.reproduction_settings import DatasetPlan, RationalePlan, ReproduceSettings, rationale_paths


def evaluate_args(s: ReproduceSettings, configs: list[str], checkpoint: Path, out: Path, *flags: str) -> list[str]:
    """An evaluate.py stage: the configs in order, the model, resumable output, the reproduction's flags, then `flags`."""
    return [sys.executable, "evaluate.py", *[a for c in configs for a in ("--config", c)],
            "--checkpoint", str(checkpoint), "--out", str(out), "--resume", "true",
            "--wandb_project", s.wandb_project, *s.evaluate_flags, *flags]


def evaluate_command(s: ReproduceSettings, plan: DatasetPlan, out: Path, *flags: str) -> list[str]:
    return evaluate_args(s, [f"configs/evaluate/{plan.name}.yaml", *plan.evaluate], Path(s.runs) / plan.name / "model", out, *flags)


def finetune_command(dataset: str, overlays: list[str], runs: Path, *flags: str) -> list[str]:
    """A train.py stage: configs/finetune/<dataset>.yaml and the overlays, the model exported to runs/model."""
    return [sys.executable, "train.py", "--config", f"configs/finetune/{dataset}.yaml", *[a for c in overlays for a in ("--config", c)],
            "--trainer.default_root_dir", str(runs), "--export.dirpath", str(runs / "model"), "--export.overwrite", "true", *flags]


def rationale_model(s: ReproduceSettings, plan: RationalePlan) -> Path:
    return Path(s.runs) / plan.model_from / "model" if plan.transfer else rationale_paths(s, plan)[0] / "model"


def rationale_evaluate_command(s: ReproduceSettings, plan: RationalePlan, out: Path, *flags: str) -> list[str]:
    """An evaluate.py stage of the plan: its model (a transfer run says so), max_length and windows."""
    return evaluate_args(
        s, [f"configs/evaluate/{plan.dataset}.yaml", *plan.evaluate], rationale_model(s, plan), out, "--max_length", str(plan.max_length),
        *(("--allow_task_transfer", "true") if plan.transfer else ()), "--plausibility.bin_unit", plan.bin_unit,
        *(("--plausibility.window_stride", str(plan.window_stride)) if plan.window_stride is not None else ()), *flags)


def rationale_finetune_command(s: ReproduceSettings, plan: RationalePlan) -> list[str]:
    return finetune_command(plan.dataset, plan.finetune or [], rationale_paths(s, plan)[0], "--data.max_length", str(plan.max_length))
