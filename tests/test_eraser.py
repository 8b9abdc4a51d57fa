"""ERASER Movie Reviews: the source (fixture and real files), word pieces <-> words, windows, and evaluate.py
end to end on a keyword task written in the ERASER format (plausibility.csv, coverage, windows, transfer)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import copy_model
from fixtures_data import write_eraser
from keyword_task import KEYWORDS, filler_words
from lightning_iba.data.rationales import encode_words, piece_mask, piece_words, special_layout, window_starts, word_mask, word_scores
from lightning_iba.data.sources import DataSourceError, load_splits, resolve_source
from lightning_iba.data.tasks import get_task
from lightning_iba.errors import LightningIBAError

SENTENCES = [["a", "fine", "film", "."], ["it", "does", "n't", "drag", "at", "all"], ["see", "it"]]  # 12 tokens


def small_fixture(root: Path) -> Path:
    """Three splits; the first test review has two evidence spans (the second across a sentence break)."""
    return write_eraser(root, {
        "train": [("posR_000.txt", "POS", SENTENCES, [(1, 3)]), ("negR_000.txt", "NEG", [["dull", "and", "long"]], [(0, 1)])],
        "val": [("posR_001.txt", "POS", [["great", "fun"]], [(0, 2)])],
        "test": [("posR_002.txt", "POS", SENTENCES, [(1, 2), (3, 6)]), ("negR_001.txt", "NEG", [["bad"], ["really", "bad"]], [])],
    })


# ---------------------------------------------------------------- the registry and the source


def test_registry_entry_matches_imdb_labels_and_reads_local_only():
    task = get_task("eraser_movies")
    assert task.label_names == get_task("imdb").label_names == ("neg", "pos")
    assert task.rationales and not task.in_table1 and not get_task("imdb").rationales
    assert resolve_source(task, "auto") == "local" and resolve_source(task, "local") == "local"
    for source in ("hub", "bundled", "files", "disk"):
        with pytest.raises(DataSourceError, match=f"eraser_movies is read from its original files only .*not source '{source}'"):
            resolve_source(task, source)


def test_source_reads_texts_masks_and_spans(tmp_path):
    d = load_splits("eraser_movies", "local", small_fixture(tmp_path))
    assert list(d) == ["train", "validation", "test"] and [len(d[s]) for s in d] == [2, 1, 2]
    row = d["test"][0]
    assert row["id"] == "posR_002.txt" and row["label"] == 1 and d["test"][1]["label"] == 0  # POS -> 1, NEG -> 0
    assert row["text"] == "a fine film . it does n't drag at all see it"  # tokens joined by single spaces, sentences too
    assert row["rationale"] == [0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert row["evidence"] == [[1, 2], [3, 6]]
    assert d["test"][1]["rationale"] == [0, 0, 0] and d["test"][1]["evidence"] == []
    assert d["train"].features["label"].names == ["neg", "pos"]
    # data_dir may name the folder above eraser/, eraser/ itself or the movies folder
    for data_dir in (tmp_path / "eraser", tmp_path / "eraser" / "movies"):
        assert load_splits("eraser_movies", "local", data_dir)["test"][0] == row


def test_source_without_train_carves_nothing(tmp_path):
    small_fixture(tmp_path)
    for name in ("train", "val"):
        (tmp_path / "eraser" / "movies" / f"{name}.jsonl").unlink()
    assert list(load_splits("eraser_movies", "local", tmp_path)) == ["test"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r["evidences"][0][0].update(end_token=13), r"test.jsonl:1: evidence \[1, 13\) lies outside the 12 tokens of docs/posR_002.txt"),
        (lambda r: r["evidences"][0][0].update(text="fine"), None),  # the text matches: no error
        (lambda r: r["evidences"][0][0].update(text="film"), r"test.jsonl:1: evidence \[1, 2\) reads 'fine' in docs/posR_002.txt, not 'film'"),
        (lambda r: r.update(classification="NEUTRAL"), r"test.jsonl:1: label 'NEUTRAL' is not one of NEG, POS"),
        (lambda r: r.update(annotation_id="gone.txt", evidences=[]), r"missing file: .*docs/gone.txt"),
    ],
)
def test_source_errors_name_the_file_and_line(tmp_path, edit, message):
    small_fixture(tmp_path)
    path = tmp_path / "eraser" / "movies" / "test.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    edit(rows[0])
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    if message is None:
        load_splits("eraser_movies", "local", tmp_path)
    else:
        with pytest.raises(DataSourceError, match=message):
            load_splits("eraser_movies", "local", tmp_path)


def test_source_malformed_json_and_missing_folder(tmp_path):
    with pytest.raises(DataSourceError, match="missing folder: .*eraser/movies/docs"):
        load_splits("eraser_movies", "local", tmp_path)
    small_fixture(tmp_path)
    (tmp_path / "eraser" / "movies" / "val.jsonl").write_text('{"annotation_id": "posR_001.txt"}\n{oops\n')
    with pytest.raises(DataSourceError, match=r"val.jsonl:1: not an ERASER annotation"):
        load_splits("eraser_movies", "local", tmp_path)
    (tmp_path / "eraser" / "movies" / "val.jsonl").write_text('{oops\n')
    with pytest.raises(DataSourceError, match=r"val.jsonl:1: malformed JSON"):
        load_splits("eraser_movies", "local", tmp_path)


def test_real_eraser_movies(shared_data):
    if not (shared_data / "eraser" / "movies" / "test.jsonl").exists():
        pytest.skip("eraser/movies is not in ../shared/data")
    d = load_splits("eraser_movies", "local", shared_data)
    assert {s: len(d[s]) for s in d} == {"train": 1600, "validation": 200, "test": 199}
    highlighted = {s: sum(map(sum, d[s]["rationale"])) / sum(map(len, d[s]["rationale"])) for s in d}
    assert 0.05 < highlighted["train"] < 0.10 and 0.05 < highlighted["validation"] < 0.10, highlighted
    assert 0.27 < highlighted["test"] < 0.33, highlighted  # the test annotations differ: about 30 % highlighted
    row = d["test"][0]
    assert row["id"] == "negR_900.txt" and row["label"] == 0 and len(row["text"].split(" ")) == len(row["rationale"]) == 616
    words = row["text"].split(" ")
    assert " ".join(words[40:43]) == "i even giggled" and row["rationale"][39:44] == [0, 1, 1, 1, 0] and row["evidence"][0] == [40, 43]


# ---------------------------------------------------------------- word pieces <-> words


def test_pieces_map_to_whitespace_words_and_back(tokenizer):
    text = "it does n't quite   work , unbelievably"  # runs of spaces, a clitic split into three pieces, a long word
    ids, words = encode_words(tokenizer, text)
    pieces = tokenizer.convert_ids_to_tokens(ids)
    assert pieces == ["[CLS]", "it", "does", "n", "'", "t", "quite", "work", ",", "un", "##bel", "##ie", "##va", "##bly", "[SEP]"]
    assert words.tolist() == [-1, 0, 1, 2, 2, 2, 3, 4, 5, 6, 6, 6, 6, 6, -1]
    mask = [0, 0, 1, 0, 0, 0, 1]  # "n't" and "unbelievably"
    on_pieces = piece_mask(mask, words)
    assert on_pieces.tolist() == [False, False, False, True, True, True, False, False, False, True, True, True, True, True, False]
    assert word_mask(on_pieces, words, 7).astype(int).tolist() == mask
    assert word_mask(np.arange(len(ids)) == 4, words, 7).astype(int).tolist() == [0, 0, 1, 0, 0, 0, 0]  # any piece marks its word
    # truncation: the words beyond the window are not seen
    ids, words = encode_words(tokenizer, text, max_length=6)
    assert words.tolist() == [-1, 0, 1, 2, 2, -1]
    # a tokenizer whose offsets keep a leading space (RoBERTa-like) still finds the word
    assert piece_words("ab cd", [(0, 0), (0, 2), (2, 5), (0, 0)]).tolist() == [-1, 0, 1, -1]


def test_word_scores_aggregations_by_hand():
    words = np.array([-1, 0, 1, 1, 1, 3, -1])  # word 2 has no piece
    scores = [9.0, 1.0, 2.0, -1.0, 5.0, 0.5, 9.0]  # the special tokens' 9s are ignored
    total = word_scores(scores, words, 4, "sum")
    assert total[[0, 1, 3]].tolist() == [1.0, 6.0, 0.5] and np.isnan(total[2])
    assert word_scores(scores, words, 4, "max")[[0, 1, 3]].tolist() == [1.0, 5.0, 0.5]
    assert word_scores(scores, words, 4, "mean")[[0, 1, 3]].tolist() == [1.0, 2.0, 0.5]
    with pytest.raises(LightningIBAError, match="unknown aggregation 'median'"):
        word_scores(scores, words, 4, "median")


def test_windows_cover_the_text():
    assert window_starts(10, 10, 4) == [0]
    assert window_starts(1000, 510, 256) == [0, 256, 490]
    assert window_starts(11, 4, 4) == [0, 4, 7]
    with pytest.raises(LightningIBAError, match="window stride must be between 1 and the window's 4 pieces, got 5"):
        window_starts(11, 4, 5)


def test_add_windows_matches_the_truncated_input(tokenizer):
    from lightning_iba.cli.evaluate import tokenize_instances
    from datasets import Dataset

    text = " ".join(f"word{i}" for i in range(12))  # word0 -> "word", "##0": 24+ pieces
    split = Dataset.from_dict({"id": ["a", "b"], "text": [text, "short text"], "label": [1, 0]})
    from lightning_iba.evaluation.run import add_windows

    instances = tokenize_instances(split, [0, 1], tokenizer, 10)
    assert add_windows(instances, {0: text, 1: "short text"}, tokenizer, 10, 5) == 1
    long, short = sorted(instances, key=lambda i: i.index)
    full = tokenizer(text)["input_ids"]
    assert long.pieces == len(full) - 2 and short.windows == []
    assert [s for s, _ in long.windows] == window_starts(long.pieces, 8, 5)[1:]
    for start, ids in long.windows:
        assert ids == [full[0], *full[1 + start:1 + start + 8], full[-1]]
    assert special_layout(tokenizer) == (1, 1)


# ---------------------------------------------------------------- evaluate.py end to end


def keyword_eraser(root: Path, seed: int = 0, words: tuple[int, int] = (14, 24)) -> Path:
    """The keyword task in the ERASER format: filler words and one keyword, the keyword as the rationale;
    texts of 14-24 words, longer than a max_length of 16 tokens."""
    rng = random.Random(seed)
    vocab = filler_words()
    splits = {}
    for split, n in (("train", 40), ("val", 8), ("test", 16)):
        rows = []
        for i in range(n):
            tokens = rng.choices(vocab, k=rng.randint(*words))
            keyword = rng.choice(sorted(KEYWORDS))
            at = rng.randint(0, len(tokens))  # beyond the first 16 tokens for some
            tokens.insert(at, keyword)
            sentences = [tokens[j:j + 6] for j in range(0, len(tokens), 6)]
            rows.append((f"{'pos' if KEYWORDS[keyword] else 'neg'}R_{split}{i:03d}.txt", "POS" if KEYWORDS[keyword] else "NEG", sentences, [(at, at + 1)]))
        splits[split] = rows
    return write_eraser(root, splits)


@pytest.fixture(scope="module")
def eraser_data(tmp_path_factory) -> Path:
    return keyword_eraser(tmp_path_factory.mktemp("eraser_keyword"))


@pytest.fixture
def imdb_checkpoint(keyword_model_dir, tmp_path) -> Path:
    """The keyword model, recorded as an IMDB model (so that eraser_movies is a task transfer)."""
    return copy_model(keyword_model_dir, tmp_path / "model", lightning_iba_task="imdb")


def run_eval(checkpoint: Path, data: Path, out: Path, *extra: str):
    from lightning_iba.cli.evaluate import main

    return main(["--checkpoint", str(checkpoint), "--data_dir", str(data), "--out", str(out), "--dataset", "eraser_movies",
                 "--allow_task_transfer", "true", "--max_length", "16", "--layer", "1", "--estimator.texts", "32", "--batch_size", "4",
                 "--iba.steps", "4", *extra])


def test_evaluate_reports_plausibility_with_coverage_windows_and_wandb(imdb_checkpoint, eraser_data, tmp_path, capsys):
    # without --allow_task_transfer an IMDB model is refused on eraser_movies
    from lightning_iba.cli.evaluate import main

    with pytest.raises(SystemExit):
        main(["--checkpoint", str(imdb_checkpoint), "--data_dir", str(eraser_data), "--out", str(tmp_path / "no"), "--dataset", "eraser_movies"])
    assert "was fine-tuned on imdb, not eraser_movies" in capsys.readouterr().err

    report = run_eval(imdb_checkpoint, eraser_data, tmp_path / "trunc", "--methods", "iba,random", "--wandb", "true")
    out = tmp_path / "trunc"
    table = pd.read_csv(out / "plausibility.csv", index_col=0)
    metrics = ["token_precision", "token_recall", "token_f1", "token_precision_10", "token_recall_10", "token_f1_10",
               "iou_precision", "iou_recall", "iou_f1", "auprc", "average_precision", "comprehensiveness_aopc", "sufficiency_aopc"]
    assert list(table.columns) == ["dataset", "split", "n", "coverage", "faithfulness_n", *[c for m in metrics for c in (m, f"{m}_lo", f"{m}_hi")]]
    assert list(table.index) == ["iba", "random"] and (table["split"] == "test").all()
    coverage = json.loads((out / "plausibility_coverage.json").read_text())
    assert coverage["instances"] == 16 and coverage["rationale_words"] == 16 and 0 < coverage["coverage"] < 1  # 16 tokens: some keywords cut off
    assert table["n"].iloc[0] == coverage["scored"] == coverage["rationale_words_seen"] < 16
    assert (table["faithfulness_n"] == 16).all()  # ERASER's comprehensiveness/sufficiency: every instance, seen rationale or not
    assert table.loc["iba", "token_f1"] > 0.8 > table.loc["random", "token_f1"], table  # IBA finds the keyword, random does not
    assert table.loc["iba", "auprc"] > table.loc["random", "auprc"] and table.loc["iba", "iou_f1"] > table.loc["random", "iou_f1"]
    assert table.loc["iba", "comprehensiveness_aopc"] > table.loc["random", "comprehensiveness_aopc"]
    for m in metrics:
        assert (table[f"{m}_lo"] <= table[m] + 1e-9).all() and (table[m] <= table[f"{m}_hi"] + 1e-9).all(), m
    diff = pd.read_csv(out / "plausibility_differences.csv").set_index(["method_a", "method_b", "metric"])
    assert diff.loc[("iba", "random", "token_f1"), "lo"] > 0
    merged = pd.read_csv(out / "metrics.csv", index_col=0)
    assert {"drop_11", "token_f1", "token_f1_lo", "iou_f1_hi", "auprc", "rationale_coverage"} <= set(merged.columns)
    assert report.metrics.loc["iba", "token_f1"] == pytest.approx(table.loc["iba", "token_f1"])
    md = (out / "plausibility.md").read_text()
    assert f"The model saw the first 16 tokens (truncation): {100 * coverage['coverage']:.1f} % of the 16 rationale words" in md
    assert "about 30 % of the words highlighted" in md and "token_f1 [95% CI]" in md
    records = [json.loads(line) for line in (out / "shards" / "rank-0.jsonl").read_text().splitlines()]
    assert all(r["eraser"]["bins"] == [0.01, 0.05, 0.1, 0.2, 0.5] and r["eraser"]["unit"] == "word" and len(r["eraser"]["keep"]["iba"]) == 5
               for r in records)
    run_dir = report.files["wandb"]
    assert any(p.name.startswith("plausibility") for p in (run_dir / "files" / "media" / "table").rglob("*.table.json"))
    settings = json.loads((out / "settings.json").read_text())
    assert settings["plausibility"] == {"bins": [0.01, 0.05, 0.1, 0.2, 0.5], "bin_unit": "word", "aggregation": "sum", "window_stride": None}
    assert settings["task_transfer"] and settings["report"]["plausibility"] == {"top_fraction": 0.1, "iou_threshold": 0.5}
    assert "the whole words of the input (the top ceil(f * n) words" in md
    assert "for the class the explanations are for: the gold class (ERASER: the predicted class" in md  # --target gold, the default

    # another fixed fraction re-reports on --resume without attributing again; a window stride is another run, and so
    # is another aggregation (it ranks the words of ERASER's bins)
    shard = (out / "shards" / "rank-0.jsonl").read_text()
    run_eval(imdb_checkpoint, eraser_data, out, "--methods", "iba,random", "--wandb", "false", "--resume", "true", "--plausibility.top_fraction", "0.2")
    assert (out / "shards" / "rank-0.jsonl").read_text() == shard
    assert "token_f1_20" in pd.read_csv(out / "plausibility.csv", index_col=0).columns
    for flag, value in (("--plausibility.window_stride", "7"), ("--plausibility.aggregation", "max")):
        with pytest.raises(SystemExit):
            run_eval(imdb_checkpoint, eraser_data, out, "--methods", "iba,random", "--wandb", "false", "--resume", "true", flag, value)
        assert "--resume with different settings" in capsys.readouterr().err, flag

    # in word pieces (the degradation test's unit), aggregation is a reporting setting again and the bins count pieces
    pieces = tmp_path / "pieces"
    run_eval(imdb_checkpoint, eraser_data, pieces, "--methods", "iba,random", "--wandb", "false", "--plausibility.bin_unit", "piece")
    run_eval(imdb_checkpoint, eraser_data, pieces, "--methods", "iba,random", "--wandb", "false", "--plausibility.bin_unit", "piece",
             "--resume", "true", "--plausibility.aggregation", "max")
    assert "aggregated by max" in (pieces / "plausibility.md").read_text() and "round(f * n) pieces" in (pieces / "plausibility.md").read_text()
    by_piece = [json.loads(line) for line in (pieces / "shards" / "rank-0.jsonl").read_text().splitlines()]
    assert {r["eraser"]["unit"] for r in by_piece} == {"piece"}
    assert any(a["eraser"]["remove"]["iba"] != b["eraser"]["remove"]["iba"] for a, b in zip(sorted(records, key=lambda r: r["index"]),
                                                                                          sorted(by_piece, key=lambda r: r["index"])))

    # windows: every word is seen, the degradation test is the same
    windowed = run_eval(imdb_checkpoint, eraser_data, tmp_path / "windows", "--methods", "iba,random", "--wandb", "false", "--plausibility.window_stride", "7")
    coverage = json.loads((tmp_path / "windows" / "plausibility_coverage.json").read_text())
    assert coverage["coverage"] == 1.0 and coverage["scored"] == 16 and coverage["words_seen"] == coverage["words"]
    assert windowed.table1["drop_11"].tolist() == report.table1["drop_11"].tolist()
    records = [json.loads(line) for line in (tmp_path / "windows" / "shards" / "rank-0.jsonl").read_text().splitlines()]
    assert sum("window_scores" in r for r in records) == 16  # every text is longer than 14 pieces
    with_windows = pd.read_csv(tmp_path / "windows" / "plausibility.csv", index_col=0)
    assert with_windows.loc["iba", "token_f1"] > 0.8 > with_windows.loc["random", "token_f1"], with_windows


def test_evaluate_refuses_what_plausibility_cannot_use(imdb_checkpoint, eraser_data, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_eval(imdb_checkpoint, eraser_data, tmp_path / "a", "--methods", "random", "--store_scores", "false", "--wandb", "false")
    assert "a task with rationales needs --store_scores true" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_eval(imdb_checkpoint, eraser_data, tmp_path / "b", "--methods", "random", "--plausibility.window_stride", "15", "--wandb", "false")
    assert "plausibility.window_stride 15 would leave gaps between windows of 14 word pieces" in capsys.readouterr().err


def test_an_eraser_run_with_the_predicted_target_scores_and_says_so(imdb_checkpoint, eraser_data, tmp_path):
    """ERASER's own choice: the predicted class explained and scored, and plausibility.md says so."""
    predicted = tmp_path / "predicted"
    run_eval(imdb_checkpoint, eraser_data, predicted, "--methods", "random", "--wandb", "false", "--target", "predicted")
    assert "for the class the explanations are for: the predicted class, as in ERASER." in (predicted / "plausibility.md").read_text()
    by_prediction = [json.loads(line) for line in (predicted / "shards" / "rank-0.jsonl").read_text().splitlines()]
    assert all(r["original_prob"] == pytest.approx(r["probs"][r["predicted"]], abs=1e-6) for r in by_prediction)
