"""Dataset loading: original file formats, the bundled CSV, the registry, and each bad-input case."""
from __future__ import annotations

import csv
import json
import logging
import re
import shutil
from collections import Counter

import pytest
import torch

from fixtures_data import (
    replace_line,
    write_aclimdb,
    write_agnews,
    write_mnli,
    write_rotten_tomatoes,
    write_rte,
)
from lightning_iba.data.sources import DataSourceError, load_splits, resolve_source
from lightning_iba.data.tasks import TASKS, get_task
from lightning_iba.errors import LightningIBAError, UnknownNameError


def test_registry_knows_every_task():
    assert set(TASKS) == {"imdb", "rotten_tomatoes", "agnews", "rte", "mnli", "eraser_movies"}
    assert get_task("agnews").num_labels == 4 and get_task("mnli").is_pair
    assert get_task("mnli").eval_splits == ("test", "test_mismatched")


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(UnknownNameError, match=r"unknown dataset 'sst2'; valid: agnews, eraser_movies, imdb, mnli, rotten_tomatoes, rte"):
        get_task("sst2")


def test_unknown_source():
    with pytest.raises(UnknownNameError, match="unknown source 'web'"):
        load_splits("imdb", source="web")


def test_local_aclimdb(tmp_path):
    d = load_splits("imdb", "local", write_aclimdb(tmp_path, n_per_class=10), validation_fraction=0.2)
    assert set(d) == {"train", "validation", "test"}
    assert len(d["train"]) + len(d["validation"]) == 20 and len(d["validation"]) == 4 and len(d["test"]) == 20
    row = next(r for r in d["test"] if r["id"] == "test/pos/3_9")
    assert row["label"] == 1 and "<br />" in row["text"]  # pos = 1 as in the hub's map; text kept verbatim
    assert d["train"].features["label"].names == ["neg", "pos"]


def test_local_agnews_maps_classes_from_one(tmp_path):
    d = load_splits("agnews", "local", write_agnews(tmp_path, rows_per_class=5), validation_fraction=0.2)
    labels = sorted(set(d["test"]["label"]))
    assert labels == [0, 1, 2, 3]
    first = d["test"][0]
    assert first["text"].startswith("Title 1, number 0 Description of \"class\" 1") and first["label"] == 0


def test_local_rte_and_mnli_pairs(tmp_path):
    rte = load_splits("rte", "local", write_rte(tmp_path, n=10), validation_fraction=0.2)
    assert rte["test"].column_names == ["id", "text", "text_pair", "label"] and len(rte["test"]) == 10
    assert rte["test"][0] == {"id": "0", "text": 'The "cat" sat on mat 0.', "text_pair": "A cat sat 0.", "label": 0}
    mnli = load_splits("mnli", "local", write_mnli(tmp_path), validation_fraction=1 / 3)
    assert set(mnli) == {"train", "validation", "test", "test_mismatched"}
    assert mnli["test_mismatched"][2]["label"] == get_task("mnli").label_names.index("contradiction")
    assert mnli["test"][0]["text"] == "Premise 0 of dev_matched."


def test_local_task_folder_itself_accepted(tmp_path):
    write_rte(tmp_path)
    assert len(load_splits("rte", "local", tmp_path / "RTE", validation_fraction=0.25)["test"]) == 8


def test_local_rotten_tomatoes_carves_all_splits(tmp_path):
    d = load_splits("rotten_tomatoes", "local", write_rotten_tomatoes(tmp_path, n=20))
    assert sum(len(s) for s in d.values()) == 40 and "caf\xe9" in " ".join(t for s in d.values() for t in s["text"])


def test_bundled_imdb_split_is_deterministic_and_stratified():
    a = load_splits("imdb", "bundled")
    b = load_splits("imdb", "bundled")
    assert {k: len(v) for k, v in a.items()} == {"train": 20250, "validation": 2250, "test": 2500}
    assert list(a["test"]["id"]) == list(b["test"]["id"])
    assert sum(a["test"]["label"]) == 1250  # stratified: balanced like the source
    assert not set(a["test"]["id"]) & set(a["train"]["id"])


def test_bundled_only_for_movie_tasks():
    with pytest.raises(DataSourceError, match="no bundled data for 'rte'"):
        load_splits("rte", "bundled")


def test_missing_data_dir_and_missing_file_named(tmp_path):
    with pytest.raises(DataSourceError, match="needs data_dir"):
        load_splits("rte", "local", None)
    (tmp_path / "RTE").mkdir()
    (tmp_path / "RTE" / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n")
    with pytest.raises(DataSourceError, match=r"missing file: .*RTE/dev\.tsv"):
        load_splits("rte", "local", tmp_path)
    with pytest.raises(DataSourceError, match=r"missing file: .*aclImdb/test \(source local reads aclImdb/train/\{pos,neg\}/\*\.txt and/or aclImdb/test/"):
        load_splits("imdb", "local", tmp_path)
    (tmp_path / "aclImdb" / "train" / "pos").mkdir(parents=True)
    with pytest.raises(DataSourceError, match=r"missing file: .*aclImdb/train/neg$"):
        load_splits("imdb", "local", tmp_path)


def test_label_out_of_range(tmp_path):
    with pytest.raises(DataSourceError, match=r"ag_news_csv/train\.csv:13: label '5' is not one of 1, 2, 3, 4$"):
        load_splits("agnews", "local", write_agnews(tmp_path, bad_class="5"))
    with pytest.raises(DataSourceError, match=r"dev\.tsv:10: label 'maybe' is not one of entailment, not_entailment|train\.tsv:10: label 'maybe'"):
        load_splits("rte", "local", write_rte(tmp_path / "r", bad_label="maybe"))


def test_hub_labels_outside_the_task_are_an_error_naming_split_and_row(monkeypatch):
    """The hub's rows are not read through a label map: the schema refuses a label id the task lacks, e.g. GLUE's -1."""
    import datasets

    import lightning_iba.data.hub_source as hub_source

    served = {"train": [0, 1, 1, 0], "validation": [-1, -1, -1]}  # GLUE's unlabelled test splits carry -1

    def load_dataset(name, config, split):
        assert (name, config) == ("nyu-mll/glue", "rte")
        labels = served[split]
        return datasets.Dataset.from_dict({"sentence1": [f"Premise {i}." for i in range(len(labels))],
                                           "sentence2": [f"Hypothesis {i}." for i in range(len(labels))],
                                           "label": labels, "idx": list(range(len(labels)))})

    monkeypatch.setattr(hub_source, "hub_reachable", lambda: True)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    message = "rte test (nyu-mll/glue validation from the hub): label -1 of '0' is outside 0..1 (3 such rows) (-1: an unlabelled split, like the hub's GLUE test splits?)"
    with pytest.raises(DataSourceError, match=f"^{re.escape(message)}$"):
        load_splits("rte", "hub")
    served["validation"] = [0, 1, 2]
    with pytest.raises(DataSourceError, match=re.escape("rte test (nyu-mll/glue validation from the hub): label 2 of '2' is outside 0..1 (1 such rows)") + "$"):
        load_splits("rte", "hub")


def test_a_split_of_empty_texts_alone_is_an_error(tmp_path):
    write_rte(tmp_path, n=0, empty_rows=3)  # every premise blank
    with pytest.raises(DataSourceError, match=r"^rte train \(.*RTE/train\.tsv\): no non-empty texts$"):
        load_splits("rte", "local", tmp_path)


def test_empty_texts_dropped_with_a_count(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="lightning_iba.data"):
        d = load_splits("rte", "local", write_rte(tmp_path, n=8, empty_rows=2), validation_fraction=0.25)
    assert len(d["test"]) == 8
    assert "dropped 2 empty texts from rte test" in caplog.text and "dropped 2 empty texts from rte train" in caplog.text


def test_hub_unreachable_fails_fast_with_advice(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from lightning_iba.hub import hub_reachable

    hub_reachable.cache_clear()
    with pytest.raises(DataSourceError, match="cannot load dataset 'rte' from the hub .*--data.source local"):
        load_splits("rte", "hub")
    with pytest.raises(DataSourceError, match="cannot load dataset 'mnli'"):
        resolve_source(get_task("mnli"), "auto")
    assert resolve_source(get_task("imdb"), "auto") == "bundled"


def test_hub_unreachable_without_env_flag(monkeypatch):
    """Without HF_HUB_OFFLINE the connection attempt itself must fail fast (no retries) on a closed network."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    from lightning_iba.hub import hub_reachable

    hub_reachable.cache_clear()
    try:
        with pytest.raises(DataSourceError, match="no network connection to the Hugging Face hub"):
            load_splits("agnews", "auto")
    finally:
        hub_reachable.cache_clear()


#: what source local needs of each task in ../shared/data: imdb reads aclImdb/test alone (evaluation needs no train)
LOCAL_NEEDS = {"imdb": "aclImdb/test", "rte": "RTE/train.tsv"}
#: real files of ../shared/data (PROVENANCE.md) that source local reads under other names, linked in a folder under
#: those: AG News's 13,775-row train subset as train.csv; for MNLI, GLUE-format tsv files of LM-BFF's k-shot samples
#: (all GLUE train rows) in the place of train, dev_matched and dev_mismatched. Rotten Tomatoes has no files there
#: (only the bundled package's rows), so its local reader is tested on fixtures alone.
LINKED_REAL_FILES = {
    "agnews": {"ag_news_csv/train.csv": "ag_news_csv/train_subset.csv", "ag_news_csv/test.csv": "ag_news_csv/test.csv"},
    "mnli": {"MNLI/train.tsv": "mnli_train_sample/k-shot/MNLI/16-13/train.tsv",
             "MNLI/dev_matched.tsv": "mnli_train_sample/k-shot/MNLI/16-13/dev_matched.tsv",
             "MNLI/dev_mismatched.tsv": "mnli_train_sample/k-shot/MNLI/16-21/dev_matched.tsv"},
}


@pytest.mark.parametrize("task", ["imdb", "agnews", "rte", "mnli"])
def test_real_files_in_shared_data(shared_data, tmp_path, task):
    root = shared_data
    if task in LINKED_REAL_FILES:
        root = tmp_path
        for name, real in LINKED_REAL_FILES[task].items():
            if not (shared_data / real).is_file():
                pytest.skip(f"{real} is not in ../shared/data")
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).symlink_to((shared_data / real).resolve())
    elif not (shared_data / LOCAL_NEEDS[task]).exists():
        pytest.skip(f"{LOCAL_NEEDS[task]} is not in ../shared/data")
    d = load_splits(task, "local", root)
    for split in get_task(task).eval_splits:
        assert len(d[split]) > 0 and max(d[split]["label"]) < get_task(task).num_labels
    sizes = {k: len(v) for k, v in d.items()}
    if task == "imdb" and not (shared_data / "aclImdb" / "train").exists():  # the test folder alone: nothing carved
        assert list(d) == ["test"] and len(d["test"]) == 25000 and Counter(d["test"]["label"]) == {0: 12500, 1: 12500}
        assert d["test"][0]["id"] == "test/neg/0_2" and d["test"][0]["text"].startswith("Once again Mr. Costner has dragged out a movie")
    if task == "rte":
        assert sizes == {"train": 2241, "validation": 249, "test": 277}
        assert (d["test"][0]["text_pair"], d["test"][0]["label"]) == ("Christopher Reeve had an accident.", 1)  # not_entailment
    if task == "agnews":
        assert sizes == {"train": 12397, "validation": 1378, "test": 7600}
        assert Counter(d["train"]["label"]) + Counter(d["validation"]["label"]) == {0: 3380, 1: 3354, 2: 3385, 3: 3656}
        assert sorted(Counter(d["test"]["label"]).values()) == [1900] * 4
        assert d["test"][0]["label"] == 2 and d["test"][0]["text"].startswith("Fears for T N pension after talks Unions representing")
    if task == "mnli":
        assert sizes == {"train": 43, "validation": 5, "test": 48, "test_mismatched": 48}
        assert Counter(d["train"]["label"]) + Counter(d["validation"]["label"]) == {0: 16, 1: 16, 2: 16}
        assert Counter(d["test"]["label"]) == Counter(d["test_mismatched"]["label"]) == {0: 16, 1: 16, 2: 16}
        for split, name in (("test", "dev_matched.tsv"), ("test_mismatched", "dev_mismatched.tsv")):
            header, first = ((root / "MNLI" / name).read_text(encoding="utf-8").splitlines()[i].split("\t") for i in (0, 1))
            row = dict(zip(header, first))
            assert d[split][0] == {"id": row["index"], "text": row["sentence1"], "text_pair": row["sentence2"],
                                   "label": ["entailment", "neutral", "contradiction"].index(row["gold_label"])}


def test_datamodule_tokenises_pairs_and_pads_per_batch(tmp_path, bundled_model_path):
    from lightning_iba.data.datamodule import TextClassificationDataModule

    dm = TextClassificationDataModule("rte", "local", str(write_rte(tmp_path, n=10)), bundled_model_path, max_length=12, batch_size=4, validation_fraction=0.2)
    dm.setup()
    batch = next(iter(dm.test_dataloader()))
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels", "idx"}  # idx: metrics count each example once
    assert batch["input_ids"].shape[1] <= 12
    assert (batch["token_type_ids"] == 1).any()  # the second segment is marked
    lengths = batch["attention_mask"].sum(1)
    assert lengths.max() == batch["input_ids"].shape[1]  # padded to the longest in the batch, not to max_length
    assert batch["labels"].dtype == torch.long


def test_datamodule_rejects_tiny_max_length(bundled_model_path):
    from lightning_iba.data.datamodule import TextClassificationDataModule

    with pytest.raises(LightningIBAError, match="max_length"):
        TextClassificationDataModule("imdb", "bundled", None, bundled_model_path, max_length=2)


# ---------------------------------------------------------------- malformed input files: one line naming file and line


@pytest.mark.parametrize(
    "task, write, path, line",
    [
        ("agnews", write_agnews, "ag_news_csv/test.csv", 5),
        ("rte", write_rte, "RTE/train.tsv", 4),
        ("imdb", write_aclimdb, "aclImdb/test/neg/2_2.txt", 1),
    ],
)
def test_non_utf8_bytes_name_file_line_and_offset(tmp_path, task, write, path, line):
    write(tmp_path)
    f = tmp_path / path
    old = f.read_bytes().split(b"\n")[line - 1]
    replace_line(f, line, old[:6] + b"\xff" + old[6:])  # a latin-1 byte where UTF-8 is expected
    offset = f.read_bytes().index(b"\xff")
    message = f"{re.escape(path)}:{line}: not valid UTF-8 \\(byte 0xff at offset {offset}\\); re-encode the file as UTF-8$"
    with pytest.raises(DataSourceError, match=message):
        load_splits(task, "local", tmp_path, validation_fraction=0.34)


def test_rotten_tomatoes_stays_latin1(tmp_path):
    write_rotten_tomatoes(tmp_path, n=10)
    replace_line(tmp_path / "rt-polaritydata" / "rt-polarity.neg", 3, b"na\xefve and \xff dull")  # valid latin-1
    d = load_splits("rotten_tomatoes", "local", tmp_path)
    assert "na\xefve and \xff dull" in [t for s in d.values() for t in s["text"]]


def test_stray_tab_in_glue_tsv_is_a_column_error(tmp_path):
    write_rte(tmp_path)
    replace_line(tmp_path / "RTE" / "train.tsv", 4, "2\tThe cat\tsat on the mat.\tA cat sat.\tentailment")
    with pytest.raises(
        DataSourceError,
        match=r"RTE/train\.tsv:4: expected 4 tab-separated columns \(index, sentence1, sentence2, label\), got 5; a stray tab in a text\?$",
    ):
        load_splits("rte", "local", tmp_path, validation_fraction=0.25)
    replace_line(tmp_path / "RTE" / "train.tsv", 4, "2\tThe cat sat on the mat.\tentailment")
    with pytest.raises(DataSourceError, match=r"RTE/train\.tsv:4: expected 4 tab-separated columns .*, got 3"):
        load_splits("rte", "local", tmp_path, validation_fraction=0.25)


def test_agnews_needs_exactly_three_columns(tmp_path):
    write_agnews(tmp_path)
    replace_line(tmp_path / "ag_news_csv" / "test.csv", 7, '"2","Title",Description, with a comma')
    with pytest.raises(
        DataSourceError,
        match=r"ag_news_csv/test\.csv:7: expected 3 comma-separated columns \(class index, title, description\), got 4; an unquoted comma",
    ):
        load_splits("agnews", "local", tmp_path, validation_fraction=0.34)


@pytest.mark.parametrize(
    "line, content, runs_to",
    [
        (5, '"2","Title 2, number 1","Description cut mi', "line 6"),  # the next row's quote closes it: read as one field
        (12, '"4","Title 4, number 2","Description cut mi', "the end of the file"),  # the last row: old code kept it
        (5, '"2","Title 2, number 1","Description cut mi\nd-field."', "line 6"),  # a line break in a field: never in AG News
    ],
)
def test_agnews_unterminated_quote(tmp_path, line, content, runs_to):
    write_agnews(tmp_path)  # 12 rows a file
    replace_line(tmp_path / "ag_news_csv" / "test.csv", line, content)
    with pytest.raises(DataSourceError, match=rf"ag_news_csv/test\.csv:{line}: unterminated quote \(the field runs on to {runs_to}\)$"):
        load_splits("agnews", "local", tmp_path, validation_fraction=0.34)


@pytest.mark.parametrize("bad", ["5", "x", "0", ""])
def test_agnews_label_quotes_the_files_value_and_line(tmp_path, bad):
    write_agnews(tmp_path)
    replace_line(tmp_path / "ag_news_csv" / "test.csv", 3, f'"{bad}","Title","Description."')
    with pytest.raises(DataSourceError, match=rf"ag_news_csv/test\.csv:3: label '{bad}' is not one of 1, 2, 3, 4$"):
        load_splits("agnews", "local", tmp_path, validation_fraction=0.34)


def test_split_too_small_to_carve(tmp_path):
    write_rte(tmp_path, n=3)  # train: 2 entailment, 1 not_entailment; 10% for validation is 1 row
    with pytest.raises(
        DataSourceError,
        match=r"rte train \(.*RTE/train\.tsv\) has 3 rows, too few to carve a validation split \(validation_fraction=0\.1\) "
        r"out of it: a stratified split needs at least one example of each of its 2 labels in both parts, "
        r"but the parts would get 2 and 1 rows and label 'not_entailment' has 1$",
    ):
        load_splits("rte", "local", tmp_path)
    write_rotten_tomatoes(tmp_path, n=1)  # no test split: carving test comes first
    with pytest.raises(DataSourceError, match=r"rotten_tomatoes train \(.*rt-polarity\.\{pos,neg\}\) has 2 rows, too few to carve a test split"):
        load_splits("rotten_tomatoes", "local", tmp_path)


@pytest.mark.parametrize(
    "task, write, path, content, message",
    [
        ("agnews", write_agnews, "ag_news_csv/test.csv", "", r"ag_news_csv/test\.csv: empty file \(no rows\)$"),
        ("rte", write_rte, "RTE/dev.tsv", "", r"RTE/dev\.tsv: empty file"),
        ("rte", write_rte, "RTE/dev.tsv", "index\tsentence1\tsentence2\tlabel\n", r"RTE/dev\.tsv: no rows after the header line$"),
        ("rotten_tomatoes", write_rotten_tomatoes, "rt-polaritydata/rt-polarity.neg", "\n", r"rt-polarity\.neg: empty file"),
    ],    ids=["agnews-empty", "tsv-empty", "tsv-header-only", "rt-blank"],
)
def test_empty_file_is_named(tmp_path, task, write, path, content, message):
    write(tmp_path)
    (tmp_path / path).write_text(content, encoding="utf-8")
    with pytest.raises(DataSourceError, match=message):
        load_splits(task, "local", tmp_path, validation_fraction=0.34)


@pytest.mark.parametrize(
    "content, message",
    [
        (b'text,label,source\n"good",1,imdb\n"bad",x,imdb\n', r"combined\.csv:3: label 'x' is not one of 0, 1$"),
        (b'text,label,source\n"good",1,imdb\n"caf\xe9",0,imdb\n', r"combined\.csv:3: not valid UTF-8 \(byte 0xe9 at offset 36\)"),
    ],    ids=["bad-label", "non-utf8"],
)
def test_bundled_csv_errors_name_file_and_line(tmp_path, monkeypatch, content, message):
    from lightning_iba.data import sources

    path = tmp_path / "combined.csv"
    path.write_bytes(content)
    monkeypatch.setattr(sources, "bundled_csv_path", lambda: path)
    with pytest.raises(DataSourceError, match=message):
        load_splits("imdb", "bundled")


def test_real_agnews_test_csv_reads_exactly(shared_data, tmp_path):
    """The original AG News test.csv (all fields quoted, backslash escapes) reads row for row under the strict reader."""
    real = shared_data / "ag_news_csv"
    if not (real / "test.csv").exists():
        pytest.skip("ag_news_csv/test.csv is not in ../shared/data")
    d = tmp_path / "ag_news_csv"
    d.mkdir()
    (d / "test.csv").symlink_to((real / "test.csv").resolve())
    write_agnews(tmp_path / "small")
    (d / "train.csv").symlink_to(tmp_path / "small" / "ag_news_csv" / "train.csv")
    test = load_splits("agnews", "local", tmp_path, validation_fraction=0.34)["test"]
    assert len(test) == 7600 and sorted(Counter(test["label"]).values()) == [1900] * 4
    assert test[0]["text"].startswith("Fears for T N pension after talks Unions representing workers at Turner")


def test_carving_gives_exactly_the_splits_of_datasets_train_test_split():
    """The fast carve reads the labels in one batch but must keep every published split's membership and order."""
    from datasets import ClassLabel, Dataset, Features, Value

    from lightning_iba.data.sources import _carve

    n = 503
    ds = Dataset.from_dict({"id": [str(i) for i in range(n)], "label": [(i * 7) % 3 for i in range(n)]},
                           features=Features({"id": Value("string"), "label": ClassLabel(names=["a", "b", "c"])}))
    for fraction, seed in ((0.1, 0), (0.25, 3)):
        want = ds.train_test_split(test_size=fraction, stratify_by_column="label", seed=seed)
        keep, carved = _carve(ds, fraction, seed)
        assert list(keep["id"]) == list(want["train"]["id"]) and list(carved["id"]) == list(want["test"]["id"])


# ---------------------------------------------------------------- source files: one file a split, as run_glue.py


def files(**kw):
    from lightning_iba.data.files_source import DataFiles

    return DataFiles(**kw)


def write_csv(path, rows, header=None, quoting=csv.QUOTE_MINIMAL):
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, quoting=quoting, lineterminator="\n")
        if header:
            w.writerow(header)
        w.writerows(rows)
    return path


def reviews(n: int = 10, labels=("neg", "pos")) -> list[tuple[str, str, str]]:
    """(id, text, label) rows: texts with a comma, a quote and a number-like text, labels spelled by `labels`."""
    return [(f"r{i}", f'review {i}, "quoted" and fine' if i else "007", labels[i % 2]) for i in range(n)]


def test_files_csv_with_header_names_or_ids(tmp_path):
    train = write_csv(tmp_path / "train.csv", reviews(20), header=["id", "text", "label"])
    test = write_csv(tmp_path / "test.csv", reviews(6, labels=("0", "1")), header=["id", "text", "label"])
    d = load_splits("imdb", "files", files=files(train_file=str(train), test_file=str(test)), validation_fraction=0.2)
    assert {k: len(v) for k, v in d.items()} == {"train": 16, "validation": 4, "test": 6}
    assert d["test"][0] == {"id": "r0", "text": "007", "label": 0}  # texts exactly as written: no number parsing
    assert d["test"][1] == {"id": "r1", "text": 'review 1, "quoted" and fine', "label": 1}


def test_files_headerless_csv_agnews_label_values(tmp_path):
    rows = [(str(c), f"Title {c}.{i}", f"Description \\$ {c}") for c in (1, 2, 3, 4) for i in range(5)]
    f = write_csv(tmp_path / "test.csv", rows, quoting=csv.QUOTE_ALL)
    spec = {"test_file": str(f), "column_names": ["label", "title", "description"], "text_columns": ["title", "description"]}
    d = load_splits("agnews", "files", files=files(**spec, label_values=[1, 2, 3, 4]))
    assert list(d) == ["test"] and Counter(d["test"]["label"]) == {0: 5, 1: 5, 2: 5, 3: 5}
    assert d["test"][0] == {"id": "test-0", "text": "Title 1.0 Description \\$ 1", "label": 0}  # title + " " + description
    with pytest.raises(DataSourceError, match=r"test\.csv:16: label '4' is not one of World, Sports, Business, Sci/Tech or 0\.\.3; set files\.label_values"):
        load_splits("agnews", "files", files=files(**spec))  # 1..3 would pass as ids: the first 4 is the error
    with pytest.raises(DataSourceError, match=r"test\.csv:1: 3 comma-separated columns, but files\.column_names names 2"):
        load_splits("agnews", "files", files=files(**{**spec, "column_names": ["label", "title"]}))


def test_files_label_values_as_names(tmp_path):
    f = write_csv(tmp_path / "t.csv", [(t, y) for _, t, y in reviews(4, labels=("negative", "positive"))], header=["text", "label"])
    d = load_splits("imdb", "files", files=files(test_file=str(f), label_values=["negative", "positive"]))
    assert d["test"]["label"] == [0, 1, 0, 1] and d["test"]["id"] == ["test-0", "test-1", "test-2", "test-3"]
    with pytest.raises(DataSourceError, match=r"files\.label_values has 3 values but imdb has 2 labels \(neg, pos\)"):
        load_splits("imdb", "files", files=files(test_file=str(f), label_values=["a", "b", "c"]))


def test_files_glue_tsv_bare_quotes_and_gold_label(tmp_path):
    write_rte(tmp_path, n=10)
    tsv = tmp_path / "RTE" / "dev.tsv"
    replace_line(tsv, 3, '1\tHe said "yes.\tA "quote\tnot_entailment')  # bare quotes: GLUE tsv has no quoting
    d = load_splits("rte", "files", files=files(train_file=str(tmp_path / "RTE" / "train.tsv"), test_file=str(tsv)), validation_fraction=0.2)
    assert d["test"][1] == {"id": "1", "text": 'He said "yes.', "text_pair": 'A "quote', "label": 1}  # id from the index column
    mnli = write_mnli(tmp_path, n=18)
    k_shot = files(train_file=str(mnli / "MNLI" / "train.tsv"), text_columns=["sentence1", "sentence2"], label_column="gold_label")
    d = load_splits("mnli", "files", files=k_shot, validation_fraction=0.25, test_fraction=1 / 3)
    assert {k: len(v) for k, v in d.items()} == {"train": 9, "validation": 3, "test": 6}


def test_files_json_lines_keyed_json_and_parquet(tmp_path):
    from datasets import Dataset

    rows = [{"premise": f"P {i}.", "hypothesis": f"H {i}.", "label": i % 3} for i in range(6)]
    jsonl = tmp_path / "dev.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    keyed = tmp_path / "train.json"  # the glue_pretrain layout: one object of row objects, indent 4, label names
    keyed.write_text(json.dumps({str(10 + i): {"text_a": f"A {i}.", "text_b": f"B {i}.", "label": ["entailment", "neutral", "contradiction"][i % 3]}
                                 for i in range(9)}, indent=4), encoding="utf-8")
    parquet = tmp_path / "test.parquet"
    Dataset.from_list([{**r, "idx": 100 + i} for i, r in enumerate(rows)]).to_parquet(str(parquet))
    d = load_splits("mnli", "files", files=files(train_file=str(keyed), validation_file=str(jsonl), test_file=str(parquet),
                                                 text_columns=["text_a", "text_b"]))
    assert {k: len(v) for k, v in d.items()} == {"train": 9, "validation": 6, "test": 6}
    assert d["train"][0] == {"id": "10", "text": "A 0.", "text_pair": "B 0.", "label": 0}  # ids: the keys
    assert d["validation"][2] == {"id": "validation-2", "text": "P 2.", "text_pair": "H 2.", "label": 2}
    assert d["test"][1]["id"] == "101"  # the hub columns of the parquet file are read although text_columns names others


def test_files_save_to_disk_split_folder(tmp_path):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    features = Features({"premise": Value("string"), "hypothesis": Value("string"), "label": ClassLabel(names=["entailment", "neutral", "contradiction"]),
                         "idx": Value("int32")})
    ds = Dataset.from_dict({"premise": ["p0", "p1", "p2"], "hypothesis": ["h0", "h1", "h2"], "label": [2, 1, 0], "idx": [0, 1, 2]}, features=features)
    DatasetDict({"validation_matched": ds}).save_to_disk(str(tmp_path / "dd"))
    d = load_splits("mnli", "files", files=files(test_file=str(tmp_path / "dd" / "validation_matched")))
    assert d["test"]["label"] == [2, 1, 0] and d["test"]["id"] == ["0", "1", "2"]
    reordered = Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}, features=Features({"text": Value("string"), "label": ClassLabel(names=["pos", "neg"])}))
    reordered.save_to_disk(str(tmp_path / "reordered"))  # a ClassLabel with the task's names in another order is read by name
    assert load_splits("imdb", "files", files=files(test_file=str(tmp_path / "reordered")))["test"]["label"] == [1, 0]
    with pytest.raises(DataSourceError, match=r"dd \(files\.test_file\) holds a DatasetDict \(splits validation_matched\), not one split: "
                                              r"name a split's folder, e.g. .*dd/validation_matched, or use source disk"):
        load_splits("mnli", "files", files=files(test_file=str(tmp_path / "dd")))


def hub_split(columns: tuple[str, str], names: tuple[str, ...], n: int, tag: str = ""):
    """A split as the hub's GLUE datasets have it: two text columns, a ClassLabel and idx."""
    from datasets import ClassLabel, Dataset, Features, Value

    a, b = columns
    features = Features({a: Value("string"), b: Value("string"), "label": ClassLabel(names=list(names)), "idx": Value("int32")})
    rows = {a: [f"{tag} p{i}" for i in range(n)], b: [f"h{i}" for i in range(n)], "label": [i % len(names) for i in range(n)], "idx": list(range(n))}
    return Dataset.from_dict(rows, features=features)


def test_disk_source_maps_hub_splits_and_carves_nothing_without_train(tmp_path):
    from datasets import DatasetDict

    mnli = (("premise", "hypothesis"), get_task("mnli").label_names)
    DatasetDict({"validation_matched": hub_split(*mnli, 6, "m"), "validation_mismatched": hub_split(*mnli, 3, "mm"),
                 "test_matched": hub_split(*mnli, 2, "t")}).save_to_disk(str(tmp_path / "mnli"))
    d = load_splits("mnli", "disk", tmp_path / "mnli")
    assert list(d) == ["test", "test_mismatched"] and (len(d["test"]), len(d["test_mismatched"])) == (6, 3)
    assert d["test_mismatched"][1] == {"id": "1", "text": "mm p1", "text_pair": "h1", "label": 1}
    # rte: train + validation (= test) as the hub has them; validation carved out of train
    rte = (("sentence1", "sentence2"), get_task("rte").label_names)
    DatasetDict({"train": hub_split(*rte, 10), "validation": hub_split(*rte, 4)}).save_to_disk(str(tmp_path / "rte"))
    d = load_splits("rte", "disk", tmp_path / "rte", validation_fraction=0.2)
    assert {k: len(v) for k, v in d.items()} == {"train": 8, "validation": 2, "test": 4}
    with pytest.raises(DataSourceError, match=r"mnli: none of the splits of nyu-mll/glue \(rte\) \(train, validation\); the folder has validation_matched"):
        load_splits("rte", "disk", tmp_path / "mnli")
    with pytest.raises(DataSourceError, match=r"source 'disk' needs data_dir, a datasets\.save_to_disk folder"):
        load_splits("rte", "disk", None)


@pytest.mark.parametrize(
    "name, content, spec, message",
    [
        ("t.csv", "text,label\nfine,pos\n", {"label_column": "y"},
         r"t\.csv: no column 'y' \(files\.label_column\); the file has 'text', 'label'$"),
        ("t.csv", "fine,pos\nbad,neg\n", {},
         r"t\.csv: no column 'text' \(the imdb text column \(files\.text_columns\)\); the file has 'fine', 'pos' \(a file without a header line needs files\.column_names\)$"),
        ("t.csv", 'text,label\nfine,pos\n"two\nlines",neg\nbad,maybe\n', {},
         r"t\.csv:5: label 'maybe' is not one of neg, pos or 0\.\.1; set files\.label_values"),
        ("t.tsv", "text\tlabel\nfine\tpos\nbad\t-1\n", {}, r"t\.tsv:3: label '-1' is not one of neg, pos or 0\.\.1 \(-1: an unlabelled split"),
        ("t.jsonl", '{"text": "fine", "label": 1}\n\n{"text": "bad", "label": 7}\n', {}, r"t\.jsonl:3: label '7' is not one of neg, pos or 0\.\.1"),
        ("t.json", '{"a": {"text": "fine", "label": "pos"}, "b": {"text": "bad", "label": ""}}', {},
         r"t\.json: row 'b': label '' is not one of neg, pos or 0\.\.1 \(an empty label\)$"),
        ("t.csv", "", {}, r"t\.csv: empty file \(files\.test_file\)$"),
        ("t.jsonl", "\n\n", {}, r"t\.jsonl: empty file \(files\.test_file\)$"),
        ("t.csv", "text,label\n", {}, r"t\.csv: no rows after the header line \(text, label\)$"),
        ("t.parquet", None, {}, r"t\.parquet: no rows$"),
        ("t.txt", "fine\n", {}, r"t\.txt: unknown file type '\.txt' \(files\.test_file\); use \.csv, \.tsv, \.json, \.jsonl, \.parquet or a datasets\.save_to_disk folder$"),
        ("t.csv", 'text,label\n"open,pos\n', {}, r"t\.csv: cannot read it as csv \(ParserError: .*EOF"),
        ("t.json", '{"text": "fine", "label": 1', {}, r"t\.json:1: malformed JSON \(Expecting"),
    ],
    ids=["column", "headerless", "label-csv", "label-tsv", "label-jsonl", "label-keyed", "empty", "blank", "header-only", "parquet-no-rows", "extension",
         "csv-quote", "json"],
)
def test_bad_files_are_one_line_errors_naming_the_file(tmp_path, name, content, spec, message):
    f = tmp_path / name
    if content is None:
        from datasets import Dataset

        Dataset.from_dict({"text": [], "label": []}).to_parquet(str(f))
    else:
        f.write_text(content, encoding="utf-8")
    with pytest.raises(DataSourceError, match=message) as error:
        load_splits("imdb", "files", files=files(test_file=str(f), **spec))
    assert "\n" not in str(error.value)


def test_files_settings_errors(tmp_path):
    with pytest.raises(DataSourceError, match=r"missing file: .*nope\.csv \(files\.train_file\)$"):
        load_splits("imdb", "files", files=files(train_file=str(tmp_path / "nope.csv")))
    with pytest.raises(DataSourceError, match=r"source 'files' needs at least one of files\.train_file, files\.validation_file, files\.test_file$"):
        load_splits("imdb", "files", files=files())
    f = write_csv(tmp_path / "t.csv", [("a", "b", "entailment")], header=["sentence1", "sentence2", "label"])
    with pytest.raises(DataSourceError, match=r"rte is a sentence-pair task: files\.text_columns needs exactly 2 columns, got \['sentence1'\]"):
        load_splits("rte", "files", files=files(test_file=str(f), text_columns=["sentence1"]))
    with pytest.raises(DataSourceError, match=r"files\.test_mismatched_file is for mnli only"):
        load_splits("rte", "files", files=files(test_mismatched_file=str(f)))
    with pytest.raises(DataSourceError, match=r"t\.csv: no column 'premise' \(the mnli text column \(files\.text_columns\)\); the file has 'sentence1', 'sentence2', 'label'"):
        load_splits("mnli", "files", files=files(test_file=str(f)))


def test_absent_split_is_a_one_line_error_with_a_hint(tmp_path, bundled_model_path):
    from lightning_iba.data.datamodule import TextClassificationDataModule
    from lightning_iba.data.sources import require_split, split_hint

    task = get_task("imdb")
    test_only = write_aclimdb(tmp_path / "acl", n_per_class=3)
    shutil.rmtree(test_only / "aclImdb" / "train")
    d = load_splits("imdb", "local", test_only)
    assert list(d) == ["test"] and len(d["test"]) == 6
    dm = TextClassificationDataModule("imdb", "local", str(test_only), bundled_model_path, max_length=16)
    with pytest.raises(DataSourceError, match=r"^fine-tuning needs the 'train' split of imdb, but source 'local' has only: test; "
                                              r"--data\.source bundled has imdb training data$"):
        dm.setup("fit")
    dm.setup("test")  # testing needs only test
    assert split_hint(task, "local", "train", "--estimator.source") == "--estimator.source bundled has imdb training data"
    assert split_hint(get_task("mnli"), "disk", "train", "--estimator.source") == "read it with --estimator.source files and --files.train_file FILE"
    with pytest.raises(DataSourceError, match=r"^evaluation \(--split\) needs the 'validation' split of imdb, but source 'files' has only: test; set --files\.validation_file$"):
        require_split(d, "validation", task, "files", "evaluation (--split)", split_hint(task, "files", "validation"))


def test_estimator_names_the_missing_split_and_reads_another_source(tmp_path, tiny_bert):
    from types import SimpleNamespace

    from lightning_iba.cli.common import EstimatorSettings, load_estimator

    test_only = write_aclimdb(tmp_path / "acl", n_per_class=2)
    shutil.rmtree(test_only / "aclImdb" / "train")
    model = SimpleNamespace(fingerprint="sha256:0", model=tiny_bert, path=tmp_path, tokenizer=None)
    settings = EstimatorSettings(texts=4, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataSourceError, match=r"^the IBA estimator \(--estimator\.split\) needs the 'train' split of imdb, but source 'local' has only: test; "
                                              r"--estimator\.source bundled has imdb training data$"):
        load_estimator(settings, model, get_task("imdb"), "local", str(test_only), 16)
    train = write_csv(tmp_path / "train.csv", [(t, y) for _, t, y in reviews(10)], header=["text", "label"])
    settings = EstimatorSettings(texts=4, source="files", split="validation", cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataSourceError, match=r"needs the 'validation' split of imdb, but source 'files' has only: test; set --files\.validation_file$"):
        load_estimator(settings, model, get_task("imdb"), "local", str(test_only), 16, files=files(test_file=str(train)))


def test_data_identity_follows_file_contents(tmp_path):
    from lightning_iba.data.files_source import run_data_identity, statistics_source

    f = write_csv(tmp_path / "t.csv", [("a", "pos")], header=["text", "label"])
    spec = files(test_file=str(f))
    before = run_data_identity(["files", "local"], None, spec)
    assert before["files"]["test_file"] == str(f) and before["data"]["files"]["test"]["path"] == str(f.resolve())
    key = statistics_source("files", None, spec)
    assert key.startswith("files:") and statistics_source("local", "x", spec) == "local"
    write_csv(f, [("b", "neg")], header=["text", "label"])
    assert run_data_identity(["files"], None, spec) != before and statistics_source("files", None, spec) != key
    assert run_data_identity(["hub", "bundled"], None, spec) == {"files": None, "data": None}


def test_cli_settings_for_files_and_disk(tmp_path, capsys):
    """The YAML of a fine-tuning run from files and the evaluate flags of sources disk, local and files parse."""
    import yaml

    from lightning_iba.cli.evaluate import parse
    from lightning_iba.cli.train import build_cli

    config = tmp_path / "agnews.yaml"
    config.write_text(
        "data:\n  dataset: agnews\n  source: files\n  files:\n    train_file: ../shared/data/ag_news_csv/train_subset.csv\n"
        "    test_file: ../shared/data/ag_news_csv/test.csv\n    column_names: [label, title, description]\n"
        "    text_columns: [title, description]\n    label_values: [1, 2, 3, 4]\n"
    )
    with pytest.raises(SystemExit):
        build_cli(["--config", str(config), "--print_config"])
    data = yaml.safe_load(capsys.readouterr().out)["data"]
    assert data["source"] == "files" and data["files"]["label_values"] == [1, 2, 3, 4] and data["files"]["label_column"] == "label"
    s = parse(["--source", "disk", "--data_dir", "../shared/data/mnli_hf", "--split", "test_mismatched"])
    assert (s.source, s.split, s.files.train_file) == ("disk", "test_mismatched", None)
    evaluation = tmp_path / "imdb.yaml"
    evaluation.write_text("dataset: imdb\nsource: local\ndata_dir: ../shared/data\nsplit: test\nestimator: {source: bundled}\n")
    s = parse(["--config", str(evaluation)])
    assert (s.source, s.estimator.source) == ("local", "bundled")
    s = parse(["--source", "files", "--files.test_file", "t.csv", "--files.text_columns", "[title, description]", "--files.label_values", "[1, 2]"])
    assert (s.files.test_file, s.files.text_columns, s.files.label_values) == ("t.csv", ["title", "description"], [1, 2])


def test_datamodule_reads_files(tmp_path, bundled_model_path):
    from lightning_iba.data.datamodule import TextClassificationDataModule

    train = write_csv(tmp_path / "train.csv", [(t, y) for _, t, y in reviews(20)], header=["text", "label"])
    dm = TextClassificationDataModule("imdb", "files", None, bundled_model_path, max_length=16, validation_fraction=0.2,
                                      files={"train_file": str(train)})
    dm.setup("fit")
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 14, "validation": 4, "test": 2}


# ---------------------------------------------------------------- the real files of ../shared/data through files and disk


def test_real_agnews_files(shared_data):
    real = shared_data / "ag_news_csv"
    if not (real / "train_subset.csv").exists():
        pytest.skip("ag_news_csv/train_subset.csv is not in ../shared/data")
    spec = files(train_file=str(real / "train_subset.csv"), test_file=str(real / "test.csv"), column_names=["label", "title", "description"],
                 text_columns=["title", "description"], label_values=[1, 2, 3, 4])
    d = load_splits("agnews", "files", files=spec)
    assert {k: len(v) for k, v in d.items()} == {"train": 12397, "validation": 1378, "test": 7600}
    assert Counter(d["train"]["label"]) + Counter(d["validation"]["label"]) == {0: 3380, 1: 3354, 2: 3385, 3: 3656}
    assert sorted(Counter(d["test"]["label"]).values()) == [1900] * 4
    assert d["test"][0]["label"] == 2 and d["test"][0]["text"].startswith("Fears for T N pension after talks Unions representing")


def test_real_mnli_json_tsv_and_disk(shared_data):
    sample = shared_data / "mnli_train_sample"
    if not (sample / "glue_pretrain").exists() or not (shared_data / "mnli_hf").exists():
        pytest.skip("mnli_train_sample/ or mnli_hf/ is not in ../shared/data")
    pretrain = sample / "glue_pretrain" / "MNLI"
    d = load_splits("mnli", "files", files=files(train_file=str(pretrain / "train.json"), validation_file=str(pretrain / "dev.json"),
                                                 test_file=str(shared_data / "mnli_hf" / "validation_matched"), text_columns=["text_a", "text_b"]))
    assert {k: len(v) for k, v in d.items()} == {"train": 8999, "validation": 1000, "test": 9815}
    assert Counter(d["train"]["label"]) == {0: 3061, 1: 2980, 2: 2958} and Counter(d["validation"]["label"]) == {0: 347, 1: 333, 2: 320}
    k_shot = load_splits("mnli", "files", files=files(test_file=str(sample / "k-shot" / "MNLI" / "16-13" / "train.tsv"),
                                                      text_columns=["sentence1", "sentence2"], label_column="gold_label"))
    assert len(k_shot["test"]) == 48 and Counter(k_shot["test"]["label"]) == {0: 16, 1: 16, 2: 16}
    disk = load_splits("mnli", "disk", shared_data / "mnli_hf")
    assert list(disk) == ["test", "test_mismatched"] and (len(disk["test"]), len(disk["test_mismatched"])) == (9815, 9832)
    assert Counter(disk["test"]["label"]) == {0: 3479, 1: 3123, 2: 3213} and Counter(disk["test_mismatched"]["label"]) == {0: 3463, 1: 3129, 2: 3240}


def test_real_rte_tsv_files(shared_data):
    if not (shared_data / "RTE" / "dev.tsv").exists():
        pytest.skip("RTE/ is not in ../shared/data")
    spec = files(train_file=str(shared_data / "RTE" / "train.tsv"), test_file=str(shared_data / "RTE" / "dev.tsv"))
    from_files, local = load_splits("rte", "files", files=spec), load_splits("rte", "local", shared_data)
    assert {k: len(v) for k, v in from_files.items()} == {"train": 2241, "validation": 249, "test": 277}
    for split in from_files:
        assert from_files[split].to_dict() == local[split].to_dict()  # the same rows, ids and carving as the GLUE reader
