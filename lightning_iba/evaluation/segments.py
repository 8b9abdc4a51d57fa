"""Where in a sentence pair each method's top tokens lie: the share of the tokens the degradation test removes at the
headline fraction that lie in the second text (the hypothesis of MNLI and RTE), and the share that also occur in the
other text (word pieces the premise and the hypothesis share).

Why: on sentence pairs the methods differ most on one class (entailment; README "Within each gold label"), and
where a method looks, premise or hypothesis, overlapping words or not, is the first thing to know to understand why.
The shares are per instance, so the report gives them the same paired bootstrap as the drops (evaluation.intervals),
over all instances and within each gold label (evaluation.strata). They are computed from the scores the run stored
(`store_scores`), with the degradation test's own ranking and token count, so they describe the tokens it removed.
"""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd
import torch

from lightning_iba.data.tokens import SpecialTokens
from lightning_iba.errors import LightningIBAError
from lightning_iba.evaluation.degradation import DegradationSettings, removal_masks

#: the pseudo-method of the shares over every removable token: what a method that picks tokens at random gets on average
ALL_TOKENS = "(all tokens)"
SHARES = ("second_text", "shared")


def segment_values(records: Sequence[dict[str, Any]], methods: Sequence[str], special: SpecialTokens,
                   degradation: DegradationSettings) -> pd.DataFrame:
    """Per method (and ALL_TOKENS) and instance: index (method, id), columns second_text (the share of the tokens removed
    at the headline fraction that lie after the first separator) and shared (the share of them whose word piece also
    occurs in the other text). Needs the records' input_ids and scores. An instance too short for the headline fraction
    to remove a token (round(f * n) = 0) has no share for any method and is left out."""
    lacking = [r["index"] for r in records if not has_scores(r)]
    if not records or lacking:
        raise LightningIBAError(f"where the top tokens lie needs the token ids and scores in every record (store_scores true); "
                                f"{len(lacking)} of {len(records)} instances have none, e.g. {lacking[:5]}")
    rows: dict[str, list[tuple[int, float, float]]] = {m: [] for m in (*methods, ALL_TOKENS)}
    fraction = torch.tensor([degradation.grid[degradation.headline_step]], dtype=torch.float64)  # the grid point the drop is read at
    for r in records:
        ids = torch.tensor(r["input_ids"]).unsqueeze(0)  # [1, tokens]: the stored ids are the real tokens, no padding
        mask = torch.ones_like(ids)
        removable = special.removable(ids, mask)[0]  # [tokens]
        second, shared = _layout(ids[0], removable)
        rows[ALL_TOKENS].append((r["index"], *_shares(removable, second, shared)))
        for m in methods:
            if len(r["scores"][m]) != ids.shape[1]:
                raise LightningIBAError(f"instance {r['index']}: {m} has {len(r['scores'][m])} scores for {ids.shape[1]} tokens")
            scores = torch.tensor(r["scores"][m], dtype=torch.float64).unsqueeze(0)  # [1, tokens]
            removed = removal_masks(scores, removable.unsqueeze(0), mask, fraction, degradation.order, degradation.count)[0, 0]
            rows[m].append((r["index"], *_shares(removed, second, shared)))
    frames = [pd.DataFrame(v, columns=["id", *SHARES]).assign(method=m) for m, v in rows.items()]
    values = pd.concat(frames, ignore_index=True).set_index(["method", "id"]).astype("float64")
    empty = values.index.get_level_values("id")[values.isna().any(axis=1)].unique()
    return values[~values.index.get_level_values("id").isin(empty)]


def has_scores(record: dict[str, Any]) -> bool:
    """Whether the record holds its token ids and every method's scores (store_scores true when it was computed)."""
    return "input_ids" in record and "scores" in record


def _layout(ids: torch.Tensor, removable: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[tokens] bool twice: in the second text (after the second-to-last special token: [CLS] A [SEP] B [SEP], so that
    a special token written inside A does not move the boundary), and a word piece that also occurs in the other text."""
    separators = torch.nonzero(~removable).flatten()
    separators = separators[separators > 0]
    if len(separators) < 2:
        raise LightningIBAError("an input with fewer than two separators is not a sentence pair")
    second = torch.zeros_like(removable)
    second[int(separators[-2]) + 1:] = True
    second &= removable
    first = removable & ~second
    in_first, in_second = set(ids[first].tolist()), set(ids[second].tolist())
    both = torch.tensor([t in in_first and t in in_second for t in ids.tolist()], dtype=torch.bool) & removable
    return second, both


def _shares(chosen: torch.Tensor, second: torch.Tensor, shared: torch.Tensor) -> tuple[float, float]:
    n = int(chosen.sum())
    if n == 0:
        return float("nan"), float("nan")
    return float((chosen & second).sum()) / n, float((chosen & shared).sum()) / n
