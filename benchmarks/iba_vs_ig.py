"""Where IBA beats Integrated Gradients and where it does not: the 11 % drop of IBA at several layers
against IG towards the gold class (what this project does) and IG towards one fixed class for every
instance (what the published code does, SPEC §5), at a chosen sequence length.

Runs on the validation split by default, so that a layer or length chosen from it is not chosen on
the test set. Prints one JSON object: drop at 11 % per method, seconds per instance, and the
mean original probability.

    python benchmarks/iba_vs_ig.py --checkpoint runs/demo/model --n 32 --max-length 256
    python benchmarks/iba_vs_ig.py --methods ig:gold,ig:0,ig:1 --max-length 128
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_iba.attribution.registry import build_attributor  # noqa: E402
from lightning_iba.cli.common import load_estimator, load_model_for_task  # noqa: E402
from lightning_iba.cli.evaluate import parse as evaluation_settings  # noqa: E402
from lightning_iba.data.sources import load_splits  # noqa: E402
from lightning_iba.data.tokens import SpecialTokens  # noqa: E402
from lightning_iba.evaluation.degradation import degradation_curve  # noqa: E402
from lightning_iba.evaluation.run import select_indices  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="runs/demo/model")
    p.add_argument("--dataset", default=None, help="default: the checkpoint's task")
    p.add_argument("--source", default="bundled")
    p.add_argument("--split", default="validation")
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--methods", default="ig:gold,ig:0,ig:1,iba:2,iba:3,iba:4",
                   help="ig:gold | ig:CLASS (fixed target) | iba:LAYER | lime | random")
    p.add_argument("--beta", type=float, default=1e-5)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def build(spec: str, model, tokenizer, estimator, args: argparse.Namespace, config):
    """(attributor, fixed target class or None) for one `--methods` entry; options from configs/evaluate/base.yaml."""
    name, _, arg = spec.partition(":")
    if name == "ig":
        return build_attributor("ig", model, tokenizer, **config.options["ig"]), None if arg in ("", "gold") else int(arg)
    if name == "iba":
        options = {**config.iba, "layer": int(arg), "beta": args.beta, "estimator": estimator, "batch_size": args.batch_size, "seed": args.seed}
        return build_attributor("iba", model, tokenizer, **options), None
    options = {"lime": {**config.options["lime"], "seed": args.seed}, "random": {"seed": args.seed}}.get(name, config.options.get(name, {}))
    return build_attributor(name, model, tokenizer, **options), None


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    loaded, task = load_model_for_task(args.checkpoint, args.dataset)
    model, tokenizer = loaded.model, loaded.tokenizer
    config = evaluation_settings([])
    grid, step, headline = config.degradation.grid, config.degradation.headline_step, config.degradation.headline_name
    splits = load_splits(task, args.source)
    rows = splits[args.split].select(select_indices(len(splits[args.split]), args.n, args.seed))
    methods = args.methods.split(",")
    estimator = None
    if any(m.startswith("iba") for m in methods):
        estimator = load_estimator(config.estimator, loaded, task, args.source, None, args.max_length)
    special = SpecialTokens.from_tokenizer(tokenizer)
    attributors = {m: build(m, model, tokenizer, estimator, args, config) for m in methods}
    original, degraded, seconds = [], {m: [] for m in methods}, dict.fromkeys(methods, 0.0)
    for start in range(0, len(rows), args.batch_size):
        batch = rows[start : start + args.batch_size]
        pairs = batch.get("text_pair")
        enc = tokenizer(batch["text"], pairs, truncation=True, max_length=args.max_length, padding=True,
                        return_tensors="pt", return_token_type_ids=True)
        gold = torch.tensor(batch["label"])
        with torch.no_grad():
            original += model(**enc).logits.softmax(-1).gather(1, gold[:, None]).squeeze(1).tolist()
        for m, (attributor, fixed) in attributors.items():
            target = gold if fixed is None else torch.full_like(gold, fixed)
            t0 = time.perf_counter()
            scores = attributor.attribute(enc["input_ids"], enc["attention_mask"], target, enc["token_type_ids"])
            seconds[m] += time.perf_counter() - t0
            # p(gold | headline fraction removed): always the gold class, whatever the method explained
            curve = degradation_curve(model, enc["input_ids"], enc["attention_mask"], gold, scores, special, enc["token_type_ids"], grid)
            degraded[m] += curve[:, step].tolist()
    o = sum(original) / len(original)
    result = {
        "checkpoint": args.checkpoint, "split": args.split, "n": len(original), "max_length": args.max_length,
        "beta": args.beta, "original_prob": round(o, 4),
        headline: {m: round(o - sum(v) / len(v), 4) for m, v in degraded.items()},
        "attribution_s_per_instance": {m: round(s / len(original), 3) for m, s in seconds.items()},
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
