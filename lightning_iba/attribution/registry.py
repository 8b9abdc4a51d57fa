"""Attribution methods by name, so the CLI and the evaluation can pick them from a string."""
from __future__ import annotations

from typing import Callable

from torch import nn

from lightning_iba.attribution.base import Attributor
from lightning_iba.errors import LightningIBAError, UnknownNameError

Factory = Callable[..., Attributor]  # (model, tokenizer, **options) -> Attributor


def _iba(model: nn.Module, tokenizer=None, **options) -> Attributor:
    # Lazy: the optimizer module is heavy and written separately; options go through untouched.
    from lightning_iba.attribution.optimizer import BottleneckOptimizer

    return BottleneckOptimizer(model, **options)


def _baseline(class_name: str) -> Factory:
    def factory(model: nn.Module, tokenizer=None, **options) -> Attributor:
        from lightning_iba.attribution import baselines

        return getattr(baselines, class_name)(model, tokenizer, **options)

    factory.__name__ = class_name
    return factory


#: Method name -> factory(model, tokenizer, **options).
METHODS: dict[str, Factory] = {
    "iba": _iba,
    "ig": _baseline("IntegratedGradients"),
    "lime": _baseline("Lime"),
    "random": _baseline("RandomScores"),
    "gradxinput": _baseline("GradientXInput"),
    "occlusion": _baseline("Occlusion"),
    "attention": _baseline("AttentionScores"),
}


def check_method(name: str) -> str:
    """The name itself if it is a known method, else UnknownNameError listing the valid ones."""
    if name not in METHODS:
        raise UnknownNameError("method", name, list(METHODS))
    return name


def parse_methods(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """Split "iba,ig,lime,random" into checked names, in order, without duplicates."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [check_method(p.strip().lower()) for p in parts if p.strip()]
    if not names:
        raise LightningIBAError(f"no attribution method given; valid: {', '.join(METHODS)}")
    return list(dict.fromkeys(names))


def build_attributor(name: str, model: nn.Module, tokenizer=None, **options) -> Attributor:
    """Construct the named method on `model`; `options` go to its constructor (e.g. n_steps for ig)."""
    try:
        return METHODS[check_method(name)](model, tokenizer, **options)
    except TypeError as err:
        if "unexpected keyword argument" in str(err):
            raise LightningIBAError(f"method {name!r}: {err}") from None
        raise
