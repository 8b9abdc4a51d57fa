"""Plausibility of attributions against human rationales, by ERASER's definitions (DeYoung et al. 2020).

Pure functions over one instance's arrays at ERASER's token level (whitespace words): `scores` (a
method's word scores, higher = more important) and `gold` (the human 0/1 mask), both over the words the
model saw, and `evidence`, the human spans as [start, end) positions into those arrays.

- Token precision / recall / F1 of the top-k words (`top_k_prf`): k = the instance's number of
  rationale words (then P = R = F1), or a fixed fraction of its words (`fraction_k`). These are
  ERASER's "instance_macro" token scores: per instance, then averaged over instances.
- IOU F1 (`iou_counts`): the top-k words (k = the number of rationale words) as contiguous spans; a
  predicted span is a true positive when its best IOU with a gold span is at least the threshold
  (0.5); ERASER's micro P/R/F1 over the instances: P = sum TP / sum predicted spans, R = sum TP / sum
  gold spans (`micro_f1`). As in ERASER's code, TP counts predicted spans, so two predicted spans may
  both match one gold span.
- AUPRC (`auprc`): ERASER's `auc(recall, precision)` of the precision-recall curve of the soft scores
  (trapezoidal, from the point (recall 0, precision 1)), per instance. `average_precision` is the
  step-wise area (sklearn's average_precision_score), reported beside it.

- Comprehensiveness / sufficiency (`eraser_faithfulness`): ERASER's AOPC over the bins {1, 5, 10, 20,
  50} %: the mean over the bins of p(y|x) - p(y|x without its top-b tokens), and of p(y|x) - p(y|only
  its top-b tokens). The tokens are ERASER's, whole words (`bin_unit` "word": the top ceil(b * n) of the n
  words in the truncated input, ranked by their aggregated scores; degradation.word_removal_masks), or word
  pieces as the degradation test counts them ("piece"); y is the class the run explains, as in the degradation
  test: the gold label, or with `target` predicted ERASER's choice, the predicted class.

Ties among scores are broken by position (the earlier word first), as in the degradation test.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from lightning_iba.data.rationales import AGGREGATIONS
from lightning_iba.errors import LightningIBAError, check_choice

#: ERASER's comprehensiveness / sufficiency bins (fractions of the tokens removed / kept).
ERASER_BINS = (0.01, 0.05, 0.1, 0.2, 0.5)
BIN_UNITS = ("word", "piece")


@dataclass
class PlausibilitySettings:
    """Plausibility against human rationales, for tasks that have them (eraser_movies): `plausibility.*`.

    Args:
        aggregation: a word's score from its word pieces' scores: sum (IBA's information is additive over
            tokens), max or mean. With bin_unit "word" it also ranks the words ERASER's bins remove, so it is
            part of the run (a resume with another is refused); with "piece", reporting only.
        top_fraction: the fixed-fraction variant of the token F1: the top `top_fraction` of the words seen
            (at least one). Reporting only.
        iou_threshold: a predicted span matches a gold span at IOU >= this (ERASER: 0.5). Reporting only.
        bins: fractions of ERASER's comprehensiveness and sufficiency (their AOPC over the bins), from an
            extra degradation pass of the same (truncated) input, on tasks with rationales only.
        bin_unit: what a bin counts: "word" (ERASER's unit: the top ceil(f * n) of the n whitespace words in the
            input go whole, ranked by their aggregated scores, so `aggregation` then also decides the run) or
            "piece" (round(f * n) word pieces, as the degradation test counts).
        window_stride: null: plausibility over the words within max_length (the share of rationale words
            seen is reported); a number S: also score windows of max_length tokens every S word pieces over
            the whole text, each piece's scores averaged over the windows that hold it. The degradation
            test stays on the truncated input.
    """

    aggregation: str = "sum"
    top_fraction: float = 0.1
    iou_threshold: float = 0.5
    bins: list[float] = field(default_factory=lambda: list(ERASER_BINS))
    bin_unit: str = "word"
    window_stride: int | None = None

    def __post_init__(self) -> None:
        check_choice("plausibility aggregation", self.aggregation, AGGREGATIONS)
        check_choice("plausibility bin unit", self.bin_unit, BIN_UNITS)
        if not 0.0 < float(self.top_fraction) <= 1.0:
            raise LightningIBAError(f"plausibility.top_fraction must be in (0, 1], got {self.top_fraction!r}")
        if not 0.0 < float(self.iou_threshold) <= 1.0:
            raise LightningIBAError(f"plausibility.iou_threshold must be in (0, 1], got {self.iou_threshold!r}")
        bins = [float(b) for b in self.bins]
        if not bins or any(not 0.0 < b < 1.0 for b in bins) or bins != sorted(set(bins)):
            raise LightningIBAError(f"plausibility.bins must be increasing fractions strictly between 0 and 1, got {list(self.bins)}")
        self.bins = bins
        if self.window_stride is not None and (isinstance(self.window_stride, bool) or int(self.window_stride) < 1):
            raise LightningIBAError(f"plausibility.window_stride must be a positive number of word pieces (or null), got {self.window_stride!r}")

    @property
    def fraction_name(self) -> str:
        """The suffix of the fixed-fraction columns: 0.1 -> "10" (token_f1_10)."""
        return f"{100 * float(self.top_fraction):g}".replace(".", "_")

    def identity(self) -> dict:
        """The settings that change what a run computes (the rest only change the report)."""
        words = {"aggregation": self.aggregation} if self.bin_unit == "word" else {}  # it ranks the words of the bins
        return {"bins": list(self.bins), "bin_unit": self.bin_unit, **words, "window_stride": self.window_stride}

    def reporting(self) -> dict:
        words = {} if self.bin_unit == "word" else {"aggregation": self.aggregation}
        return {**words, "top_fraction": self.top_fraction, "iou_threshold": self.iou_threshold}


# ---------------------------------------------------------------- selections and spans


def top_k(scores: Sequence[float] | np.ndarray, k: int) -> np.ndarray:  # [n] bool
    """The `k` highest scores (ties: the earlier position first)."""
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="stable")
    out = np.zeros(len(s), dtype=bool)
    out[order[: max(0, int(k))]] = True
    return out


def fraction_k(n: int, fraction: float) -> int:
    """round(fraction * n) (round half to even, as the degradation test counts), at least 1."""
    return max(1, round(float(fraction) * int(n)))


def prf(selected: np.ndarray, gold: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and F1 of a selection against a gold mask (0 where undefined)."""
    selected, gold = np.asarray(selected, dtype=bool), np.asarray(gold, dtype=bool)
    tp = float((selected & gold).sum())
    p = tp / selected.sum() if selected.any() else 0.0
    r = tp / gold.sum() if gold.any() else 0.0
    return p, r, f1(p, r)


def f1(p: float, r: float) -> float:
    return 0.0 if p == 0 or r == 0 else 2 * p * r / (p + r)


def top_k_prf(scores: np.ndarray, gold: np.ndarray, k: int | None = None) -> tuple[float, float, float]:
    """Token P/R/F1 of the top-k words (default k: the number of rationale words)."""
    gold = np.asarray(gold, dtype=bool)
    return prf(top_k(scores, int(gold.sum()) if k is None else k), gold)


def spans(mask: Sequence[int] | np.ndarray) -> list[tuple[int, int]]:
    """The contiguous runs of a 0/1 mask as [start, end) spans."""
    m = np.concatenate([[0], np.asarray(mask, dtype=np.int8), [0]])
    edges = np.flatnonzero(np.diff(m))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Intersection over union of two [start, end) spans."""
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def iou_counts(predicted: Sequence[tuple[int, int]], gold: Sequence[tuple[int, int]], threshold: float = 0.5) -> tuple[int, int, int]:
    """(true positives, predicted spans, gold spans): a predicted span is a true positive when its best
    IOU with any gold span is >= `threshold` (ERASER's partial match)."""
    tp = sum(1 for p in predicted if max((iou(p, g) for g in gold), default=0.0) >= threshold)
    return tp, len(predicted), len(gold)


def micro_f1(tp, n_predicted, n_gold):
    """ERASER's micro P, R and F1 from true positives and span counts (summed or averaged over
    instances: the ratios are the same). Works elementwise on arrays."""
    tp, n_predicted, n_gold = (np.asarray(x, dtype=np.float64) for x in (tp, n_predicted, n_gold))
    p = np.divide(tp, n_predicted, out=np.zeros_like(tp), where=n_predicted > 0)
    r = np.divide(tp, n_gold, out=np.zeros_like(tp), where=n_gold > 0)
    f = np.divide(2 * p * r, p + r, out=np.zeros_like(tp), where=(p > 0) & (r > 0))
    return p, r, f


# ---------------------------------------------------------------- soft scores


def precision_recall_points(scores: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at every distinct score threshold, highest threshold first (sklearn's
    precision_recall_curve without its final (precision 1, recall 0) point)."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(gold, dtype=bool)
    if not y.any():
        raise LightningIBAError("a precision-recall curve needs at least one rationale word")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last position of each distinct score
    tps = np.cumsum(y)[last].astype(np.float64)
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return precision, recall


def auprc(scores: np.ndarray, gold: np.ndarray) -> float:
    """ERASER's AUPRC: the trapezoidal area under the precision-recall curve, from (recall 0, precision 1)."""
    precision, recall = precision_recall_points(scores, gold)
    x = np.r_[0.0, recall]
    y = np.r_[1.0, precision]
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def average_precision(scores: np.ndarray, gold: np.ndarray) -> float:
    """Average precision: sum over thresholds of (recall gained) x precision (sklearn's definition)."""
    precision, recall = precision_recall_points(scores, gold)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


# ---------------------------------------------------------------- one instance


def instance_metrics(scores: np.ndarray, gold: np.ndarray, evidence: Sequence[tuple[int, int]] | None = None,
                     top_fraction: float = 0.1, iou_threshold: float = 0.5, suffix: str = "10") -> dict[str, float]:
    """Every plausibility value of one instance and method (needs at least one rationale word).

    Keys: token_precision, token_recall, token_f1 (top-k, k = rationale words), token_precision_<suffix>,
    token_recall_<suffix>, token_f1_<suffix> (top `top_fraction` of the words), iou_tp, iou_predicted,
    iou_gold (the counts of ERASER's micro IOU F1; gold spans: `evidence`, else the runs of `gold`),
    auprc and average_precision.
    """
    scores = np.asarray(scores, dtype=np.float64)
    gold = np.asarray(gold, dtype=bool)
    if scores.shape != gold.shape:
        raise LightningIBAError(f"{scores.shape[0]} word scores for {gold.shape[0]} words")
    if not gold.any():
        raise LightningIBAError("plausibility needs at least one rationale word")
    selected = top_k(scores, int(gold.sum()))
    p, r, f = prf(selected, gold)
    pf, rf, ff = prf(top_k(scores, fraction_k(len(scores), top_fraction)), gold)
    tp, n_pred, n_gold = iou_counts(spans(selected), list(evidence) if evidence is not None else spans(gold), iou_threshold)
    return {
        "token_precision": p, "token_recall": r, "token_f1": f,
        f"token_precision_{suffix}": pf, f"token_recall_{suffix}": rf, f"token_f1_{suffix}": ff,
        "iou_tp": float(tp), "iou_predicted": float(n_pred), "iou_gold": float(n_gold),
        "auprc": auprc(scores, gold), "average_precision": average_precision(scores, gold),
    }


def eraser_faithfulness(original: float, removed: Sequence[float], kept: Sequence[float] | None) -> dict[str, float]:
    """ERASER's comprehensiveness and sufficiency of one instance, as AOPC over the bins: the mean over the
    bins of p(y|x) - p(y|x without its top-b tokens), and of p(y|x) - p(y|only its top-b tokens)."""
    out = {"comprehensiveness_aopc": float(np.mean(original - np.asarray(removed, dtype=np.float64)))}
    if kept is not None:
        out["sufficiency_aopc"] = float(np.mean(original - np.asarray(kept, dtype=np.float64)))
    return out
