"""The settings of one evaluation run, and which of them define its results (for --resume)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_iba.errors import LightningIBAError

SWEEPS = ("layer", "beta")


@dataclass
class EvaluationSettings:
    """Everything `evaluate.py` takes; YAML files under configs/evaluate/ set the same keys.

    Fields below `# execution` change how fast the run goes, not its results.
    """

    checkpoint: str = "runs/demo/model"  # a fine-tuned model folder (make finetune / make demo)
    dataset: str | None = None  # default: the task recorded in the checkpoint
    source: str = "auto"  # hub | local | bundled | auto
    data_dir: str | None = None
    split: str = "test"  # test, or test_mismatched for MNLI
    samples: int | None = 1000  # test instances, drawn with `seed`; None = the whole split
    seed: int = 0
    max_length: int | None = None  # default: the checkpoint's fine-tuning max_length, else 512
    methods: str = "iba,ig,lime,random"
    # IBA (SPEC §1-3)
    layer: int = 8
    beta: float = 1e-5
    estimator: str = "dataset"  # dataset | reference
    estimator_texts: int = 1000  # training texts the dataset estimator is fitted on
    iba_steps: int = 10
    iba_lr: float = 1.0
    iba_samples: int = 10
    # baselines (SPEC §5)
    ig_steps: int = 10
    lime_samples: int = 100
    # degradation (SPEC §6)
    mode: str = "delete"  # delete | mask
    order: str = "most"  # most | least
    degradation_steps: int = 10
    sufficiency: bool = True  # also the keep-only-the-top-tokens curves (ERASER sufficiency; doubles degradation)
    # sweeps (Figures 2a/4 and 2b/5)
    sweep: str | None = None  # layer | beta
    betas: str = "1e-7,1e-6,1e-5,1e-4"
    # execution
    out: str = "runs/eval"
    resume: bool = False
    batch_size: int = 16
    devices: int = 1
    num_nodes: int = 1
    accelerator: str = "auto"
    precision: str = "32"  # 32 | bf16 (IBA autocast, GPUs)
    wandb: bool = True
    wandb_project: str = "lightning-iba"

    def __post_init__(self) -> None:
        if self.sweep is not None and self.sweep not in SWEEPS:
            raise LightningIBAError(f"unknown sweep {self.sweep!r}; valid: {', '.join(SWEEPS)}")
        for name in ("batch_size", "devices", "num_nodes", "degradation_steps", "estimator_texts"):
            if getattr(self, name) < 1:
                raise LightningIBAError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.samples is not None and self.samples < 1:
            raise LightningIBAError(f"samples must be at least 1 (or null for the whole split), got {self.samples}")

    @property
    def beta_values(self) -> list[float]:
        return parse_betas(self.betas, "betas")

    def identity(self) -> dict[str, Any]:
        """The settings that determine the results: a resumed run must match them exactly."""
        fields = [f.name for f in dataclasses.fields(self)]
        execution = fields[fields.index("out") :]
        keep = {k: v for k, v in dataclasses.asdict(self).items() if k not in execution or k == "precision"}
        keep["checkpoint"] = str(Path(self.checkpoint).resolve())
        return keep


def parse_betas(spec: str, name: str) -> list[float]:
    """Comma-separated positive numbers ("1e-6,1e-5"), or a one-line error naming the option `name`."""
    try:
        values = [float(b) for b in str(spec).split(",") if b.strip()]
    except ValueError:
        raise LightningIBAError(f"{name} must be comma-separated numbers, got {spec!r}") from None
    if not values or any(b <= 0 for b in values):
        raise LightningIBAError(f"{name} must be positive numbers, got {spec!r}")
    return values


def check_resumable(out: Path, identity: dict[str, Any], resume: bool) -> None:
    """Refuses to mix results: an output folder with results needs --resume and the same settings."""
    path = out / "settings.json"
    if not path.is_file():
        return
    if not resume:
        raise LightningIBAError(f"{out} already holds an evaluation; pass --resume to continue it, or choose another --out")
    previous = json.loads(path.read_text())
    diff = [f"{k}: {previous.get(k)!r} -> {identity.get(k)!r}" for k in sorted(set(previous) | set(identity)) if previous.get(k) != identity.get(k)]
    if diff:
        raise LightningIBAError(f"--resume with different settings than {path} ({'; '.join(diff)})")
