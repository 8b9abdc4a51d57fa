"""Device, freezing and inference helpers for Hugging Face classifiers, shared by attribution and evaluation."""
from __future__ import annotations

import itertools
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import Tensor, nn


#: Model types whose position ids start after the padding index (RoBERTa style): usable positions are
#: max_position_embeddings - (pad_token_id + 1), e.g. 514 - 2 = 512.
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "longformer", "ernie_m")


def position_limit(config: Any) -> int | None:
    """The longest input (in tokens) the model's position embeddings allow; None when the config has no limit."""
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or limit <= 0:
        return None
    if getattr(config, "model_type", None) in _OFFSET_POSITIONS:
        limit -= (getattr(config, "pad_token_id", None) or 0) + 1
    return limit


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer (CPU for a stateless module)."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")


def freeze(model: nn.Module) -> nn.Module:
    """Put the classifier in eval mode (no dropout) and stop gradients into its weights."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """Eval mode and requires_grad=False for the duration; flags and modes restored exactly afterwards."""
    grad_flags = [(param, param.requires_grad) for param in model.parameters()]
    modes = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        for param, _ in grad_flags:
            param.requires_grad_(False)
        yield
    finally:
        for param, flag in grad_flags:
            param.requires_grad_(flag)
        for module, mode in modes:
            module.training = mode


def model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and floating dtype of the model's first floating parameter."""
    for param in model.parameters():
        if param.is_floating_point():
            return param.device, param.dtype
    return torch.device("cpu"), torch.float32


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    input_ids: Tensor,  # [variants, tokens]
    attention_mask: Tensor,  # [variants, tokens]
    token_type_ids: Tensor | None = None,  # [variants, tokens]
    batch_size: int = 64,
) -> Tensor:  # [variants, classes] float32
    """Softmax probabilities of an HF-style classifier, in length-sorted, re-padded chunks."""
    if input_ids.shape[0] == 0:
        return torch.empty(0, 0)
    device = model_device(model)
    lengths = attention_mask.sum(1)
    order = torch.argsort(lengths, descending=True, stable=True)
    chunks = []
    for start in range(0, order.numel(), batch_size):
        rows = order[start : start + batch_size]
        cols = attention_mask[rows].bool().any(0)  # drop columns that are padding in every row
        cols[0] = True
        kwargs = {"input_ids": input_ids[rows][:, cols].to(device), "attention_mask": attention_mask[rows][:, cols].to(device)}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids[rows][:, cols].to(device)
        chunks.append(model(**kwargs).logits.float().softmax(-1))
    probs = torch.cat(chunks)
    out = torch.empty_like(probs)
    out[order.to(probs.device)] = probs
    return out
