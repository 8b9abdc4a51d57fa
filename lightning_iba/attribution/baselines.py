"""Baseline attribution methods the paper compares IBA with (SPEC §5), plus a few extras.

Every class wraps a frozen, eval-mode HF sequence classifier, runs on the model's device, batches
its forward passes, and returns float32 [batch, tokens] scores (higher = more important for the
target class), exactly 0 at padding, on the input's device.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Literal, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from lightning_iba.attribution.base import Attributor, instance_seed, mask_padding
from lightning_iba.data.tokens import SpecialTokens, remove_tokens
from lightning_iba.errors import LightningIBAError, check_choice
from lightning_iba.models.utils import freeze, model_device, predict_proba

Output = Literal["prob", "logit"]
OUTPUTS = ("prob", "logit")


def _forward_kwargs(input_ids: Tensor | None, attention_mask: Tensor, token_type_ids: Tensor | None, **extra) -> dict:
    kwargs = {"attention_mask": attention_mask, **extra}
    if input_ids is not None:
        kwargs["input_ids"] = input_ids
    if token_type_ids is not None:  # some models (DistilBERT) take no token types
        kwargs["token_type_ids"] = token_type_ids
    return kwargs


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, max(1, size)):
        yield slice(start, start + size)


def _select(logits: Tensor, target: Tensor, output: str) -> Tensor:  # [batch]
    out = logits.float().softmax(-1) if output == "prob" else logits.float()
    return out.gather(1, target.long()[:, None]).squeeze(1)


class _ModelAttributor(Attributor):
    """Shared plumbing: a frozen model, its device, moving a batch there."""

    def __init__(self, model: nn.Module, batch_size: int = 64):
        self.model = freeze(model)
        self.batch_size = int(batch_size)

    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    def _to_device(self, *tensors: Tensor | None) -> list[Tensor | None]:
        return [None if t is None else t.to(self.device) for t in tensors]


# --------------------------------------------------------------------------- Integrated Gradients


class IntegratedGradients(_ModelAttributor):
    """Integrated Gradients on the word embeddings (Captum's LayerIntegratedGradients).

    Baseline: every removable token replaced by [PAD], with [CLS]/[SEP] (all special tokens) and
    padding kept. Attributes `output` ("prob": the target class's softmax probability, default, the
    quantity the degradation test measures; or "logit") and sums over the hidden dimension, so
    sum_t score_t ~= F(x) - F(baseline) (completeness). The whole batch x n_steps goes through
    Captum, chunked by `internal_batch_size` rows.
    """

    name = "ig"

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        n_steps: int = 10,
        internal_batch_size: int | None = 128,
        output: Output = "prob",
        method: str = "gausslegendre",
    ):
        super().__init__(model)
        check_choice("attribution output", output, OUTPUTS)
        self.special = SpecialTokens.from_tokenizer(tokenizer)
        self.n_steps, self.internal_batch_size, self.output, self.method = int(n_steps), internal_batch_size, output, method

    def baseline(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:  # [batch, tokens]
        """Input ids of the IG baseline: [PAD] everywhere except special tokens and padding."""
        return input_ids.masked_fill(self.special.removable(input_ids, attention_mask), self.special.pad_id)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """The function IG integrates: [batch, classes] probabilities (or logits)."""
        logits = self.model(**_forward_kwargs(input_ids, attention_mask, token_type_ids)).logits
        return logits.float().softmax(-1) if self.output == "prob" else logits.float()

    def attribute(self, input_ids, attention_mask, target, token_type_ids=None):
        from captum.attr import LayerIntegratedGradients

        ids, mask, types, tgt = self._to_device(input_ids, attention_mask, token_type_ids, target)
        lig = LayerIntegratedGradients(self.forward, self.model.get_input_embeddings())
        with torch.enable_grad():
            attr = lig.attribute(
                ids,
                baselines=self.baseline(ids, mask),
                target=tgt.long(),
                additional_forward_args=(mask, types),
                n_steps=self.n_steps,
                method=self.method,
                internal_batch_size=self.internal_batch_size,
            )  # [B, T, H]
        return mask_padding(attr.detach().sum(-1), mask).to(input_ids.device)


# --------------------------------------------------------------------------- gradient x input


class GradientXInput(_ModelAttributor):
    """Gradient of the target logit (or probability) w.r.t. the input embeddings, times them."""

    name = "gradxinput"

    def __init__(self, model: nn.Module, tokenizer=None, output: Output = "logit", batch_size: int = 64):
        super().__init__(model, batch_size)
        check_choice("attribution output", output, OUTPUTS)
        self.output = output

    def attribute(self, input_ids, attention_mask, target, token_type_ids=None):
        ids, mask, types, tgt = self._to_device(input_ids, attention_mask, token_type_ids, target)
        embed = self.model.get_input_embeddings()
        parts = []
        for rows in _chunks(ids.shape[0], self.batch_size):
            with torch.enable_grad():
                emb = embed(ids[rows]).detach().requires_grad_(True)  # [b, T, H]
                sub_types = None if types is None else types[rows]
                logits = self.model(**_forward_kwargs(None, mask[rows], sub_types, inputs_embeds=emb)).logits
                (grad,) = torch.autograd.grad(_select(logits, tgt[rows], self.output).sum(), emb)
            parts.append((grad * emb).detach().sum(-1))  # [b, T]
        return mask_padding(torch.cat(parts), mask).to(input_ids.device)


# --------------------------------------------------------------------------- occlusion


class Occlusion(_ModelAttributor):
    """Leave-one-out: score_t = p(y|x) - p(y|x without token t).

    mode "delete" (default) removes the token and closes up, like the degradation test; "mask"
    replaces it by [MASK], "pad" by [PAD] (still attended). Special tokens score 0. All variants
    of the batch (one per removable token) run in length-sorted chunks of `batch_size`.
    """

    name = "occlusion"
    MODES = ("delete", "mask", "pad")

    def __init__(self, model: nn.Module, tokenizer, mode: str = "delete", batch_size: int = 64):
        super().__init__(model, batch_size)
        check_choice("occlusion mode", mode, self.MODES)
        self.special = SpecialTokens.from_tokenizer(tokenizer)
        self.mode = mode

    def attribute(self, input_ids, attention_mask, target, token_type_ids=None):
        ids, mask, types, tgt = self._to_device(input_ids, attention_mask, token_type_ids, target)
        tgt = tgt.long()
        removable = self.special.removable(ids, mask)  # [B, T]
        rows, cols = removable.nonzero(as_tuple=True)  # [V] one variant per removable token
        remove = torch.zeros(rows.numel(), ids.shape[1], dtype=torch.bool, device=ids.device)
        remove[torch.arange(rows.numel(), device=ids.device), cols] = True
        mode, fill = ("mask", self.special.pad_id) if self.mode == "pad" else (self.mode, self.special.mask_id)
        v_ids, v_mask, v_types = remove_tokens(
            ids[rows], mask[rows], None if types is None else types[rows], remove, mode, self.special.pad_id, fill
        )
        p_orig = predict_proba(self.model, ids, mask, types, self.batch_size).gather(1, tgt[:, None]).squeeze(1)
        scores = torch.zeros(ids.shape, dtype=torch.float32, device=ids.device)
        if rows.numel():
            p_var = predict_proba(self.model, v_ids, v_mask, v_types, self.batch_size).gather(1, tgt[rows][:, None]).squeeze(1)
            scores[rows, cols] = p_orig[rows] - p_var
        return mask_padding(scores, mask).to(input_ids.device)


# --------------------------------------------------------------------------- LIME


def word_pieces_to_words(tokens: Sequence[str], removable: Sequence[bool], continuation_prefix: str | None = "##") -> list[int]:
    """Word index of each token (-1 for special tokens and padding), grouping word pieces.

    WordPiece (`continuation_prefix="##"`): a piece starting with "##" continues the previous word,
    which reproduces a fast BERT tokenizer's `word_ids()` (its pre-tokenizer splits on whitespace
    and punctuation). With `continuation_prefix=None` (byte-level BPE / SentencePiece) a token that
    starts with "Ġ" or "▁" starts a new word and any other token continues the previous one.
    """
    words, word, previous_is_word = [], -1, False
    for token, ok in zip(tokens, removable):
        if not ok:
            words.append(-1)
            previous_is_word = False
            continue
        if continuation_prefix:
            continues = token.startswith(continuation_prefix)
        else:
            continues = not token.startswith(("Ġ", "▁"))
        if not (previous_is_word and continues):
            word += 1
        words.append(word)
        previous_is_word = True
    return words


def _continuation_prefix(tokenizer) -> str | None:
    """'##' for WordPiece (also the guess when there is no fast backend), None for BPE/Unigram."""
    model = getattr(getattr(tokenizer, "backend_tokenizer", None), "model", None)
    if model is None:
        return "##"
    return getattr(model, "continuing_subword_prefix", None) or None


class Lime(_ModelAttributor):
    """LIME (the `lime` package's LimeTextExplainer) over words, weights copied onto word pieces.

    Words are rebuilt from the word pieces (see `word_pieces_to_words`) and shown to LIME as
    unique placeholders "w0 w1 ...", so each word *position* is one feature and nothing is lost to
    decoding and re-tokenising. A perturbed sample drops words: their pieces are deleted and the
    sequence closes up (`mode="delete"`, LIME's own text behaviour) or replaced by [MASK]. Special
    tokens are always kept. Sentence pairs: the words of both segments are features, [SEP] and the
    token types stay aligned. Each instance gets its own explainer seeded with `seed`; the
    `num_samples` perturbed inputs of an instance go through the model in chunks of `batch_size`.
    The linear model is LIME's default (weighted Ridge) on all words (feature_selection="none").
    """

    name = "lime"

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        num_samples: int = 100,
        seed: int = 0,
        batch_size: int = 64,
        mode: str = "delete",
        kernel_width: float = 25.0,
    ):
        super().__init__(model, batch_size)
        check_choice("lime mode", mode, ("delete", "mask"))
        if num_samples < 2:
            raise LightningIBAError(f"lime needs num_samples >= 2, got {num_samples}")
        self.tokenizer, self.special = tokenizer, SpecialTokens.from_tokenizer(tokenizer)
        self.prefix = _continuation_prefix(tokenizer)
        self.num_samples, self.seed, self.mode, self.kernel_width = int(num_samples), int(seed), mode, float(kernel_width)

    def attribute(self, input_ids, attention_mask, target, token_type_ids=None):
        ids, mask, types, tgt = self._to_device(input_ids, attention_mask, token_type_ids, target)
        removable = self.special.removable(ids, mask).cpu()
        scores = torch.zeros(ids.shape, dtype=torch.float32)
        for i in range(ids.shape[0]):  # LIME fits one linear model per instance
            tokens = self.tokenizer.convert_ids_to_tokens(ids[i].tolist())
            words = torch.tensor(word_pieces_to_words(tokens, removable[i].tolist(), self.prefix))  # [T]
            if int(words.max()) < 0:
                continue
            row_types = None if types is None else types[i]
            weights = self._explain(ids[i], mask[i], row_types, int(tgt[i]), words)  # [n_words]
            scores[i] = torch.where(words >= 0, weights[words.clamp(min=0)], torch.zeros(()))
        return mask_padding(scores, attention_mask.cpu()).to(input_ids.device)

    def _explain(self, ids: Tensor, mask: Tensor, types: Tensor | None, target: int, words: Tensor) -> Tensor:
        from lime.lime_text import LimeTextExplainer
        n_words = int(words.max()) + 1
        word_of_token = words.to(ids.device)  # [T]

        def classifier_fn(texts: list[str]) -> np.ndarray:  # [samples, classes]
            keep = torch.zeros(len(texts), n_words, dtype=torch.bool)  # [S, W]
            for r, text in enumerate(texts):
                kept = [int(w[1:]) for w in text.split()]
                keep[r, kept] = True
            keep = keep.to(ids.device)
            remove = (word_of_token >= 0) & ~keep[:, word_of_token.clamp(min=0)]  # [S, T]
            n = len(texts)
            rep = lambda t: None if t is None else t.expand(n, -1)  # noqa: E731
            v = remove_tokens(rep(ids), rep(mask), rep(types), remove, self.mode, self.special.pad_id, self.special.mask_id)
            return predict_proba(self.model, *v, batch_size=self.batch_size).cpu().double().numpy()

        explainer = LimeTextExplainer(
            kernel_width=self.kernel_width,
            split_expression=r"\s+",
            bow=True,  # placeholders are unique, so bag-of-words == positions
            feature_selection="none",
            random_state=self.seed,
        )
        text = " ".join(f"w{j}" for j in range(n_words))
        exp = explainer.explain_instance(
            text, classifier_fn, labels=(target,), num_features=n_words, num_samples=self.num_samples
        )
        weights = torch.zeros(n_words, dtype=torch.float32)
        indexed = exp.domain_mapper.indexed_string
        for feature, weight in exp.local_exp[target]:
            weights[int(indexed.word(feature)[1:])] = float(weight)
        return weights


# --------------------------------------------------------------------------- random and attention


class RandomScores(Attributor):
    """Uniform random scores in [0, 1), seeded per instance (base seed + its token ids), so that the
    same instance gets the same scores whatever batch, order or device it is processed in."""

    name = "random"

    def __init__(self, model: nn.Module | None = None, tokenizer=None, seed: int = 0):
        self.seed = int(seed)

    def attribute(self, input_ids, attention_mask, target, token_type_ids=None):
        mask = attention_mask.cpu().bool()
        rows = [
            torch.rand(input_ids.shape[1], generator=torch.Generator().manual_seed(instance_seed(self.seed, ids[m])))
            for ids, m in zip(input_ids.cpu(), mask)
        ]
        scores = torch.stack(rows) if rows else torch.zeros(input_ids.shape)  # [B, T], drawn on CPU
        return mask_padding(scores, attention_mask.cpu()).to(input_ids.device)


@contextlib.contextmanager
def _eager_attention(model: nn.Module) -> Iterator[None]:
    """Temporarily switch to eager attention: SDPA cannot return attention weights."""
    config = getattr(model, "config", None)
    previous = getattr(config, "_attn_implementation", None)
    switch = hasattr(model, "set_attn_implementation") and previous not in (None, "eager")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(previous)


class AttentionScores(_ModelAttributor):
    """Attention paid by [CLS] (position 0) to each token in one layer (default: the last),
    averaged over heads."""

    name = "attention"

    def __init__(self, model: nn.Module, tokenizer=None, layer: int = -1, batch_size: int = 64):
        super().__init__(model, batch_size)
        self.layer = int(layer)

    @torch.no_grad()
    def attribute(self, input_ids, attention_mask, target, token_type_ids=None):
        ids, mask, types = self._to_device(input_ids, attention_mask, token_type_ids)
        parts = []
        with _eager_attention(self.model):
            for rows in _chunks(ids.shape[0], self.batch_size):
                sub_types = None if types is None else types[rows]
                out = self.model(**_forward_kwargs(ids[rows], mask[rows], sub_types, output_attentions=True))
                if not out.attentions:
                    raise LightningIBAError("this model returns no attention weights; 'attention' cannot explain it")
                parts.append(out.attentions[self.layer][:, :, 0, :].float().mean(1))  # [b, T]
        return mask_padding(torch.cat(parts), mask).to(input_ids.device)
