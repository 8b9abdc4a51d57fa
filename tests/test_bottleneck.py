"""The building blocks of IBA: the bottleneck module, the encoder access helpers and the estimators."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from conftest import make_tiny_bert
from lightning_iba.attribution.bottleneck import InformationBottleneck
from lightning_iba.attribution.encoder import (
    capture_hidden_states,
    find_encoder,
    full_forward,
    replace_after_layer,
    run_from_layer,
)
from lightning_iba.attribution.estimators import DatasetEstimator, ReferenceEstimator, get_estimator
from lightning_iba.attribution.statistics_cache import StatisticsKey, load_or_fit, statistics_file
from lightning_iba.errors import LightningIBAError


def padded_batch(vocab: int = 100, lengths=(7, 5, 3), seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (len(lengths), max(lengths)), generator=generator)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    return ids * mask, mask


# ---- bottleneck ------------------------------------------------------------------------------------


def test_kl_matches_the_closed_form_and_ignores_padding():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4)  # [batch, tokens, hidden], K = 1
    mean, std = torch.randn(4), torch.rand(4) + 0.5
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    bottleneck = InformationBottleneck(mean, std, mask)
    with torch.no_grad():
        bottleneck.alpha.normal_()
        bottleneck(x, eps=torch.zeros_like(x))
    lamb = torch.sigmoid(bottleneck.alpha.detach())
    signal = lamb * (x - mean) / std
    var = (1 - lamb) ** 2
    expected = -0.5 * (1 + var.log() - signal**2 - var)
    expected[1, 2] = 0
    torch.testing.assert_close(bottleneck.kl, expected)
    torch.testing.assert_close(bottleneck.token_information(), expected.sum(-1))
    torch.testing.assert_close(bottleneck.information_loss(), torch.stack([expected[0].mean(), expected[1, :2].mean()]))


def test_copies_are_contiguous_rows_sharing_alpha():
    torch.manual_seed(1)
    batch, copies = 2, 3
    x = torch.randn(batch, 4, 5).repeat_interleave(copies, 0)  # [batch*K, tokens, hidden]
    eps = torch.randn_like(x)
    mean, std = torch.zeros(5), torch.ones(5)
    bottleneck = InformationBottleneck(mean, std, torch.ones(batch, 4))
    with torch.no_grad():
        bottleneck.alpha.copy_(torch.randn(batch, 4, 5))
        z = bottleneck(x, eps)
    lamb = torch.sigmoid(bottleneck.alpha.detach()).repeat_interleave(copies, 0)
    torch.testing.assert_close(z, lamb * x + (1 - lamb) * eps)


def test_sampling_log_variance_is_clamped_but_kl_is_not_and_stays_finite():
    x = torch.zeros(1, 1, 1)
    bottleneck = InformationBottleneck(torch.zeros(1), torch.ones(1), torch.ones(1, 1), initial_alpha=20.0)
    with torch.no_grad():
        z = bottleneck(x, eps=torch.ones_like(x))
    # unclamped noise std would be 1 - sigmoid(20) ~ 2e-9; the clamp at log-variance -10 makes it e^-5
    assert z.item() == pytest.approx(math.exp(-5), rel=1e-4)
    # the KL keeps the exact log-variance 2 log(1 - sigmoid(20)) ~ -40, finite even where float32 sigmoid(20) == 1
    assert bottleneck.kl.item() == pytest.approx(-0.5 * (1 - 40.0), rel=1e-4)


def test_padding_passes_through_and_gets_no_gradient():
    x = torch.randn(1, 3, 2)
    bottleneck = InformationBottleneck(torch.zeros(2), torch.ones(2), torch.tensor([[1, 1, 0]]))
    z = bottleneck(x, eps=torch.randn_like(x))
    assert torch.equal(z[0, 2], x[0, 2])
    (z.sum() + bottleneck.information_loss().sum()).backward()
    assert torch.all(bottleneck.alpha.grad[0, 2] == 0)
    assert torch.all(bottleneck.alpha.grad[0, :2] != 0)


def test_per_instance_statistics_broadcast_per_instance():
    torch.manual_seed(2)
    x = torch.randn(2, 3, 4).repeat_interleave(2, 0)
    mean = torch.randn(2, 3, 4)  # [batch, tokens, hidden], as the reference estimator gives
    std = torch.full((2, 3, 4), 0.5)
    bottleneck = InformationBottleneck(mean, std, torch.ones(2, 3))
    with torch.no_grad():
        z = bottleneck(x, eps=torch.zeros_like(x))
    lamb = torch.sigmoid(torch.tensor(5.0))
    expected = lamb * x + (1 - lamb) * mean.repeat_interleave(2, 0)
    torch.testing.assert_close(z, expected)


# ---- encoder ---------------------------------------------------------------------------------------


def tiny_models():
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, RobertaConfig, RobertaForSequenceClassification

    torch.manual_seed(0)
    return {
        "bert": make_tiny_bert(vocab_size=100, layers=3),
        "distilbert": DistilBertForSequenceClassification(
            DistilBertConfig(vocab_size=100, dim=32, n_layers=3, n_heads=4, hidden_dim=64)
        ).eval(),
        "roberta": RobertaForSequenceClassification(
            RobertaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64)
        ).eval(),
    }


@pytest.mark.parametrize("name", ["bert", "distilbert", "roberta"])
def test_suffix_from_cached_states_equals_full_forward(name):
    model = tiny_models()[name]
    ids, mask = padded_batch()
    layers_before = find_encoder(model).layers
    with torch.no_grad():
        states, logits = capture_hidden_states(model, ids, mask)
        reference = full_forward(model, ids, mask)
        assert len(states) == find_encoder(model).num_layers + 1
        for layer in range(find_encoder(model).num_layers):
            out = run_from_layer(model, layer, states[layer + 1], ids, mask)
            torch.testing.assert_close(out, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(logits, reference)
    assert find_encoder(model).layers is layers_before


def test_captured_states_follow_the_hidden_states_convention():
    model = make_tiny_bert(vocab_size=100)
    ids, mask = padded_batch()
    with torch.no_grad():
        states, _ = capture_hidden_states(model, ids, mask)
        expected = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    assert len(states) == len(expected)
    for ours, theirs in zip(states, expected):
        torch.testing.assert_close(ours, theirs)


def test_capture_can_stop_after_a_layer():
    model = make_tiny_bert(vocab_size=100)
    ids, mask = padded_batch()
    ran = []
    model.bert.encoder.layer[2].register_forward_hook(lambda *args: ran.append(2))
    with torch.no_grad():
        full, _ = capture_hidden_states(model, ids, mask)
        ran.clear()
        partial, logits = capture_hidden_states(model, ids, mask, upto=1)
    assert logits is None and ran == [], "layers above `upto` must not run"
    assert len(partial) == 3
    for ours, reference in zip(partial, full):
        torch.testing.assert_close(ours, reference)


def test_suffix_swap_is_undone_when_the_forward_fails():
    model = make_tiny_bert(vocab_size=100)
    embeddings, layers = model.bert.embeddings, model.bert.encoder.layer
    ids, mask = padded_batch()
    with pytest.raises(RuntimeError):
        run_from_layer(model, 1, torch.zeros(3, 7, 5), ids, mask)  # wrong hidden size
    assert model.bert.embeddings is embeddings and model.bert.encoder.layer is layers


def test_replace_after_layer_hook_is_removed():
    model = make_tiny_bert(vocab_size=100)
    ids, mask = padded_batch()
    with torch.no_grad():
        reference = full_forward(model, ids, mask)
        with replace_after_layer(model, 2, lambda x: torch.zeros_like(x)):
            changed = full_forward(model, ids, mask)
        after = full_forward(model, ids, mask)
    assert not torch.allclose(changed, reference)
    torch.testing.assert_close(after, reference)
    assert all(not layer._forward_hooks for layer in model.bert.encoder.layer)


def test_unrecognised_encoder_is_a_clear_error():
    class NoLayers(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(4, 2)

    with pytest.raises(LightningIBAError, match="cannot find the encoder layers of NoLayers"):
        find_encoder(NoLayers())


# ---- estimators ------------------------------------------------------------------------------------


def test_dataset_estimator_streams_exact_statistics_over_real_tokens():
    model = make_tiny_bert(vocab_size=100, layers=2)
    batches = [dict(zip(("input_ids", "attention_mask"), padded_batch(lengths=lengths, seed=s)))
               for s, lengths in enumerate([(7, 5, 3), (4, 6), (2,)])]
    estimator = DatasetEstimator().fit(model, batches, max_length=7)
    with torch.no_grad():
        outputs = [capture_hidden_states(model, b["input_ids"], b["attention_mask"])[0] for b in batches]
    for layer in range(2):
        real = torch.cat([o[layer + 1][b["attention_mask"].bool()] for o, b in zip(outputs, batches)]).double()
        torch.testing.assert_close(estimator.mean[layer], real.mean(0).float())
        torch.testing.assert_close(estimator.std[layer], real.std(0, unbiased=False).float())
    assert estimator.metadata["num_texts"] == 6
    assert estimator.metadata["num_tokens"] == 27
    assert estimator.metadata["max_length"] == 7


def test_dataset_estimator_floors_std_and_round_trips(tmp_path):
    estimator = DatasetEstimator(torch.zeros(2, 3), torch.ones(2, 3), {"model": "m", "num_texts": 4})
    model = make_tiny_bert(vocab_size=100, layers=1, hidden=8)
    ids = torch.full((2, 3), 7)  # identical tokens at identical positions: zero variance everywhere
    fitted = DatasetEstimator(min_std=1e-3).fit(model, [{"input_ids": ids, "attention_mask": torch.ones_like(ids)}])
    assert torch.all(fitted.std >= 1e-3)
    path = estimator.save(tmp_path / "stats.pt")
    loaded = DatasetEstimator.load(path)
    assert torch.equal(loaded.mean, estimator.mean) and torch.equal(loaded.std, estimator.std)
    assert loaded.metadata == {"model": "m", "num_texts": 4}


def _key(**changes) -> StatisticsKey:
    base = dict(model="sha256:0", num_layers=2, max_length=16, task="imdb", source="bundled", split="train", texts=2, seed=0)
    return StatisticsKey(**{**base, **changes})


TEXTS = ["a short text", "another, longer piece of text"]


def test_cached_statistics_are_fitted_once_and_reused_for_the_same_key(tmp_path, tokenizer, caplog):
    model = make_tiny_bert(layers=2)
    first = load_or_fit(model, _key(), TEXTS, tokenizer, tmp_path)
    assert statistics_file(tmp_path, _key()).is_file()
    again = load_or_fit(model, _key(), lambda: pytest.fail("texts were sampled although the statistics are cached"), tokenizer, tmp_path)
    assert torch.equal(first.mean, again.mean) and again.metadata["num_texts"] == 2 and again.metadata["max_length"] == 16


@pytest.mark.parametrize("change", [{"max_length": 32}, {"model": "sha256:1"}, {"texts": 1}, {"seed": 1}, {"split": "validation"}, {"task": "rte"}, {"source": "local"}])
def test_any_change_of_the_key_refits_and_says_so(tmp_path, tokenizer, caplog, change):
    model = make_tiny_bert(layers=2)
    load_or_fit(model, _key(), TEXTS, tokenizer, tmp_path)
    calls = []
    caplog.set_level("INFO", logger="lightning_iba.attribution")
    refit = load_or_fit(model, _key(**change), lambda: calls.append(1) or TEXTS[: change.get("texts", 2)], tokenizer, tmp_path)
    assert calls == [1], "statistics fitted for other settings were reused"
    name, value = next(iter(change.items()))
    assert any("no cached statistics match" in r.message and name in r.message for r in caplog.records)
    assert refit.metadata["key"][name] == value
    assert len(list(tmp_path.glob("iba_statistics-*.pt"))) == 2  # both fits kept, each under its own key


def test_a_statistics_file_with_another_key_inside_is_not_trusted(tmp_path, tokenizer):
    model = make_tiny_bert(layers=2)
    load_or_fit(model, _key(max_length=32), TEXTS, tokenizer, tmp_path)
    statistics_file(tmp_path, _key(max_length=32)).rename(statistics_file(tmp_path, _key()))  # renamed by hand
    calls = []
    load_or_fit(model, _key(), lambda: calls.append(1) or TEXTS, tokenizer, tmp_path)
    assert calls == [1]


@pytest.mark.parametrize("damage", ["text", "empty", "truncated", "foreign"])
def test_an_unreadable_statistics_file_is_refitted_over_with_one_log_line(tmp_path, tokenizer, caplog, damage):
    """The cache holds fits, not the user's data: a damaged or foreign file under a key's name is fitted again and replaced."""
    model = make_tiny_bert(layers=2)
    path = statistics_file(tmp_path, _key())
    if damage == "truncated":  # half a real statistics file
        load_or_fit(model, _key(), TEXTS, tokenizer, tmp_path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "foreign":  # a torch file, but not one of ours
        torch.save({"weights": torch.zeros(2)}, path)
    else:
        path.write_bytes(b"" if damage == "empty" else b"not a statistics file\n" * 3)
    with pytest.raises(LightningIBAError) as info:
        DatasetEstimator.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)  # one line, not torch's page of advice
    calls = []
    caplog.set_level("INFO", logger="lightning_iba.attribution")
    refit = load_or_fit(model, _key(), lambda: calls.append(1) or TEXTS, tokenizer, tmp_path)
    assert calls == [1] and refit.metadata["key"] == _key().as_dict()
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and str(path) in warned[0] and warned[0].endswith("; refitting, the new fit replaces it")
    assert torch.equal(DatasetEstimator.load(path).mean, refit.mean)  # replaced: the next run reads it
    again = load_or_fit(model, _key(), lambda: pytest.fail("the refitted statistics were not reused"), tokenizer, tmp_path)
    assert torch.equal(again.mean, refit.mean)


def test_load_or_fit_without_texts_is_a_clear_error(tmp_path, tokenizer):
    with pytest.raises(LightningIBAError, match="needs texts"):
        load_or_fit(make_tiny_bert(), _key(num_layers=4), [], tokenizer, tmp_path)


def test_statistics_for_another_model_shape_are_rejected():
    estimator = DatasetEstimator(torch.zeros(2, 8), torch.ones(2, 8))
    with pytest.raises(LightningIBAError, match="2 layers x 8 hidden"):
        estimator.statistics(0, torch.zeros(1, 3, 32), torch.zeros(1, 3, 32), torch.ones(1, 3))


def test_reference_estimator_uses_the_tensor_entering_the_layer():
    hidden_in, hidden_out = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    mean, std = ReferenceEstimator().statistics(1, hidden_in, hidden_out, torch.ones(2, 3))
    assert torch.equal(mean, hidden_in)
    assert torch.allclose(std, torch.full_like(hidden_in, math.sqrt(1e-5)))


def test_get_estimator_by_name_object_or_error():
    assert isinstance(get_estimator("dataset"), DatasetEstimator)
    assert isinstance(get_estimator("reference"), ReferenceEstimator)
    custom = ReferenceEstimator()
    assert get_estimator(custom) is custom
    with pytest.raises(LightningIBAError, match="unknown estimator 'median'; valid: dataset, reference"):
        get_estimator("median")
    with pytest.raises(LightningIBAError, match="statistics"):
        get_estimator(object())
