"""The fine-tuning LightningModule: a Hugging Face sequence classifier, AdamW with linear warm-up and decay."""
from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from torchmetrics.classification import MulticlassAccuracy
from transformers import get_linear_schedule_with_warmup

from lightning_iba.data.tasks import get_task
from lightning_iba.models.loading import BUNDLED_MODEL, load_pretrained_classifier


class SequenceClassifier(pl.LightningModule):
    """Fine-tunes any BERT-family checkpoint on one task and exports it in Hugging Face format."""

    def __init__(
        self,
        model_name_or_path: str = BUNDLED_MODEL,
        dataset: str = "imdb",
        learning_rate: float = 5e-5,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        max_length: int = 128,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.task = get_task(dataset)
        # from_pretrained returns eval mode; Lightning keeps submodule modes, so switch dropout on for training.
        self.model = load_pretrained_classifier(model_name_or_path, self.task.label_names).train()
        n = self.task.num_labels
        self.train_acc = MulticlassAccuracy(num_classes=n, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes=n, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes=n, average="micro")

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:  # [batch, classes]
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        return self.model(**inputs).logits

    def _step(self, batch, stage: str, metric: MulticlassAccuracy) -> torch.Tensor:
        logits = self(batch)
        loss = torch.nn.functional.cross_entropy(logits, batch["labels"])
        metric(logits.argmax(-1), batch["labels"])
        on_step = stage == "train"
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=on_step, on_epoch=True, sync_dist=not on_step, batch_size=len(logits))
        self.log(f"{stage}_acc", metric, prog_bar=True, on_step=on_step, on_epoch=True, batch_size=len(logits))
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train", self.train_acc)

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val", self.val_acc)

    def test_step(self, batch, batch_idx):
        self._step(batch, "test", self.test_acc)

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
