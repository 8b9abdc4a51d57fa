"""BottleneckOptimizer: per-token IBA attribution for a fine-tuned encoder classifier (SPEC sections 2 and 4).

Two execution paths give the same scores for the same noise:

- "cached" (default, fast): instances are sorted by length and processed `batch_size` at a time
  (fewer where `pass_tokens` caps a forward pass), each chunk padded only to its longest
  instance, each instance with its own alpha. Layers 0..l run once per chunk without gradients;
  every optimisation step runs only layers l+1..L-1 and the head on K noisy copies of the cached
  layer-l output. Per-instance losses are summed, so every instance gets exactly the gradient it
  would get alone (Adam is element-wise). The scores are the last step's KL, a function of alpha
  and x alone, so that step computes the KL only (no suffix forward, no backward).
- "per_instance" (the published algorithm, kept as reference): one instance at a time, K copies,
  the bottleneck inserted by a forward hook on layer l, a full forward pass every step.

Noise is reproducible per instance whatever the batching: each instance owns a generator seeded
from the base seed and a CRC32 of its real token ids, and draws eps [K, len_i, hidden] once per
step in both paths.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_iba.attribution.base import Attributor, instance_seed, mask_padding
from lightning_iba.attribution.bottleneck import InformationBottleneck
from lightning_iba.attribution.encoder import (
    capture_hidden_states,
    check_layer,
    find_encoder,
    full_forward,
    replace_after_layer,
    run_from_layer,
)
from lightning_iba.attribution.estimators import DatasetEstimator, Estimator, get_estimator, tokenize_texts
from lightning_iba.errors import LightningIBAError
from lightning_iba.models.utils import frozen, model_device_dtype

PATHS = ("cached", "per_instance")
CPU_PASS_ELEMENTS = 2**21  # rows x tokens x hidden per forward pass on CPU (see pass_tokens)
PRECISIONS = ("32", "bf16")
#: "code": CE + beta * mean KL, what the published code optimises and its numbers come from;
#: "paper": mean KL + beta * CE, the loss as the paper writes it (Jiang et al., 2020, eq. 3).
LOSSES = ("code", "paper")


class _Noise:
    """Per-instance standard-normal noise, laid out as [batch * K, tokens, hidden] (copies contiguous)."""

    def __init__(self, input_ids: Tensor, mask: Tensor, copies: int, hidden: int, seed: int,
                 device: torch.device, dtype: torch.dtype):
        self.mask = mask.bool()  # [batch, tokens]
        self.copies, self.hidden, self.dtype, self.device = copies, hidden, dtype, device
        self.lengths = self.mask.sum(1).tolist()
        self.prefix = [bool(row[:n].all()) for row, n in zip(self.mask, self.lengths)]
        self.generators = []
        for row, real in zip(input_ids, self.mask):
            generator = torch.Generator(device=device)
            generator.manual_seed(instance_seed(seed, row[real]))
            self.generators.append(generator)

    def draw(self) -> Tensor:  # [batch * K, tokens, hidden]
        batch, tokens = self.mask.shape
        eps = torch.zeros(batch, self.copies, tokens, self.hidden, device=self.device, dtype=self.dtype)
        for i, generator in enumerate(self.generators):
            sample = torch.randn(self.copies, self.lengths[i], self.hidden, generator=generator,
                                 device=self.device, dtype=self.dtype)  # [K, len_i, hidden]
            if self.prefix[i]:  # right padding: the real tokens are the first len_i positions
                eps[i, :, : self.lengths[i]] = sample
            else:
                eps[i][:, self.mask[i]] = sample
        return eps.reshape(batch * self.copies, tokens, self.hidden)


def _check_number(name: str, value: Any, ok: Callable[[float], bool], rule: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LightningIBAError(f"{name} must be a number {rule}, not {value!r}") from None
    if not ok(number):
        raise LightningIBAError(f"{name} must be {rule}, not {value!r}")
    return number


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise LightningIBAError(f"{name} must be an integer >= 1, not {value!r}")
    return int(value)


def _repeat(tensor: Tensor | None, copies: int) -> Tensor | None:
    """[batch, ...] -> [batch * K, ...] with the copies of each row contiguous."""
    return None if tensor is None else tensor.repeat_interleave(copies, dim=0)


class BottleneckOptimizer(Attributor):
    """Information Bottleneck Attribution (Jiang et al., 2020) for a fine-tuned sequence classifier.

    Args:
        model: a Hugging Face `...ForSequenceClassification` model (BERT, RoBERTa, ELECTRA,
            DistilBERT, ...). It is frozen and in eval mode during a run; its weights,
            requires_grad flags and train/eval modes are restored afterwards.
        layer: 0-based index of the encoder layer whose output gets the bottleneck (0..L-1).
        beta: the trade-off weight: loss = CE + beta * mean KL (loss "code"), or mean KL + beta * CE
            (loss "paper").
        steps: Adam steps on alpha per instance.
        lr: Adam's learning rate.
        samples: noisy copies K of each instance per step.
        estimator: "dataset" | "reference" | an object with `statistics(layer, hidden_in,
            hidden_out, attention_mask) -> (mean, std)` (e.g. a fitted DatasetEstimator from
            `statistics_cache.load_or_fit`). "dataset" needs an explicit `fit(...)` call first.
        batch_size: instances optimised together on the cached path.
        seed: base seed of the per-instance noise.
        path: "cached" (fast) or "per_instance" (the published algorithm; for tests and benchmarks).
        precision: "32" or "bf16" (autocast, meant for GPUs).
        device: where to run; defaults to the model's device (the model is moved there otherwise).
        loss: "code" (CE + beta * KL, the published code's; the default) or "paper" (KL + beta * CE,
            as the paper writes it). At beta = 1e-5 "code" is nearly pure CE (the map is shaped by how
            much noise the prediction tolerates), while "paper" is nearly pure KL: alpha is pushed to
            close every token, with the prediction weighted 1e-5.
        pass_tokens: cap on rows x padded tokens (K copies counted) per forward pass of the cached
            path; chunks are cut smaller than `batch_size` to respect it. "auto": on CPU
            2**21 / hidden_size (largest activation ~32 MB: above glibc's mmap threshold every pass
            would page-fault fresh memory, which made big CPU batches ~1.5x slower per row);
            unlimited on GPUs. None: unlimited. Scores do not depend on it.

    `attribute` returns float32 [batch, tokens]: per-token information (sum of KL over hidden dims)
    from the last optimisation step's forward pass, 0 at padding, on the input's device.
    """

    name = "iba"

    def __init__(
        self,
        model: nn.Module,
        layer: int = 8,
        beta: float = 1e-5,
        steps: int = 10,
        lr: float = 1.0,
        samples: int = 10,
        estimator: str | Estimator = "dataset",
        batch_size: int = 32,
        *,
        seed: int = 0,
        path: str = "cached",
        precision: str | int = "32",
        device: str | torch.device | None = None,
        pass_tokens: int | str | None = "auto",
        loss: str = "code",
    ):
        self.model = model
        self.encoder = find_encoder(model)
        self.num_layers = self.encoder.num_layers
        self.layer = self._check_layer(layer)
        self.beta = _check_number("beta", beta, lambda v: v > 0 and np.isfinite(v), "> 0")
        self.lr = _check_number("lr", lr, lambda v: v > 0 and np.isfinite(v), "> 0")
        self.steps = _check_count("steps", steps)
        self.samples = _check_count("samples", samples)
        self.batch_size = _check_count("batch_size", batch_size)
        self.estimator: Estimator = get_estimator(estimator)
        self.seed = int(seed)
        if path not in PATHS:
            raise LightningIBAError(f"path must be one of {', '.join(PATHS)}, not {path!r}")
        self.path = path
        if loss not in LOSSES:
            raise LightningIBAError(f"loss must be one of {', '.join(LOSSES)}, not {loss!r}")
        self.loss = loss
        self.precision = {"32-true": "32", "bf16-mixed": "bf16"}.get(str(precision), str(precision))
        if self.precision not in PRECISIONS:
            raise LightningIBAError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        model_device, model_dtype = model_device_dtype(model)
        if device is not None and torch.device(device) != model_device:
            model.to(device)
        # alpha and noise follow a float64 model (exact equivalence tests), float32 otherwise
        self.dtype = torch.float64 if model_dtype == torch.float64 else torch.float32
        config = getattr(model, "config", None)
        self.num_labels = int(getattr(config, "num_labels", 0) or 0)
        self._hidden = int(getattr(config, "hidden_size", 0) or getattr(config, "dim", 0) or 768)
        self.pass_tokens = pass_tokens

    @property
    def device(self) -> torch.device:
        """The model's device, read at each use: a Trainer may move the model after construction."""
        return model_device_dtype(self.model)[0]

    @property
    def pass_tokens(self) -> int | None:
        """The cap in effect on the model's current device ("auto": a cap on CPU, none on GPUs)."""
        if self._pass_tokens == "auto":
            return CPU_PASS_ELEMENTS // self._hidden if self.device.type == "cpu" else None
        return self._pass_tokens

    @pass_tokens.setter
    def pass_tokens(self, value: int | str | None) -> None:
        self._pass_tokens = value if value in (None, "auto") else _check_count("pass_tokens", value)

    # ---- public API ----------------------------------------------------------------------------
    def attribute(
        self,
        input_ids: Tensor,  # [batch, tokens]
        attention_mask: Tensor,  # [batch, tokens]
        target: Tensor,  # [batch]
        token_type_ids: Tensor | None = None,  # [batch, tokens]
    ) -> Tensor:  # [batch, tokens]
        """Per-token information at `self.layer`, 0 at padding."""
        return self._run(input_ids, attention_mask, target, token_type_ids, [self.layer])[0]

    def attribute_layers(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        target: Tensor,
        token_type_ids: Tensor | None = None,
        layers: Sequence[int] | None = None,
    ) -> Tensor:  # [n_layers, batch, tokens]
        """Scores with the bottleneck at each of `layers` (default: all 0..L-1), from one cached forward pass."""
        chosen = list(range(self.num_layers)) if layers is None else [self._check_layer(l) for l in layers]
        if not chosen:
            raise LightningIBAError("layers is empty; give at least one layer index")
        return self._run(input_ids, attention_mask, target, token_type_ids, chosen)

    def fit(self, data: Sequence | Any, tokenizer: Any = None, max_length: int = 128,
            batch_size: int | None = None) -> DatasetEstimator:
        """Fit the dataset estimator on texts (strings or pairs, with `tokenizer`) or tokenised batches."""
        if not isinstance(self.estimator, DatasetEstimator):
            raise LightningIBAError("fit() is for the dataset estimator; this optimizer uses another estimator")
        size = batch_size or self.batch_size
        items = list(data) if not isinstance(data, Sequence) else data
        if items and isinstance(items[0], (str, tuple, list)):
            batches, n_texts = tokenize_texts(items, tokenizer, max_length=max_length, batch_size=size), len(items)
        else:
            batches, n_texts = items, None
        with frozen(self.model):
            self.estimator.fit(self.model, batches, max_length=max_length, n_texts=n_texts)
        return self.estimator

    # ---- validation ----------------------------------------------------------------------------
    def _check_layer(self, layer: int) -> int:
        return check_layer(layer, self.num_layers)

    def _check_inputs(self, input_ids, attention_mask, target, token_type_ids) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        input_ids = torch.as_tensor(input_ids)
        attention_mask = torch.as_tensor(attention_mask)
        if input_ids.dim() != 2 or attention_mask.shape != input_ids.shape:
            raise LightningIBAError(
                f"input_ids and attention_mask must both be [batch, tokens]; got {tuple(input_ids.shape)} "
                f"and {tuple(attention_mask.shape)}"
            )
        if token_type_ids is not None and torch.as_tensor(token_type_ids).shape != input_ids.shape:
            raise LightningIBAError("token_type_ids must have the shape of input_ids")
        if input_ids.numel() == 0:
            raise LightningIBAError("empty input: no instances or no tokens")
        empty = (attention_mask.sum(1) == 0).nonzero().flatten().tolist()
        if empty:
            raise LightningIBAError(f"empty input: instances {empty} have no real tokens")
        target = torch.as_tensor(target).long().reshape(-1)
        if target.numel() == 1 and input_ids.shape[0] > 1:
            target = target.expand(input_ids.shape[0])
        if target.numel() != input_ids.shape[0]:
            raise LightningIBAError(f"target has {target.numel()} entries for {input_ids.shape[0]} instances")
        bad = ((target < 0) | (target >= self.num_labels)).nonzero().flatten().tolist()
        if bad:
            raise LightningIBAError(
                f"target {target[bad[0]].item()} (instance {bad[0]}) is outside the label range 0..{self.num_labels - 1}"
            )
        return input_ids, attention_mask, target, (None if token_type_ids is None else torch.as_tensor(token_type_ids))

    def _ready_estimator(self) -> None:
        """The dataset estimator must have been fitted (iba.fit) or loaded (statistics_cache.load_or_fit)."""
        if isinstance(self.estimator, DatasetEstimator) and not self.estimator.fitted:
            raise LightningIBAError(
                "the dataset estimator has no statistics: call iba.fit(texts, tokenizer=...) first, or pass "
                "estimator=statistics_cache.load_or_fit(...)"
            )

    # ---- driver --------------------------------------------------------------------------------
    def _run(self, input_ids, attention_mask, target, token_type_ids, layers: list[int]) -> Tensor:
        input_ids, attention_mask, target, token_type_ids = self._check_inputs(
            input_ids, attention_mask, target, token_type_ids
        )
        self._ready_estimator()
        out_device = input_ids.device
        batch, tokens = input_ids.shape
        ids = input_ids.to(self.device)
        mask = attention_mask.to(self.device).long()
        tti = None if token_type_ids is None else token_type_ids.to(self.device)
        target = target.to(self.device)
        # right padding assumed for trimming: an instance occupies positions 0..end-1
        positions = torch.arange(tokens, device=self.device)
        ends = ((positions + 1) * (mask > 0)).amax(1)  # [batch]
        scores = torch.zeros(len(layers), batch, tokens, dtype=torch.float32)
        with frozen(self.model):
            if self.path == "cached":
                groups = self._chunks(ends.cpu())
            else:
                groups = [torch.tensor([i]) for i in range(batch)]
            for group in groups:
                end = int(ends[group].max())
                sub = (ids[group, :end], mask[group, :end], None if tti is None else tti[group, :end])
                run = self._cached_group if self.path == "cached" else self._per_instance_group
                result = run(*sub, target[group], layers, group.tolist())  # [n_layers, group, end]
                scores[:, group, :end] = result.float().cpu()
        return mask_padding(scores, attention_mask.cpu()[None]).to(out_device)

    def _chunks(self, ends: Tensor) -> list[Tensor]:
        """Input rows grouped longest first: at most `batch_size` per chunk and, if set, at most
        `pass_tokens` rows x padded tokens (K copies counted) per forward pass; always >= 1 row."""
        order = torch.argsort(ends, descending=True, stable=True).tolist()
        chunks: list[list[int]] = []
        for row in order:
            current = chunks[-1] if chunks else None
            fits = current is not None and len(current) < self.batch_size and (
                self.pass_tokens is None or (len(current) + 1) * self.samples * int(ends[current[0]]) <= self.pass_tokens
            )
            if fits:
                current.append(row)
            else:
                chunks.append([row])
        return [torch.tensor(chunk) for chunk in chunks]

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def _statistics(self, layer: int, states: list[Tensor], mask: Tensor) -> tuple[Tensor, Tensor]:
        mean, std = self.estimator.statistics(layer, states[layer], states[layer + 1], mask)
        return mean.detach(), std.detach()

    def _cached_group(self, ids, mask, tti, target, layers, indices) -> Tensor:
        """Cached path for one length-sorted chunk: layers 0..l once, then only the suffix per step."""
        with torch.no_grad(), self._autocast():  # layers 0..max(layers), once
            states, _ = capture_hidden_states(self.model, ids, mask, tti, upto=max(layers))
        copies = self.samples
        ids_k, mask_k, tti_k = _repeat(ids, copies), _repeat(mask, copies), _repeat(tti, copies)
        results = []
        for layer in layers:
            hidden = states[layer + 1].detach().to(self.dtype)  # [group, tokens, hidden]
            hidden_k = _repeat(hidden, copies)  # [group * K, tokens, hidden]
            bottleneck = self._bottleneck(layer, states, mask)
            noise = self._noise(ids, mask, hidden.shape[-1])

            def forward(eps: Tensor, layer=layer, hidden_k=hidden_k, bottleneck=bottleneck) -> Tensor:
                z = bottleneck(hidden_k, eps)
                return run_from_layer(self.model, layer, z, ids_k, mask_k, tti_k)

            # The scores are the KL of the last step, which depends on alpha and x only: that step's
            # forward through the suffix and its backward cannot change them, so they are skipped.
            last = lambda hidden=hidden, bottleneck=bottleneck: bottleneck.measure(hidden)  # noqa: E731
            results.append(self._optimise(forward, bottleneck, noise, target, indices, last_step=last))
        return torch.stack(results)

    def _per_instance_group(self, ids, mask, tti, target, layers, indices) -> Tensor:
        """The published algorithm for one instance: K copies, forward hook on layer l, full forward per step."""
        with torch.no_grad(), self._autocast():
            states, _ = capture_hidden_states(self.model, ids, mask, tti)
        copies = self.samples
        ids_k, mask_k, tti_k = _repeat(ids, copies), _repeat(mask, copies), _repeat(tti, copies)
        results = []
        for layer in layers:
            bottleneck = self._bottleneck(layer, states, mask)
            noise = self._noise(ids, mask, states[layer + 1].shape[-1])
            current: dict[str, Tensor] = {}
            with replace_after_layer(self.model, layer, lambda x: bottleneck(x, current["eps"])):

                def forward(eps: Tensor) -> Tensor:
                    current["eps"] = eps
                    return full_forward(self.model, ids_k, mask_k, tti_k)

                results.append(self._optimise(forward, bottleneck, noise, target, indices))
        return torch.stack(results)

    def _bottleneck(self, layer: int, states: list[Tensor], mask: Tensor) -> InformationBottleneck:
        mean, std = self._statistics(layer, states, mask)
        return InformationBottleneck(mean, std, mask, hidden_size=states[layer + 1].shape[-1], dtype=self.dtype)

    def _noise(self, ids: Tensor, mask: Tensor, hidden: int) -> _Noise:
        return _Noise(ids, mask, self.samples, hidden, self.seed, self.device, self.dtype)

    def _optimise(
        self,
        forward: Callable[[Tensor], Tensor],  # eps [group*K, tokens, hidden] -> logits [group*K, classes]
        bottleneck: InformationBottleneck,
        noise: _Noise,
        target: Tensor,  # [group]
        indices: list[int],  # input rows of the group, for error messages
        last_step: Callable[[], Any] | None = None,  # computes the KL alone in place of the last step
    ) -> Tensor:  # [group, tokens]
        """Adam on alpha; returns the token information (sum_h KL) of the last step's forward pass.

        Without `last_step` every step runs forward, backward and update, as the published code does.
        """
        optimizer = torch.optim.Adam([bottleneck.alpha], lr=self.lr)
        copies = self.samples
        target_k = target.repeat_interleave(copies)  # [group * K]
        for step in range(self.steps):
            if last_step is not None and step == self.steps - 1:
                last_step()
                self._check_finite(bottleneck.information_loss(), step, indices)
                break
            eps = noise.draw()
            optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                logits = forward(eps)  # [group * K, classes]
            ce = F.cross_entropy(logits.float(), target_k, reduction="none").view(-1, copies).mean(1)  # [group]
            loss = self._loss(ce.to(self.dtype), bottleneck.information_loss())  # [group]
            self._check_finite(loss, step, indices)
            loss.sum().backward()  # summed: each instance gets the gradient it would get alone
            optimizer.step()
        return bottleneck.token_information().detach()

    def _loss(self, ce: Tensor, kl: Tensor) -> Tensor:  # [group]
        """Per-instance loss in the chosen form (see `loss`)."""
        return ce + self.beta * kl if self.loss == "code" else kl + self.beta * ce

    @staticmethod
    def _check_finite(loss: Tensor, step: int, indices: list[int]) -> None:
        """LightningIBAError naming the input rows whose loss is NaN or infinite."""
        finite = torch.isfinite(loss)
        if not bool(finite.all()):
            bad = [indices[i] for i in (~finite).nonzero().flatten().tolist()]
            raise LightningIBAError(
                f"IBA loss is not finite at step {step + 1} for input instances {bad} "
                "(check the estimator's mean/std and beta)"
            )
