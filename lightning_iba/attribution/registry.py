"""Attribution methods by name, so the commands and the evaluation can pick them from a string.

Each method is one class behind the `Attributor` interface; the commands generate each method's
settings group (`--ig.n_steps`, `--lime.kernel_width`, ...) from its constructor's signature.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from lightning_iba.attribution.base import SEGMENTS, Attributor, FixedTarget, InSegment
from lightning_iba.attribution.baselines import AttentionScores, GradientXInput, IntegratedGradients, Lime, Occlusion, RandomScores
from lightning_iba.attribution.optimizer import BottleneckOptimizer
from lightning_iba.data.tasks import Task
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


#: Variants a method name may carry as `method:variant`, so one run can hold the paper's and the published
#: code's protocols side by side. iba: the estimator (SPEC §3; bare `iba` follows the `estimator.name`
#: setting); ig: the class explained, `gold` (the instance's label, what bare `ig` does), `published` (for
#: every instance the class the published code's label map numbers 0, as its IG does: IMDB positive, MNLI
#: contradiction, AG News World, RTE entailment; `Task.published_class0`) or `class0` (label 0 of this
#: project's map for every instance, which is the published class only for AG News and RTE). The degradation
#: still scores the gold class.
VARIANTS: dict[str, tuple[str, ...]] = {"iba": ("dataset", "reference"), "ig": ("gold", "published", "class0")}
#: Methods whose scores depend on a seed: `method@seedK` repeats them with seed K (the seed-to-seed spread).
SEEDED = ("iba", "lime", "random")


@dataclass(frozen=True)
class MethodSpec:
    """One entry of a methods list: `base[:variant][@seedK][/segment]`, e.g. "iba:reference", "ig:class0",
    "iba:dataset@seed2", "random/premise" (sentence pairs: removal from one text first, base.InSegment)."""

    base: str
    variant: str | None = None
    seed: int | None = None
    segment: str | None = None

    @property
    def label(self) -> str:
        """The canonical spelling, used as the method's name in tables, curves and W&B."""
        return (self.base + (f":{self.variant}" if self.variant else "") + (f"@seed{self.seed}" if self.seed is not None else "")
                + (f"/{self.segment}" if self.segment else ""))


def _valid_names() -> list[str]:
    return [*METHOD_CLASSES, *(f"{m}:{v}" for m, vs in VARIANTS.items() for v in vs), "<method>@seed<k>",
            *(f"<method>/{s}" for s in SEGMENTS)]


def parse_method(name: str) -> MethodSpec:
    """A method name (with its variant, seed and segment suffixes) checked, else UnknownNameError listing the valid ones."""
    whole = str(name).strip().lower()
    text, _, segment = whole.partition("/")
    if "/" in whole and segment not in SEGMENTS:
        raise LightningIBAError(f"method {whole!r}: a segment suffix is /{' or /'.join(SEGMENTS)} (sentence pairs)")
    head, _, seed = text.partition("@")
    base, _, variant = head.partition(":")
    if base not in METHOD_CLASSES or (":" in head and variant not in VARIANTS.get(base, ())):
        raise UnknownNameError("method", text, _valid_names())
    if "@" in text:
        if base not in SEEDED:
            raise LightningIBAError(f"method {text!r}: only {', '.join(SEEDED)} take a seed (@seed<k>); {base} is deterministic")
        if not (seed.startswith("seed") and seed[4:].isdigit()):
            raise LightningIBAError(f"method {text!r}: a seed suffix is spelled @seed<k>, e.g. iba:dataset@seed1")
    return MethodSpec(base, variant or None, int(seed[4:]) if "@" in text else None, segment or None)


def check_method(name: str) -> str:
    """The canonical spelling of a known method name, else UnknownNameError listing the valid ones."""
    return parse_method(name).label


def parse_methods(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """Split "iba:dataset,iba:reference,ig,lime,random" (or take a list) into checked canonical names,
    in order, without duplicates."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [check_method(p) for p in parts if str(p).strip()]
    if not names:
        raise LightningIBAError(f"no attribution method given; valid: {', '.join(_valid_names())}")
    return list(dict.fromkeys(names))


def _published_class0(name: str, task: Task | None) -> int:
    """The task's label that the published code numbers 0, else a one-line error naming what is missing."""
    if task is None or task.published_class0 is None:
        raise LightningIBAError(f"method {name!r} explains the published code's class 0, which "
                                + ("needs the task" if task is None else f"is not known for {task.name}"))
    return task.published_class0


def build_attributor(name: str, model: nn.Module, tokenizer=None, *, task: Task | None = None, **options) -> Attributor:
    """Construct the named method on `model`; `options` go to its constructor (e.g. n_steps for ig).

    A variant or seed suffix in `name` sets the matching option (iba: estimator, seed; ig:class0 and
    ig:published: a fixed target, the latter from `task`); options given explicitly for those are overridden
    by the name. A segment suffix (/premise, /hypothesis) wraps the method in base.InSegment (pair tasks only)."""
    spec = parse_method(name)
    if spec.segment is not None:
        if task is not None and not task.is_pair:
            raise LightningIBAError(f"method {name!r} restricts removal to one text of a sentence pair; {task.name} has single texts")
        unrestricted = MethodSpec(spec.base, spec.variant, spec.seed).label
        return InSegment(build_attributor(unrestricted, model, tokenizer, task=task, **options), spec.segment)
    cls = METHOD_CLASSES[spec.base]
    if spec.seed is not None:
        options = {**options, "seed": spec.seed}
    if spec.base == "iba" and spec.variant and (spec.variant != "dataset" or isinstance(options.get("estimator", "dataset"), str)):
        options = {**options, "estimator": spec.variant}
    if spec.base == "ig" and spec.variant in ("class0", "published"):
        target = 0 if spec.variant == "class0" else _published_class0(name, task)  # checked before building IG
        return FixedTarget(build_attributor("ig", model, tokenizer, **options), target)
    try:
        return cls(model, **options) if cls is BottleneckOptimizer else cls(model, tokenizer, **options)
    except TypeError as err:
        if "unexpected keyword argument" in str(err):
            raise LightningIBAError(f"method {name!r}: {err}") from None
        raise
