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

from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from lightning_iba.data.tokens import MODES, Mode, SpecialTokens, remove_tokens
from lightning_iba.errors import LightningIBAError, check_choice
from lightning_iba.models.utils import predict_proba

Order = Literal["most", "least"]
Count = Literal["removable", "all"]
ORDERS = ("most", "least")
COUNTS = ("removable", "all")
#: A headline fraction matches a grid fraction when both round to the same whole percent.
HEADLINE_TOLERANCE = 0.005


def fraction_grid(fractions: int | Sequence[float]) -> list[float]:
    """The removal fractions: an int n means linspace(0, 1, n) (n = 10: the paper's 0, 11 %, ..., 100 %)."""
    if isinstance(fractions, bool):
        raise LightningIBAError(f"fractions must be a number of steps or a list of fractions, not {fractions!r}")
    if isinstance(fractions, int):
        if fractions < 2:
            raise LightningIBAError(f"fractions must give at least 2 steps (0 and 1), got {fractions}")
        return torch.linspace(0.0, 1.0, fractions, dtype=torch.float64).tolist()
    grid = [float(f) for f in fractions]
    if len(grid) < 2 or any(not 0.0 <= f <= 1.0 for f in grid) or grid != sorted(set(grid)):
        raise LightningIBAError(f"fractions must be at least 2 increasing numbers in [0, 1], got {list(fractions)}")
    if grid[0] != 0.0:
        raise LightningIBAError(f"fractions must start at 0 (the original input: every drop is measured from it), got {grid}")
    return grid


def headline_index(grid: Sequence[float], headline: float) -> int:
    """Index of the headline fraction (Table 1's drop) on the grid; an error if it is not on it."""
    for i, f in enumerate(grid):
        if abs(float(f) - float(headline)) <= HEADLINE_TOLERANCE:
            return i
    shown = ", ".join(f"{f:.4g}" for f in grid)
    raise LightningIBAError(f"headline fraction {headline:g} is not on the fraction grid [{shown}]; choose one of them or change the fractions")


def headline_name(headline: float) -> str:
    """Column name of the drop at the headline fraction: 0.11 -> "drop_11"."""
    return f"drop_{round(100 * float(headline))}"


def drop_column(columns: Iterable[str], required: bool = True) -> str | None:
    """The headline drop's column among a table's `columns` (e.g. "drop_11", not its "_lo"/"_hi" bounds), read back
    from a written table whose headline is not known; None if absent and not `required`, else an error."""
    columns = [str(c) for c in columns]
    found = next((c for c in columns if c.startswith("drop_") and not c.endswith(("_lo", "_hi"))), None)
    if found is None and required:
        raise LightningIBAError(f"no drop_<percent> column among {', '.join(columns)}")
    return found


@dataclass
class DegradationSettings:
    """How tokens are removed and which fraction Table 1 reports (SPEC §6); `degradation.*` in the configs.

    Args:
        fractions: removal fractions: a number of steps n (linspace(0, 1, n)) or the list itself.
        headline: the fraction Table 1's drop is read at (0.11: the paper's 11 %); must be on the grid.
        mode: "delete" (close up) or "mask" (replace by [MASK]) the removed tokens.
        order: remove the "most" or the "least" important tokens first.
        count: what n in round(f * n) counts: "removable" tokens, or "all" real tokens with [CLS]/[SEP]
            as the published code does.
        sufficiency: also compute the keep-only-the-top-tokens curves (ERASER sufficiency).
    """

    fractions: int | list[float] = 10
    headline: float = 0.11
    mode: str = "delete"
    order: str = "most"
    count: str = "removable"
    sufficiency: bool = True

    def __post_init__(self) -> None:
        check_choice("degradation mode", self.mode, MODES)
        check_choice("degradation order", self.order, ORDERS)
        check_choice("token count", self.count, COUNTS)
        headline_index(self.grid, self.headline)

    @property
    def grid(self) -> list[float]:
        return fraction_grid(self.fractions)

    @property
    def headline_step(self) -> int:
        return headline_index(self.grid, self.headline)

    @property
    def headline_name(self) -> str:
        return headline_name(self.headline)


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
    return degraded_inputs(input_ids, attention_mask, token_type_ids, remove, special, mode)


def degraded_inputs(
    input_ids: Tensor,  # [batch, tokens]
    attention_mask: Tensor,  # [batch, tokens]
    token_type_ids: Tensor | None,  # [batch, tokens]
    remove: Tensor,  # [batch, steps, tokens] bool
    special: SpecialTokens,
    mode: Mode = "delete",
) -> tuple[Tensor, Tensor, Tensor | None]:  # each [batch * steps, tokens'], instance-major
    """The inputs with each step's pieces removed (deleted and re-padded, or masked)."""
    steps = remove.shape[1]
    rep = lambda t: None if t is None else t.repeat_interleave(steps, dim=0)  # noqa: E731
    return remove_tokens(rep(input_ids), rep(attention_mask), rep(token_type_ids), remove.flatten(0, 1).to(input_ids.device),
                         mode, special.pad_id, special.mask_id)


# --------------------------------------------------------------------------- running the model


def word_removal_masks(
    scores: Tensor,  # [batch, tokens]
    words: Tensor,  # [batch, tokens] long: each piece's whitespace word, -1 for special tokens and padding
    removable: Tensor,  # [batch, tokens] bool
    fractions: Tensor,  # [steps]
    keep: bool = False,
    aggregation: str = "sum",
) -> Tensor:  # [batch, steps, tokens] bool
    """ERASER's bins in its own unit, whole words: which pieces each step removes when the top ceil(f * n) of the
    n words in the input go (every piece of a chosen word; with `keep`, every removable piece of the others).
    A word's score aggregates its pieces' (data.rationales.word_scores: sum, max or mean); ties go to the earlier
    word. ceil(f * n) is taken after rounding f * n to 6 decimals, so that 0.1 * 30 is 3 words, not 4."""
    from lightning_iba.data.rationales import word_scores  # data -> evaluation, not the other way round

    masks = torch.zeros(scores.shape[0], fractions.numel(), scores.shape[1], dtype=torch.bool)
    for b in range(scores.shape[0]):
        w = words[b].cpu().numpy()
        real = w >= 0
        if not real.any():
            continue
        present, inverse = np.unique(w[real], return_inverse=True)  # the words in the input (a truncated text: the first ones)
        dense = torch.as_tensor(w).clone()
        dense[torch.as_tensor(real)] = torch.as_tensor(inverse)  # 0..n-1 in text order
        per_word = torch.as_tensor(word_scores(scores[b].detach().double().cpu().numpy(), dense.numpy(), len(present), aggregation))
        if not torch.isfinite(per_word).all():
            raise LightningIBAError("attribution scores must be finite at every word")
        rank = torch.empty(len(present), dtype=torch.long)
        rank[torch.sort(-per_word, stable=True).indices] = torch.arange(len(present))
        piece_rank = torch.where(dense >= 0, rank[dense.clamp(min=0)], len(present))  # [tokens]
        k = torch.ceil(torch.round(fractions.double().cpu() * len(present), decimals=6)).long()  # [steps]
        chosen = piece_rank[None, :] < k[:, None]  # [steps, tokens]
        masks[b] = (~chosen & removable[b].cpu()[None, :]) if keep else (chosen & removable[b].cpu()[None, :])
    return masks.to(scores.device)


def masked_curve(
    model: nn.Module,
    input_ids: Tensor,  # [batch, tokens]
    attention_mask: Tensor,  # [batch, tokens]
    target: Tensor,  # [batch]
    remove: Tensor,  # [batch, steps, tokens] bool: the pieces each step removes
    special: SpecialTokens,
    token_type_ids: Tensor | None = None,  # [batch, tokens]
    mode: Mode = "delete",
    batch_size: int = 64,
) -> Tensor:  # [batch, steps] float32 on CPU: p(target | degraded input)
    """p(y|x') of every instance with the pieces of each step's mask removed, from the original model."""
    steps = remove.shape[1]
    ids, mask, types = degraded_inputs(input_ids, attention_mask, token_type_ids, remove, special, mode)
    probs = predict_proba(model, ids, mask, types, batch_size)  # [B*S, C]
    tgt = target.to(probs.device).long().repeat_interleave(steps)
    return probs.gather(1, tgt[:, None]).squeeze(1).view(-1, steps).cpu()


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
    removable = special.removable(input_ids, attention_mask)
    remove = removal_masks(scores.to(input_ids.device), removable, attention_mask, fractions, order, count, keep)
    return masked_curve(model, input_ids, attention_mask, target, remove, special, token_type_ids, mode, batch_size)


# --------------------------------------------------------------------------- helpers


def _as_fractions(fractions: Tensor | Iterable[float] | None) -> Tensor:  # [steps] float64
    f = torch.tensor(DegradationSettings().grid) if fractions is None else torch.as_tensor(list(fractions) if not isinstance(fractions, Tensor) else fractions)
    f = f.double().flatten()
    if f.numel() == 0 or (f < 0).any() or (f > 1).any():
        raise LightningIBAError("degradation fractions must be a non-empty list of numbers in [0, 1]")
    return f
