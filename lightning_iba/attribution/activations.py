"""'X only' scores (SPEC §6, Figure 2b): the layer's own activations, with no bottleneck optimised."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_iba.attribution.base import Attributor, mask_padding
from lightning_iba.attribution.estimators import Estimator, get_estimator


class ActivationScores(Attributor):
    """Per-token squared norm of the normalised activation x = (X - mean) / std after layer `layer`.

    With lambda = 1 the bottleneck's KL per element is x^2 / 2, so this is what IBA would give
    without optimising alpha: the "X only" curve of the paper's beta figure.
    """

    name = "xonly"

    def __init__(self, model: nn.Module, layer: int, estimator: str | Estimator = "dataset"):
        self.model, self.layer = model, layer
        self.estimator = get_estimator(estimator)

    @torch.no_grad()
    def attribute(self, input_ids: Tensor, attention_mask: Tensor, target: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        states = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, output_hidden_states=True).hidden_states
        hidden_in, hidden_out = states[self.layer], states[self.layer + 1]  # [batch, tokens, hidden]
        mean, std = self.estimator.statistics(self.layer, hidden_in, hidden_out, attention_mask)
        x = (hidden_out - mean) / std
        return mask_padding(x.pow(2).sum(-1), attention_mask)
