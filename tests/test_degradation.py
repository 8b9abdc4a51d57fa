"""Degradation test (SPEC §6) against a hand-built classifier whose probabilities we compute by hand."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lightning_iba.errors import LightningIBAError, UnknownNameError
from lightning_iba.data.tokens import SpecialTokens
from lightning_iba.evaluation.degradation import DegradationSettings, degradation_curve, degrade, fraction_grid, headline_index

PAD, CLS, SEP, MASK = 0, 1, 2, 3
SPECIAL = SpecialTokens(pad_id=PAD, mask_id=MASK, special_ids=(PAD, CLS, SEP, MASK))
VOCAB = 16
# Logit of class 1 = sum of W over attended tokens + sum of U over attended tokens of segment 1
# + V[token at position 1] (so closing up after a deletion matters).
W = torch.tensor([0.0, 0.1, -0.2, 0.7, 1.0, -0.5, 0.3, 2.0, -1.5, 0.25, 0.6, -0.8, 1.2, -0.3, 0.4, 0.9])
U = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.5, 0.2, -0.4, 0.1, 0.3, -0.6, 0.05, 0.15, -0.25, 0.35, 0.45, -0.55])
V = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.3, -0.7, 0.2, 0.0, 0.6, -0.1, 0.0, 0.4, 0.0, -0.2, 0.1, 0.0])


class BagModel(nn.Module):
    """Looks like an HF classifier (returns an object with .logits) and records what it is fed."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        self.calls.append((input_ids.clone(), attention_mask.clone(), None if token_type_ids is None else token_type_ids.clone()))
        m = attention_mask.float()
        types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        z = (W[input_ids] * m).sum(1) + (U[input_ids] * m * types.float()).sum(1) + V[input_ids[:, 1]] * m[:, 1]
        return SimpleNamespace(logits=torch.stack([torch.zeros_like(z), z], 1))


def hand_prob(tokens: list[int], types: list[int], target: int) -> float:
    z = sum(W[t].item() for t in tokens) + sum(U[t].item() for t, s in zip(tokens, types) if s == 1)
    z += V[tokens[1]].item() if len(tokens) > 1 else 0.0
    p1 = 1 / (1 + math.exp(-z))
    return p1 if target == 1 else 1 - p1


def hand_curve(ids, types, scores, target, fractions, mode, order, count="removable", keep=False):
    """Reference implementation in plain Python, one instance at a time."""
    real = [i for i, t in enumerate(ids) if t != PAD]
    removable = [i for i in real if ids[i] not in SPECIAL.special_ids]
    sign = -1 if order == "most" else 1
    ranked = sorted(removable, key=lambda i: (sign * scores[i], i))
    n = len(removable) if count == "removable" else len(real)
    out = []
    for f in fractions:
        k = min(round(f * n), len(removable))
        gone = set(ranked[k:] if keep else ranked[:k])
        if mode == "delete":
            kept = [i for i in real if i not in gone]
            toks, tys = [ids[i] for i in kept], [types[i] for i in kept]
        else:
            toks = [MASK if i in gone else ids[i] for i in real]
            tys = [types[i] for i in real]
        out.append(hand_prob(toks, tys, target))
    return out


def batch():
    """Three instances: a single text, a sentence pair (right-padded), a short text with ties."""
    rows = [
        ([CLS, 4, 5, 6, 7, 8, SEP, PAD, PAD, PAD], [0] * 10, [0.0, 0.9, 0.1, 0.5, 0.7, 0.3, 5.0, 9.0, 9.0, 9.0]),
        ([CLS, 9, 10, 11, SEP, 12, 13, 14, 15, SEP], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
         [9.0, 0.2, 0.8, 0.4, 9.0, 0.6, 0.1, 0.9, 0.3, 9.0]),
        ([CLS, 7, 8, 7, 4, SEP, PAD, PAD, PAD, PAD], [0] * 10, [0.0, 0.5, 0.5, 0.5, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ]
    ids = torch.tensor([r[0] for r in rows])
    types = torch.tensor([r[1] for r in rows])
    scores = torch.tensor([r[2] for r in rows])
    return ids, (ids != PAD).long(), types, scores


TARGET = torch.tensor([1, 0, 1])


@pytest.mark.parametrize("mode", ["delete", "mask"])
@pytest.mark.parametrize("order", ["most", "least"])
def test_curve_equals_hand_computed(mode, order):
    ids, mask, types, scores = batch()
    fractions = torch.tensor(DegradationSettings().grid)
    got = degradation_curve(BagModel(), ids, mask, TARGET, scores, SPECIAL, types, fractions, mode=mode, order=order)
    assert got.shape == (3, 10) and got.dtype == torch.float32
    for i in range(3):
        want = hand_curve(ids[i].tolist(), types[i].tolist(), scores[i].tolist(), int(TARGET[i]), fractions.tolist(), mode, order)
        assert got[i].tolist() == pytest.approx(want, abs=1e-6), (i, mode, order)
    assert not torch.allclose(got[:, 0], got[:, -1])  # the degradation really changes the input


@pytest.mark.parametrize("keep", [False, True])
def test_count_all_and_keep_variants_equal_hand_computed(keep):
    ids, mask, types, scores = batch()
    fractions = [0.0, 0.1, 0.25, 0.5, 0.75, 1.0]
    got = degradation_curve(BagModel(), ids, mask, TARGET, scores, SPECIAL, types, fractions, count="all", keep=keep)
    for i in range(3):
        want = hand_curve(ids[i].tolist(), types[i].tolist(), scores[i].tolist(), int(TARGET[i]), fractions, "delete", "most", "all", keep)
        assert got[i].tolist() == pytest.approx(want, abs=1e-6)


def test_step_zero_is_original_probability_and_full_removal_keeps_only_specials():
    ids, mask, types, scores = batch()
    new_ids, new_mask, new_types = degrade(ids, mask, scores, SPECIAL, types, [0.0, 1.0])
    # row 2*i is instance i untouched (re-padded to the new width), row 2*i+1 is everything removed
    assert new_ids[0].tolist() == ids[0, : new_ids.shape[1]].tolist()
    assert new_ids[1].tolist()[:2] == [CLS, SEP] and new_mask[1].tolist()[:3] == [1, 1, 0]
    assert new_ids[3].tolist()[:3] == [CLS, SEP, SEP] and new_types[3].tolist()[:3] == [0, 0, 1]
    assert new_ids[5].tolist()[:2] == [CLS, SEP]
    assert (new_ids[new_mask == 0] == PAD).all()  # padding stays padding
    model = BagModel()
    probs = degradation_curve(model, ids, mask, TARGET, scores, SPECIAL, types, [0.0])
    direct = model(ids, mask, types).logits.softmax(-1).gather(1, TARGET[:, None]).squeeze(1)
    assert torch.allclose(probs[:, 0], direct)


def test_mask_mode_never_masks_specials_or_padding():
    ids, mask, types, scores = batch()
    new_ids, new_mask, new_types = degrade(ids, mask, scores, SPECIAL, types, [1.0], mode="mask")
    assert torch.equal(new_mask, mask) and torch.equal(new_types, types)
    special = (ids == CLS) | (ids == SEP) | (ids == PAD)
    assert torch.equal(new_ids[special], ids[special])
    assert (new_ids[~special] == MASK).all()


def test_token_types_follow_their_tokens_when_deleting():
    ids, mask, types, scores = batch()
    # remove the two highest-scored tokens of the pair: 14 (0.9, segment 1) and 10 (0.8, segment 0)
    new_ids, new_mask, new_types = degrade(ids[1:2], mask[1:2], scores[1:2], SPECIAL, types[1:2], [0.25])
    assert new_ids[0].tolist() == [CLS, 9, 11, SEP, 12, 13, 15, SEP]
    assert new_types[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert new_mask[0].tolist() == [1] * 8


def test_ties_broken_by_position():
    ids, mask, types, _ = batch()
    flat = torch.zeros(ids.shape)
    for order in ("most", "least"):
        new_ids, _, _ = degrade(ids[:1], mask[:1], flat[:1], SPECIAL, None, [0.4], order=order)  # round(0.4*5)=2
        assert new_ids[0, :5].tolist() == [CLS, 6, 7, 8, SEP]  # the first two tokens go first


def test_variants_run_in_few_chunked_forward_passes():
    ids, mask, types, scores = batch()
    model = BagModel()
    degradation_curve(model, ids, mask, TARGET, scores, SPECIAL, types, batch_size=1000)
    assert len(model.calls) == 1 and model.calls[0][0].shape[0] == 30
    model = BagModel()
    chunked = degradation_curve(model, ids, mask, TARGET, scores, SPECIAL, types, batch_size=7)
    assert len(model.calls) == math.ceil(30 / 7)
    # chunks are trimmed to their own longest sequence, and chunking does not change the result
    assert all(bool(m[:, -1].any()) for _, m, _ in model.calls)
    whole = degradation_curve(BagModel(), ids, mask, TARGET, scores, SPECIAL, types, batch_size=1000)
    assert torch.allclose(chunked, whole)


def test_bad_input_raises_one_line_errors():
    ids, mask, types, scores = batch()
    with pytest.raises(UnknownNameError, match="valid: delete, mask"):
        degrade(ids, mask, scores, SPECIAL, types, mode="drop")
    with pytest.raises(UnknownNameError, match="valid: most, least"):
        degrade(ids, mask, scores, SPECIAL, types, order="best")
    with pytest.raises(LightningIBAError, match="finite"):
        degrade(ids, mask, scores.masked_fill(ids == 9, float("nan")), SPECIAL, types)
    with pytest.raises(LightningIBAError, match="fractions"):
        degrade(ids, mask, scores, SPECIAL, types, fractions=[0.0, 1.5])


def test_special_tokens_from_real_tokenizer(tokenizer):
    special = SpecialTokens.from_tokenizer(tokenizer)
    assert special.pad_id == tokenizer.pad_token_id and special.mask_id == tokenizer.mask_token_id
    assert tokenizer.cls_token_id in special.special_ids and tokenizer.sep_token_id in special.special_ids
    assert tokenizer.unk_token_id not in special.special_ids  # [UNK] stands for real text


def test_fraction_grid_and_headline():
    assert fraction_grid(10)[1] == pytest.approx(1 / 9) and len(fraction_grid(10)) == 10
    assert headline_index(fraction_grid(10), 0.11) == 1
    assert DegradationSettings().headline_name == "drop_11" and DegradationSettings().headline_step == 1
    assert DegradationSettings(fractions=[0.0, 0.05, 0.1, 1.0], headline=0.05).headline_step == 1
    with pytest.raises(LightningIBAError, match=r"headline fraction 0.11 is not on the fraction grid \[0, 0.5, 1\]"):
        DegradationSettings(fractions=3)
    for bad in (1, [0.5, 1.0], [0.0, 0.6, 0.4], [0.0, 1.5]):
        with pytest.raises(LightningIBAError, match="fractions must"):
            fraction_grid(bad)
    with pytest.raises(UnknownNameError, match="unknown token count 'some'"):
        DegradationSettings(count="some")


def test_drop_column_reads_the_headline_drop_back_from_a_table():
    from lightning_iba.evaluation.degradation import drop_column

    assert drop_column(["method", "drop_11_lo", "drop_11", "drop_11_hi"]) == "drop_11"
    assert drop_column(["method", "aopc"], required=False) is None
    with pytest.raises(LightningIBAError, match="no drop_<percent> column among method, aopc"):
        drop_column(["method", "aopc"])


def test_eraser_word_bins_remove_whole_words_ranked_by_their_aggregated_scores():
    from lightning_iba.evaluation.degradation import word_removal_masks

    # [CLS] w0 w0 w1 w2 w2 w2 w3 [SEP] [PAD]: w0 has two pieces, w2 three
    words = torch.tensor([[-1, 0, 0, 1, 2, 2, 2, 3, -1, -1]])
    removable = torch.tensor([[False, True, True, True, True, True, True, True, False, False]])
    scores = torch.tensor([[9.0, 0.1, 0.1, 0.5, 0.2, 0.2, 0.2, 0.3, 9.0, 9.0]])
    fractions = torch.tensor([0.01, 0.5, 0.75])  # of 4 words: ceil(0.04) = 1, ceil(2.0) = 2, ceil(3.0) = 3 words
    # sums: w0 0.2, w1 0.5, w2 0.6, w3 0.3 -> w2, w1, w3, w0
    removed = word_removal_masks(scores, words, removable, fractions)[0].int().tolist()
    assert removed == [[0, 0, 0, 0, 1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1, 1, 1, 0, 0]]
    # max: w0 0.1, w1 0.5, w2 0.2, w3 0.3 -> w1, w3, w2, w0 (the three-piece word no longer wins by its length)
    assert word_removal_masks(scores, words, removable, fractions, aggregation="max")[0, 0].int().tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    # sufficiency: keep the top word's pieces (and the special tokens), remove the others
    assert word_removal_masks(scores, words, removable, fractions[:1], keep=True)[0, 0].int().tolist() == [0, 1, 1, 1, 0, 0, 0, 1, 0, 0]
    # ties go to the earlier word; 10 % of 30 words is 3 words, although 0.1 * 30 = 3.0000000000000004 in floating point
    flat = word_removal_masks(torch.zeros(1, 32), torch.tensor([[-1, *range(30), -1]]), torch.tensor([[False] + [True] * 30 + [False]]), torch.tensor([0.1]))
    assert flat[0, 0].nonzero().flatten().tolist() == [1, 2, 3]


def test_masked_curve_of_word_bins_equals_hand_computed():
    from lightning_iba.evaluation.degradation import masked_curve, word_removal_masks

    ids, mask, types, scores = batch()
    ids, mask, types = ids[:1], mask[:1], types[:1]  # [CLS] 4 5 6 7 8 [SEP] pad pad pad
    scores = torch.tensor([[0.0, 0.5, 0.5, 0.5, 0.75, 0.25, 5.0, 9.0, 9.0, 9.0]])  # exact in binary: the tie below is a tie
    words = torch.tensor([[-1, 0, 0, 1, 2, 2, -1, -1, -1, -1]])  # three words: (4 5), (6), (7 8)
    removable = SPECIAL.removable(ids, mask)
    fractions = torch.tensor([0.2, 0.5])  # of 3 words: 1, 2; sums: (4 5) 1.0, (6) 0.5, (7 8) 1.0 -> (4 5) first (earlier)
    for keep, kept in ((False, [[CLS, 6, 7, 8, SEP], [CLS, 6, SEP]]), (True, [[CLS, 4, 5, SEP], [CLS, 4, 5, 7, 8, SEP]])):
        got = masked_curve(BagModel(), ids, mask, TARGET[:1], word_removal_masks(scores, words, removable, fractions, keep), SPECIAL, types)
        assert got[0].tolist() == pytest.approx([hand_prob(k, [0] * len(k), 1) for k in kept], abs=1e-6), keep
