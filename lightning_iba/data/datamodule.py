"""The LightningDataModule: a task's splits, tokenised with the model's tokenizer, padded per batch."""
from __future__ import annotations

import logging

import pytorch_lightning as pl
from datasets import Dataset, DatasetDict
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding

from lightning_iba.data.sources import load_splits
from lightning_iba.data.tasks import get_task
from lightning_iba.errors import LightningIBAError
from lightning_iba.models.loading import BUNDLED_MODEL, load_tokenizer

log = logging.getLogger("lightning_iba.data")

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def tokenize_split(ds: Dataset, tokenizer, max_length: int, pair: bool) -> Dataset:
    """Adds input_ids / attention_mask / token_type_ids (unpadded, truncated to `max_length`) to a split."""

    def encode(batch):
        args = (batch["text"], batch["text_pair"]) if pair else (batch["text"],)
        return tokenizer(*args, truncation=True, max_length=max_length, return_token_type_ids=True)

    return ds.map(encode, batched=True, desc=None)


class TextClassificationDataModule(pl.LightningDataModule):
    """One task from one source, tokenised for one model; dynamic padding per batch.

    Lightning adds a DistributedSampler under DDP, so the same module serves 1 or N processes.
    """

    def __init__(
        self,
        dataset: str = "imdb",
        source: str = "auto",
        data_dir: str | None = None,
        model_name_or_path: str = BUNDLED_MODEL,
        max_length: int = 128,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        num_workers: int = 0,
        validation_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        max_train_samples: int | None = None,
        max_eval_samples: int | None = None,
    ):
        super().__init__()
        self.task = get_task(dataset)  # fails fast on an unknown name
        if max_length < 8:
            raise LightningIBAError(f"max_length must be at least 8, got {max_length}")
        self.save_hyperparameters()
        self.tokenizer = load_tokenizer(model_name_or_path)
        self.splits: DatasetDict | None = None
        self.collate = DataCollatorWithPadding(self.tokenizer, return_tensors="pt")

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.task.label_names

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        hp = self.hparams
        raw = load_splits(self.task, hp.source, hp.data_dir, hp.validation_fraction, hp.test_fraction, hp.split_seed)
        out = {}
        for name, ds in raw.items():
            limit = hp.max_train_samples if name == "train" else hp.max_eval_samples
            if limit is not None and limit < len(ds):
                ds = ds.shuffle(seed=hp.split_seed).select(range(limit))
            ds = tokenize_split(ds, self.tokenizer, hp.max_length, self.task.is_pair)
            out[name] = ds.with_format("torch", columns=["label", *MODEL_INPUTS])
        self.splits = DatasetDict(out)
        log.info("data: %s", {k: len(v) for k, v in self.splits.items()})

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        assert self.splits is not None, "call setup() first"
        size = self.hparams.batch_size if shuffle else self.hparams.eval_batch_size
        return DataLoader(self.splits[split], batch_size=size, shuffle=shuffle, collate_fn=self.collate, num_workers=self.hparams.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
