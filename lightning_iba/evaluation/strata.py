"""The headline statistics within strata of the model's original probability of the explained class.

Why: an absolute drop depends on how confident the model is before anything is removed (a saturated
softmax barely moves when 11 % of the tokens go; a p(gold) of 0.3 cannot drop by more than 0.3), so
numbers from two models with different confidence, ours and the paper's, are not comparable as they
stand. Splitting the instances into equal-count strata by p_0 lets a reader compare like with like.
Each stratum gets the same paired bootstrap as the whole table (evaluation.intervals), over its own
instances.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from lightning_iba.errors import LightningIBAError
from lightning_iba.evaluation.intervals import DIFFERENCE_COLUMNS, BootstrapSettings, bootstrap_values


def original_probabilities(frame: pd.DataFrame) -> pd.Series:
    """p_0 of every instance id: the curves' step 0, the same for every method."""
    return frame[frame["step"] == 0].drop_duplicates("id").set_index("id")["prob"]


def stratum_of(frame: pd.DataFrame, strata: int) -> pd.Series:
    """Stratum (1 = least confident .. `strata`) of every instance id: the instances sorted by their original
    probability p_0 (the curve's step 0; ties by id) and cut into `strata` groups of equal count (the first
    ones one larger where it does not divide)."""
    if strata < 1:
        raise LightningIBAError(f"strata must be at least 1, got {strata}")
    p0 = original_probabilities(frame)
    if len(p0) < strata:
        raise LightningIBAError(f"{len(p0)} instances cannot be cut into {strata} strata; use fewer strata")
    ordered = p0.reset_index().sort_values(["prob", "id"], kind="stable")["id"].to_numpy()
    labels = np.empty(len(ordered), dtype=int)
    for k, part in enumerate(np.array_split(np.arange(len(ordered)), strata), start=1):
        labels[part] = k
    return pd.Series(labels, index=pd.Index(ordered, name="id"), name="stratum").sort_index()


def strata_frames(frame: pd.DataFrame, values: pd.DataFrame, strata: int,
                  settings: BootstrapSettings | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per stratum, the report's two tables over the stratum's instances: one row per stratum and method (methods in
    the values' order) with the stratum's p_0 range, mean and size and, for each statistic of `values` (the instances'
    metrics.instance_values over `frame` and its keep frame, which the whole table's bootstrap resamples too), its
    mean with a paired bootstrap interval; and the paired differences of every pair of methods (a stratum column, then
    intervals.DIFFERENCE_COLUMNS). `frame`: the removal curves, whose step 0 gives p_0."""
    stratum = stratum_of(frame, strata)
    ids = values.index.get_level_values("id")
    p0 = original_probabilities(frame)
    rows, differences = [], []
    for k in range(1, strata + 1):
        members = stratum.index[stratum == k]
        result = bootstrap_values(values[ids.isin(members)], settings)
        head = {"stratum": k, "p0_min": float(p0[members].min()), "p0_max": float(p0[members].max()),
                "p0_mean": float(p0[members].mean()), "n": len(members)}
        rows.extend({**head, "method": method, **row} for method, row in result.table.to_dict("index").items())
        differences.append(result.differences.assign(stratum=k))
    table = pd.DataFrame(rows)
    paired = pd.concat(differences, ignore_index=True)
    return table, paired[["stratum", *DIFFERENCE_COLUMNS]]
