"""Resolving and loading classifiers and tokenizers: the bundled MiniLM, local folders, or hub ids."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_iba.hub import BUNDLED_MODEL, ModelLoadError, _from_pretrained, load_tokenizer, resolve_model_path  # noqa: F401 (re-exported)

log = logging.getLogger("lightning_iba.models")

#: Where `make demo` puts its fine-tuned model; attribution and evaluation default to it.
DEMO_MODEL_DIR = Path("runs/demo/model")
#: Where the default checkpoint is looked for, in order: the demo's, then `make finetune DATASET=imdb`'s.
DEFAULT_CHECKPOINTS = (DEMO_MODEL_DIR, Path("runs/imdb/model"))


def default_checkpoint() -> Path:
    """The first fine-tuned model folder that exists among DEFAULT_CHECKPOINTS."""
    for candidate in DEFAULT_CHECKPOINTS:
        if (candidate / "config.json").is_file():
            return candidate
    raise ModelLoadError(
        f"no fine-tuned model at {' or '.join(map(str, DEFAULT_CHECKPOINTS))}; run `make demo` or "
        "`make finetune DATASET=imdb` first, or pass --checkpoint DIR"
    )


def load_pretrained_classifier(name_or_path: str, label_names: tuple[str, ...] | list[str], **config: Any):
    """A sequence classifier for `label_names` from a pretrained encoder, or from another task's fine-tuned
    classifier (e.g. RTE started from an MNLI model): a head of another size is replaced by a fresh one."""
    from transformers import AutoModelForSequenceClassification

    id2label = dict(enumerate(label_names))
    return _from_pretrained(
        AutoModelForSequenceClassification,
        name_or_path,
        num_labels=len(label_names),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        ignore_mismatched_sizes=True,
        **config,
    )


@dataclass
class FineTuned:
    """A fine-tuned classifier folder, loaded: what attribution and evaluation work on."""

    model: Any  # a ...ForSequenceClassification in eval mode
    tokenizer: Any
    path: Path
    task: str | None  # the task recorded at export (config.json `lightning_iba_task`), None if not recorded
    fingerprint: str  # content hash of weights + config (models/fingerprint.py)

    @property
    def max_positions(self) -> int:
        """The longest input the model takes (its position embeddings)."""
        from lightning_iba.models.utils import position_limit

        return position_limit(self.model.config) or 512

    @property
    def trained_max_length(self) -> int | None:
        """The max_length it was fine-tuned at, if recorded."""
        value = getattr(self.model.config, "lightning_iba_max_length", None)
        return int(value) if value else None


def load_finetuned(model_dir: str | Path, device: str = "cpu") -> FineTuned:
    """A fine-tuned model folder (as `make finetune` exports it), with its recorded task and fingerprint.

    A folder whose classification head is not in its weights (a pretrained encoder that was never
    fine-tuned: the head would be random) is refused.
    """
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    from lightning_iba.models.fingerprint import model_fingerprint

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        hint = "run `make demo` (or `make finetune DATASET=imdb`) first" if model_dir == DEMO_MODEL_DIR else "fine-tune one with `make finetune`"
        raise ModelLoadError(f"no fine-tuned model at {model_dir} (config.json missing); {hint}")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the missing-weights report is ours to give, in one line
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(str(model_dir), output_loading_info=True)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot load a classifier from {model_dir}: {str(err).splitlines()[0]}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        raise ModelLoadError(
            f"{model_dir} is not a fine-tuned classifier: its weights lack {', '.join(missing[:4])}"
            f"{' ...' if len(missing) > 4 else ''} (a pretrained encoder with a random head); fine-tune it with `make finetune` first"
        )
    tokenizer = load_tokenizer(str(model_dir))
    task = json.loads((model_dir / "config.json").read_text()).get("lightning_iba_task")
    return FineTuned(model.to(device).eval(), tokenizer, model_dir, task, model_fingerprint(model_dir))
