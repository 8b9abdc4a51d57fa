"""Generic access to a classifier's encoder: find its layers, capture their hidden states, run a suffix.

IBA needs three things from any Hugging Face encoder classifier (BERT, RoBERTa, ELECTRA, DistilBERT, ...):

- the list of encoder layers, to know `L` and where to insert the bottleneck;
- every layer's input/output hidden states for a batch, computed once without gradients;
- "layers l+1..L-1 and the head" run on given hidden states, so that an optimisation step does
  not recompute layers 0..l. This uses a swap: the base model's embeddings module is replaced by
  one that returns the given states and the layer ModuleList by `ModuleList(layers[l+1:])`; the
  model is then called normally, so the library still builds the attention mask and runs its own
  pooler and classification head. Everything is restored in `finally`.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from torch import Tensor, nn

from lightning_iba.errors import LightningIBAError

def check_layer(layer: int, num_layers: int) -> int:
    """`layer` as an int if it indexes one of `num_layers` encoder layers, else a one-line error."""
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 0 <= layer < num_layers:
        raise LightningIBAError(f"layer {layer!r} is out of range; valid: 0..{num_layers - 1}")
    return int(layer)


# Where the layer ModuleList lives, relative to the base model (then to the full model).
_LAYER_PATHS = ("encoder.layer", "transformer.layer", "encoder.layers", "transformer.layers", "layers", "layer")


@dataclass(frozen=True)
class Encoder:
    """Handles to the parts of a classifier that IBA touches."""

    base: nn.Module  # the bare encoder model (model.base_model)
    parent: nn.Module  # module holding the layer list as attribute `attr`
    attr: str
    layers: nn.ModuleList  # [L] identical blocks

    @property
    def num_layers(self) -> int:
        return len(self.layers)


def _lookup(module: nn.Module, dotted: str) -> tuple[nn.Module, str, object] | None:
    parts = dotted.split(".")
    parent = module
    for part in parts[:-1]:
        parent = getattr(parent, part, None)
        if not isinstance(parent, nn.Module):
            return None
    found = getattr(parent, parts[-1], None)
    return (parent, parts[-1], found) if found is not None else None


def _is_block_list(obj: object) -> bool:
    """A non-empty ModuleList whose children are all of one class (the transformer blocks)."""
    return (
        isinstance(obj, nn.ModuleList)
        and len(obj) > 0
        and len({type(child) for child in obj}) == 1
    )


def find_encoder(model: nn.Module) -> Encoder:
    """The encoder's layer list of `model`; LightningIBAError if there is none IBA can use."""
    base = getattr(model, "base_model", model)
    for root in (base, model):
        for path in _LAYER_PATHS:
            hit = _lookup(root, path)
            if hit is not None and _is_block_list(hit[2]):
                return Encoder(base=base, parent=hit[0], attr=hit[1], layers=hit[2])  # type: ignore[arg-type]
    # Fallback: the one ModuleList of identical blocks whose length is the configured depth.
    depth = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    candidates = []
    for name, module in base.named_modules():
        if _is_block_list(module) and (depth is None or len(module) == depth):
            parent_name, _, attr = name.rpartition(".")
            candidates.append((base.get_submodule(parent_name) if parent_name else base, attr, module))
    if len(candidates) == 1:
        parent, attr, layers = candidates[0]
        return Encoder(base=base, parent=parent, attr=attr, layers=layers)
    raise LightningIBAError(
        f"cannot find the encoder layers of {type(model).__name__}; supported: BERT, RoBERTa, ELECTRA, "
        "DistilBERT and models whose encoder is one ModuleList of identical blocks"
    )


def layer_tensor(output: object) -> Tensor:
    """The hidden states in a layer's output (transformers 5 returns a Tensor, older versions a tuple)."""
    return output if isinstance(output, Tensor) else output[0]  # type: ignore[index]


def replace_layer_tensor(output: object, hidden: Tensor) -> object:
    """`output` with its hidden states replaced by `hidden`, keeping the container type."""
    if isinstance(output, Tensor):
        return hidden
    return (hidden, *output[1:])  # type: ignore[index]


def _model_inputs(input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None) -> dict:
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if token_type_ids is not None:
        inputs["token_type_ids"] = token_type_ids
    return inputs


class _StopForward(Exception):
    """Raised by a hook to end a forward pass once the wanted layers have run."""


def capture_hidden_states(
    model: nn.Module,
    input_ids: Tensor,  # [batch, tokens]
    attention_mask: Tensor,  # [batch, tokens]
    token_type_ids: Tensor | None = None,
    upto: int | None = None,
) -> tuple[list[Tensor], Tensor | None]:
    """Run the model once and return (states, logits).

    `states[0]` is the tensor entering layer 0 and `states[l+1]` is layer l's output, each
    [batch, tokens, hidden] (the `output_hidden_states` convention), read by our own temporary
    hooks so the library installs none of its own. With `upto` the pass stops after layer `upto`
    (states has upto+2 entries, logits is None): layers above it are not needed for a bottleneck
    at or below `upto`. Gradients follow the caller's grad mode.
    """
    encoder = find_encoder(model)
    last = encoder.num_layers - 1 if upto is None else upto
    states: list[Tensor] = []

    def grab_input(module, args, kwargs):
        states.append(args[0] if args else kwargs["hidden_states"])

    def grab_output(module, args, output):
        states.append(layer_tensor(output))
        if upto is not None and module is encoder.layers[upto]:
            raise _StopForward

    handles = [encoder.layers[0].register_forward_pre_hook(grab_input, with_kwargs=True)]
    handles += [layer.register_forward_hook(grab_output) for layer in encoder.layers[: last + 1]]
    logits = None
    try:
        logits = model(**_model_inputs(input_ids, attention_mask, token_type_ids)).logits
    except _StopForward:
        pass
    finally:
        for handle in handles:
            handle.remove()
    if len(states) != last + 2:
        raise LightningIBAError(
            f"{type(model).__name__} ran {len(states) - 1} of its {last + 1} layers; cannot cache them"
        )
    return states, logits


class _GivenStates(nn.Module):
    """Stands in for the embeddings: returns the hidden states it was given, whatever it is called with."""

    def __init__(self, hidden: Tensor):
        super().__init__()
        self.hidden = hidden

    def forward(self, *args, **kwargs) -> Tensor:
        return self.hidden


@contextmanager
def _suffix_only(model: nn.Module, layer: int, hidden: Tensor) -> Iterator[None]:
    """Temporarily make `model` start from `hidden` (layer `layer`'s output) and run layers layer+1.."""
    encoder = find_encoder(model)
    base = encoder.base
    if not isinstance(getattr(base, "embeddings", None), nn.Module):
        raise LightningIBAError(
            f"{type(model).__name__} has no `embeddings` module to swap; use path='per_instance'"
        )
    original_embeddings = base.embeddings
    original_layers = encoder.layers
    projection = getattr(base, "embeddings_project", None)  # ELECTRA projects after the embeddings
    try:
        base.embeddings = _GivenStates(hidden)
        setattr(encoder.parent, encoder.attr, nn.ModuleList(list(original_layers)[layer + 1 :]))
        if isinstance(projection, nn.Module):
            base.embeddings_project = nn.Identity()
        yield
    finally:
        base.embeddings = original_embeddings
        setattr(encoder.parent, encoder.attr, original_layers)
        if isinstance(projection, nn.Module):
            base.embeddings_project = projection


def run_from_layer(
    model: nn.Module,
    layer: int,
    hidden: Tensor,  # [rows, tokens, hidden], output of layer `layer`
    input_ids: Tensor,  # [rows, tokens]
    attention_mask: Tensor,  # [rows, tokens]
    token_type_ids: Tensor | None = None,
) -> Tensor:  # [rows, classes]
    """Logits of layers layer+1..L-1 and the head applied to `hidden`; the model is restored afterwards."""
    with _suffix_only(model, layer, hidden):
        return model(**_model_inputs(input_ids, attention_mask, token_type_ids)).logits


@contextmanager
def replace_after_layer(model: nn.Module, layer: int, fn: Callable[[Tensor], Tensor]) -> Iterator[None]:
    """Forward hook that replaces layer `layer`'s output X by fn(X) for every forward pass inside the block."""
    encoder = find_encoder(model)

    def hook(module, args, output):
        return replace_layer_tensor(output, fn(layer_tensor(output)))

    handle = encoder.layers[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def full_forward(
    model: nn.Module, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None
) -> Tensor:  # [batch, classes]
    """Logits of a plain forward pass (the per-instance path runs this with a bottleneck hook)."""
    return model(**_model_inputs(input_ids, attention_mask, token_type_ids)).logits
