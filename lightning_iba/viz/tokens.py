"""Preparing tokens and scores for display: drop padding, normalise, join word pieces."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from lightning_iba.errors import LightningIBAError

ScoreLike = Tensor | np.ndarray | Sequence[float]


def as_array(scores: ScoreLike) -> np.ndarray:  # [tokens] or [rows, tokens] float64
    """Scores as a float64 numpy array, whatever they came as."""
    if isinstance(scores, Tensor):
        return scores.detach().cpu().double().numpy()
    return np.asarray(scores, dtype=np.float64)


def check_lengths(tokens: Sequence[str], scores: np.ndarray) -> None:
    if scores.shape[-1] != len(tokens):
        raise LightningIBAError(f"{len(tokens)} tokens but {scores.shape[-1]} scores")


def real_tokens(tokenizer, input_ids: Tensor, scores: ScoreLike, attention_mask: Tensor | None = None) -> tuple[list[str], np.ndarray]:
    """One instance's tokens (strings) and scores with padding removed."""
    ids = torch.as_tensor(input_ids).cpu()
    keep = torch.ones_like(ids, dtype=torch.bool) if attention_mask is None else torch.as_tensor(attention_mask).cpu().bool()
    values = as_array(scores)[keep.numpy()]
    return tokenizer.convert_ids_to_tokens(ids[keep].tolist()), values


def minmax(scores: ScoreLike) -> np.ndarray:
    """Min-max normalise to [0, 1] along the last axis (the display convention of SPEC §1);
    a constant row maps to 0."""
    s = as_array(scores)
    lo, hi = s.min(axis=-1, keepdims=True), s.max(axis=-1, keepdims=True)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    return np.where(hi - lo > 0, (s - lo) / span, 0.0)


def maxabs(scores: ScoreLike) -> np.ndarray:
    """Signed scores scaled into [-1, 1] by their largest magnitude (for IG, LIME, ...)."""
    s = as_array(scores)
    top = np.abs(s).max(axis=-1, keepdims=True)
    return np.where(top > 0, s / np.where(top > 0, top, 1.0), 0.0)


def join_word_pieces(tokens: Sequence[str], prefix: str = "##") -> list[tuple[str, bool]]:
    """(display text, starts a new word) per token: "##ing" shows as "ing" glued to the previous piece."""
    out = []
    for i, token in enumerate(tokens):
        continues = i > 0 and token.startswith(prefix) and len(token) > len(prefix)
        out.append((token[len(prefix):] if continues else token, not continues))
    return out
