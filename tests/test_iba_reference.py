"""BottleneckOptimizer(estimator="reference") against an independent plain copy of the published algorithm.

The reference below is written from the published code's behaviour (SPEC sections 1-3) and shares
nothing with lightning_iba's bottleneck: one instance, a forward hook on layer l, K = 10 copies,
10 Adam steps at lr 1, mean = hidden_states[l] (the tensor entering layer l), std = sqrt(1e-5),
and the attribution read from the capacity buffer of the last forward pass.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import nn

from lightning_iba import BottleneckOptimizer

SENTENCES = [
    "a gripping, beautifully acted film that never lets go of you",
    "the plot is thin and the jokes fall flat, a waste of two hours",
    "an uneven but often charming story about a family on the road",
]


def published_iba(model, input_ids: torch.Tensor, target: int, layer: int, beta: float = 1e-5,
                  steps: int = 10, samples: int = 10, lr: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Plain re-implementation of the published per-instance IBA; returns per-token information [tokens]."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        hidden_states = model(input_ids=input_ids, output_hidden_states=True).hidden_states
    mean = hidden_states[layer][0]  # estimator fitted on one instance: its input to layer `layer`
    std = torch.full_like(mean, math.sqrt(1e-5))  # running std of a single sample
    alpha = nn.Parameter(torch.full_like(mean, 5.0))
    generator = torch.Generator().manual_seed(seed)
    buffer = {}

    def hook(module, args, output):
        r = output if isinstance(output, torch.Tensor) else output[0]
        lamb = torch.sigmoid(alpha).expand(r.shape[0], -1, -1)
        r_norm = (r - mean) / std
        noise_var = (1 - lamb) ** 2
        scaled_signal = r_norm * lamb
        noise_log_var = torch.log(noise_var)
        eps = torch.randn(r.shape, generator=generator)
        z_norm = scaled_signal + (noise_log_var.clamp(-10, 10) / 2).exp() * eps
        buffer["capacity"] = -0.5 * (1 + noise_log_var - scaled_signal**2 - noise_log_var.exp())
        z = z_norm * std + mean
        return z if isinstance(output, torch.Tensor) else (z, *output[1:])

    handle = model.bert.encoder.layer[layer].register_forward_hook(hook)
    try:
        optimizer = torch.optim.Adam([alpha], lr=lr)
        batch = input_ids.expand(samples, -1)
        labels = torch.full((samples,), target)
        for _ in range(steps):
            optimizer.zero_grad()
            logits = model(input_ids=batch).logits
            loss = F.cross_entropy(logits, labels) + beta * buffer["capacity"].mean()
            loss.backward()
            optimizer.step()
    finally:
        handle.remove()
    return buffer["capacity"].mean(0).sum(-1).detach()  # [tokens]


@pytest.fixture(scope="module")
def minilm(bundled_model_path):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)  # the classification head is new, so seed it
    return AutoModelForSequenceClassification.from_pretrained(bundled_model_path, num_labels=2).eval()


def test_reference_estimator_matches_published_algorithm(minilm, tokenizer):
    layer = 3
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    target = torch.tensor([0, 1, 1])
    iba = BottleneckOptimizer(minilm, layer=layer, beta=1e-5, estimator="reference", batch_size=8, seed=123)
    scores = iba.attribute(batch["input_ids"], batch["attention_mask"], target)
    for i in range(len(SENTENCES)):
        n = int(batch["attention_mask"][i].sum())
        expected = published_iba(minilm, batch["input_ids"][i : i + 1, :n], int(target[i]), layer)
        rho = spearmanr(scores[i, :n].numpy(), expected.numpy()).statistic
        assert rho >= 0.99, f"instance {i}: Spearman {rho:.4f}"
        assert torch.all(scores[i, n:] == 0)
