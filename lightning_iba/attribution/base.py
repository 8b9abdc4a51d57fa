"""The one interface every attribution method implements, so evaluation treats them alike."""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from lightning_iba.errors import LightningIBAError

#: The texts of a sentence pair a method can be restricted to (`method/premise`), in token-type order.
SEGMENTS = ("premise", "hypothesis")


class Attributor(ABC):
    """Scores each token of a batch for its contribution to the `target` class.

    Implementations take a padded batch and return float32 scores of shape [batch, tokens]
    (higher = more important), exactly 0 at padding (attention_mask == 0), on the input's device.
    """

    #: Short name used on the command line, in tables and in plots ("iba", "ig", "lime", ...).
    name: str = "attributor"

    @abstractmethod
    def attribute(
        self,
        input_ids: Tensor,  # [batch, tokens]
        attention_mask: Tensor,  # [batch, tokens], 1 = real token
        target: Tensor,  # [batch], class index to explain
        token_type_ids: Tensor | None = None,  # [batch, tokens]
    ) -> Tensor:  # [batch, tokens]
        ...


class FixedTarget(Attributor):
    """Another method explaining one fixed class for every instance, whatever `target` says.

    The published code explains its class 0 with IG for every instance; the degradation test still scores the
    gold class, so this reproduces that protocol (`ig:published`, with its class 0 in this project's label map)."""

    def __init__(self, inner: Attributor, target: int):
        self.inner = inner
        self.target = int(target)
        self.name = f"{inner.name}:class{self.target}"

    def attribute(self, input_ids: Tensor, attention_mask: Tensor, target: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        fixed = torch.full_like(target, self.target)  # [batch]
        return self.inner.attribute(input_ids, attention_mask, fixed, token_type_ids)


class InSegment(Attributor):
    """Another method's scores with every token outside one text of a sentence pair ranked below every token inside it
    (their order among themselves kept): the degradation test removes from that text first, and only from it while the
    fraction's count fits in it. Why: to ask what removing a method's top *premise* (or *hypothesis*) tokens does,
    e.g. whether a method that looks at the hypothesis would do better on entailment if it had to choose in the premise.
    `segment`: "premise" (the first text, token type 0) or "hypothesis" (the second, token type 1)."""

    def __init__(self, inner: Attributor, segment: str):
        if segment not in SEGMENTS:
            raise LightningIBAError(f"unknown segment {segment!r}; valid: {', '.join(SEGMENTS)}")
        self.inner = inner
        self.segment = segment
        self.name = f"{inner.name}/{segment}"

    def attribute(self, input_ids: Tensor, attention_mask: Tensor, target: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        if token_type_ids is None:
            raise LightningIBAError(f"method {self.name} needs the token types of a sentence pair")
        scores = self.inner.attribute(input_ids, attention_mask, target, token_type_ids).float()  # [batch, tokens]
        real = attention_mask.bool().to(scores.device)
        inside = (token_type_ids.to(scores.device) == SEGMENTS.index(self.segment)) & real  # [batch, tokens]
        top = scores.masked_fill(~real, float("-inf")).amax(1, keepdim=True)  # [batch, 1]
        bottom = scores.masked_fill(~real, float("inf")).amin(1, keepdim=True)
        shift = (top - bottom).nan_to_num(0.0) + 1.0  # below every inside score, whatever the scale
        return mask_padding(torch.where(inside, scores, scores - shift), attention_mask)


def mask_padding(scores: Tensor, attention_mask: Tensor) -> Tensor:
    """Scores as float32 with padding positions set to exactly 0."""
    return scores.float() * attention_mask.to(scores.device, torch.float32)


def instance_seed(base_seed: int, real_ids: Tensor) -> int:
    """A seed for one instance's random draws: the base seed combined with a CRC32 of its real token ids.

    Depends on the instance alone, so results do not change with batching, ordering or the number of devices.
    """
    import zlib

    import numpy as np

    data = np.ascontiguousarray(real_ids.detach().cpu().numpy().astype(np.int64)).tobytes()
    return (int(base_seed) * 1_000_003 + zlib.crc32(data)) % (2**63 - 1)
