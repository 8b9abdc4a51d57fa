"""Table 1 across datasets, beside the paper's, with a plain reading of each column's ordering.

Reads the per-run outputs of `evaluate.py` (table1.csv, differences.csv) and writes one Markdown page:
our drops with their intervals, the published numbers, and per column which pairs of the paper's
four methods are ordered as in the paper, and whether our difference excludes 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import pandas as pd

from lightning_iba.evaluation.degradation import drop_column
from lightning_iba.evaluation.intervals import paired_difference
from lightning_iba.evaluation.published import PAPER_ROW, TABLE1, TABLE1_COLUMNS
from lightning_iba.evaluation.report import ci_cell, markdown_table

#: our stand-in for each row of the paper when reading orderings: the published code's protocol
PAPER_PROTOCOL = {"Random": "random", "LIME": "lime", "IG": "ig:published", "IBA": "iba:reference"}


@dataclass
class ColumnResult:
    """One Table 1 column of ours: the evaluation's table1.csv and differences.csv frames."""

    column: str  # the paper's name, e.g. "MNLI-m"
    table: pd.DataFrame  # method, n, drop_11, drop_11_lo, drop_11_hi
    differences: pd.DataFrame | None  # method_a, method_b, metric, diff, lo, hi, excludes_zero


def load_column(folder: Path, dataset: str, split: str) -> ColumnResult | None:
    """The results of one evaluation folder, or None if it has no table yet."""
    if not (folder / "table1.csv").is_file():
        return None
    diffs = folder / "differences.csv"
    return ColumnResult(TABLE1_COLUMNS.get((dataset, split), f"{dataset} {split}"), pd.read_csv(folder / "table1.csv"),
                        pd.read_csv(diffs) if diffs.is_file() else None)


def _cell(row: pd.Series, drop: str) -> str:
    if f"{drop}_lo" in row and pd.notna(row[f"{drop}_lo"]):
        return ci_cell(row[drop], row[f"{drop}_lo"], row[f"{drop}_hi"])
    return f"{row[drop]:.3f}"


def ours_table(columns: list[ColumnResult]) -> str:
    """Markdown: one row per method, one column per dataset, `drop [lo, hi]` cells."""
    methods = list(dict.fromkeys(m for c in columns for m in c.table["method"]))
    head = "| method | " + " | ".join(f"{c.column} (n={int(c.table['n'].max())})" for c in columns) + " |"
    rows = [head, "|---|" + "---|" * len(columns)]
    for m in methods:
        cells = []
        for c in columns:
            hit = c.table[c.table["method"] == m]
            cells.append(_cell(hit.iloc[0], drop_column(c.table.columns)) if len(hit) else "–")
        rows.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def paper_table(columns: list[ColumnResult]) -> str:
    names = [c.column for c in columns]
    rows = ["| method (paper, BERT-base) | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for method, values in TABLE1.items():
        rows.append(f"| {method} | " + " | ".join(f"{values[n]:.3f}" if n in values else "–" for n in names) + " |")
    return "\n".join(rows)


def _difference(c: ColumnResult, a: str, b: str, metric: str) -> tuple[float, float, float] | None:
    """(diff, lo, hi) of a − b for `metric` from the column's differences.csv (either orientation), else None."""
    return None if c.differences is None else paired_difference(c.differences, a, b, metric)


def readings(columns: list[ColumnResult]) -> list[str]:
    """Per column: each pair of the paper's methods (published protocol stand-ins), ours against the paper's order."""
    lines = []
    for c in columns:
        drop = drop_column(c.table.columns)
        present = {row: m for row, m in PAPER_PROTOCOL.items() if m in set(c.table["method"])}
        if c.column not in next(iter(TABLE1.values())) or len(present) < 2:
            continue
        agree, differ = [], []
        for x, y in combinations(present, 2):
            paper_x_ahead = TABLE1[x][c.column] > TABLE1[y][c.column]
            first, second = (x, y) if paper_x_ahead else (y, x)
            diff = _difference(c, present[first], present[second], drop)
            if diff is None:
                continue
            d, lo, hi = diff
            where = "excludes 0" if lo > 0 or hi < 0 else "includes 0"
            text = f"{first} − {second} = {d:+.3f} [{lo:+.3f}, {hi:+.3f}] ({where})"
            (agree if d > 0 else differ).append(text)
        lines.append(f"- **{c.column}**: as in the paper: {'; '.join(agree) or 'none'}. "
                     f"Reversed: {'; '.join(differ) or 'none'}.")
    return lines


def versus_random(columns: list[ColumnResult], iba: tuple[str, ...] = ("iba:dataset", "iba:reference")) -> str:
    """Markdown: per column, each IBA variant minus random (and minus both IGs) with intervals."""
    others = ("random", "ig:gold", "ig:published", "lime")
    head = "| column | " + " | ".join(f"{a} − {b}" for a in iba for b in others) + " |"
    rows = [head, "|---|" + "---|" * (len(iba) * len(others))]
    for c in columns:
        drop = drop_column(c.table.columns)
        cells = []
        for a in iba:
            for b in others:
                diff = _difference(c, a, b, drop)
                cells.append("–" if diff is None else f"{diff[0]:+.3f} [{diff[1]:+.3f}, {diff[2]:+.3f}]")
        rows.append(f"| {c.column} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def summary_markdown(columns: list[ColumnResult], models: pd.DataFrame | None = None) -> str:
    """The whole page: ours, the paper's, the differences that decide the claims, the reading per column."""
    parts = ["# Table 1: drop of p(y|x) at 11 % of the tokens removed", "",
             "Ours (95 % paired-bootstrap intervals over the instances):", "", ours_table(columns), "",
             "The paper (SPEC, published Table 1):", "", paper_table(columns), "",
             "IBA against the others (paired differences of the drop, 95 % intervals):", "", versus_random(columns), "",
             "Orderings of the paper's four methods, with the published code's protocol as their stand-ins "
             f"({', '.join(f'{k} = `{v}`' for k, v in PAPER_PROTOCOL.items())}):", "", *readings(columns), ""]
    if models is not None and len(models):
        parts += ["Models and choices (layer and beta chosen on validation):", "", markdown_table(models, ".4g", missing="–"), ""]
    return "\n".join(parts)


__all__ = ["ColumnResult", "load_column", "summary_markdown", "PAPER_ROW"]
