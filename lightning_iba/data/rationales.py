"""Word pieces <-> whitespace words, for tasks with human rationales (ERASER: one 0/1 per whitespace token).

A text of such a task is its words joined by single spaces; a rationale marks words. The model sees word
pieces: `piece_words` maps each piece of an encoding to the word it comes from (through the fast
tokenizer's character offsets, which work for any pre-tokenisation: BERT splits "n't" into three pieces
of one whitespace word), `piece_mask` carries a word mask to the pieces, and `word_scores` aggregates
piece scores back to words:

- `sum` (the default): a word's score is the sum of its pieces' scores. IBA's scores are information in
  nats, additive over tokens, so a word carries the information of all its pieces; the gradient and
  occlusion methods' scores are additive attributions too.
- `max`: the largest piece score.
- `mean`: the mean piece score (a long word is not favoured for having many pieces).

Words without any piece in the encoding (beyond a truncated input's end, or dropped by the tokenizer)
get NaN: they were not seen.

Long texts: `window_starts` places windows of a fixed number of pieces over a whole text, the first at
0, each next `stride` pieces on, the last ending with the text.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from lightning_iba.errors import LightningIBAError, check_choice

AGGREGATIONS = ("sum", "max", "mean")
_WORD = re.compile(r"\S+")


def word_spans(text: str) -> list[tuple[int, int]]:
    """The [start, end) character span of every whitespace word of `text`, in order."""
    return [m.span() for m in _WORD.finditer(text)]


def char_words(text: str) -> np.ndarray:  # [len(text)] int: the word of each character, -1 for whitespace
    """The index of the whitespace word each character of `text` belongs to (-1 between words)."""
    out = np.full(len(text), -1, dtype=np.int64)
    for i, (start, end) in enumerate(word_spans(text)):
        out[start:end] = i
    return out


def piece_words(text: str, offsets: Sequence[Sequence[int]]) -> np.ndarray:  # [pieces] int, -1 = special
    """The whitespace word of each piece, from the piece's character offsets into `text` ((0, 0) for
    [CLS], [SEP] and padding: -1). A piece whose span starts on a space (tokenizers that keep a leading
    space in the offsets) belongs to the first word inside its span."""
    chars = char_words(text)
    out = np.full(len(offsets), -1, dtype=np.int64)
    for i, (start, end) in enumerate(offsets):
        if end <= start:
            continue
        inside = chars[start:end]
        inside = inside[inside >= 0]
        if inside.size:
            out[i] = inside[0]
    return out


def encode_words(tokenizer: Any, text: str, max_length: int | None = None) -> tuple[list[int], np.ndarray]:
    """input_ids of `text` (with the special tokens; truncated to `max_length` when given, as
    evaluate.py encodes) and the whitespace word of each of them (-1 for the special tokens)."""
    if not getattr(tokenizer, "is_fast", False):
        raise LightningIBAError("mapping word pieces to words needs a fast tokenizer (character offsets)")
    enc = tokenizer(text, truncation=max_length is not None, max_length=max_length, return_offsets_mapping=True, verbose=False)
    return list(enc["input_ids"]), piece_words(text, enc["offset_mapping"])


def piece_mask(word_mask: Sequence[int] | np.ndarray, words: np.ndarray) -> np.ndarray:  # [pieces] bool
    """A word mask carried to the pieces: a piece is marked when its word is (special tokens never)."""
    mask = np.asarray(word_mask, dtype=bool)
    words = np.asarray(words)
    out = np.zeros(len(words), dtype=bool)
    real = words >= 0
    out[real] = mask[words[real]]
    return out


def word_mask(pieces: Sequence[int] | np.ndarray, words: np.ndarray, n_words: int) -> np.ndarray:  # [n_words] bool
    """A piece mask carried back to the words: a word is marked when any of its pieces is."""
    pieces = np.asarray(pieces, dtype=bool)
    words = np.asarray(words)
    out = np.zeros(n_words, dtype=bool)
    out[words[(words >= 0) & pieces]] = True
    return out


def word_scores(scores: Sequence[float] | np.ndarray, words: np.ndarray, n_words: int, aggregation: str = "sum") -> np.ndarray:
    """[n_words] float: each word's score aggregated from its pieces' `scores` (`aggregation`: sum, max or
    mean; see the module docstring); NaN for a word without pieces. `words` is `piece_words` of the same
    pieces (-1: not a word, ignored)."""
    check_choice("aggregation", aggregation, AGGREGATIONS)
    scores = np.asarray(scores, dtype=np.float64)
    words = np.asarray(words)
    if scores.shape != words.shape:
        raise LightningIBAError(f"{scores.shape[0]} scores for {words.shape[0]} pieces")
    real = words >= 0
    w, s = words[real], scores[real]
    counts = np.bincount(w, minlength=n_words).astype(np.float64)
    if aggregation == "max":
        out = np.full(n_words, -np.inf)
        np.maximum.at(out, w, s)
    else:
        out = np.bincount(w, weights=s, minlength=n_words).astype(np.float64)
        if aggregation == "mean":
            out = np.divide(out, counts, out=np.zeros_like(out), where=counts > 0)
    out[counts == 0] = np.nan
    return out


def window_starts(n_pieces: int, size: int, stride: int) -> list[int]:
    """Start offsets of the windows of `size` pieces over `n_pieces` pieces: 0, stride, 2 stride, ...,
    and a last one ending with the text (one window when the text fits). `stride` <= `size` leaves no gap."""
    if size < 1 or not 1 <= stride <= size:
        raise LightningIBAError(f"window stride must be between 1 and the window's {size} pieces, got {stride}")
    if n_pieces <= size:
        return [0]
    starts = list(range(0, n_pieces - size, stride))
    return starts + [n_pieces - size]


def special_layout(tokenizer: Any) -> tuple[int, int]:
    """How many special tokens a single text gets before and after its pieces ([CLS] x [SEP]: 1, 1)."""
    mask = list(tokenizer("a", return_special_tokens_mask=True)["special_tokens_mask"])
    if 0 not in mask:
        raise LightningIBAError("cannot tell where the tokenizer puts its special tokens")
    before = mask.index(0)
    after = mask[::-1].index(0)
    return before, after
