"""Where the bottleneck's mean and std come from (SPEC section 3).

- `DatasetEstimator`: per-hidden-dimension mean/std of every layer's output over the real tokens
  of a sample of training texts, computed once in one streaming pass (what the paper describes);
  `statistics_cache` keeps fits on disk under a key of everything they depend on.
- `ReferenceEstimator`: what the published code does: mean = the instance's own tensor entering
  layer l, std = sqrt(1e-5) everywhere.
- Anything with a `statistics(layer, hidden_in, hidden_out, attention_mask) -> (mean, std)` method
  works as well (the `Estimator` protocol).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from lightning_iba.attribution.encoder import capture_hidden_states
from lightning_iba.errors import LightningIBAError, UnknownNameError
from lightning_iba.models.utils import frozen

_FORMAT = "lightning_iba.iba_statistics/1"
REFERENCE_STD = math.sqrt(1e-5)  # a running std fitted on one sample, as in the published code


@runtime_checkable
class Estimator(Protocol):
    """Supplies the mean and std the bottleneck after layer `layer` normalises with."""

    def statistics(
        self,
        layer: int,
        hidden_in: Tensor,  # [batch, tokens, hidden], the tensor entering layer `layer`
        hidden_out: Tensor,  # [batch, tokens, hidden], layer `layer`'s output
        attention_mask: Tensor,  # [batch, tokens]
    ) -> tuple[Tensor, Tensor]:  # each broadcastable to [batch, tokens, hidden]
        ...


class ReferenceEstimator:
    """Per-instance statistics of the published code: mean = hidden_states[l], std = sqrt(1e-5)."""

    name = "reference"

    def statistics(
        self, layer: int, hidden_in: Tensor, hidden_out: Tensor, attention_mask: Tensor
    ) -> tuple[Tensor, Tensor]:  # [batch, tokens, hidden] each
        return hidden_in, torch.full_like(hidden_in, REFERENCE_STD)


class DatasetEstimator:
    """Per-layer, per-hidden-dimension mean/std of layer outputs over real tokens of training texts.

    `mean` and `std` are [layers, hidden] (float64 accumulation, stored as float32); std is
    floored at `min_std` so that constant dimensions cannot divide by zero.
    """

    name = "dataset"

    def __init__(self, mean: Tensor | None = None, std: Tensor | None = None, metadata: dict | None = None,
                 min_std: float = 1e-5):
        self.mean, self.std = mean, std  # [layers, hidden]
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.min_std = min_std

    @property
    def fitted(self) -> bool:
        return self.mean is not None and self.std is not None

    # ---- fitting -------------------------------------------------------------------------------
    @torch.no_grad()
    def fit(self, model: nn.Module, batches: Iterable[Mapping[str, Tensor]], max_length: int | None = None,
            n_texts: int | None = None) -> "DatasetEstimator":
        """Stream `batches` (dicts with input_ids, attention_mask[, token_type_ids]) through the model once."""
        device = next(model.parameters()).device
        count = 0
        mean = m2 = None  # [layers, hidden], float64 (Chan et al.'s parallel Welford update)
        texts = 0
        with frozen(model):  # eval mode (no dropout); modes and flags restored exactly
            for batch in batches:
                ids = batch["input_ids"].to(device)
                mask = batch["attention_mask"].to(device)
                tti = batch.get("token_type_ids")
                states, _ = capture_hidden_states(model, ids, mask, None if tti is None else tti.to(device))
                real = mask.bool()
                outputs = torch.stack(states[1:]).double()[:, real]  # [layers, real tokens, hidden]
                n_batch = outputs.shape[1]
                texts += ids.shape[0]
                if n_batch == 0:
                    continue
                batch_mean = outputs.mean(1)  # [layers, hidden]
                batch_m2 = ((outputs - batch_mean[:, None]) ** 2).sum(1)
                if mean is None:
                    mean, m2, count = batch_mean, batch_m2, n_batch
                    continue
                total = count + n_batch
                delta = batch_mean - mean
                mean = mean + delta * (n_batch / total)
                m2 = m2 + batch_m2 + delta**2 * (count * n_batch / total)
                count = total
        if mean is None:
            raise LightningIBAError("cannot fit the dataset estimator: the texts contain no real tokens")
        self.mean = mean.float().cpu()
        self.std = (m2 / count).sqrt().clamp_min(self.min_std).float().cpu()
        config = getattr(model, "config", None)
        self.metadata = {
            "model": str(getattr(config, "_name_or_path", "") or type(model).__name__),
            "num_texts": int(n_texts if n_texts is not None else texts),
            "num_tokens": int(count),
            "max_length": max_length,
            "num_layers": int(self.mean.shape[0]),
            "hidden_size": int(self.mean.shape[1]),
        }
        return self

    def fit_texts(self, model: nn.Module, texts: Sequence, tokenizer: Any, max_length: int = 128,
                  batch_size: int = 32) -> "DatasetEstimator":
        """Tokenise `texts` (strings or (text, pair) tuples) and fit on them."""
        batches = tokenize_texts(texts, tokenizer, max_length=max_length, batch_size=batch_size)
        return self.fit(model, batches, max_length=max_length, n_texts=len(texts))

    # ---- use -----------------------------------------------------------------------------------
    def statistics(
        self, layer: int, hidden_in: Tensor, hidden_out: Tensor, attention_mask: Tensor
    ) -> tuple[Tensor, Tensor]:  # [hidden] each
        if not self.fitted:
            raise LightningIBAError(
                "the dataset estimator has no statistics; call iba.fit(texts, tokenizer=...) or "
                "pass an estimator from statistics_cache.load_or_fit(...)"
            )
        self.check_compatible(len(self.mean), hidden_out.shape[-1])  # type: ignore[arg-type]
        return (self.mean[layer].to(hidden_out.device, hidden_out.dtype),  # type: ignore[index]
                self.std[layer].to(hidden_out.device, hidden_out.dtype))  # type: ignore[index]

    def check_compatible(self, num_layers: int, hidden_size: int) -> None:
        """LightningIBAError unless the statistics were computed for a model of this shape."""
        if self.fitted and tuple(self.mean.shape) != (num_layers, hidden_size):  # type: ignore[union-attr]
            raise LightningIBAError(
                f"dataset statistics are for {self.mean.shape[0]} layers x {self.mean.shape[1]} hidden "  # type: ignore[union-attr]
                f"(model {self.metadata.get('model')!r}), but this model has {num_layers} x {hidden_size}"
            )

    # ---- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write mean, std and metadata (model, number of texts/tokens, max_length) to `path`."""
        if not self.fitted:
            raise LightningIBAError("cannot save an unfitted dataset estimator")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": _FORMAT, "mean": self.mean, "std": self.std, "min_std": self.min_std,
                    "metadata": self.metadata}, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "DatasetEstimator":
        path = Path(path)
        if not path.is_file():
            raise LightningIBAError(f"no IBA statistics file at {path}")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # corrupt or foreign file; torch's own message runs over many lines
            raise LightningIBAError(f"cannot read IBA statistics from {path}: damaged or not a statistics file ({type(err).__name__})") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise LightningIBAError(f"{path} is not an IBA statistics file")
        return cls(data["mean"], data["std"], data.get("metadata"), min_std=data.get("min_std", 1e-5))


def tokenize_texts(texts: Sequence, tokenizer: Any, max_length: int = 128,
                   batch_size: int = 32) -> Iterator[dict[str, Tensor]]:
    """Padded tensor batches for strings or (text, pair) tuples."""
    if tokenizer is None:
        raise LightningIBAError("texts need a tokenizer to fit the dataset estimator (tokenizer=...)")
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start : start + batch_size])
        if chunk and isinstance(chunk[0], (tuple, list)):
            first, second = [c[0] for c in chunk], [c[1] for c in chunk]
            encoded = tokenizer(first, second, truncation=True, max_length=max_length, padding=True,
                                return_tensors="pt")
        else:
            encoded = tokenizer([str(c) for c in chunk], truncation=True, max_length=max_length, padding=True,
                                return_tensors="pt")
        yield dict(encoded)


ESTIMATORS = ("dataset", "reference")


def get_estimator(spec: str | Estimator) -> Estimator:
    """An estimator by name ("dataset" | "reference") or a user object with a `statistics` method."""
    if isinstance(spec, str):
        if spec == "dataset":
            return DatasetEstimator()
        if spec == "reference":
            return ReferenceEstimator()
        raise UnknownNameError("estimator", spec, ESTIMATORS)
    if not callable(getattr(spec, "statistics", None)):
        raise LightningIBAError(
            f"estimator must be 'dataset', 'reference' or an object with a statistics(layer, hidden_in, "
            f"hidden_out, attention_mask) method, not {type(spec).__name__}"
        )
    return spec
