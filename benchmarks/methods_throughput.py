"""Throughput of every attribution method with the degradation test included, as `evaluate.py` runs them.

For each method: seconds to attribute N instances in batches, seconds for the degradation curves
(remove and keep variants), and instances/s of the two together; plus the 11 % drop, so the
speed figures come with the result they buy. Prints one JSON object.

    python benchmarks/methods_throughput.py                        # the demo model, CPU, 32 bundled reviews
    python benchmarks/methods_throughput.py --device cuda --random-bert-base --max-length 512 --n 256
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from iba_throughput import add_model_arguments, load_model, load_texts, synchronize  # noqa: E402
from lightning_iba.attribution.registry import build_attributor  # noqa: E402
from lightning_iba.cli.evaluate import parse as evaluation_settings  # noqa: E402
from lightning_iba.data.tokens import SpecialTokens  # noqa: E402
from lightning_iba.evaluation.degradation import degradation_curve  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p)
    p.add_argument("--methods", default="iba,ig,lime,random,gradxinput,occlusion")
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--layer", type=int, default=3)
    p.add_argument("--estimator", choices=["reference", "dataset"], default="reference")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--precision", choices=["32", "bf16"], default="32")
    p.add_argument("--texts", choices=["bundled-imdb", "synthetic"], default="bundled-imdb")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    model, tokenizer, name = load_model(args)
    model.to(args.device)
    texts = load_texts(args.texts, args.n, args.seed, tokenizer)
    special = SpecialTokens.from_tokenizer(tokenizer)
    estimator = args.estimator
    if estimator == "dataset":
        from lightning_iba.attribution.estimators import DatasetEstimator

        estimator = DatasetEstimator().fit_texts(model, texts, tokenizer, max_length=args.max_length)
    config = evaluation_settings([])  # the method options, grid and headline fraction of configs/evaluate/base.yaml
    grid, step, headline = torch.tensor(config.degradation.grid), config.degradation.headline_step, config.degradation.headline_name
    options = {
        **config.options,
        "iba": {**config.iba, "layer": args.layer, "estimator": estimator, "batch_size": args.batch_size, "precision": args.precision, "seed": args.seed},
        "lime": {**config.options["lime"], "seed": args.seed},
        "random": {"seed": args.seed},
    }
    results = {}
    for method in args.methods.split(","):
        attributor = build_attributor(method, model, tokenizer, **options.get(method, {}))
        attr_s = degr_s = 0.0
        drops = []
        for start in range(0, len(texts), args.batch_size):
            enc = tokenizer(texts[start : start + args.batch_size], truncation=True, max_length=args.max_length, padding=True, return_tensors="pt", return_token_type_ids=True)
            enc = {k: v.to(args.device) for k, v in enc.items()}
            with torch.no_grad():
                target = model(**enc).logits.argmax(-1)
            synchronize(args.device)
            t0 = time.perf_counter()
            scores = attributor.attribute(enc["input_ids"], enc["attention_mask"], target, enc["token_type_ids"])
            synchronize(args.device)
            t1 = time.perf_counter()
            curve = degradation_curve(model, enc["input_ids"], enc["attention_mask"], target, scores, special, enc["token_type_ids"], grid)
            degradation_curve(model, enc["input_ids"], enc["attention_mask"], target, scores, special, enc["token_type_ids"], grid, keep=True)
            synchronize(args.device)
            attr_s, degr_s = attr_s + t1 - t0, degr_s + time.perf_counter() - t1
            drops.append(curve[:, 0] - curve[:, step])
        results[method] = {
            "attribution_s": round(attr_s, 2),
            "degradation_s": round(degr_s, 2),
            "instances_per_s": round(len(texts) / (attr_s + degr_s), 3),
            f"{headline}_vs_predicted": round(float(torch.cat(drops).mean()), 4),
        }
    report = {
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "model": name, "n": len(texts), "max_length": args.max_length, "batch_size": args.batch_size,
        "layer": args.layer, "estimator": args.estimator, "precision": args.precision, "methods": results,
    }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
