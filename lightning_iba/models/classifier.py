"""The fine-tuning LightningModule: a Hugging Face sequence classifier, AdamW with linear warm-up and decay."""
from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from torchmetrics.classification import MulticlassAccuracy
from transformers import get_linear_schedule_with_warmup

from lightning_iba.data.datamodule import INDEX_COLUMN
from lightning_iba.data.tasks import get_task
from lightning_iba.errors import LightningIBAError
from lightning_iba.data.tokens import MIN_MAX_LENGTH
from lightning_iba.hub import PAPER_MODEL
from lightning_iba.models.loading import load_pretrained_classifier
from lightning_iba.models.utils import position_limit

class SequenceClassifier(pl.LightningModule):
    """Fine-tunes any BERT-family checkpoint on one task and exports it in Hugging Face format.

    Validation and test metrics (`val_acc`, `val_loss`, `test_acc`, `test_loss`, `test_n`) are computed once
    per epoch over the unique examples of the split (by the datamodule's `idx` column), so they are exact
    under DDP too, where the DistributedSampler repeats examples to give every rank the same count.

    Args:
        model_name_or_path: pretrained encoder (hub id, folder, or bundled-minilm); linked from data.
        dataset: task name; linked from data.
        learning_rate: AdamW's peak learning rate.
        weight_decay: AdamW's weight decay (not on biases and LayerNorm weights).
        warmup_ratio: share of the steps with linear warm-up, then linear decay to 0.
        max_length: tokens per input; linked from data, recorded in the exported config.
    """

    def __init__(
        self,
        model_name_or_path: str = PAPER_MODEL,
        dataset: str = "imdb",
        learning_rate: float = 2e-5,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        max_length: int = 512,
    ):
        super().__init__()
        if max_length < MIN_MAX_LENGTH:
            raise LightningIBAError(f"max_length must be at least {MIN_MAX_LENGTH}, got {max_length}")
        self.save_hyperparameters()
        self.task = get_task(dataset)
        # from_pretrained returns eval mode; Lightning keeps submodule modes, so switch dropout on for training.
        self.model = load_pretrained_classifier(model_name_or_path, self.task.label_names).train()
        limit = position_limit(self.model.config)
        if limit is not None and max_length > limit:
            raise LightningIBAError(
                f"max_length {max_length} exceeds the {limit} positions of {model_name_or_path} "
                f"(config.max_position_embeddings); pass --data.max_length {limit} or less"
            )
        self.train_acc = MulticlassAccuracy(num_classes=self.task.num_labels, average="micro")
        # Per-example results of the running validation/test epoch: (idx, correct, loss) tensors per step.
        self._eval_outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:  # [batch, classes]
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        return self.model(**inputs).logits

    def training_step(self, batch, batch_idx):
        logits = self(batch)
        loss = torch.nn.functional.cross_entropy(logits, batch["labels"])
        self.train_acc(logits.argmax(-1), batch["labels"])
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(logits))
        self.log("train_acc", self.train_acc, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(logits))
        return loss

    def _eval_step(self, batch: dict[str, torch.Tensor], stage: str) -> None:
        """Keeps each example's idx, correctness and loss; the epoch end reduces them over unique examples."""
        if INDEX_COLUMN not in batch:
            raise LightningIBAError(f"evaluation batches need an {INDEX_COLUMN!r} column (TextClassificationDataModule adds it)")
        logits = self(batch)
        labels = batch["labels"]
        losses = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
        self._eval_outputs.append((batch[INDEX_COLUMN].detach(), (logits.argmax(-1) == labels).detach(), losses.detach()))
        if self.trainer.world_size == 1:
            # One process sees every example once: Lightning's batch-size-weighted running mean, as before.
            loss = torch.nn.functional.cross_entropy(logits, labels)
            self.log(f"{stage}_loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(logits))

    def _eval_epoch_end(self, stage: str) -> None:
        """Gathers the epoch's per-example results from all ranks, drops DDP's repeats by idx, logs the exact metrics.

        Every rank computes the same numbers from the same gathered tensors, so `{stage}_acc` is identical
        everywhere (`reduce_fx="max"` makes the sync a no-op on values; a mean could round). With one process
        `{stage}_loss` is logged per step (see `_eval_step`); with several it is the mean over unique examples.
        """
        idx, correct, loss = self._gather_unique(self._eval_outputs)
        self._eval_outputs = []
        n = idx.numel()
        acc = correct.sum().float() / max(n, 1)  # the float32 division MulticlassAccuracy(average="micro") does
        opts = {"on_step": False, "on_epoch": True, "sync_dist": True, "reduce_fx": "max"}
        if self.trainer.world_size > 1:
            self.log(f"{stage}_loss", (loss.double().sum() / max(n, 1)).float(), prog_bar=True, **opts)
        self.log(f"{stage}_acc", acc, prog_bar=True, **opts)
        if stage == "test":
            self.log("test_n", torch.tensor(float(n), device=self.device), **opts)

    def _gather_unique(self, outputs: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(idx, correct, loss) over all ranks, one entry per unique idx, sorted by idx."""
        device = self.device
        if outputs:
            idx, correct, loss = (torch.cat(parts).to(device) for parts in zip(*outputs))
        else:
            idx = torch.empty(0, dtype=torch.long, device=device)
            correct = torch.empty(0, dtype=torch.bool, device=device)
            loss = torch.empty(0, dtype=torch.float32, device=device)
        idx, correct, loss = idx.long(), correct.long(), loss.float()
        if self.trainer.world_size > 1:
            # all_gather needs equal shapes: pad every rank to the longest, mark padding with idx -1.
            counts = self.all_gather(torch.tensor([idx.numel()], device=device)).reshape(-1)
            longest = int(counts.max())
            pad = longest - idx.numel()
            idx = torch.cat([idx, idx.new_full((pad,), -1)])
            correct = torch.cat([correct, correct.new_zeros(pad)])
            loss = torch.cat([loss, loss.new_zeros(pad)])
            idx, correct, loss = (self.all_gather(t).reshape(-1) for t in (idx, correct, loss))
            keep = idx >= 0
            idx, correct, loss = idx[keep], correct[keep], loss[keep]
        unique, inverse = torch.unique(idx, return_inverse=True)
        first = torch.full((unique.numel(),), idx.numel(), dtype=torch.long, device=idx.device)
        first = first.scatter_reduce(0, inverse, torch.arange(idx.numel(), device=idx.device), reduce="amin")
        return unique, correct[first], loss[first]

    def on_validation_epoch_start(self) -> None:
        self._eval_outputs = []

    def on_test_epoch_start(self) -> None:
        self._eval_outputs = []

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def configure_optimizers(self):
        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
        groups = [
            {"params": [p for n, p in self.model.named_parameters() if not n.endswith(no_decay)], "weight_decay": self.hparams.weight_decay},
            {"params": [p for n, p in self.model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=self.hparams.learning_rate)
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(self.hparams.warmup_ratio * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def export(self, out_dir: str | Path, tokenizer) -> Path:
        """Writes model and tokenizer with `save_pretrained`; the task and max_length go into config.json."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.model.config.lightning_iba_task = self.task.name
        self.model.config.lightning_iba_max_length = self.hparams.max_length
        self.model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        return out
