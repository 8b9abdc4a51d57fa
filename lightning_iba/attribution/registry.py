"""Attribution methods by name, so the commands and the evaluation can pick them from a string.

Each method is one class behind the `Attributor` interface; the commands generate each method's
settings group (`--ig.n_steps`, `--lime.kernel_width`, ...) from its constructor's signature.
"""
from __future__ import annotations

from torch import nn

from lightning_iba.attribution.base import Attributor
from lightning_iba.attribution.baselines import AttentionScores, GradientXInput, IntegratedGradients, Lime, Occlusion, RandomScores
from lightning_iba.attribution.optimizer import BottleneckOptimizer
from lightning_iba.errors import LightningIBAError, UnknownNameError

#: Method name -> its class: BottleneckOptimizer(model, **options), the baselines (model, tokenizer, **options).
METHOD_CLASSES: dict[str, type[Attributor]] = {
    "iba": BottleneckOptimizer,
    "ig": IntegratedGradients,
    "lime": Lime,
    "random": RandomScores,
    "gradxinput": GradientXInput,
    "occlusion": Occlusion,
    "attention": AttentionScores,
}
METHODS = tuple(METHOD_CLASSES)


def check_method(name: str) -> str:
    """The name itself if it is a known method, else UnknownNameError listing the valid ones."""
    if name not in METHOD_CLASSES:
        raise UnknownNameError("method", name, list(METHOD_CLASSES))
    return name


def parse_methods(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """Split "iba,ig,lime,random" (or take a list) into checked names, in order, without duplicates."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [check_method(str(p).strip().lower()) for p in parts if str(p).strip()]
    if not names:
        raise LightningIBAError(f"no attribution method given; valid: {', '.join(METHOD_CLASSES)}")
    return list(dict.fromkeys(names))


def build_attributor(name: str, model: nn.Module, tokenizer=None, **options) -> Attributor:
    """Construct the named method on `model`; `options` go to its constructor (e.g. n_steps for ig)."""
    cls = METHOD_CLASSES[check_method(name)]
    try:
        return cls(model, **options) if cls is BottleneckOptimizer else cls(model, tokenizer, **options)
    except TypeError as err:
        if "unexpected keyword argument" in str(err):
            raise LightningIBAError(f"method {name!r}: {err}") from None
        raise
