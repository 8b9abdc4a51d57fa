"""The dataset estimator's statistics, cached on disk under a key of everything they depend on.

The key holds the model's content fingerprint, its number of layers, `max_length` and the data the
statistics were fitted on (task, source, split, number of texts, seed). Statistics are looked up by
the key's digest, so a model retrained into the same folder, another `max_length` or other texts
can never reuse a fit: a mismatch refits, and says so in one log line. So does a cached file that
cannot be read (damaged, or not a statistics file): the new fit replaces it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightning_iba.attribution.encoder import find_encoder
from lightning_iba.attribution.estimators import DatasetEstimator
from lightning_iba.errors import LightningIBAError

log = logging.getLogger("lightning_iba.attribution")
PREFIX = "iba_statistics"


@dataclass(frozen=True)
class StatisticsKey:
    """What a fit of the dataset estimator depends on."""

    model: str  # content fingerprint of the model folder
    num_layers: int  # every layer is fitted in one pass
    max_length: int
    task: str
    source: str
    split: str
    texts: int  # number of texts drawn
    seed: int  # seed of the draw

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def describe(self) -> str:
        return f"{self.texts} {self.task} {self.split} texts ({self.source}, seed {self.seed}) at max_length {self.max_length}, model {self.model}"


def statistics_file(cache_dir: str | Path, key: StatisticsKey) -> Path:
    """Where the statistics of `key` are cached in `cache_dir`."""
    return Path(cache_dir) / f"{PREFIX}-{key.digest()}.pt"


def _stored_key(path: Path) -> dict[str, Any] | None:
    try:
        return DatasetEstimator.load(path).metadata.get("key")
    except LightningIBAError:
        return None


def _differences(old: dict[str, Any] | None, new: StatisticsKey) -> str:
    if not old:
        return "no key recorded"
    return ", ".join(f"{k} {old.get(k)!r} -> {v!r}" for k, v in new.as_dict().items() if old.get(k) != v)


def load_or_fit(
    model: nn.Module,
    key: StatisticsKey,
    texts: Sequence | Callable[[], Sequence],
    tokenizer: Any,
    cache_dir: str | Path,
    batch_size: int = 32,
    device: str | torch.device | None = None,
) -> DatasetEstimator:
    """The statistics cached for `key` in `cache_dir`, else fitted on `texts` (a function is called
    only then) and cached there. Logs one line saying which. `device`: where to fit (the model is
    moved there; a GPU run should fit on its GPU, not on the CPU the model was loaded to)."""
    path = statistics_file(cache_dir, key)
    if path.is_file():
        try:
            estimator = DatasetEstimator.load(path)
        except LightningIBAError as err:  # a cache entry, not the user's data: fit again over it
            log.warning("estimator: %s; refitting, the new fit replaces it", err)
        else:
            if estimator.metadata.get("key") == key.as_dict():
                hidden = int(getattr(model.config, "hidden_size", 0) or getattr(model.config, "dim", 0))
                estimator.check_compatible(find_encoder(model).num_layers, hidden or int(estimator.mean.shape[1]))  # type: ignore[union-attr]
                log.info("estimator: dataset statistics of %s from %s", key.describe(), path)
                return estimator
            log.info("estimator: %s does not hold the statistics it is named for (%s); refitting", path, _differences(estimator.metadata.get("key"), key))
    else:
        others = sorted(p for p in Path(cache_dir).glob(f"{PREFIX}*.pt") if p != path) if Path(cache_dir).is_dir() else []
        if others:
            why = "; ".join(f"{p.name}: {_differences(_stored_key(p), key)}" for p in others[:3])
            log.info("estimator: no cached statistics match (%s); fitting on %s", why, key.describe())
        else:
            log.info("estimator: fitting the dataset statistics on %s", key.describe())
    data = texts() if callable(texts) else texts
    if not data:
        raise LightningIBAError(f"the dataset estimator needs texts to fit on; got none for {key.describe()}")
    if device is not None:
        model.to(device)
    estimator = DatasetEstimator().fit_texts(model, data, tokenizer, max_length=key.max_length, batch_size=batch_size)
    estimator.metadata["key"] = key.as_dict()
    save_atomically(estimator, path)
    log.info("estimator: cached as %s", path)
    return estimator


def save_atomically(estimator: DatasetEstimator, path: Path) -> Path:
    """Writes to a temporary file and renames it, so a kill never leaves half a statistics file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    estimator.save(tmp)
    os.replace(tmp, path)
    return path


def is_writable(folder: Path) -> bool:
    """Whether a file can be created in `folder` (tried, not guessed from permission bits)."""
    try:
        with open(folder / f".write-test-{os.getpid()}", "wb") as fh:
            fh.write(b"")
        (folder / f".write-test-{os.getpid()}").unlink()
        return True
    except OSError:
        return False


def writable_cache_dir(preferred: Path, fallback: Path) -> Path:
    """`preferred` (the model folder) when it can be written to, else `fallback`, with a log line."""
    if is_writable(preferred):
        return preferred
    log.info("estimator: %s is read-only; caching statistics in %s", preferred, fallback)
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


__all__ = ["StatisticsKey", "load_or_fit", "statistics_file", "writable_cache_dir"]
