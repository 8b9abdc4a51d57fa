"""Plausibility at report time: each stored record's token scores, aggregated to ERASER's words, against the
split's human rationales; every statistic with the paired bootstrap interval of evaluation.intervals.

Per instance the words compared are the words the model saw: those with at least one word piece in the
truncated input (or, with windows, in the whole text). Instances that saw no rationale word are left out
of the agreement statistics (their count is reported); ERASER's comprehensiveness and sufficiency need no
rationale and are averaged over every instance, as ERASER does (`faithfulness_n`). Coverage: the share of the split's rationale words (of the
evaluated instances) that the model saw, pooled over instances, and its mean per instance.

Files: plausibility.csv (per method: split, n, coverage, each metric with `_lo`/`_hi`), plausibility.md,
plausibility_differences.csv/.md (paired differences between methods), plausibility_coverage.json; the
metric columns are also joined into metrics.csv.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from lightning_iba.data.rationales import encode_words, special_layout, word_scores, word_spans
from lightning_iba.errors import LightningIBAError
from lightning_iba.evaluation.intervals import BootstrapSettings, Derived, Intervals, bootstrap_values
from lightning_iba.evaluation.plausibility import PlausibilitySettings, eraser_faithfulness, instance_metrics, micro_f1
from lightning_iba.evaluation.report import ci_cell, differences_markdown, markdown_table

log = logging.getLogger("lightning_iba.evaluation")

IOU_COUNTS = ("iou_tp", "iou_predicted", "iou_gold")
SPLIT_CAVEAT = (
    "ERASER's test annotations differ from train/val (about 30 % of the words highlighted, against 6-9 %): "
    "compare splits separately, never across them."
)


class NoRationaleSeen(LightningIBAError):
    """None of the instances has a rationale word within what the model saw."""


@dataclass
class Coverage:
    """How much of the human rationales the model saw (evaluated instances only)."""

    instances: int = 0
    scored: int = 0  # instances with at least one rationale word seen (the plausibility statistics' n)
    rationale_words: int = 0
    rationale_words_seen: int = 0
    words: int = 0
    words_seen: int = 0
    per_instance: list[float] = field(default_factory=list)  # share of each instance's rationale words seen

    @property
    def coverage(self) -> float:
        """Pooled: rationale words seen / rationale words."""
        return self.rationale_words_seen / self.rationale_words if self.rationale_words else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "instances": self.instances, "scored": self.scored, "rationale_words": self.rationale_words,
            "rationale_words_seen": self.rationale_words_seen, "coverage": round(self.coverage, 6),
            "coverage_mean": round(float(np.mean(self.per_instance)), 6) if self.per_instance else None,
            "words": self.words, "words_seen": self.words_seen,
            "highlighted": round(self.rationale_words / self.words, 6) if self.words else None,
        }


@dataclass
class PlausibilityReport:
    table: pd.DataFrame  # per method: split, n, coverage, then each metric m with m_lo, m_hi
    differences: pd.DataFrame  # intervals.DIFFERENCE_COLUMNS
    values: pd.DataFrame  # per (method, index): the per-instance values the bootstrap resampled
    coverage: Coverage
    metrics: list[str]  # the metric names, in column order
    files: dict[str, Path]
    joined: pd.DataFrame | None = None  # the report's metrics with the plausibility columns (metrics.csv), if given


def instance_words(record: dict[str, Any], row: dict[str, Any], tokenizer: Any, max_length: int, methods: Sequence[str],
                   aggregation: str, layout: tuple[int, int] | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each method's word scores of one record (NaN for words not seen) and the words seen.

    The record's token scores are mapped to words through the text's encoding, as evaluate.py made it:
    truncated to `max_length` (checked against the record's input_ids), or, for a record with
    `window_scores`, the whole text."""
    text = row["text"]
    n_words = len(word_spans(text))
    if n_words != len(row["rationale"]):
        raise LightningIBAError(f"instance {row['id']}: the rationale has {len(row['rationale'])} words but the text {n_words}")
    if "window_scores" in record:
        ids, words = encode_words(tokenizer, text)
        before, after = layout or special_layout(tokenizer)
        words = words[before:len(words) - after]
        per_method = record["window_scores"]
    else:
        if "scores" not in record or "input_ids" not in record:
            raise LightningIBAError("plausibility needs each instance's token scores: evaluate with --store_scores true")
        ids, words = encode_words(tokenizer, text, max_length)
        if ids != list(record["input_ids"]):
            raise LightningIBAError(
                f"instance {row['id']}: its text encodes to other tokens than the evaluation stored (another tokenizer or max_length?)"
            )
        per_method = record["scores"]
    scores = {}
    for m in methods:
        if len(per_method[m]) != len(words):
            raise LightningIBAError(f"instance {row['id']}: {len(per_method[m])} scores of {m} for {len(words)} word pieces")
        scores[m] = word_scores(per_method[m], words, n_words, aggregation)
    seen = np.bincount(words[words >= 0], minlength=n_words) > 0
    return scores, seen


def visible_spans(evidence: Sequence[Sequence[int]], seen: np.ndarray) -> list[tuple[int, int]]:
    """The evidence spans ([start, end) words) as spans of the seen words (positions among them); a span
    is cut to its seen words, and dropped if it has none."""
    position = np.cumsum(seen) - 1
    out = []
    for start, end in evidence:
        inside = np.flatnonzero(seen[start:end])
        if inside.size:
            out.append((int(position[start + inside[0]]), int(position[start + inside[-1]]) + 1))
    return out


def plausibility_values(records: list[dict[str, Any]], split: Any, methods: Sequence[str], tokenizer: Any, max_length: int,
                        settings: PlausibilitySettings) -> tuple[pd.DataFrame, Coverage]:
    """Per (method, instance index) every plausibility value (plausibility.instance_metrics, and ERASER's
    comprehensiveness / sufficiency AOPC where the records hold the bin curves), and the coverage."""
    coverage = Coverage(instances=len(records))
    layout = special_layout(tokenizer)
    rows: list[dict[str, Any]] = []
    for record in records:
        row = split[int(record["index"])]
        if str(row["id"]) != str(record["id"]):
            raise LightningIBAError(f"instance {record['index']} of the split is {row['id']!r}, but the evaluation stored {record['id']!r}")
        scores, seen = instance_words(record, row, tokenizer, max_length, methods, settings.aggregation, layout)
        gold = np.asarray(row["rationale"], dtype=bool)
        coverage.words += len(gold)
        coverage.words_seen += int(seen.sum())
        coverage.rationale_words += int(gold.sum())
        coverage.rationale_words_seen += int((gold & seen).sum())
        if gold.any():
            coverage.per_instance.append(float((gold & seen).sum() / gold.sum()))
        if not (gold & seen).any():
            continue
        coverage.scored += 1
        evidence = visible_spans(row["evidence"], seen)
        for m in methods:
            values = instance_metrics(scores[m][seen], gold[seen], evidence, settings.top_fraction, settings.iou_threshold, settings.fraction_name)
            rows.append({"method": m, "id": int(record["index"]), **values})
    if not rows:
        raise NoRationaleSeen(f"none of the {len(records)} instances has a rationale word within what the model saw")
    values = pd.DataFrame(rows).set_index(["method", "id"]).astype("float64")
    return values, coverage


def faithfulness_values(records: list[dict[str, Any]], methods: Sequence[str]) -> pd.DataFrame | None:
    """ERASER's comprehensiveness and sufficiency AOPC of every instance whose record holds the bin curves
    (index (method, id)); None when no record does."""
    rows = [{"method": m, "id": int(r["index"]), **eraser_faithfulness(float(r["original_prob"]), r["eraser"]["remove"][m], r["eraser"]["keep"].get(m))}
            for r in records if "eraser" in r for m in methods]
    return pd.DataFrame(rows).set_index(["method", "id"]).astype("float64") if rows else None


def plausibility_intervals(values: pd.DataFrame, bootstrap: BootstrapSettings | None = None) -> Intervals:
    """The paired bootstrap of the per-instance values; ERASER's micro IOU P/R/F1 are derived from the
    resampled means of the span counts (which are left out of the results)."""
    derived = [
        Derived(name, IOU_COUNTS, lambda tp, pred, gold, j=j: micro_f1(tp, pred, gold)[j])
        for j, name in enumerate(("iou_precision", "iou_recall", "iou_f1"))
    ]
    return bootstrap_values(values, bootstrap, derived=derived, hidden=IOU_COUNTS)


def metric_order(metrics: Sequence[str]) -> list[str]:
    """Token scores, IOU, soft scores, faithfulness."""
    first = [m for m in metrics if m.startswith("token_")]
    iou = [m for m in ("iou_precision", "iou_recall", "iou_f1") if m in metrics]
    rest = [m for m in metrics if m not in first and m not in iou]
    return first + iou + rest


def write_plausibility(out: Path, dataset: str, split_name: str, methods: Sequence[str], records: list[dict[str, Any]], split: Any,
                       tokenizer: Any, max_length: int, settings: PlausibilitySettings, bootstrap: BootstrapSettings | None = None,
                       metrics_table: pd.DataFrame | None = None, target: str = "gold") -> PlausibilityReport:
    """Computes plausibility and writes its files into `out` (see the module docstring); `metrics_table`:
    the report's metrics (index method), rewritten to metrics.csv with the plausibility columns joined; `target`:
    the class the run explained and scored (gold | predicted), for the text."""
    bootstrap = bootstrap or BootstrapSettings()
    values, coverage = plausibility_values(records, split, methods, tokenizer, max_length, settings)
    intervals = plausibility_intervals(values, bootstrap)
    faith = faithfulness_values(records, methods)
    faithful = bootstrap_values(faith, bootstrap) if faith is not None else None
    if faithful is not None:  # one table and one list of differences; the faithfulness rows over every instance
        intervals = Intervals(intervals.table.join(faithful.table), pd.concat([intervals.differences, faithful.differences], ignore_index=True),
                              [*intervals.metrics, *faithful.metrics], intervals.n, intervals.settings)
    metrics = metric_order(intervals.metrics)
    columns = [c for m in metrics for c in (m, f"{m}_lo", f"{m}_hi")]
    table = intervals.table[columns].reindex(list(methods))
    if faithful is not None:
        table.insert(0, "faithfulness_n", faithful.n)
    table.insert(0, "coverage", round(coverage.coverage, 6))
    table.insert(0, "n", coverage.scored)
    table.insert(0, "split", split_name)
    table.insert(0, "dataset", dataset)
    files = {name: out / name for name in ("plausibility.csv", "plausibility.md", "plausibility_differences.csv",
                                           "plausibility_differences.md", "plausibility_coverage.json")}
    table.round(4).to_csv(files["plausibility.csv"])
    files["plausibility.md"].write_text(plausibility_markdown(table, metrics, coverage, settings, bootstrap, max_length, target) + "\n")
    differences = intervals.differences
    differences.round({"diff": 6, "lo": 6, "hi": 6}).to_csv(files["plausibility_differences.csv"], index=False)
    files["plausibility_differences.md"].write_text(differences_markdown(intervals) + "\n")
    files["plausibility_coverage.json"].write_text(json.dumps(
        {"dataset": dataset, "split": split_name, "max_length": max_length, "window_stride": settings.window_stride, **coverage.as_dict()}, indent=2) + "\n")
    joined = None
    if metrics_table is not None:
        joined = metrics_table.join(table[columns], how="left")
        joined.insert(len(metrics_table.columns), "plausibility_n", coverage.scored)
        joined.insert(len(metrics_table.columns) + 1, "rationale_coverage", round(coverage.coverage, 6))
        joined.round(4).to_csv(out / "metrics.csv")
        files["metrics.csv"] = out / "metrics.csv"
    log.info(
        "plausibility: %s %s, %d of %d instances scored; the model saw %.1f %% of the rationale words (max_length %d%s)",
        dataset, split_name, coverage.scored, coverage.instances, 100 * coverage.coverage, max_length,
        f", windows every {settings.window_stride} pieces" if settings.window_stride else "",
    )
    return PlausibilityReport(table, differences, values, coverage, metrics, files, joined)


def plausibility_markdown(table: pd.DataFrame, metrics: Sequence[str], coverage: Coverage, settings: PlausibilitySettings,
                          bootstrap: BootstrapSettings, max_length: int, target: str = "gold") -> str:
    """plausibility.md: how it was computed, the coverage, the split caveat, then one `value [lo, hi]` cell per metric."""
    seen = (f"windows of {max_length} tokens every {settings.window_stride} word pieces" if settings.window_stride
            else f"the first {max_length} tokens (truncation)")
    head = [
        f"Plausibility against the human rationales, {table['dataset'].iloc[0]} {table['split'].iloc[0]}: "
        f"{coverage.scored} of {coverage.instances} instances (those with a rationale word seen), at ERASER's word level "
        f"(word-piece scores aggregated by {settings.aggregation}).",
        f"The model saw {seen}: {100 * coverage.coverage:.1f} % of the {coverage.rationale_words} rationale words "
        f"({100 * coverage.words_seen / max(1, coverage.words):.1f} % of all words); {100 * coverage.rationale_words / max(1, coverage.words):.1f} % "
        "of the words are highlighted.",
        f"token_*: top-k words, k = the instance's rationale words; token_*_{settings.fraction_name}: the top "
        f"{100 * settings.top_fraction:g} % of the words; iou_*: ERASER's micro span P/R/F1 at IOU >= {settings.iou_threshold:g}; "
        f"auprc: ERASER's area under the precision-recall curve; comprehensiveness_aopc / sufficiency_aopc: ERASER's AOPC, "
        f"over the bins {', '.join(f'{100 * b:g} %' for b in settings.bins)} of "
        + ("the whole words of the input (the top ceil(f * n) words by their aggregated scores, all their word pieces; "
           "ERASER's unit, over the words the model saw)" if settings.bin_unit == "word" else
           "the word pieces of the input (round(f * n) pieces, as the degradation test; ERASER: ceil(f * n) whole words)")
        + ", on every instance (faithfulness_n), for the class the explanations are for: "
        + ("the predicted class, as in ERASER." if target == "predicted" else
           "the gold class (ERASER: the predicted class; they agree on correctly classified reviews; --target predicted is ERASER's)."),
        f"Intervals: paired bootstrap, {bootstrap.resamples} resamples, {bootstrap.percent}.",
        SPLIT_CAVEAT,
    ]
    shown = pd.DataFrame({"method": list(table.index), "n": table["n"].to_numpy()})
    for m in metrics:
        shown[f"{m} [{bootstrap.percent} CI]"] = [ci_cell(v, lo, hi) for v, lo, hi in zip(table[m], table[f"{m}_lo"], table[f"{m}_hi"])]
    return "\n".join(head) + "\n\n" + markdown_table(shown)


# ---------------------------------------------------------------- evaluate.py's two calls


def check_plausibility_run(settings: PlausibilitySettings, store_scores: bool, tokenizer: Any, max_length: int) -> None:
    """Refuses, before any work, a run on a task with rationales that could not report plausibility."""
    if not store_scores:
        raise LightningIBAError("plausibility needs each instance's token scores: a task with rationales needs --store_scores true")
    if settings.window_stride is not None:
        before, after = special_layout(tokenizer)
        size = max_length - before - after
        if int(settings.window_stride) > size:
            raise LightningIBAError(
                f"plausibility.window_stride {settings.window_stride} would leave gaps between windows of {size} word pieces "
                f"(max_length {max_length}); choose at most {size}"
            )


def report_plausibility(out: Path, dataset: str, split_name: str, methods: Sequence[str], records: list[dict[str, Any]], split: Any,
                        tokenizer: Any, stored: dict[str, Any], settings: PlausibilitySettings, bootstrap: BootstrapSettings,
                        report: Any) -> PlausibilityReport | None:
    """write_plausibility for an evaluation: max_length, bins and windows as the run computed them (its
    settings.json), the reporting settings as given now; the report's metrics get the columns. None (with
    a warning) when no instance saw a rationale word (too short a max_length: try windows)."""
    computed = {**settings.reporting(), **(stored.get("plausibility") or settings.identity())}
    try:
        result = write_plausibility(out, dataset, split_name, methods, records, split, tokenizer, int(stored["max_length"]),
                                    PlausibilitySettings(**computed), bootstrap, report.metrics, stored.get("target", "gold"))
    except NoRationaleSeen as err:
        log.warning("plausibility: not reported: %s (max_length %s; --plausibility.window_stride scores the whole text)", err, stored["max_length"])
        return None
    report.metrics = result.joined
    report.files.update({name: path for name, path in result.files.items() if name != "metrics.csv"})
    return result
