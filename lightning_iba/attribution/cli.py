"""`attribute.py`: IBA scores for one text (or one dataset instance), printed and saved as JSON, HTML and PNG."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from jsonargparse import ActionConfigFile, ArgumentParser

from lightning_iba.errors import LightningIBAError, exit_on_user_error
from lightning_iba.evaluation.settings import parse_betas
from lightning_iba.finetune import setup_logging
from lightning_iba.models.loading import default_checkpoint, load_finetuned

log = logging.getLogger("lightning_iba.attribution")


def default_layer(num_layers: int) -> int:
    """The paper's relative depth: index 8 of BERT-base's 12 layers, index 3 of a 6-layer MiniLM."""
    return max(0, num_layers * 3 // 4 - 1)


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="attribute.py", description="Explain one prediction with an information bottleneck (SPEC §1-2).")
    p.add_argument("--config", action=ActionConfigFile, help="YAML with any of these keys (configs/attribute/)")
    p.add_argument("--checkpoint", type=str | None, default=None, help="fine-tuned model folder (default: runs/demo/model, else runs/imdb/model)")
    p.add_argument("--text", type=str | None, default=None, help="the text to explain")
    p.add_argument("--text-pair", type=str | None, default=None, help="second segment, for sentence-pair tasks")
    p.add_argument("--dataset", type=str | None, default=None, help="take the instance from a dataset instead of --text")
    p.add_argument("--index", type=int, default=0, help="position of the instance in --split")
    p.add_argument("--split", type=str, default="test")
    p.add_argument("--source", type=str, default="auto", help="hub | local | bundled | auto")
    p.add_argument("--data-dir", type=str | None, default=None)
    p.add_argument("--target", type=str | None, default=None, help="class to explain, name or index (default: the gold label, else the prediction)")
    p.add_argument("--layer", type=int | None, default=None, help="encoder layer index after which the bottleneck sits (default: 8 of 12, 3 of 6)")
    p.add_argument("--layers", type=str | None, default=None, help="'all' or a comma-separated list: one row per layer (Figure 3)")
    p.add_argument("--beta", type=str, default="1e-5", help="one value, or several comma-separated for one row per beta (Figure 5)")
    p.add_argument("--estimator", type=str, default="dataset", help="dataset | reference")
    p.add_argument("--estimator-texts", type=int, default=1000, help="training texts the dataset estimator is fitted on (once, cached)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--lr", type=float, default=1.0)
    p.add_argument("--samples", type=int, default=10, help="noisy copies per optimisation step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-length", type=int | None, default=None, help="default: the checkpoint's fine-tuning max_length, else 512")
    p.add_argument("--out", type=str, default="runs/attribute")
    return p


def _layers(spec: str | None, single: int | None, num_layers: int) -> list[int]:
    if spec is None:
        return [default_layer(num_layers) if single is None else single]
    if spec == "all":
        return list(range(num_layers))
    try:
        return [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise LightningIBAError(f"--layers must be 'all' or comma-separated layer indices, got {spec!r}") from None


def _target(spec: str | None, model, fallback: int) -> int:
    if spec is None:
        return fallback
    names = {v: int(k) for k, v in model.config.id2label.items()}
    if spec in names:
        return names[spec]
    n = model.config.num_labels
    if spec.lstrip("-").isdigit() and 0 <= int(spec) < n:
        return int(spec)
    raise LightningIBAError(f"target {spec!r} is not a label of this model; valid: {', '.join(f'{i} ({model.config.id2label[i]})' for i in range(n))}")


def _instance(args, task: str | None) -> tuple[str, str | None, int | None]:
    """(text, text_pair, gold label or None) from --text or from --dataset/--index."""
    if args.dataset is None:
        if args.text is None:
            raise LightningIBAError("give --text (and --text-pair for pair tasks) or --dataset with --index")
        if not args.text.strip() or (args.text_pair is not None and not args.text_pair.strip()):
            raise LightningIBAError("the text to explain is empty")
        return args.text, args.text_pair, None
    from lightning_iba.data.sources import load_splits

    splits = load_splits(args.dataset, args.source, args.data_dir)
    if args.split not in splits:
        raise LightningIBAError(f"dataset {args.dataset} has no split {args.split!r}; valid: {', '.join(splits)}")
    split = splits[args.split]
    if not 0 <= args.index < len(split):
        raise LightningIBAError(f"--index {args.index} is outside 0..{len(split) - 1} of {args.dataset} {args.split}")
    row = split[args.index]
    return row["text"], row.get("text_pair"), int(row["label"])


def _estimator(args, model, tokenizer, task: str | None, max_length: int):
    """The estimator object; the dataset one is fitted once on training texts and cached with the checkpoint."""
    from lightning_iba.attribution.estimators import get_estimator, load_or_fit

    if args.estimator != "dataset":
        return get_estimator(args.estimator)

    def training_texts() -> list:  # only called when the statistics are not cached yet
        from lightning_iba.data.sources import load_splits, sample_texts

        name = args.dataset or task
        if name is None:
            raise LightningIBAError("the dataset estimator needs training texts: pass --dataset, or use --estimator reference")
        texts = sample_texts(load_splits(name, args.source, args.data_dir)["train"], args.estimator_texts, seed=0)
        log.info("attribute: fitting the dataset estimator on %d %s training texts (cached in %s)", len(texts), name, args.checkpoint)
        return texts

    return load_or_fit(model, training_texts, tokenizer, max_length=max_length, model_dir=args.checkpoint)


def explain(args) -> dict[str, Any]:
    """Runs IBA per the arguments and writes the outputs; returns what attribution.json holds."""
    from lightning_iba.attribution.optimizer import BottleneckOptimizer
    from lightning_iba.viz.heatmap import save_heatmap
    from lightning_iba.viz.html import save_html_examples
    from lightning_iba.viz.terminal import render_terminal

    if args.checkpoint is None:
        args.checkpoint = str(default_checkpoint())
    model, tokenizer, task = load_finetuned(args.checkpoint)
    text, pair, gold = _instance(args, task)
    max_length = args.max_length or int(getattr(model.config, "lightning_iba_max_length", None) or 512)
    full = tokenizer(text, pair, truncation=False)["input_ids"]
    if len(full) > max_length:
        log.warning("attribute: the text has %d tokens; truncated to max_length %d", len(full), max_length)
    enc = tokenizer(text, pair, truncation=True, max_length=max_length, return_tensors="pt", return_token_type_ids=True)
    with torch.no_grad():
        probs = model(**enc).logits.softmax(-1)[0]
    predicted = int(probs.argmax())
    target = _target(args.target, model, gold if gold is not None else predicted)

    num_layers = model.config.num_hidden_layers
    layers, betas = _layers(args.layers, args.layer, num_layers), parse_betas(args.beta, "--beta")
    if len(layers) > 1 and len(betas) > 1:
        raise LightningIBAError("give several layers (--layers) or several betas (--beta), not both")
    estimator = _estimator(args, model, tokenizer, task, max_length)
    iba = lambda layer, beta: BottleneckOptimizer(model, layer=layer, beta=beta, steps=args.steps, lr=args.lr, samples=args.samples, estimator=estimator, seed=args.seed)  # noqa: E731
    y = torch.tensor([target])
    if len(betas) > 1:
        rows = [iba(layers[0], b).attribute(enc["input_ids"], enc["attention_mask"], y, enc["token_type_ids"])[0] for b in betas]
        labels, ylabel = [f"beta {b:g}" for b in betas], "beta"
    else:
        scores = iba(layers[0], betas[0]).attribute_layers(enc["input_ids"], enc["attention_mask"], y, enc["token_type_ids"], layers=layers)
        rows = list(scores[:, 0])
        labels, ylabel = [f"layer {l}" for l in layers], "layer"
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist())
    scores = torch.stack(rows).cpu()  # [rows, tokens]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    label_name = model.config.id2label[target]
    title = f"IBA towards '{label_name}' (p={probs[target]:.3f}, predicted '{model.config.id2label[predicted]}')"
    result = {
        "checkpoint": str(args.checkpoint), "text": text, "text_pair": pair, "target": target, "target_name": label_name,
        "gold": gold, "predicted": predicted, "probabilities": [round(float(p), 6) for p in probs],
        "estimator": args.estimator, "layers": layers, "betas": betas, "rows": labels, "tokens": tokens,
        "scores": [[float(v) for v in row] for row in scores],
    }
    (out / "attribution.json").write_text(json.dumps(result, indent=2) + "\n")
    save_html_examples(out / "attribution.html", [(lab, tokens, row.numpy()) for lab, row in zip(labels, scores)], title)
    save_heatmap(out / "attribution.png", tokens, scores.numpy(), row_labels=labels, title=title, ylabel=ylabel)
    for lab, row in zip(labels, scores):
        print(render_terminal(tokens, row.numpy(), title=f"{title} - {lab}"))
    for name in ("attribution.json", "attribution.html", "attribution.png"):
        print(f"wrote {out / name}")
    return result


@exit_on_user_error
def main(args: list[str] | None = None) -> dict[str, Any]:
    setup_logging()
    return explain(parser().parse_args(args))
