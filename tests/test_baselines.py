"""Baseline attribution methods (SPEC §5) and the method registry."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from conftest import make_tiny_bert
from lightning_iba.attribution.base import Attributor
from lightning_iba.attribution.baselines import (
    GradientXInput,
    IntegratedGradients,
    Lime,
    Occlusion,
    RandomScores,
    word_pieces_to_words,
)
from lightning_iba.attribution.registry import METHODS, build_attributor, parse_methods
from lightning_iba.errors import LightningIBAError, UnknownNameError

SINGLES = ["a wonderfully crafted film, no gibberishness!", "bad", "the plot is thin but the acting is great"]
PAIRS = (["a man plays guitar", "nobody"], ["someone makes music on an instrument", "a woman is singing loudly"])
BASELINES = ["ig", "lime", "random", "gradxinput", "occlusion", "attention"]


@pytest.fixture(scope="module")
def model():
    """A 2-layer tiny BERT with weights scaled up so its output actually depends on the input."""
    bert = make_tiny_bert(layers=2)
    with torch.no_grad():
        for name, p in bert.named_parameters():
            if p.dim() == 2 and "embeddings" not in name:
                p.mul_(5.0)
        bert.classifier.weight.mul_(10.0)
    return bert


def encode(tokenizer, kind):
    enc = tokenizer(*PAIRS, padding=True, return_tensors="pt") if kind == "pair" else tokenizer(SINGLES, padding=True, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]


def probs(model, ids, mask, types=None):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits.softmax(-1)


class KeywordModel(nn.Module):
    """Hand-built black box: the class-1 logit is a weighted count of a few token ids."""

    def __init__(self, weights: dict[int, float]):
        super().__init__()
        self.register_buffer("w", torch.zeros(30522))
        for token, value in weights.items():
            self.w[token] = value

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        z = (self.w[input_ids] * attention_mask).sum(1)
        return SimpleNamespace(logits=torch.stack([torch.zeros_like(z), z], 1))


# --------------------------------------------------------------------------- every method


@pytest.mark.parametrize("kind", ["single", "pair"])
@pytest.mark.parametrize("name", BASELINES)
def test_scores_are_finite_float_and_zero_at_padding(name, kind, model, tokenizer):
    ids, mask, types_ = encode(tokenizer, kind)
    assert (mask == 0).any() and (mask.sum(1) >= 3).all() and len(set(mask.sum(1).tolist())) > 1  # padded, mixed lengths
    method = build_attributor(name, model, tokenizer, **({"num_samples": 40} if name == "lime" else {}))
    assert isinstance(method, Attributor) and method.name == name
    scores = method.attribute(ids, mask, torch.tensor([1, 0, 1][: len(ids)]), types_)
    assert scores.dtype == torch.float32 and scores.shape == ids.shape
    assert torch.isfinite(scores).all()
    assert (scores[mask == 0] == 0).all()
    assert (scores[mask == 1] != 0).any()


@pytest.mark.parametrize("name", ["ig", "gradxinput", "occlusion", "lime"])
def test_batched_scores_equal_one_instance_at_a_time(name, model, tokenizer):
    ids, mask, types_ = encode(tokenizer, "pair")
    target = torch.tensor([1, 0])
    method = build_attributor(name, model, tokenizer, **({"num_samples": 30} if name == "lime" else {}))
    together = method.attribute(ids, mask, target, types_)
    for i in range(len(ids)):
        n = int(mask[i].sum())
        alone = method.attribute(ids[i : i + 1, :n], mask[i : i + 1, :n], target[i : i + 1], types_[i : i + 1, :n])
        scale = together[i].abs().max()
        assert torch.allclose(together[i, :n], alone[0], atol=1e-3 * float(scale)), name


# --------------------------------------------------------------------------- Integrated Gradients


def test_ig_completeness_with_enough_steps(model, tokenizer):
    ids, mask, types_ = encode(tokenizer, "single")
    target = torch.tensor([1, 0, 1])
    ig = IntegratedGradients(model, tokenizer, n_steps=50)
    baseline = ig.baseline(ids, mask)
    delta = (probs(model, ids, mask, types_) - probs(model, baseline, mask, types_)).gather(1, target[:, None]).squeeze(1)
    assert delta.abs().max() > 0.01  # the check below is not trivially satisfied
    total = ig.attribute(ids, mask, target, types_).sum(1)
    assert torch.allclose(total, delta, atol=1e-3 * float(delta.abs().max()))
    crude = IntegratedGradients(model, tokenizer, n_steps=2, method="riemann_right").attribute(ids, mask, target, types_).sum(1)
    assert not torch.allclose(crude, delta, atol=1e-3 * float(delta.abs().max()))


def test_ig_baseline_is_pad_with_specials_and_padding_kept(model, tokenizer):
    ids, mask, _ = encode(tokenizer, "pair")
    baseline = IntegratedGradients(model, tokenizer).baseline(ids, mask)
    special = torch.isin(ids, torch.tensor([tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id]))
    assert torch.equal(baseline[special], ids[special])
    assert (baseline[~special] == tokenizer.pad_token_id).all()


def test_ig_depends_on_the_target(model, tokenizer):
    ids, mask, types_ = encode(tokenizer, "single")
    ig = IntegratedGradients(model, tokenizer)
    to_one = ig.attribute(ids, mask, torch.tensor([1, 1, 1]), types_)
    to_zero = ig.attribute(ids, mask, torch.tensor([0, 0, 0]), types_)
    assert not torch.allclose(to_one, to_zero, atol=1e-4)
    assert torch.allclose(to_one, -to_zero, atol=1e-5)  # two classes: p0 = 1 - p1


# --------------------------------------------------------------------------- gradient x input, occlusion


def test_gradient_x_input_matches_autograd(model, tokenizer):
    ids, mask, types_ = encode(tokenizer, "pair")
    scores = GradientXInput(model, tokenizer).attribute(ids, mask, torch.tensor([0, 1]), types_)
    n = int(mask[1].sum())
    emb = model.get_input_embeddings()(ids[1:2, :n]).detach().requires_grad_(True)
    logit = model(inputs_embeds=emb, attention_mask=mask[1:2, :n], token_type_ids=types_[1:2, :n]).logits[0, 1]
    (grad,) = torch.autograd.grad(logit, emb)
    assert torch.allclose(scores[1, :n], (grad * emb).sum(-1)[0].detach(), atol=1e-6)


def test_occlusion_is_drop_when_the_token_is_left_out(model, tokenizer):
    ids, mask, types_ = encode(tokenizer, "single")
    scores = Occlusion(model, tokenizer).attribute(ids, mask, torch.tensor([1, 0, 1]), types_)
    n, t = int(mask[2].sum()), 4
    without = torch.cat([ids[2, :t], ids[2, t + 1 : n]])[None]
    expected = probs(model, ids[2:3, :n], mask[2:3, :n])[0, 1] - probs(model, without, torch.ones_like(without))[0, 1]
    assert scores[2, t].item() == pytest.approx(expected.item(), abs=1e-6)
    assert scores[2, 0] == 0 and scores[2, n - 1] == 0  # [CLS], [SEP]


@pytest.mark.parametrize("cls", [Occlusion, Lime])
def test_black_box_methods_find_the_keyword(cls, tokenizer):
    great, music = tokenizer.convert_tokens_to_ids(["great", "music"])
    ids, mask, types_ = encode(tokenizer, "pair")
    model = KeywordModel({music: 3.0})
    scores = cls(model, tokenizer).attribute(ids, mask, torch.tensor([1, 1]), types_)
    assert ids[0, scores[0].argmax()] == music  # in the second segment of a pair
    ids, mask, types_ = encode(tokenizer, "single")
    scores = cls(KeywordModel({great: -3.0}), tokenizer).attribute(ids, mask, torch.tensor([0, 0, 0]), types_)
    assert ids[2, scores[2].argmax()] == great


# --------------------------------------------------------------------------- LIME


def test_word_pieces_are_grouped_like_the_fast_tokenizer(tokenizer):
    enc = tokenizer("unbelievable, wonderfully-crafted films", "embeddings")
    tokens = enc.tokens()
    removable = [w is not None for w in enc.word_ids()]
    ours = word_pieces_to_words(tokens, removable)
    theirs = [-1 if w is None else w for w in enc.word_ids()]
    # same partition into words (the pair's second segment restarts word_ids at 0)
    assert len(set(ours) - {-1}) == len({(s, w) for s, w in zip(enc.sequence_ids(), theirs) if w >= 0})
    assert [a == b for a, b in zip(ours[:-1], ours[1:])] == [a == b and a >= 0 for a, b in zip(theirs[:-1], theirs[1:])]


def test_lime_is_seeded_and_word_pieces_share_their_word_weight(model, tokenizer):
    ids, mask, types_ = encode(tokenizer, "single")
    target = torch.tensor([1, 0, 1])
    first = Lime(model, tokenizer, num_samples=40, seed=3).attribute(ids, mask, target, types_)
    again = Lime(model, tokenizer, num_samples=40, seed=3).attribute(ids, mask, target, types_)
    other = Lime(model, tokenizer, num_samples=40, seed=4).attribute(ids, mask, target, types_)
    assert torch.equal(first, again) and not torch.equal(first, other)
    tokens = tokenizer.convert_ids_to_tokens(ids[0].tolist())
    pieces = [i for i, t in enumerate(tokens) if t.startswith("##")]
    assert pieces and all(first[0, i] == first[0, i - 1] for i in pieces)


def test_lime_runs_num_samples_per_instance_in_chunks(tokenizer):
    ids, mask, types_ = encode(tokenizer, "single")
    model = KeywordModel({2307: 1.0})
    rows = []
    forward = model.forward
    model.forward = lambda input_ids, **kw: rows.append(len(input_ids)) or forward(input_ids, **kw)
    Lime(model, tokenizer, num_samples=25, batch_size=10).attribute(ids, mask, torch.tensor([1, 1, 1]), types_)
    assert sum(rows) == 3 * 25 and max(rows) == 10


# --------------------------------------------------------------------------- random, attention


def test_random_scores_are_seeded(tokenizer):
    ids, mask, _ = encode(tokenizer, "single")
    target = torch.zeros(3, dtype=torch.long)
    a = RandomScores(seed=7).attribute(ids, mask, target)
    assert torch.equal(a, RandomScores(seed=7).attribute(ids, mask, target))
    assert not torch.equal(a, RandomScores(seed=8).attribute(ids, mask, target))
    assert ((a[mask == 1] >= 0) & (a[mask == 1] < 1)).all()
    # per instance: the last row alone, or first in a reordered batch, gets the same scores
    alone = RandomScores(seed=7).attribute(ids[2:], mask[2:], target[2:])
    assert torch.equal(alone[0], a[2])
    flipped = RandomScores(seed=7).attribute(ids.flip(0), mask.flip(0), target)
    assert torch.equal(flipped.flip(0), a)


def test_attention_scores_are_cls_attention_and_restore_sdpa(model, tokenizer):
    ids, mask, types_ = encode(tokenizer, "pair")
    before = model.config._attn_implementation
    scores = build_attributor("attention", model, tokenizer).attribute(ids, mask, torch.tensor([0, 1]), types_)
    assert torch.allclose(scores.sum(1), torch.ones(2), atol=1e-5)  # a softmax row, padding masked out
    assert model.config._attn_implementation == before


# --------------------------------------------------------------------------- registry


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(UnknownNameError) as err:
        parse_methods("iba,ig,shap")
    message = str(err.value)
    assert "'shap'" in message and all(name in message for name in ["iba", "ig", "lime", "random", "gradxinput", "occlusion"])
    assert "\n" not in message


def test_parse_methods_and_options(model, tokenizer):
    assert parse_methods(" iba, ig ,lime,random,ig") == ["iba", "ig", "lime", "random"]
    assert set(METHODS) >= {"iba", "ig", "lime", "random", "gradxinput", "occlusion", "attention"}
    with pytest.raises(LightningIBAError):
        parse_methods(" , ")
    assert build_attributor("ig", model, tokenizer, n_steps=3).n_steps == 3
    with pytest.raises(LightningIBAError, match="n_stepz"):
        build_attributor("ig", model, tokenizer, n_stepz=3)


def test_method_variants_and_seed_suffixes():
    assert parse_methods("iba:dataset, IBA:Reference,ig:class0,ig:gold,lime@seed2,iba:dataset") == [
        "iba:dataset", "iba:reference", "ig:class0", "ig:gold", "lime@seed2"
    ]
    for bad, message in [("iba:median", "unknown method 'iba:median'"), ("ig:class1", "unknown method 'ig:class1'"),
                         ("ig@seed1", "only iba, lime, random take a seed"), ("iba@1", "spelled @seed<k>")]:
        with pytest.raises(LightningIBAError, match=message):
            parse_methods(bad)
    with pytest.raises(UnknownNameError) as err:
        parse_methods("lime:gold")
    assert "iba:reference" in str(err.value) and "ig:class0" in str(err.value)


def test_ig_class0_explains_class_0_for_every_instance(model, tokenizer):
    ids, mask, types = encode(tokenizer, "single")
    gold = torch.tensor([1, 1, 0])
    class0 = build_attributor("ig:class0", model, tokenizer, n_steps=4).attribute(ids, mask, gold, types)
    ig = build_attributor("ig", model, tokenizer, n_steps=4)
    torch.testing.assert_close(class0, ig.attribute(ids, mask, torch.zeros_like(gold), types))
    assert not torch.allclose(class0[:2], ig.attribute(ids, mask, gold, types)[:2])  # the gold class 1 differs


@pytest.mark.parametrize("task_name, published", [("imdb", 1), ("rte", 0)])
def test_ig_published_explains_the_published_codes_class_0_in_our_label_map(model, tokenizer, task_name, published):
    """SPEC §6: the published code numbers IMDB pos = 0 (ours: neg = 0, pos = 1), RTE entailment = 0 (ours too)."""
    from lightning_iba.data.tasks import get_task

    ids, mask, types = encode(tokenizer, "single")
    gold = torch.tensor([1, 0, 0])
    scores = build_attributor("ig:published", model, tokenizer, task=get_task(task_name), n_steps=4).attribute(ids, mask, gold, types)
    ig = build_attributor("ig", model, tokenizer, n_steps=4)
    torch.testing.assert_close(scores, ig.attribute(ids, mask, torch.full_like(gold, published), types))
    assert not torch.allclose(scores, ig.attribute(ids, mask, torch.full_like(gold, 1 - published), types))


def test_the_published_class_0_is_each_tasks_published_label_0():
    from lightning_iba.data.tasks import get_task

    published = {name: get_task(name).label_names[get_task(name).published_class0] for name in ("imdb", "mnli", "agnews", "rte")}
    assert published == {"imdb": "pos", "mnli": "contradiction", "agnews": "World", "rte": "entailment"}
    with pytest.raises(LightningIBAError, match="needs the task"):
        build_attributor("ig:published", None)
    with pytest.raises(LightningIBAError, match="not known for rotten_tomatoes"):
        build_attributor("ig:published", None, task=get_task("rotten_tomatoes"))


def test_iba_variants_set_the_estimator_and_seed(model, tokenizer):
    assert build_attributor("iba:reference", model, layer=1).estimator.__class__.__name__ == "ReferenceEstimator"
    assert build_attributor("iba:reference@seed4", model, layer=1, seed=0).seed == 4
    assert build_attributor("random@seed3", model, tokenizer, seed=0).seed == 3


def test_iba_is_built_with_its_options_forwarded_and_unknown_ones_refused(model, tokenizer):
    from lightning_iba.attribution.optimizer import BottleneckOptimizer

    iba = build_attributor("iba", model, tokenizer, layer=1, beta=1e-4, steps=3, estimator="reference")
    assert isinstance(iba, BottleneckOptimizer) and iba.model is model
    assert (iba.layer, iba.beta, iba.steps) == (1, 1e-4, 3)
    with pytest.raises(LightningIBAError, match="method 'iba'.*unexpected keyword argument 'n_steps'"):
        build_attributor("iba", model, tokenizer, n_steps=3)
