"""Paired bootstrap confidence intervals for the summary statistics, and the seed-to-seed spread.

Every statistic of the reports (the drop at the headline fraction, AOPC, comprehensiveness,
sufficiency) is a mean over instances of a per-instance value (metrics.instance_values). The
bootstrap draws `resamples` index resamples of the instances ONCE, from a seeded numpy Generator,
and uses the same resamples for every method and metric: the methods are compared on the same
instances in each resample, so a difference between two methods gets the (usually much narrower)
interval of the per-instance differences, not one that adds up both methods' spreads. Intervals are
percentile intervals at `level`. Point estimates are summary()'s numbers, to the last bit.

Resamples are counted per chunk of resamples (np.bincount) and averaged with one matrix product per
chunk, so 25,000 instances x 1,000 resamples take about a second.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lightning_iba.errors import LightningIBAError
from lightning_iba.evaluation.metrics import group_means, instance_values

#: Upper bound of resamples x instances drawn per chunk (memory: about 8 bytes each, a few times over).
CHUNK_ELEMENTS = 1 << 22
#: A run of a method with another seed: `<method>@seed<k>` (see attribution.registry).
SEED_SUFFIX = re.compile(r"^(?P<method>.+)@seed(?P<seed>\d+)$")
DIFFERENCE_COLUMNS = ("method_a", "method_b", "metric", "diff", "lo", "hi", "excludes_zero")


@dataclass
class BootstrapSettings:
    """Paired bootstrap intervals in the reports; `bootstrap.*` in the configs. Reporting only: a change
    re-reports a finished run (with --resume) and never makes it non-resumable.

    Args:
        resamples: bootstrap resamples of the instances, shared by every method and metric.
        level: confidence level of the percentile intervals, in (0, 1).
        seed: seed of the resampling.
        strata: equal-count strata of the model's original probability of the explained class in which the
            headline statistics are reported again (strata.csv/.md; 0: none; skipped when fewer instances).
        by_label: report them again within each gold label too (labels.csv/.md; skipped with a single label).
    """

    resamples: int = 1000
    level: float = 0.95
    seed: int = 0
    strata: int = 4
    by_label: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.resamples, bool) or not isinstance(self.resamples, (int, np.integer)) or self.resamples < 1:
            raise LightningIBAError(f"bootstrap resamples must be a whole number of at least 1, got {self.resamples!r}")
        if isinstance(self.level, bool) or not isinstance(self.level, (int, float, np.floating)) or not 0.0 < float(self.level) < 1.0:
            raise LightningIBAError(f"bootstrap level must be a confidence level strictly between 0 and 1 (e.g. 0.95), got {self.level!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise LightningIBAError(f"bootstrap seed must be a whole number of at least 0, got {self.seed!r}")
        if isinstance(self.strata, bool) or not isinstance(self.strata, (int, np.integer)) or self.strata < 0:
            raise LightningIBAError(f"bootstrap strata must be a whole number of at least 0 (0: none), got {self.strata!r}")
        if not isinstance(self.by_label, (bool, np.bool_)):
            raise LightningIBAError(f"bootstrap by_label must be true or false, got {self.by_label!r}")
        self.resamples, self.level, self.seed, self.strata = int(self.resamples), float(self.level), int(self.seed), int(self.strata)
        self.by_label = bool(self.by_label)

    @property
    def percent(self) -> str:
        """The level as a percentage for table headers: 0.95 -> "95%"."""
        return f"{100 * self.level:g}%"


@dataclass(frozen=True)
class Derived:
    """A statistic that is not a mean over instances but a function of such means, e.g. a micro-averaged F1
    (sum TP / sum predicted = mean TP / mean predicted). `function` takes the means of the `inputs` columns
    (arrays of one shape, in that order) and returns the statistic elementwise; it is applied to the full
    sample's means for the point estimate and to every resample's means for the interval."""

    name: str
    inputs: tuple[str, ...]
    function: Callable[..., np.ndarray]


@dataclass
class Intervals:
    """The bootstrap's results.

    table: one row per method (index named after the grouping column); for each metric m of
        instance_values, the columns m (the point estimate, = summary()), m_lo and m_hi.
    differences: one row per pair of methods (a before b in the methods' order) and metric, columns
        DIFFERENCE_COLUMNS: diff = m(a) - m(b), its interval lo..hi from the same resamples, and
        excludes_zero (lo > 0 or hi < 0).
    metrics: the metric names, in column order.
    n: instances per method.
    """

    table: pd.DataFrame
    differences: pd.DataFrame
    metrics: list[str]
    n: int
    settings: BootstrapSettings = field(default_factory=BootstrapSettings)


def paired_bootstrap(
    frame: pd.DataFrame,
    keep_frame: pd.DataFrame | None = None,
    by: str = "method",
    headline: float = 0.11,
    settings: BootstrapSettings | None = None,
) -> Intervals:
    """Intervals of summary()'s drop, AOPC, comprehensiveness and (given a keep frame) sufficiency for
    every group of `by`, and of every pairwise difference. Every group must hold the same instances."""
    return bootstrap_values(instance_values(frame, keep_frame, by, headline), settings)


def bootstrap_values(values: pd.DataFrame, settings: BootstrapSettings | None = None, derived: Sequence[Derived] = (),
                     hidden: Sequence[str] = ()) -> Intervals:
    """The paired bootstrap of per-instance values (index (group, id), one column per metric, as
    metrics.instance_values gives them). `derived`: further statistics computed from the means (appended
    after the columns, from the same resamples); `hidden`: columns left out of the results (e.g. the
    counts a derived statistic is made of)."""
    settings = settings or BootstrapSettings()
    if values.empty:
        raise LightningIBAError("no per-instance values to bootstrap")
    metrics = [str(c) for c in values.columns]
    cube, methods, n = _aligned(values)  # [methods, n, metrics], instances sorted by id
    flat = cube.transpose(1, 0, 2).reshape(n, -1)  # [n, methods * metrics]
    means = _resample_means(flat, settings.resamples, np.random.default_rng(settings.seed))
    means = means.reshape(settings.resamples, len(methods), len(metrics))  # [R, methods, metrics]
    tail = (1.0 - settings.level) / 2.0
    qs = [tail, 1.0 - tail]

    point = group_means(values).reindex(methods)  # summary()'s numbers, bit for bit
    if derived or hidden:
        means, point, metrics = _derive(means, point, metrics, derived, hidden)
    lo, hi = np.quantile(means, qs, axis=0)  # each [methods, metrics]
    columns: dict[str, np.ndarray] = {}
    for j, m in enumerate(metrics):
        columns[m] = point[m].to_numpy()
        columns[f"{m}_lo"] = lo[:, j]
        columns[f"{m}_hi"] = hi[:, j]
    table = pd.DataFrame(columns, index=pd.Index(methods, name=values.index.names[0]))

    rows = []
    for a in range(len(methods)):
        for b in range(a + 1, len(methods)):
            d_lo, d_hi = np.quantile(means[:, a, :] - means[:, b, :], qs, axis=0)  # [metrics] each
            for j, m in enumerate(metrics):
                diff = float(point.iloc[a][m] - point.iloc[b][m])
                rows.append((methods[a], methods[b], m, diff, float(d_lo[j]), float(d_hi[j]), bool(d_lo[j] > 0 or d_hi[j] < 0)))
    differences = pd.DataFrame(rows, columns=list(DIFFERENCE_COLUMNS)).astype({"diff": "float64", "lo": "float64", "hi": "float64", "excludes_zero": bool})
    return Intervals(table, differences, metrics, n, settings)


def paired_difference(differences: pd.DataFrame, a: str, b: str, metric: str) -> tuple[float, float, float] | None:
    """(diff, lo, hi) of `a` − `b` for `metric` from a differences table (`DIFFERENCE_COLUMNS`), which holds each
    pair once in one orientation: the reversed row is negated, its interval flipped. None where the pair is absent."""
    for first, second, sign in ((a, b, 1.0), (b, a, -1.0)):
        hit = differences[(differences["method_a"] == first) & (differences["method_b"] == second) & (differences["metric"] == metric)]
        if len(hit):
            diff, lo, hi = (sign * float(hit.iloc[0][c]) for c in ("diff", "lo", "hi"))
            return diff, min(lo, hi), max(lo, hi)
    return None


def wilson_interval(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a proportion `correct` / `n` (z = 1.96: 95 %); unlike the normal
    approximation it stays inside [0, 1] and is not empty at 0 or n correct."""
    if n <= 0:
        raise LightningIBAError("a proportion's interval needs at least one instance")
    p = correct / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / (1 + z * z / n)
    return centre - half, centre + half


def seed_spread(table: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each metric, from a summary table indexed by method
    in which `<method>@seed<k>` rows are runs of `<method>` with seed k (the bare `<method>` row is one
    more run, with the evaluation's own seed).

    Returns one row per method (seed suffix removed, in order of first appearance) with `seeds` (the
    runs found) and, per metric, `<metric>_mean` and `<metric>_std` (sample standard deviation,
    ddof = 1; NaN for a single run). Default metrics: every numeric column but `n` and the interval
    bounds (`*_lo`, `*_hi`).
    """
    if table.empty:
        raise LightningIBAError("no methods to compute a seed spread over")
    if metrics is None:
        metrics = [
            str(c) for c in table.columns
            if c != "n" and not str(c).endswith(("_lo", "_hi")) and pd.api.types.is_numeric_dtype(table[c])
        ]
    missing = [m for m in metrics if m not in table.columns]
    if missing:
        raise LightningIBAError(f"seed spread: no column(s) {', '.join(missing)} in the table (columns: {', '.join(map(str, table.columns))})")
    names = [str(i) for i in table.index]
    base = [match.group("method") if (match := SEED_SUFFIX.match(name)) else name for name in names]
    grouped = table[list(metrics)].astype("float64").set_axis(pd.Index(base, name=table.index.name or "method"))
    order = list(dict.fromkeys(base))
    out = pd.DataFrame({"seeds": grouped.groupby(level=0, sort=False).size()}).reindex(order)
    stats = grouped.groupby(level=0, sort=False).agg(["mean", "std"]).reindex(order)
    for m in metrics:
        out[f"{m}_mean"] = stats[(m, "mean")]
        out[f"{m}_std"] = stats[(m, "std")]
    out.index.name = table.index.name or "method"
    return out


# --------------------------------------------------------------------------- helpers


def _derive(means: np.ndarray, point: pd.DataFrame, metrics: list[str], derived: Sequence[Derived],
            hidden: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame, list[str]]:
    """The resampled means [R, methods, metrics] and the point table with the derived statistics appended
    and the hidden columns removed."""
    point = point.copy()
    extra = []
    for d in derived:
        missing = [c for c in d.inputs if c not in metrics]
        if missing or d.name in metrics:
            raise LightningIBAError(f"derived statistic {d.name!r}: " + (f"no column(s) {', '.join(missing)}" if missing else "the name is taken"))
        columns = [metrics.index(c) for c in d.inputs]
        extra.append(np.asarray(d.function(*(means[:, :, j] for j in columns)), dtype=np.float64))
        point[d.name] = np.asarray(d.function(*(point[c].to_numpy(dtype=np.float64) for c in d.inputs)), dtype=np.float64)
    if extra:
        means = np.concatenate([means, np.stack(extra, axis=2)], axis=2)
    names = metrics + [d.name for d in derived]
    keep = [j for j, name in enumerate(names) if name not in set(hidden)]
    return means[:, :, keep], point[[names[j] for j in keep]], [names[j] for j in keep]


def _aligned(values: pd.DataFrame) -> tuple[np.ndarray, list, int]:
    """[methods, n, metrics] with each method's instances sorted by id; an error unless every method
    holds the same instances (pairing needs them)."""
    level, ids = values.index.get_level_values(0), values.index.get_level_values(1)
    methods = list(dict.fromkeys(level))
    data = values.to_numpy(dtype=np.float64)
    reference: np.ndarray | None = None
    blocks = []
    for method in methods:
        rows = np.flatnonzero(level == method)
        method_ids = np.asarray(ids[rows])
        order = np.argsort(method_ids, kind="stable")
        sorted_ids = method_ids[order]
        if len(np.unique(sorted_ids)) != len(sorted_ids):
            raise LightningIBAError(f"paired bootstrap: method {method!r} lists some instance ids more than once")
        if reference is None:
            reference = sorted_ids
        elif len(sorted_ids) != len(reference) or not (sorted_ids == reference).all():
            only_here = np.setdiff1d(sorted_ids, reference)
            only_first = np.setdiff1d(reference, sorted_ids)
            raise LightningIBAError(
                f"paired bootstrap needs the same instances for every method: {method!r} has {len(sorted_ids)} "
                f"({len(only_here)} that {methods[0]!r} lacks), {methods[0]!r} has {len(reference)} "
                f"({len(only_first)} that {method!r} lacks)"
            )
        blocks.append(data[rows[order]])
    return np.stack(blocks), methods, len(reference)


def _resample_means(matrix: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """[resamples, columns]: the column means of `matrix` [n, columns] over `resamples` resamples of its
    rows with replacement, drawn in chunks from `rng` (the same draws whatever the chunk size)."""
    n = matrix.shape[0]
    out = np.empty((resamples, matrix.shape[1]), dtype=np.float64)
    chunk = max(1, CHUNK_ELEMENTS // n)
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        idx = rng.integers(0, n, size=(rows, n))  # [rows, n] instance indices
        idx += (np.arange(rows) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=rows * n).reshape(rows, n)  # how often each instance is drawn
        out[start:start + rows] = (counts.astype(np.float64) @ matrix) / n
    return out
