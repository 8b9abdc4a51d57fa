"""Summary numbers and curves from degradation results (SPEC §6: Table 1, Figures 1, 2, 4, 5).

Data model: one long DataFrame, one row per (method, instance, step), with columns

    method    str    attribution method, or any sweep label ("layer 8", "beta 1e-05"): see `by`
    id        int    instance id (unique within a method)
    label     int    the target class y explained and scored (NA if unknown)
    step      int    0 .. steps-1
    fraction  float  fraction of the removable tokens removed (or kept, for a "keep" frame)
    prob      float  p(y | x') from the original model

A "remove" frame comes from `degradation_curve(..., keep=False)` (step 0 = the original input); a
"keep" frame from `keep=True` (the last step, fraction 1, = the original input). Every function
takes `by`, the grouping column, so the same code serves methods and sweeps.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from lightning_iba.errors import LightningIBAError
from lightning_iba.evaluation.degradation import headline_index, headline_name

COLUMNS = ("method", "id", "label", "step", "fraction", "prob")


def curves_frame(
    method: str,
    probs: Tensor | np.ndarray,  # [n, steps]
    fractions: Tensor | Sequence[float] | None,  # [steps]
    ids: Sequence[int] | None = None,  # [n]
    labels: Tensor | Sequence[int] | None = None,  # [n]
) -> pd.DataFrame:
    """Long frame (columns COLUMNS) from one method's per-instance curves."""
    p = torch.as_tensor(probs).detach().cpu().double().numpy()
    if p.ndim != 2:
        raise LightningIBAError(f"probability curves must be [instances, steps], got shape {tuple(p.shape)}")
    n, steps = p.shape
    if fractions is None:
        raise LightningIBAError("curves_frame needs the fractions of the degradation steps")
    f = torch.as_tensor(fractions).double().cpu().numpy().ravel()
    if f.shape[0] != steps:
        raise LightningIBAError(f"{f.shape[0]} fractions for {steps} degradation steps")
    ids_ = np.arange(n) if ids is None else np.asarray(list(ids))
    lab = pd.array([pd.NA] * n if labels is None else torch.as_tensor(labels).cpu().tolist(), dtype="Int64")
    return pd.DataFrame(
        {
            "method": method,
            "id": np.repeat(ids_, steps),
            "label": np.repeat(lab, steps),
            "step": np.tile(np.arange(steps), n),
            "fraction": np.tile(f, n),
            "prob": p.ravel(),
        }
    )


def mean_curves(frame: pd.DataFrame, by: str = "method") -> pd.DataFrame:
    """Mean p(y|x') per group and step: columns [by, step, fraction, prob]."""
    _check(frame, by)
    return frame.groupby([by, "step"], sort=False).agg(fraction=("fraction", "first"), prob=("prob", "mean")).reset_index()


def original_probability(frame: pd.DataFrame, by: str = "method") -> pd.Series:
    """o: the mean original probability per group (step 0 of a remove frame)."""
    return _wide(frame, by).groupby(level=0).apply(lambda w: w[0].mean()).rename("o")


def headline_step(frame: pd.DataFrame, headline: float) -> int:
    """The step whose fraction is the headline fraction (an error if no step is)."""
    per_step = frame.groupby("step")["fraction"].first().sort_index()
    return int(per_step.index[headline_index(per_step.tolist(), headline)])


def absolute_drop(frame: pd.DataFrame, headline: float, by: str = "method") -> pd.Series:
    """Table 1: o - mean p(y|x') at the headline fraction (the paper's 11 %)."""
    wide, step = _wide(frame, by), headline_step(frame, headline)
    return wide.groupby(level=0).apply(lambda w: w[0].mean() - w[step].mean()).rename("drop")


def normalised_curves(frame: pd.DataFrame, by: str = "method") -> pd.DataFrame:
    """Figure 1: d_k = (p_k - m) / (o - m), with p_k the mean curve, o its step 0 and m the smallest
    fully-degraded (last-step) mean over the groups compared. Columns [by, step, fraction, prob, normalised]."""
    curves = mean_curves(frame, by)
    last = curves.groupby(by, sort=False)["step"].transform("max") == curves["step"]
    m = curves.loc[last, "prob"].min()
    o = curves[by].map(curves[curves["step"] == 0].set_index(by)["prob"])
    denom = (o - m).where((o - m).abs() > 1e-12, np.nan)
    return curves.assign(normalised=(curves["prob"] - m) / denom)


def aopc(frame: pd.DataFrame, by: str = "method") -> pd.Series:
    """Area over the perturbation curve (Samek et al. 2017): mean over instances and over *all*
    steps k = 0..L (step 0 included, contributing 0) of p_0 - p_k."""
    wide = _wide(frame, by)
    return wide.groupby(level=0).apply(lambda w: w.rsub(w[0], axis=0).to_numpy().mean()).rename("aopc")


def comprehensiveness(frame: pd.DataFrame, by: str = "method", fractions: Sequence[float] | None = None) -> pd.Series:
    """ERASER comprehensiveness from a remove-most frame: mean over instances and over the chosen
    fractions (default: every step with 0 < f < 1, in place of ERASER's 1/5/10/20/50 % bins) of
    p(y|x) - p(y|x without its top-f tokens)."""
    wide, steps = _wide(frame, by), _steps(frame, fractions)
    return wide.groupby(level=0).apply(lambda w: w[steps].rsub(w[0], axis=0).to_numpy().mean()).rename("comprehensiveness")


def sufficiency(keep_frame: pd.DataFrame, by: str = "method", fractions: Sequence[float] | None = None) -> pd.Series:
    """ERASER sufficiency from a keep frame (`degradation_curve(..., keep=True)`): mean over
    instances and chosen fractions (default 0 < f < 1) of p(y|x) - p(y|only its top-f tokens),
    with p(y|x) read at the fraction-1 step (everything kept). Lower = more sufficient."""
    full = _steps(keep_frame, [1.0])
    wide, steps = _wide(keep_frame, by), _steps(keep_frame, fractions)
    return wide.groupby(level=0).apply(lambda w: w[steps].rsub(w[full[0]], axis=0).to_numpy().mean()).rename("sufficiency")


def instance_values(
    frame: pd.DataFrame, keep_frame: pd.DataFrame | None = None, by: str = "method", headline: float = 0.11
) -> pd.DataFrame:
    """Per instance, the values whose means over instances are summary()'s statistics: index (by, id),
    columns drop_<headline %> (p_0 - p at the headline fraction), aopc (mean over all steps of
    p_0 - p_k), comprehensiveness (mean over the steps with 0 < f < 1 of p_0 - p_k) and, given a keep
    frame, sufficiency (mean over those steps of p(everything kept) - p(top-f kept); NaN for an
    instance the keep frame lacks). The bootstrap (evaluation.intervals) resamples these."""
    wide = _wide(frame, by)
    step = headline_step(frame, headline)
    loss = wide.rsub(wide[0], axis=0)  # p_0 - p_k per instance and step
    values = pd.DataFrame(
        {
            headline_name(headline): loss[step],
            "aopc": loss.mean(axis=1),
            "comprehensiveness": loss[_steps(frame, None)].mean(axis=1),
        }
    )
    if keep_frame is not None:
        kept = _wide(keep_frame, by)
        full = _steps(keep_frame, [1.0])[0]
        values["sufficiency"] = kept[_steps(keep_frame, None)].rsub(kept[full], axis=0).mean(axis=1).reindex(values.index)
    return values.astype("float64")


def instance_mean(values: np.ndarray) -> float:
    """The mean over instances of one group's values: the one arithmetic behind summary()'s statistics
    and the bootstrap's point estimates (so that they agree to the last bit)."""
    return float(np.mean(np.ascontiguousarray(values, dtype=np.float64)))


def group_means(values: pd.DataFrame) -> pd.DataFrame:
    """instance_mean per group (level 0 of the index, in order of appearance) and column of `values`."""
    level = values.index.get_level_values(0)
    groups = list(dict.fromkeys(level))
    table = pd.DataFrame(
        {c: [instance_mean(values[c].to_numpy()[level == g]) for g in groups] for c in values.columns},
        index=pd.Index(groups, name=values.index.names[0]),
    )
    return table


def summary(
    frame: pd.DataFrame, keep_frame: pd.DataFrame | None = None, by: str = "method", headline: float = 0.11
) -> pd.DataFrame:
    """One row per group: n, o, the mean p at the headline fraction (p_11) and its absolute drop
    (drop_11), AOPC, comprehensiveness and (given a keep frame) sufficiency. The last four are the
    means over instances of instance_values()."""
    step = headline_step(frame, headline)  # noqa: F841 (used in the query string)
    means = group_means(instance_values(frame, keep_frame, by, headline))
    table = pd.DataFrame(
        {
            "n": frame[frame["step"] == 0].groupby(by, sort=False)["id"].nunique(),
            "o": original_probability(frame, by),
            headline_name(headline).replace("drop", "p"): mean_curves(frame, by).query("step == @step").set_index(by)["prob"],
            **{c: means[c] for c in means.columns},
        }
    )
    table.index.name = by
    return table


# --------------------------------------------------------------------------- helpers


def _check(frame: pd.DataFrame, by: str) -> None:
    missing = [c for c in (by, "id", "step", "fraction", "prob") if c not in frame.columns]
    if missing:
        raise LightningIBAError(f"degradation results lack column(s) {', '.join(missing)}")
    if frame.empty:
        raise LightningIBAError("no degradation results to summarise")


def _wide(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """prob pivoted to index (by, id) x columns step; every instance must have every step."""
    _check(frame, by)
    wide = frame.pivot_table(index=[by, "id"], columns="step", values="prob", aggfunc="mean", sort=False)
    if wide.isna().to_numpy().any():
        raise LightningIBAError("degradation results are incomplete: some instances lack some steps")
    return wide


def _steps(frame: pd.DataFrame, fractions: Sequence[float] | None) -> list[int]:
    """Step indices whose fraction is among `fractions` (default: strictly between 0 and 1)."""
    per_step = frame.groupby("step")["fraction"].first()
    if fractions is None:
        chosen = per_step[(per_step > 1e-9) & (per_step < 1 - 1e-9)]
    else:
        chosen = per_step[np.isclose(per_step.to_numpy()[:, None], np.asarray(fractions, float)[None, :]).any(1)]
        found = np.isclose(np.asarray(fractions, float)[:, None], per_step.to_numpy()[None, :]).any(1)
        if not found.all():
            raise LightningIBAError(f"fraction(s) {list(np.asarray(fractions)[~found])} not among the degradation steps")
    if chosen.empty:
        raise LightningIBAError("no degradation steps strictly between 0 % and 100 % to average over")
    return list(chosen.index)
