"""Dataset loading: original file formats, the bundled CSV, the registry, and each bad-input case."""
from __future__ import annotations

import logging

import pytest
import torch

from fixtures_data import write_aclimdb, write_agnews, write_mnli, write_rotten_tomatoes, write_rte
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
    with pytest.raises(DataSourceError, match=r"label 4 of 'train-12' is outside 0\.\.3"):
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
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert batch["input_ids"].shape[1] <= 12
    assert (batch["token_type_ids"] == 1).any()  # the second segment is marked
    lengths = batch["attention_mask"].sum(1)
    assert lengths.max() == batch["input_ids"].shape[1]  # padded to the longest in the batch, not to max_length
    assert batch["labels"].dtype == torch.long


def test_datamodule_rejects_tiny_max_length(bundled_model_path):
    from lightning_iba.data.datamodule import TextClassificationDataModule

    with pytest.raises(LightningIBAError, match="max_length"):
        TextClassificationDataModule("imdb", "bundled", None, bundled_model_path, max_length=2)
