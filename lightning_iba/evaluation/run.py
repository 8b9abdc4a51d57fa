"""The evaluation as a Lightning predict loop: attribution and degradation of every instance, per method."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from lightning_iba.attribution.base import Attributor
from lightning_iba.errors import LightningIBAError, check_choice
from lightning_iba.models.utils import freeze
from lightning_iba.data.tokens import SpecialTokens
from lightning_iba.evaluation.degradation import DegradationSettings, degradation_curve, masked_curve, word_removal_masks

log = logging.getLogger("lightning_iba.evaluation")
#: The class each method explains and the degradation scores: the instance's gold label (the paper's protocol,
#: Table 1) or the model's prediction (ERASER's: comprehensiveness and sufficiency of the predicted class).
TARGETS = ("gold", "predicted")


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
    #: plausibility windows (plausibility.window_stride) over the untruncated text beyond the first, which is
    #: `input_ids` itself: (start piece, input_ids with the special tokens); none when the text fits
    windows: list[tuple[int, list[int]]] = field(default_factory=list)
    #: word pieces of the untruncated text, without the special tokens (0: no windows)
    pieces: int = 0
    #: each input_ids piece's whitespace word (-1: special token), for ERASER's word bins (add_words); none otherwise
    words: list[int] | None = None


def add_words(instances: list[Instance], texts: dict[int, str], tokenizer: Any, max_length: int) -> None:
    """Gives each instance the whitespace word of each of its pieces (data.rationales.encode_words), for ERASER's
    bins in words; `texts`: index -> text."""
    from lightning_iba.data.rationales import encode_words

    for inst in instances:
        ids, words = encode_words(tokenizer, texts[inst.index], max_length)
        if ids != inst.input_ids:
            raise LightningIBAError(f"instance {inst.id}: its words were encoded to other pieces than its input")
        inst.words = words.tolist()


def add_windows(instances: list[Instance], texts: dict[int, str], tokenizer: Any, max_length: int, stride: int) -> int:
    """Gives each instance whose text is longer than `max_length` tokens its further windows of `max_length`
    tokens, starting every `stride` pieces (data.rationales.window_starts; the first window is the
    truncated input itself); `texts`: index -> text. Returns how many instances got windows."""
    from lightning_iba.data.rationales import special_layout, window_starts

    before, after = special_layout(tokenizer)
    size = max_length - before - after
    count = 0
    for inst in instances:
        full = list(tokenizer(texts[inst.index], truncation=False, verbose=False)["input_ids"])
        pieces = full[before:len(full) - after]
        if inst.input_ids[before:len(inst.input_ids) - after] != pieces[:size]:
            raise LightningIBAError(f"instance {inst.id}: the truncated input is not the start of the whole text's tokens")
        inst.pieces = len(pieces)
        inst.windows = [(s, full[:before] + pieces[s:s + size] + full[len(full) - after:]) for s in window_starts(len(pieces), size, stride)[1:]]
        count += bool(inst.windows)
    return count


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
        "windows": [i.windows for i in instances],
        "pieces": [i.pieces for i in instances],
        **({"words": torch.tensor([i.words + [-1] * (width - len(i.words)) for i in instances])}  # [batch, tokens]
           if all(i.words is not None for i in instances) else {}),
    }


def device_name(device: torch.device) -> str:
    """What ran the batch, for the timing file: the GPU's name, or "cpu (N threads)"."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({torch.get_num_threads()} threads)"


class EvaluationModule(pl.LightningModule):
    """Wraps the frozen fine-tuned model; each predict step returns one JSON-able record per instance.

    A record holds the instance's index, id, gold label, its original p(y|x) and the predicted class with
    its probabilities, and per method the degradation curve p(y|x') with the top tokens removed
    ("remove") and, with `sufficiency`, with only them kept ("keep"). y, the class every method explains and
    every curve scores, is the gold label, or with `target` "predicted" the class the model predicts for x. With `store_scores` it also holds
    the real tokens' ids ("input_ids") and each method's score per real token ("scores", 5 significant
    digits), in input order.

    For tasks with rationales: with `eraser_bins`, also ERASER's curves at those fractions ("eraser":
    {"bins", "remove": {method: [p per bin]}, "keep": ...}; most important tokens first, whatever the
    degradation order); for instances with windows (Instance.windows), each method's scores over every
    piece of the untruncated text, averaged over the windows holding the piece ("window_scores", without
    the special tokens). `layout`: the special tokens before and after a text's pieces.
    """

    def __init__(self, model: nn.Module, attributors: list[tuple[str, Attributor]], special: SpecialTokens,
                 degradation: DegradationSettings, batch_size: int, store_scores: bool = False,
                 eraser_bins: Sequence[float] | None = None, layout: tuple[int, int] = (1, 1),
                 eraser_unit: str = "piece", eraser_aggregation: str = "sum", target: str = "gold"):
        super().__init__()
        check_choice("target", target, TARGETS)
        self.target = target
        self.model = freeze(model)
        self.attributors = attributors
        self.special = special
        self.degradation = degradation
        self.fractions = torch.tensor(degradation.grid, dtype=torch.float64)
        self.forward_batch_size = max(64, batch_size * 4)  # degraded variants per forward pass
        self.batch_size = batch_size
        self.store_scores = store_scores
        self.eraser_bins = None if eraser_bins is None else torch.tensor(list(eraser_bins), dtype=torch.float64)
        self.layout = layout
        self.eraser_unit = eraser_unit  # "word": ERASER's bins count whole words (the batch's "words"), "piece": word pieces
        self.eraser_aggregation = eraser_aggregation  # a word's score from its pieces', to rank the words
        #: the last batch's running time per method, for the shard writer's timing file (never in the records,
        #: which stay the same from run to run): {"indices", "device", "seconds": {method: {"attribution", "degradation"}}}
        self.batch_timing: dict[str, Any] | None = None

    def _clock(self) -> float:
        """Seconds, after the device finished its queued work (GPU kernels run asynchronously)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _curve(self, batch: dict[str, Any], scores: Tensor, keep: bool) -> Tensor:  # [batch, steps]
        d = self.degradation
        return degradation_curve(
            self.model, batch["input_ids"], batch["attention_mask"], batch["target"], scores, self.special,
            batch["token_type_ids"], self.fractions, mode=d.mode, order=d.order, count=d.count, keep=keep,
            batch_size=self.forward_batch_size,
        )

    def _eraser_curve(self, batch: dict[str, Any], scores: Tensor, keep: bool) -> Tensor:  # [batch, bins]
        d = self.degradation
        if self.eraser_unit == "word":
            if "words" not in batch:
                raise RuntimeError("ERASER's word bins need each instance's words (run.add_words)")
            removable = self.special.removable(batch["input_ids"], batch["attention_mask"])
            remove = word_removal_masks(scores, batch["words"], removable, self.eraser_bins, keep, self.eraser_aggregation)
            return masked_curve(self.model, batch["input_ids"], batch["attention_mask"], batch["target"], remove, self.special,
                                batch["token_type_ids"], d.mode, self.forward_batch_size)
        return degradation_curve(
            self.model, batch["input_ids"], batch["attention_mask"], batch["target"], scores, self.special,
            batch["token_type_ids"], self.eraser_bins, mode=d.mode, order="most", count=d.count, keep=keep,
            batch_size=self.forward_batch_size,
        )

    def _window_scores(self, name: str, attributor: Attributor, batch: dict[str, Any], scores: Tensor) -> dict[int, list[float]]:
        """Row -> the method's score of every piece of the untruncated text (specials left out), averaged
        over the windows holding it, for the rows with windows."""
        rows = [i for i, w in enumerate(batch.get("windows", [])) if w]
        if not rows:
            return {}
        items = [(i, start, ids) for i in rows for start, ids in batch["windows"][i]]
        device = batch["input_ids"].device
        window_scores: list[Tensor] = []
        for c in range(0, len(items), self.batch_size):
            chunk = items[c:c + self.batch_size]
            width = max(len(ids) for _, _, ids in chunk)
            ids = torch.full((len(chunk), width), self.special.pad_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for j, (_, _, window) in enumerate(chunk):
                ids[j, :len(window)] = torch.tensor(window)
                mask[j, :len(window)] = 1
            target = batch["target"][[i for i, _, _ in chunk]]
            with torch.enable_grad():
                s = attributor.attribute(ids.to(device), mask.to(device), target.to(device), torch.zeros_like(ids).to(device))
            if not torch.isfinite(s[mask.bool().to(s.device)]).all():
                raise LightningIBAError(f"method {name} gave non-finite scores in a window of instances {[batch['id'][i] for i, _, _ in chunk]}")
            window_scores.extend(s.detach().double().cpu()[j, :len(window)] for j, (_, _, window) in enumerate(chunk))
        before, after = self.layout
        lengths = batch["attention_mask"].sum(1).tolist()
        out = {}
        for i in rows:
            n = int(batch["pieces"][i])
            total, count = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
            first = scores[i, before:int(lengths[i]) - after].detach().double().cpu()  # the truncated input: window 0
            total[:len(first)] += first
            count[:len(first)] += 1
            for (row, start, window), s in zip(items, window_scores):
                if row == i:
                    piece = s[before:len(window) - after]
                    total[start:start + len(piece)] += piece
                    count[start:start + len(piece)] += 1
            if (count == 0).any():
                raise RuntimeError(f"windows of instance {batch['id'][i]} leave pieces uncovered")
            out[i] = [float(f"{v:.5g}") for v in (total / count).tolist()]
        return out

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.no_grad():
            probs = self.model(**inputs).logits.float().softmax(-1)  # [batch, classes]
        predicted = probs.argmax(-1)
        batch = {**batch, "target": batch["labels"] if self.target == "gold" else predicted}  # [batch] the class explained
        original = probs.gather(1, batch["target"][:, None]).squeeze(1).cpu()
        remove: dict[str, Tensor] = {}
        keep: dict[str, Tensor] = {}
        token_scores: dict[str, Tensor] = {}  # method -> [batch, tokens]
        eraser_remove: dict[str, Tensor] = {}
        eraser_keep: dict[str, Tensor] = {}
        windowed: dict[str, dict[int, list[float]]] = {}  # method -> row -> scores over the untruncated text
        seconds: dict[str, dict[str, float]] = {}
        for name, attributor in self.attributors:
            started = self._clock()
            with torch.enable_grad():
                scores = attributor.attribute(batch["input_ids"], batch["attention_mask"], batch["target"], batch["token_type_ids"])
            if not torch.isfinite(scores).all():
                bad = [batch["id"][i] for i in (~torch.isfinite(scores)).any(1).nonzero().flatten().tolist()]
                raise LightningIBAError(f"method {name} gave non-finite scores for instances {bad}")
            if self.store_scores:
                token_scores[name] = scores.detach().float().cpu()
            attributed = self._clock()
            remove[name] = self._curve(batch, scores, keep=False)
            if self.degradation.sufficiency:
                keep[name] = self._curve(batch, scores, keep=True)
            if self.eraser_bins is not None:
                eraser_remove[name] = self._eraser_curve(batch, scores, keep=False)
                if self.degradation.sufficiency:
                    eraser_keep[name] = self._eraser_curve(batch, scores, keep=True)
            degraded = self._clock()
            windowed[name] = self._window_scores(name, attributor, batch, scores)
            seconds[name] = {"attribution": attributed - started + self._clock() - degraded, "degradation": degraded - attributed}
        self.batch_timing = {"indices": [int(i) for i in batch["index"]], "device": device_name(self.device), "seconds": seconds}
        lengths = batch["attention_mask"].sum(1).tolist()
        real = batch["attention_mask"].bool().cpu()  # [batch, tokens]
        predicted = predicted.cpu()
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
        for i, record in enumerate(records):
            if self.eraser_bins is not None:
                record["eraser"] = {
                    "bins": self.eraser_bins.tolist(),
                    "unit": self.eraser_unit,
                    "remove": {m: [round(float(p), 6) for p in c[i]] for m, c in eraser_remove.items()},
                    "keep": {m: [round(float(p), 6) for p in c[i]] for m, c in eraser_keep.items()},
                }
            if any(i in w for w in windowed.values()):
                record["window_scores"] = {m: w[i] for m, w in windowed.items()}
        return records
