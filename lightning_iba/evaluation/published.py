"""The paper's published numbers (SPEC "Published Table 1"), for tables that put ours beside them."""
from __future__ import annotations

#: Table 1 columns: (dataset, split) -> the column's name in the paper.
TABLE1_COLUMNS: dict[tuple[str, str], str] = {
    ("imdb", "test"): "IMDB",
    ("mnli", "test"): "MNLI-m",
    ("mnli", "test_mismatched"): "MNLI-mm",
    ("agnews", "test"): "AG News",
    ("rte", "test"): "RTE",
}

#: Published Table 1 (BERT-base, absolute drop of p(y|x) at 11 % of the tokens removed), by paper column.
TABLE1: dict[str, dict[str, float]] = {
    "Random": {"IMDB": 0.011, "MNLI-m": 0.106, "MNLI-mm": 0.106, "AG News": 0.008, "RTE": 0.012},
    "LIME": {"IMDB": 0.038, "MNLI-m": 0.244, "MNLI-mm": 0.260, "AG News": 0.033, "RTE": 0.014},
    "IG": {"IMDB": 0.090, "MNLI-m": 0.226, "MNLI-mm": 0.233, "AG News": 0.036, "RTE": 0.043},
    "IBA": {"IMDB": 0.229, "MNLI-m": 0.374, "MNLI-mm": 0.367, "AG News": 0.029, "RTE": 0.059},
}

#: Which of our method names stands for a row of the paper (the published code's protocol first).
PAPER_ROW: dict[str, str] = {
    "random": "Random",
    "lime": "LIME",
    "ig:published": "IG",
    "ig:gold": "IG",
    "ig": "IG",
    "iba:reference": "IBA",
    "iba:dataset": "IBA",
    "iba": "IBA",
}
