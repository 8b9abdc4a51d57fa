"""Merging the shards into the paper's outputs: Table 1, the degradation curves, and further metrics,
each statistic with its paired bootstrap interval (evaluation.intervals)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from lightning_iba.data.tokens import SpecialTokens
from lightning_iba.errors import LightningIBAError
from lightning_iba.evaluation.degradation import DegradationSettings
from lightning_iba.evaluation.intervals import BootstrapSettings, Intervals, bootstrap_values, seed_spread
from lightning_iba.evaluation.metrics import curves_frame, instance_values, normalised_curves, summary
from lightning_iba.evaluation.segments import ALL_TOKENS, SHARES, has_scores, segment_values
from lightning_iba.evaluation.shards import read_records
from lightning_iba.evaluation.strata import label_frames, label_of, strata_frames, whole_frames
from lightning_iba.viz.curves import save_curves

log = logging.getLogger("lightning_iba.evaluation")

#: The files of the strata report (written when there are at least `bootstrap.strata` instances).
STRATA_FILES = ("strata.csv", "strata.md", "strata_differences.csv")
#: The files of the per-label report (written with `bootstrap.by_label` when the instances have two labels or more).
LABEL_FILES = ("labels.csv", "labels.md", "labels_differences.csv")
#: The files saying where in a sentence pair each method's removed tokens lie (pair tasks with stored scores).
SEGMENT_FILES = ("segments.csv", "segments.md", "segments_differences.csv")


@dataclass
class Report:
    table1: pd.DataFrame  # method, dataset, n, original_prob, drop_<headline %>, drop_<headline %>_lo, _hi; one row per method
    metrics: pd.DataFrame  # per method: n, o, p_<headline %>, then per statistic m (drop_<headline %>, aopc,
    #                        comprehensiveness, sufficiency): m, m_lo, m_hi
    curves: pd.DataFrame  # per method and step: fraction, prob (mean), normalised
    differences: pd.DataFrame  # per pair of methods and statistic: method_a, method_b, metric, diff, lo, hi, excludes_zero
    files: dict[str, Path]
    bootstrap: BootstrapSettings | None = None  # the settings of the intervals
    strata: pd.DataFrame | None = None  # per stratum of p_0 and method: stratum, p0_min, p0_max, p0_mean, n, method, then m, m_lo, m_hi per statistic
    labels: pd.DataFrame | None = None  # the same per gold label: label (its name), p0_min, ..., method, then m, m_lo, m_hi per statistic
    segments: pd.DataFrame | None = None  # pairs: label ("(all)", then each gold label), ..., method, then second_text and shared with _lo, _hi


def merged_records(out: Path, indices: Sequence[int]) -> list[dict[str, Any]]:
    """One record per evaluated instance (first one wins where a rank repeated it), in index order."""
    wanted = set(indices)
    records: dict[int, dict[str, Any]] = {}
    for r in read_records(out):
        if r["index"] in wanted:
            records.setdefault(r["index"], r)
    missing = wanted - set(records)
    if missing:
        raise LightningIBAError(f"{len(missing)} of {len(wanted)} instances have no result in {out}/shards; run again with --resume")
    return [records[i] for i in sorted(records)]


def frames(records: list[dict[str, Any]], methods: Sequence[str], fractions: Sequence[float]) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Long remove- and keep-frames (see metrics) for `methods`, in that order; no keep-frame without sufficiency."""
    ids = [r["index"] for r in records]
    labels = [r["label"] for r in records]
    build = lambda key: pd.concat(  # noqa: E731
        [curves_frame(m, np.array([r[key][m] for r in records]), fractions, ids, labels) for m in methods], ignore_index=True
    )
    return build("remove"), (build("keep") if records and records[0]["keep"] else None)


def write_report(out: Path, dataset: str, methods: Sequence[str], records: list[dict[str, Any]],
                 degradation: DegradationSettings, title: str, bootstrap: BootstrapSettings | None = None,
                 pairs: SpecialTokens | None = None) -> Report:
    """Writes table1.csv/.md, metrics.csv, differences.csv/.md, curves.csv, curves.png and (given enough
    instances for `bootstrap.strata`) strata.csv/.md and strata_differences.csv, (given two gold labels or more and
    `bootstrap.by_label`) labels.csv/.md and labels_differences.csv into `out`, with the fraction
    grid and headline fraction the results were computed with (read from settings.json by the caller) and
    paired bootstrap intervals with `bootstrap` (default BootstrapSettings()). `pairs`: the special tokens of a
    sentence-pair task, whose records hold token ids and scores: segments.csv/.md, where each method's removed tokens lie."""
    bootstrap = bootstrap or BootstrapSettings()
    remove, keep = frames(records, methods, degradation.grid)
    name = degradation.headline_name
    values = instance_values(remove, keep, "method", degradation.headline)  # index (method, id): what both bootstraps resample
    intervals = bootstrap_values(values, bootstrap)
    metrics = with_intervals(summary(remove, keep, headline=degradation.headline), intervals).reindex(list(methods))
    table1 = pd.DataFrame(
        {
            "method": list(methods),
            "dataset": dataset,
            "n": metrics["n"].astype(int).to_numpy(),
            "original_prob": metrics["o"].round(4).to_numpy(),
            **{c: metrics[c].round(4).to_numpy() for c in (name, f"{name}_lo", f"{name}_hi")},
        }
    )
    curves = normalised_curves(remove)
    files = {
        "table1.csv": out / "table1.csv",
        "table1.md": out / "table1.md",
        "metrics.csv": out / "metrics.csv",
        "differences.csv": out / "differences.csv",
        "differences.md": out / "differences.md",
        "curves.csv": out / "curves.csv",
        "curves.png": out / "curves.png",
    }
    table1.to_csv(files["table1.csv"], index=False)
    files["table1.md"].write_text(markdown_table(table1_with_intervals(table1, name, bootstrap)) + "\n")
    metrics.round(4).to_csv(files["metrics.csv"])
    differences = intervals.differences
    differences.round({"diff": 6, "lo": 6, "hi": 6}).to_csv(files["differences.csv"], index=False)
    files["differences.md"].write_text(differences_markdown(intervals) + "\n")
    curves.round(6).to_csv(files["curves.csv"], index=False)
    save_curves(files["curves.png"], curves, "method", "normalised", title=title)
    strata = labels = None
    if 0 < bootstrap.strata <= len(records):  # the same statistics within strata of the original probability
        strata, strata_differences = strata_frames(remove, values, bootstrap.strata, bootstrap)
        _write_within(out, files, STRATA_FILES, strata, strata_differences, strata_markdown(strata, name, bootstrap))
    else:  # a re-report without strata leaves none of an earlier report's behind
        _remove_files(out, STRATA_FILES)
    if bootstrap.by_label and label_of(remove).nunique() > 1:  # ... and within each gold label
        labels, labels_differences = label_frames(remove, values, _label_names(dataset), bootstrap)
        _write_within(out, files, LABEL_FILES, labels, labels_differences, labels_markdown(labels, name, bootstrap))
    else:
        _remove_files(out, LABEL_FILES)
    segments = None
    if pairs is not None and records and all(map(has_scores, records)):  # where in the pair the removed tokens lie
        located = segment_values(records, methods, pairs, degradation)
        if len(located):  # else no instance loses a token at the headline fraction
            segments, segment_differences = segment_frames(remove, located, _label_names(dataset), bootstrap, by_label=bootstrap.by_label)
            _write_within(out, files, SEGMENT_FILES, segments, segment_differences, segments_markdown(segments, degradation, bootstrap))
    elif pairs is not None and records:
        log.warning("report: %s: some records hold no token scores (store_scores false when they were computed): no segments.md", out)
    if segments is None:
        _remove_files(out, SEGMENT_FILES)
    if any("@seed" in m for m in methods):  # repeats with other noise seeds: their spread
        files["seed_spread.csv"] = out / "seed_spread.csv"
        spread_of = [c for c in (name, "aopc", "comprehensiveness", "sufficiency") if c in metrics.columns]
        seed_spread(metrics, spread_of).round(6).to_csv(files["seed_spread.csv"])
    return Report(table1, metrics, curves, differences, files, bootstrap, strata, labels, segments)


def segment_frames(remove: pd.DataFrame, values: pd.DataFrame, label_names: Sequence[str] | None,
                   bootstrap: BootstrapSettings, by_label: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The shares of segments.segment_values with paired bootstrap intervals over all instances (label "(all)") and,
    with `by_label` and two labels or more, within each gold label; the instances without a share are left out of both."""
    kept = remove[remove["id"].isin(values.index.get_level_values("id"))]
    whole, whole_differences = whole_frames(kept, values, "(all)", "label", bootstrap)
    tables, differences = [whole], [whole_differences]
    if by_label and label_of(kept).nunique() > 1:
        per_label, paired = label_frames(kept, values, label_names, bootstrap)
        tables.append(per_label)
        differences.append(paired)
    return pd.concat(tables, ignore_index=True), pd.concat(differences, ignore_index=True)


def _label_names(dataset: str) -> list[str] | None:
    """The task's label names (None for a name outside the registry: the labels' ids are shown)."""
    from lightning_iba.data.tasks import TASKS

    task = TASKS.get(dataset)
    return list(task.label_names) if task is not None else None


def _write_within(out: Path, files: dict[str, Path], names: Sequence[str], table: pd.DataFrame, differences: pd.DataFrame,
                  markdown: str) -> None:
    """One breakdown's three files (`names`: its .csv, .md and _differences.csv), recorded in `files`."""
    csv, md, diffs = (out / n for n in names)
    files.update(zip(names, (csv, md, diffs)))
    table.round(6).to_csv(csv, index=False)
    differences.round({"diff": 6, "lo": 6, "hi": 6}).to_csv(diffs, index=False)
    md.write_text(markdown + "\n")


def _remove_files(out: Path, names: Sequence[str]) -> None:
    for n in names:
        (out / n).unlink(missing_ok=True)


def with_intervals(table: pd.DataFrame, intervals: Intervals) -> pd.DataFrame:
    """A summary table with `<m>_lo` and `<m>_hi` right after each bootstrapped statistic m (the
    point estimates are the summary's own)."""
    out = table.copy()
    columns: list[str] = []
    for c in table.columns:
        columns.append(c)
        if c in intervals.metrics:
            for bound in (f"{c}_lo", f"{c}_hi"):
                out[bound] = intervals.table[bound].reindex(out.index)
                columns.append(bound)
    return out[columns]


def ci_cell(value: float, lo: float, hi: float) -> str:
    """`0.284 [0.251, 0.318]`."""
    return f"{value:.3f} [{lo:.3f}, {hi:.3f}]"


def table1_with_intervals(table1: pd.DataFrame, name: str, bootstrap: BootstrapSettings) -> pd.DataFrame:
    """Table 1 for Markdown: the headline drop as one `drop [lo, hi]` cell, headed `drop_11 [95% CI]`."""
    cells = [ci_cell(v, lo, hi) for v, lo, hi in zip(table1[name], table1[f"{name}_lo"], table1[f"{name}_hi"])]
    shown = table1.drop(columns=[f"{name}_lo", f"{name}_hi"])
    shown[name] = cells
    return shown.rename(columns={name: f"{name} [{bootstrap.percent} CI]"})


def differences_markdown(intervals: Intervals) -> str:
    """differences.md: one line saying how the intervals were made, then one row per pair and metric."""
    s = intervals.settings
    head = (
        f"Paired bootstrap over the same {intervals.n} instances for every method ({s.resamples} resamples, seed {s.seed}): "
        f"diff = metric(method_a) - metric(method_b) with its {s.percent} percentile interval; "
        f"\"yes\" where the interval excludes 0."
    )
    d = intervals.differences
    shown = pd.DataFrame(
        {
            "method_a": d["method_a"],
            "method_b": d["method_b"],
            "metric": d["metric"],
            f"diff [{s.percent} CI]": [ci_cell(v, lo, hi) for v, lo, hi in zip(d["diff"], d["lo"], d["hi"])],
            "excludes 0": ["yes" if x else "no" for x in d["excludes_zero"]],
        }
    )
    body = markdown_table(shown) if len(shown) else "(a single method: nothing to compare)"
    return head + "\n\n" + body


def strata_table(strata: pd.DataFrame, name: str, key: str = "stratum") -> pd.DataFrame:
    """One row per stratum (or per `key`'s group: "label"): its p_0 range, mean p_0 and size, then each method's statistic
    `name` (the headline drop) as a `value [lo, hi]` cell (strata.md, labels.md and the explorer page)."""
    methods = list(dict.fromkeys(strata["method"]))
    rows = []
    for k in dict.fromkeys(strata[key]):  # the groups in the table's order
        part = strata[strata[key] == k]
        first = part.iloc[0]
        cells = {r["method"]: ci_cell(r[name], r[f"{name}_lo"], r[f"{name}_hi"]) for r in part.to_dict("records")}
        rows.append({key: int(k) if key == "stratum" else k, "p_0": f"{first['p0_min']:.3f} to {first['p0_max']:.3f}",
                     "mean p_0": f"{first['p0_mean']:.3f}", "n": int(first["n"]), **{f"{m} {name}": cells[m] for m in methods}})
    return pd.DataFrame(rows)


def _resampling(bootstrap: BootstrapSettings) -> str:
    """How a breakdown's intervals were made, as its Markdown head says it."""
    return f"{bootstrap.resamples} resamples, seed {bootstrap.seed}, {bootstrap.percent} intervals"


def strata_markdown(strata: pd.DataFrame, name: str, bootstrap: BootstrapSettings) -> str:
    """strata.md: a line saying what the strata are, then strata_table."""
    head = (
        f"{name} within {strata['stratum'].nunique()} equal-count strata of the model's original probability p_0 of the "
        f"explained class (1: lowest), each stratum with its own paired bootstrap ({_resampling(bootstrap)}): an absolute "
        f"drop depends on p_0, so compare models of different confidence within a stratum."
    )
    return head + "\n\n" + markdown_table(strata_table(strata, name))


def labels_markdown(labels: pd.DataFrame, name: str, bootstrap: BootstrapSettings) -> str:
    """labels.md: a line saying what the rows are, then strata_table per gold label."""
    head = (
        f"{name} within each gold label, each with its own paired bootstrap ({_resampling(bootstrap)}): a method may work "
        f"on some classes and not on others, and the classes differ in the model's confidence (mean p_0), so read this "
        f"beside strata.md."
    )
    return head + "\n\n" + markdown_table(strata_table(labels, name, key="label"))


def segments_markdown(segments: pd.DataFrame, degradation: DegradationSettings, bootstrap: BootstrapSettings) -> str:
    """segments.md: what the shares are, then one table per share (rows: all instances, then each gold label when
    segment_frames broke them down)."""
    within = " and within each gold label" if (segments["label"] != "(all)").any() else ""
    head = (
        f"Where each method's removed tokens lie in the sentence pair: of the tokens the degradation test removes at "
        f"{degradation.headline_name.replace('drop_', '')} % (its ranking and token count), the share in the second text "
        f"(`second_text`: the hypothesis) and the share whose word piece also occurs in the other text (`shared`); "
        f"`{ALL_TOKENS}` is the share among all removable tokens, what random picks get on average. Paired bootstrap "
        f"({_resampling(bootstrap)}), over all instances{within}."
    )
    parts = [head]
    for share in SHARES:
        parts.append(f"**{share}**\n\n" + markdown_table(strata_table(segments, share, key="label")))
    return "\n\n".join(parts)


def markdown_table(frame: pd.DataFrame, float_format: str = ".3f", missing: str | None = None) -> str:
    """A GitHub-flavoured Markdown table of a small frame: floats as `float_format`, missing values (NaN, None)
    as `missing` when given (else as Python prints them)."""
    def cell(v) -> str:
        if missing is not None and pd.isna(v):
            return missing
        return format(v, float_format) if isinstance(v, float) else str(v)

    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])
