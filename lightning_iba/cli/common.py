"""What the three commands share: logging, the configs folder, checkpoint / length / layer resolution,
checks that fail before any work starts, and loading the IBA estimator through its keyed cache."""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from lightning_iba.attribution.encoder import check_layer
from lightning_iba.data.tasks import Task, get_task
from lightning_iba.data.tokens import MIN_MAX_LENGTH
from lightning_iba.errors import LightningIBAError
from lightning_iba.files import check_writable
from lightning_iba.models.loading import FineTuned, default_checkpoint, load_finetuned

log = logging.getLogger("lightning_iba")

#: The repository's configs/ folder (absent when the package is installed without the repository).
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
#: Arguments of BottleneckOptimizer that the commands set from their own top-level settings.
IBA_SKIP = {"model", "layer", "estimator", "batch_size", "seed", "device", "precision"}


def setup_logging() -> None:
    """Project log lines (data source fallbacks, dropped rows, cache hits, exports) on stderr."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("httpx", "urllib3", "datasets", "transformers", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no weight-loading bars between the project's log lines


def base_config(command: str) -> list[str]:
    """`configs/<command>/base.yaml` as the parser's default config file, when the repository has it."""
    path = CONFIGS / command / "base.yaml"
    return [str(path)] if path.is_file() else []


# ---------------------------------------------------------------- checks that run before any work


def default_layer(num_layers: int) -> int:
    """The paper's relative depth: index 8 of BERT-base's 12 layers, index 3 of a 6-layer MiniLM."""
    return max(0, num_layers * 3 // 4 - 1)


def resolve_layer(layer: int | None, num_layers: int) -> int:
    """The bottleneck's layer: as given (checked), or the paper's relative depth when None."""
    return default_layer(num_layers) if layer is None else check_layer(layer, num_layers)


def parse_layers(spec: str | Sequence[int] | None, num_layers: int) -> list[int] | None:
    """'all', '0,3,5' or a list into checked layer indices; None stays None."""
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec.strip() == "all":
            return list(range(num_layers))
        parts = [p.strip() for p in spec.split(",")]
        if not parts or any(not p.lstrip("-").isdigit() for p in parts):
            raise LightningIBAError(f"layers must be 'all' or comma-separated layer indices like 0,3,5; got {spec!r}")
        spec = [int(p) for p in parts]
    layers = [check_layer(int(layer), num_layers) for layer in spec]
    if not layers:
        raise LightningIBAError("layers is empty; give 'all' or at least one layer index")
    return list(dict.fromkeys(layers))


def parse_betas(spec: str | Sequence[float], name: str) -> list[float]:
    """Comma-separated positive numbers ("1e-6,1e-5") or a list, or a one-line error naming the option `name`."""
    try:
        values = [float(b) for b in (str(spec).split(",") if isinstance(spec, str) else spec) if str(b).strip()]
    except ValueError:
        raise LightningIBAError(f"{name} must be comma-separated numbers, got {spec!r}") from None
    if not values or any(not b > 0 for b in values):
        raise LightningIBAError(f"{name} must be positive numbers, got {spec!r}")
    return values


def resolve_max_length(requested: int | None, model: FineTuned) -> int:
    """max_length as given, or the one the model was fine-tuned at (else its position limit, at most 512);
    an error outside MIN_MAX_LENGTH..the model's position limit."""
    if requested is None:
        return model.trained_max_length or min(512, model.max_positions)
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < MIN_MAX_LENGTH:
        raise LightningIBAError(f"max_length must be at least {MIN_MAX_LENGTH} tokens, got {requested!r} (leave it out for the model's own)")
    if requested > model.max_positions:
        raise LightningIBAError(f"max_length {requested} is longer than the model's {model.max_positions} positions ({model.path})")
    return requested


def run_device(accelerator: str) -> str:
    """The device a run on `accelerator` computes on in this process: cuda when asked for or auto and present."""
    import torch

    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu"
    return "cpu"


# ---------------------------------------------------------------- the model and its task


def load_model_for_task(checkpoint: str | None, dataset: str | None, allow_task_transfer: bool = False) -> tuple[FineTuned, Task]:
    """The fine-tuned model and the task it is explained on; refuses a task other than the recorded one
    unless `allow_task_transfer` (then says so loudly), and a label count that does not match."""
    model = load_finetuned(checkpoint if checkpoint is not None else default_checkpoint())
    name = dataset or model.task
    if name is None:
        raise LightningIBAError(f"{model.path} records no task (not exported by `make finetune`); pass --dataset")
    task = get_task(name)
    if model.task is not None and model.task != task.name:
        if not allow_task_transfer:
            raise LightningIBAError(
                f"{model.path} was fine-tuned on {model.task}, not {task.name}; pass --allow_task_transfer true "
                "to explain it on another task (a transfer experiment)"
            )
        log.warning("TASK TRANSFER: explaining a %s model on %s (--allow_task_transfer); recorded in the settings", model.task, task.name)
    labels = model.model.config.num_labels
    if labels != task.num_labels:
        raise LightningIBAError(f"checkpoint {model.path} has {labels} labels but dataset {task.name} has {task.num_labels} ({', '.join(task.label_names)})")
    return model, task


# ---------------------------------------------------------------- the estimator


@dataclass
class EstimatorSettings:
    """Where the bottleneck's mean and std come from (SPEC §3): `estimator.*` in the configs.

    Args:
        name: "dataset" (the paper: per-dimension statistics of training texts) or "reference" (the
            published code: the instance's own input to the layer, std sqrt(1e-5)).
        texts: number of texts the dataset statistics are fitted on.
        split: the split they are drawn from.
        seed: seed of the draw.
        source: data source of those texts (null: the run's own source), e.g. bundled when the run reads
            aclImdb/test alone; files reads the run's files.* settings (evaluate.py).
        cache_dir: where fits are cached, keyed by model, max_length and data (null: the model
            folder, or runs/statistics/<model fingerprint> when that is read-only).
    """

    name: str = "dataset"
    texts: int = 1000
    split: str = "train"
    seed: int = 0
    source: str | None = None
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        from lightning_iba.attribution.estimators import ESTIMATORS
        from lightning_iba.errors import check_choice

        check_choice("estimator", self.name, ESTIMATORS)
        if isinstance(self.texts, bool) or not isinstance(self.texts, int) or self.texts < 1:
            raise LightningIBAError(f"estimator.texts must be at least 1, got {self.texts!r}")


def load_estimator(settings: EstimatorSettings, model: FineTuned, task: Task, source: str, data_dir: str | None, max_length: int,
                   splits: Any = None, device: str | None = None, files: Any = None) -> Any:
    """The estimator object; dataset statistics come from the keyed cache or are fitted (and cached) now.

    `splits`: the task's splits from `source` if the caller has loaded them already (reused when the
    estimator's texts come from the same source). `device`: where a fit runs (default: the model's device).
    `data_dir` and `files` (a DataFiles) serve the estimator's source as they serve the run's."""
    from lightning_iba.attribution.estimators import get_estimator
    from lightning_iba.attribution.statistics_cache import StatisticsKey, load_or_fit, writable_cache_dir
    from lightning_iba.data.files_source import statistics_source
    from lightning_iba.data.sources import load_splits, require_split, resolve_source, sample_texts, split_hint

    if settings.name != "dataset":
        return get_estimator(settings.name)
    concrete = resolve_source(task, settings.source or source)
    key = StatisticsKey(
        model=model.fingerprint, num_layers=int(model.model.config.num_hidden_layers), max_length=max_length,
        task=task.name, source=statistics_source(concrete, data_dir, files), split=settings.split, texts=settings.texts, seed=settings.seed,
    )

    def texts() -> list:  # only called when the statistics must be fitted
        same = splits is not None and concrete == resolve_source(task, source)
        available = splits if same else load_splits(task, concrete, data_dir, files=files)
        hint = split_hint(task, concrete, settings.split, "--estimator.source")
        split = require_split(available, settings.split, task, concrete, "the IBA estimator (--estimator.split)", hint)
        return sample_texts(split, settings.texts, settings.seed)

    if settings.cache_dir is not None:
        cache = check_writable(settings.cache_dir, "estimator.cache_dir")
    else:
        cache = writable_cache_dir(model.path, Path("runs") / "statistics" / model.fingerprint.replace("sha256:", ""))
    return load_or_fit(model.model, key, texts, model.tokenizer, cache, device=device)
