"""A content fingerprint of a model folder: the same weights and config give the same string, anywhere.

Results (evaluation settings, cached estimator statistics) record it, so that a model retrained into
the same folder can never be mixed with results of the one before.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from lightning_iba.errors import LightningIBAError

#: Files whose bytes are the model's weights (Hugging Face save_pretrained formats).
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
#: config.json keys that say where or with which library version a folder was written, not what the model is.
VOLATILE_CONFIG_KEYS = ("_name_or_path", "transformers_version")
CHUNK = 1 << 22


def model_fingerprint(folder: str | Path) -> str:
    """"sha256:<16 hex>" over the canonical config.json (volatile keys dropped) and every weights file."""
    folder = Path(folder)
    config_path = folder / "config.json"
    weights = sorted({p for pattern in WEIGHT_PATTERNS for p in folder.glob(pattern)})
    if not config_path.is_file() or not weights:
        raise LightningIBAError(f"{folder} has no config.json and weights to fingerprint")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    for key in VOLATILE_CONFIG_KEYS:
        config.pop(key, None)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for path in weights:
        digest.update(path.name.encode())
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()[:16]
