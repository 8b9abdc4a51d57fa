"""Degradation test (SPEC §6): remove the highest-scored tokens and watch p(y|x') fall.

All degraded variants of a batch (batch x steps) are built at once with tensor ops, re-padded,
sorted by length and run through the *original* classifier in a few chunked forward passes.

Conventions (documented choices):
- Special tokens ([CLS], [SEP], [PAD], [MASK], ...; `[UNK]` counts as text) and padding are never
  removed or masked.
- `n` counts the removable (non-special, real) tokens by default (`count="removable"`); with
  `count="all"` it counts every real token including the special ones, as the published code does,
  and `round(f*n)` is then capped at the number of removable tokens.
- `round` is round-half-to-even, like Python's `round`.
- Ranking ties are broken by position: the earlier token ranks first, in either order.
- `keep=True` is the sufficiency variant: keep the top `round(f*n)` removable tokens (by `order`)
  and remove all the others.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

import torch
from torch import Tensor, nn

from lightning_iba.errors import LightningIBAError, UnknownNameError

Mode = Literal["delete", "mask"]
Order = Literal["most", "least"]
Count = Literal["removable", "all"]
MODES = ("delete", "mask")
ORDERS = ("most", "least")
COUNTS = ("removable", "all")


def default_fractions(steps: int = 10) -> Tensor:
    """The paper's fractions: linspace(0, 1, 10) = 0, 11 %, 22 %, ..., 100 %."""
    return torch.linspace(0.0, 1.0, steps)


@dataclass(frozen=True)
class SpecialTokens:
    """Token ids the degradation needs: padding, [MASK], and the ids that are never removed."""

    pad_id: int
    mask_id: int | None
    special_ids: tuple[int, ...]

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "SpecialTokens":
        """Special ids of a HF tokenizer, without [UNK] (which stands for real text)."""
        if tokenizer.pad_token_id is None:
            raise LightningIBAError("the tokenizer has no padding token; degradation needs one")
        unk = tokenizer.unk_token_id
        special = tuple(sorted(i for i in set(tokenizer.all_special_ids) if i != unk))
        return cls(pad_id=int(tokenizer.pad_token_id), mask_id=tokenizer.mask_token_id, special_ids=special)

    def removable(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:  # [batch, tokens] bool
        """Real tokens that are not special: the only ones degradation may remove."""
        special = torch.isin(input_ids, torch.tensor(self.special_ids, dtype=input_ids.dtype, device=input_ids.device))
        return attention_mask.bool() & ~special


def check_choice(kind: str, value: str, valid: Sequence[str]) -> None:
    """Raise UnknownNameError unless `value` is one of `valid`."""
    if value not in valid:
        raise UnknownNameError(kind, value, valid)


# --------------------------------------------------------------------------- removing tokens


def remove_tokens(
    input_ids: Tensor,  # [variants, tokens]
    attention_mask: Tensor,  # [variants, tokens]
    token_type_ids: Tensor | None,  # [variants, tokens]
    remove: Tensor,  # [variants, tokens] bool, True = remove this token
    mode: Mode,
    pad_id: int,
    mask_id: int | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Apply a removal mask to each row: delete (close up, re-pad right) or replace by [MASK].

    Returns (input_ids, attention_mask, token_type_ids), trimmed to the longest row in "delete" mode.
    Token types move with their tokens, so segments stay aligned.
    """
    check_choice("degradation mode", mode, MODES)
    remove = remove & attention_mask.bool()
    if mode == "mask":
        if mask_id is None:
            raise LightningIBAError("mode 'mask' needs a [MASK] token; this tokenizer has none")
        return input_ids.masked_fill(remove, mask_id), attention_mask, token_type_ids
    keep = attention_mask.bool() & ~remove  # [V, T]
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices  # kept tokens first, in order
    lengths = keep.sum(1)  # [V]
    width = max(int(lengths.max()), 1) if lengths.numel() else 1
    order = order[:, :width]
    new_mask = (torch.arange(width, device=input_ids.device)[None, :] < lengths[:, None]).to(attention_mask.dtype)
    new_ids = input_ids.gather(1, order).masked_fill(new_mask == 0, pad_id)
    new_types = None if token_type_ids is None else token_type_ids.gather(1, order).masked_fill(new_mask == 0, 0)
    return new_ids, new_mask, new_types


def rank_tokens(scores: Tensor, removable: Tensor, order: Order = "most") -> Tensor:  # [batch, tokens] long
    """Rank of each removable token (0 = removed first); non-removable tokens get rank >= tokens.

    Ties are broken by position (earlier first) through a stable sort.
    """
    check_choice("degradation order", order, ORDERS)
    if not torch.isfinite(scores[removable]).all():
        raise LightningIBAError("attribution scores must be finite at every real token")
    key = -scores.float() if order == "most" else scores.float()
    key = key.masked_fill(~removable, float("inf"))
    idx = torch.sort(key, dim=1, stable=True).indices  # [B, T]
    ranks = torch.empty_like(idx)
    ranks.scatter_(1, idx, torch.arange(idx.shape[1], device=idx.device).expand_as(idx).contiguous())
    return ranks.masked_fill(~removable, idx.shape[1])


def removal_masks(
    scores: Tensor,  # [batch, tokens]
    removable: Tensor,  # [batch, tokens] bool
    attention_mask: Tensor,  # [batch, tokens]
    fractions: Tensor,  # [steps]
    order: Order = "most",
    count: Count = "removable",
    keep: bool = False,
) -> Tensor:  # [batch, steps, tokens] bool
    """Which tokens each degradation step removes (see the module docstring for the rules)."""
    check_choice("token count", count, COUNTS)
    ranks = rank_tokens(scores, removable, order)  # [B, T]
    n_removable = removable.sum(1)  # [B]
    n = n_removable if count == "removable" else attention_mask.bool().sum(1)
    k = torch.round(fractions.to(scores.device, torch.float64)[None, :] * n[:, None].double()).long()  # [B, S]
    k = torch.minimum(k, n_removable[:, None])
    if keep:  # keep the top-k: remove every removable token ranked k or later
        return (ranks[:, None, :] >= k[:, :, None]) & removable[:, None, :]
    return ranks[:, None, :] < k[:, :, None]


def degrade(
    input_ids: Tensor,  # [batch, tokens]
    attention_mask: Tensor,  # [batch, tokens]
    scores: Tensor,  # [batch, tokens]
    special: SpecialTokens,
    token_type_ids: Tensor | None = None,  # [batch, tokens]
    fractions: Tensor | Sequence[float] | None = None,
    mode: Mode = "delete",
    order: Order = "most",
    count: Count = "removable",
    keep: bool = False,
) -> tuple[Tensor, Tensor, Tensor | None]:  # each [batch * steps, tokens'], instance-major
    """All degraded variants of a batch; row `i * steps + s` is instance i at fraction s."""
    fractions = _as_fractions(fractions)
    removable = special.removable(input_ids, attention_mask)
    remove = removal_masks(scores.to(input_ids.device), removable, attention_mask, fractions, order, count, keep)
    steps = fractions.numel()
    flat = remove.flatten(0, 1)  # [B*S, T]
    rep = lambda t: None if t is None else t.repeat_interleave(steps, dim=0)  # noqa: E731
    return remove_tokens(rep(input_ids), rep(attention_mask), rep(token_type_ids), flat, mode, special.pad_id, special.mask_id)


# --------------------------------------------------------------------------- running the model


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    input_ids: Tensor,  # [variants, tokens]
    attention_mask: Tensor,  # [variants, tokens]
    token_type_ids: Tensor | None = None,  # [variants, tokens]
    batch_size: int = 64,
) -> Tensor:  # [variants, classes] float32
    """Softmax probabilities of an HF-style classifier, in length-sorted, re-padded chunks."""
    if input_ids.shape[0] == 0:
        return torch.empty(0, 0)
    device = _device_of(model)
    lengths = attention_mask.sum(1)
    order = torch.argsort(lengths, descending=True, stable=True)
    chunks = []
    for start in range(0, order.numel(), batch_size):
        rows = order[start : start + batch_size]
        cols = attention_mask[rows].bool().any(0)  # drop columns that are padding in every row
        cols[0] = True
        kwargs = {"input_ids": input_ids[rows][:, cols].to(device), "attention_mask": attention_mask[rows][:, cols].to(device)}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids[rows][:, cols].to(device)
        chunks.append(model(**kwargs).logits.float().softmax(-1))
    probs = torch.cat(chunks)
    out = torch.empty_like(probs)
    out[order.to(probs.device)] = probs
    return out


def degradation_curve(
    model: nn.Module,
    input_ids: Tensor,  # [batch, tokens]
    attention_mask: Tensor,  # [batch, tokens]
    target: Tensor,  # [batch]
    scores: Tensor,  # [batch, tokens]
    special: SpecialTokens,
    token_type_ids: Tensor | None = None,  # [batch, tokens]
    fractions: Tensor | Sequence[float] | None = None,
    mode: Mode = "delete",
    order: Order = "most",
    count: Count = "removable",
    keep: bool = False,
    batch_size: int = 64,
) -> Tensor:  # [batch, steps] float32 on CPU: p(target | degraded input)
    """p(y|x') for every instance and fraction, from the original (bottleneck-free) model."""
    fractions = _as_fractions(fractions)
    ids, mask, types = degrade(input_ids, attention_mask, scores, special, token_type_ids, fractions, mode, order, count, keep)
    probs = predict_proba(model, ids, mask, types, batch_size)  # [B*S, C]
    steps = fractions.numel()
    tgt = target.to(probs.device).long().repeat_interleave(steps)
    return probs.gather(1, tgt[:, None]).squeeze(1).view(-1, steps).cpu()


# --------------------------------------------------------------------------- helpers


def _as_fractions(fractions: Tensor | Iterable[float] | None) -> Tensor:  # [steps] float64
    f = default_fractions() if fractions is None else torch.as_tensor(list(fractions) if not isinstance(fractions, Tensor) else fractions)
    f = f.double().flatten()
    if f.numel() == 0 or (f < 0).any() or (f > 1).any():
        raise LightningIBAError("degradation fractions must be a non-empty list of numbers in [0, 1]")
    return f


def _device_of(model: nn.Module) -> torch.device:
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")
