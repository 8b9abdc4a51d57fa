"""Whether the Hugging Face hub can be reached, decided fast, so offline runs fail with advice instead of retrying."""
from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

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
