"""The headline statistics within strata of the instances: of the model's original probability of the explained
class (`strata_frames`), and of the gold label (`label_frames`).

Why strata of confidence: an absolute drop depends on how confident the model is before anything is removed (a saturated
softmax barely moves when 11 % of the tokens go; a p(gold) of 0.3 cannot drop by more than 0.3), so
numbers from two models with different confidence, ours and the paper's, are not comparable as they
stand. Splitting the instances into equal-count strata by p_0 lets a reader compare like with like.
Why labels: a method may work on some classes and not on others, and the classes differ in the model's
confidence, so a confidence stratum made of one or two classes (AG News's most confident quarter) leaves the
reader asking which of the two explains a drop; the per-label table, beside the strata, answers half of that.
Each stratum or label gets the same paired bootstrap as the whole table (evaluation.intervals), over its own
instances.
"""
from __future__ import annotations

from typing import Sequence

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


def label_of(frame: pd.DataFrame) -> pd.Series:
    """The gold label of every instance id (the frame's label column at step 0)."""
    first = frame[frame["step"] == 0].drop_duplicates("id").set_index("id")["label"]
    if first.isna().any():
        raise LightningIBAError("the curves carry no gold label for some instances; cannot report per label")
    return first.astype(int).sort_index()


def strata_frames(frame: pd.DataFrame, values: pd.DataFrame, strata: int,
                  settings: BootstrapSettings | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per stratum of p_0 (stratum_of), the report's two tables over the stratum's instances: one row per stratum and
    method (methods in the values' order) with the stratum's p_0 range, mean and size and, for each statistic of
    `values` (the instances' metrics.instance_values over `frame` and its keep frame, which the whole table's bootstrap
    resamples too), its mean with a paired bootstrap interval; and the paired differences of every pair of methods (a
    stratum column, then intervals.DIFFERENCE_COLUMNS). `frame`: the removal curves, whose step 0 gives p_0."""
    return _within(frame, values, stratum_of(frame, strata), "stratum", list(range(1, strata + 1)), settings)


def label_frames(frame: pd.DataFrame, values: pd.DataFrame, label_names: Sequence[str] | None = None,
                 settings: BootstrapSettings | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """strata_frames' two tables per gold label instead of per stratum (a `label` column: the label's name from
    `label_names`, else its id), labels in the task's order, only those the instances have."""
    label = label_of(frame)
    present = sorted(label.unique().tolist())
    if label_names is not None and (min(present) < 0 or max(present) >= len(label_names)):
        raise LightningIBAError(f"labels {present} are out of range for the task's {len(label_names)} labels")
    name = (lambda k: str(label_names[k])) if label_names is not None else (lambda k: k)
    return _within(frame, values, label.map(name), "label", [name(k) for k in present], settings)


def whole_frames(frame: pd.DataFrame, values: pd.DataFrame, name: str, key: str,
                 settings: BootstrapSettings | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """strata_frames' two tables with every instance of `values` in one group, named `name` in the column `key` (a
    breakdown's "all instances" row beside its groups)."""
    ids = values.index.get_level_values("id").unique()
    return _within(frame, values, pd.Series(name, index=ids), key, [name], settings)


def _within(frame: pd.DataFrame, values: pd.DataFrame, groups: pd.Series, key: str, order: list,
            settings: BootstrapSettings | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables of strata_frames for any grouping of the instance ids (`groups`: id -> group, `order`: the groups
    in the order of the rows; the column naming the group is `key`)."""
    ids = values.index.get_level_values("id")
    p0 = original_probabilities(frame)
    rows, differences = [], []
    for k in order:
        members = groups.index[groups == k]
        result = bootstrap_values(values[ids.isin(members)], settings)
        head = {key: k, "p0_min": float(p0[members].min()), "p0_max": float(p0[members].max()),
                "p0_mean": float(p0[members].mean()), "n": len(members)}
        rows.extend({**head, "method": method, **row} for method, row in result.table.to_dict("index").items())
        differences.append(result.differences.assign(**{key: k}))
    table = pd.DataFrame(rows)
    paired = pd.concat(differences, ignore_index=True)
    return table, paired[[key, *DIFFERENCE_COLUMNS]]
