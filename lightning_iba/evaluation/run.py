"""The evaluation as a Lightning predict loop: attribution and degradation of every instance, per method."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from lightning_iba.attribution.base import Attributor
from lightning_iba.models.utils import freeze
from lightning_iba.data.tokens import SpecialTokens
from lightning_iba.evaluation.degradation import DegradationSettings, degradation_curve

log = logging.getLogger("lightning_iba.evaluation")


def select_indices(n: int, instances: int | None, seed: int) -> list[int]:
    """The instances to evaluate: a seeded sample of the split (sorted), the same for any number of devices."""
    if instances is None or instances >= n:
        if instances is not None and instances > n:
            log.warning("evaluation: --instances %d is more than the split holds (%d); using all of them", instances, n)
        return list(range(n))
    return sorted(np.random.default_rng(seed).permutation(n)[:instances].tolist())


@dataclass
class Instance:
    index: int  # position in the split
    id: str
    label: int
    input_ids: list[int]
    token_type_ids: list[int]


def collate(instances: list[Instance], pad_id: int) -> dict[str, Any]:
    """Pads a list of instances to the longest one."""
    width = max(len(i.input_ids) for i in instances)
    ids = torch.full((len(instances), width), pad_id, dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for row, inst in enumerate(instances):
        n = len(inst.input_ids)
        ids[row, :n] = torch.tensor(inst.input_ids)
        types[row, :n] = torch.tensor(inst.token_type_ids)
        mask[row, :n] = 1
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": types,
        "labels": torch.tensor([i.label for i in instances]),
        "index": [i.index for i in instances],
        "id": [i.id for i in instances],
    }


class EvaluationModule(pl.LightningModule):
    """Wraps the frozen fine-tuned model; each predict step returns one JSON-able record per instance.

    A record holds the instance's index, id, gold label, its original p(y|x) and the predicted class with
    its probabilities, and per method the degradation curve p(y|x') with the top tokens removed
    ("remove") and, with `sufficiency`, with only them kept ("keep"). With `store_scores` it also holds
    the real tokens' ids ("input_ids") and each method's score per real token ("scores", 5 significant
    digits), in input order.
    """

    def __init__(self, model: nn.Module, attributors: list[tuple[str, Attributor]], special: SpecialTokens,
                 degradation: DegradationSettings, batch_size: int, store_scores: bool = False):
        super().__init__()
        self.model = freeze(model)
        self.attributors = attributors
        self.special = special
        self.degradation = degradation
        self.fractions = torch.tensor(degradation.grid, dtype=torch.float64)
        self.forward_batch_size = max(64, batch_size * 4)  # degraded variants per forward pass
        self.store_scores = store_scores

    def _curve(self, batch: dict[str, Any], scores: Tensor, keep: bool) -> Tensor:  # [batch, steps]
        d = self.degradation
        return degradation_curve(
            self.model, batch["input_ids"], batch["attention_mask"], batch["labels"], scores, self.special,
            batch["token_type_ids"], self.fractions, mode=d.mode, order=d.order, count=d.count, keep=keep,
            batch_size=self.forward_batch_size,
        )

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.no_grad():
            probs = self.model(**inputs).logits.float().softmax(-1)
        original = probs.gather(1, batch["labels"][:, None]).squeeze(1).cpu()
        remove: dict[str, Tensor] = {}
        keep: dict[str, Tensor] = {}
        token_scores: dict[str, Tensor] = {}  # method -> [batch, tokens]
        for name, attributor in self.attributors:
            with torch.enable_grad():
                scores = attributor.attribute(batch["input_ids"], batch["attention_mask"], batch["labels"], batch["token_type_ids"])
            if not torch.isfinite(scores).all():
                bad = [batch["id"][i] for i in (~torch.isfinite(scores)).any(1).nonzero().flatten().tolist()]
                raise FloatingPointError(f"method {name} gave non-finite scores for instances {bad}")
            if self.store_scores:
                token_scores[name] = scores.detach().float().cpu()
            remove[name] = self._curve(batch, scores, keep=False)
            if self.degradation.sufficiency:
                keep[name] = self._curve(batch, scores, keep=True)
        lengths = batch["attention_mask"].sum(1).tolist()
        real = batch["attention_mask"].bool().cpu()  # [batch, tokens]
        predicted = probs.argmax(-1).cpu()
        records = [
            {
                "index": int(batch["index"][i]),
                "id": str(batch["id"][i]),
                "label": int(batch["labels"][i]),
                "length": int(lengths[i]),
                "original_prob": round(float(original[i]), 6),
                "remove": {m: [round(float(p), 6) for p in c[i]] for m, c in remove.items()},
                "keep": {m: [round(float(p), 6) for p in c[i]] for m, c in keep.items()},
                "predicted": int(predicted[i]),
                "probs": [round(float(p), 6) for p in probs[i].cpu()],
            }
            for i in range(len(lengths))
        ]
        if self.store_scores:
            ids = batch["input_ids"].cpu()
            for i, record in enumerate(records):
                record["input_ids"] = ids[i][real[i]].tolist()
                record["scores"] = {m: [float(f"{v:.5g}") for v in t[i][real[i]].tolist()] for m, t in token_scores.items()}
        return records
