"""Dataset loading: original file formats, the bundled CSV, the registry, and each bad-input case."""
from __future__ import annotations

import logging
import re
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
    assert set(TASKS) == {"imdb", "rotten_tomatoes", "agnews", "rte", "mnli"}
    assert get_task("agnews").num_labels == 4 and get_task("mnli").is_pair
    assert get_task("mnli").eval_splits == ("test", "test_mismatched")


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(UnknownNameError, match=r"unknown dataset 'sst2'; valid: agnews, imdb, mnli, rotten_tomatoes, rte"):
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
    with pytest.raises(DataSourceError, match=r"missing file: .*aclImdb/train/neg"):
        load_splits("imdb", "local", tmp_path)


def test_label_out_of_range(tmp_path):
    with pytest.raises(DataSourceError, match=r"ag_news_csv/train\.csv:13: label '5' is not one of 1, 2, 3, 4$"):
        load_splits("agnews", "local", write_agnews(tmp_path, bad_class="5"))
    with pytest.raises(DataSourceError, match=r"dev\.tsv:10: label 'maybe' is not one of entailment, not_entailment|train\.tsv:10: label 'maybe'"):
        load_splits("rte", "local", write_rte(tmp_path / "r", bad_label="maybe"))


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


@pytest.mark.parametrize("task", ["imdb", "agnews", "rte", "mnli", "rotten_tomatoes"])
def test_real_files_in_shared_data(shared_data, task):
    from lightning_iba.data.sources import LOCAL_FILES

    first = LOCAL_FILES[task][0].split("*")[0].rstrip("/")
    if not (shared_data / first).exists():
        pytest.skip(f"{first} is not in ../shared/data")
    d = load_splits(task, "local", shared_data)
    for split in get_task(task).eval_splits:
        assert len(d[split]) > 0 and max(d[split]["label"]) < get_task(task).num_labels


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
