"""The LightningDataModule: a task's splits, tokenised with the model's tokenizer, padded per batch."""
from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
from datasets import Dataset, DatasetDict
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding

from lightning_iba.data.files_source import DataFiles
from lightning_iba.data.sampling import ResumableRandomSampler, apply_resume_state, resume_state
from lightning_iba.data.sources import (
    load_splits,
    require_split,
    resolve_source,
    split_hint,
)
from lightning_iba.data.tasks import get_task
from lightning_iba.data.tokens import MIN_MAX_LENGTH
from lightning_iba.errors import LightningIBAError
from lightning_iba.hub import PAPER_MODEL, load_tokenizer

log = logging.getLogger("lightning_iba.data")

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: Column with each example's position in its split (0..n-1); batches carry it so that evaluation under DDP
#: can drop the examples that the DistributedSampler repeats to even out the ranks.
INDEX_COLUMN = "idx"
#: the splits each Lightning stage reads, and what the stage is called in errors
STAGE_SPLITS = {"fit": ("train", "validation"), "validate": ("validation",), "test": ("test",)}
STAGE_NAMES = {"fit": "fine-tuning", "validate": "validation", "test": "testing"}


def tokenize_split(ds: Dataset, tokenizer, max_length: int, pair: bool) -> Dataset:
    """Adds input_ids / attention_mask / token_type_ids (unpadded, truncated to `max_length`) to a split."""

    def encode(batch):
        args = (batch["text"], batch["text_pair"]) if pair else (batch["text"],)
        return tokenizer(*args, truncation=True, max_length=max_length, return_token_type_ids=True)

    return ds.map(encode, batched=True, desc=None)


class TextClassificationDataModule(pl.LightningDataModule):
    """One task from one source, tokenised for one model; dynamic padding per batch.

    Lightning adds a DistributedSampler under DDP, so the same module serves 1 or N processes.
    Every split carries an `idx` column so that evaluation metrics count each example once.

    Args:
        dataset: task name of the registry (imdb, rotten_tomatoes, agnews, rte, mnli, eraser_movies).
        source: hub | local | bundled | files | disk | auto (hub when reachable, else bundled where the task has it;
            local for eraser_movies, which has no hub dataset).
        data_dir: folder of the original files (source local), or a datasets.save_to_disk DatasetDict folder (source disk).
        model_name_or_path: checkpoint whose tokenizer is used (hub id, folder, or bundled-minilm).
        max_length: tokens per input; longer texts are truncated.
        batch_size: training batch size per process.
        eval_batch_size: validation and test batch size per process.
        num_workers: DataLoader workers.
        validation_fraction: share of train carved out as validation when the source has no validation split.
        test_fraction: share of train carved out as test when the source has no test split.
        split_seed: seed of those carvings and of the max_*_samples draws.
        max_train_samples: use at most this many training examples (null: all).
        max_eval_samples: use at most this many validation and test examples each (null: all).
        files: for source files: one file a split (as run_glue.py's --train_file ...), set with the data.files.* keys.
    """

    def __init__(
        self,
        dataset: str = "imdb",
        source: str = "auto",
        data_dir: str | None = None,
        model_name_or_path: str = PAPER_MODEL,
        max_length: int = 512,
        batch_size: int = 16,
        eval_batch_size: int = 64,
        num_workers: int = 0,
        validation_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        max_train_samples: int | None = None,
        max_eval_samples: int | None = None,
        files: DataFiles | None = None,
    ):
        super().__init__()
        self.task = get_task(dataset)  # fails fast on an unknown name
        if max_length < MIN_MAX_LENGTH:
            raise LightningIBAError(f"max_length must be at least {MIN_MAX_LENGTH}, got {max_length}")
        self.save_hyperparameters()
        self.tokenizer = load_tokenizer(model_name_or_path)
        self.splits: DatasetDict | None = None
        self._train_sampler: ResumableRandomSampler | None = None
        self._resume: dict[str, Any] = {}  # from a checkpoint (load_state_dict), for the next train_dataloader
        self.source = source  # the concrete source once loaded ('auto' resolved)
        self.collate = DataCollatorWithPadding(self.tokenizer, return_tensors="pt")

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.task.label_names

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            self._load()
        for split in STAGE_SPLITS.get(stage or "", ()):  # a source without them (aclImdb/test alone) cannot fine-tune
            require_split(self.splits, split, self.task, self.source, STAGE_NAMES[stage], split_hint(self.task, self.source, split, "--data.source", "--data.files"))

    def _load(self) -> None:
        hp = self.hparams
        self.source = resolve_source(self.task, hp.source)
        raw = load_splits(self.task, self.source, hp.data_dir, hp.validation_fraction, hp.test_fraction, hp.split_seed, files=hp.files)
        out = {}
        for name, ds in raw.items():
            limit = hp.max_train_samples if name == "train" else hp.max_eval_samples
            if limit is not None and limit < len(ds):
                ds = ds.shuffle(seed=hp.split_seed).select(range(limit))
            ds = tokenize_split(ds, self.tokenizer, hp.max_length, self.task.is_pair)
            ds = ds.add_column(INDEX_COLUMN, list(range(len(ds))))
            out[name] = ds.with_format("torch", columns=["label", INDEX_COLUMN, *MODEL_INPUTS])
        self.splits = DatasetDict(out)
        log.info("data: %s", {k: len(v) for k, v in self.splits.items()})

    def _loader(self, split: str, sampler: ResumableRandomSampler | None = None) -> DataLoader:
        """Training batches in `sampler`'s order, or (without one) evaluation batches in split order."""
        assert self.splits is not None, "call setup() first"
        size = self.hparams.batch_size if sampler is not None else self.hparams.eval_batch_size
        return DataLoader(self.splits[split], batch_size=size, sampler=sampler, collate_fn=self.collate, num_workers=self.hparams.num_workers)

    def train_dataloader(self) -> DataLoader:
        """RandomSampler's order (Lightning swaps in a DistributedSampler under DDP), resumable mid-epoch."""
        assert self.splits is not None, "call setup() first"
        self._train_sampler = ResumableRandomSampler(self.splits["train"], self.hparams.batch_size)
        apply_resume_state(self._train_sampler, self._resume)
        self._resume = {}
        return self._loader("train", self._train_sampler)

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint: the training order's state (data.sampling), so --resume continues it exactly."""
        trainer = self.trainer
        if trainer is None or trainer.world_size > 1:  # under DDP the order is the DistributedSampler's (by epoch)
            return {}
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        return resume_state(self._train_sampler, progress.completed, trainer.num_training_batches)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resume = dict(state_dict)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
