"""`attribute.py`: IBA scores for one text (or one dataset instance), printed and saved as JSON, HTML and PNG.

Settings come from `configs/attribute/base.yaml`, any `--config` YAML and flags; the IBA group
(`--iba.*`) is generated from BottleneckOptimizer's signature, the estimator group (`--estimator.*`)
is the one evaluate.py uses.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from jsonargparse import ActionConfigFile, ArgumentParser

from lightning_iba.attribution.optimizer import BottleneckOptimizer
from lightning_iba.cli.common import (
    IBA_SKIP,
    EstimatorSettings,
    base_config,
    check_writable,
    load_estimator,
    load_model_for_task,
    parse_betas,
    parse_layers,
    resolve_layer,
    resolve_max_length,
    setup_logging,
)
from lightning_iba.data.files_source import DataFiles
from lightning_iba.data.tasks import Task
from lightning_iba.errors import LightningIBAError, exit_on_user_error

log = logging.getLogger("lightning_iba.attribution")


@dataclass
class AttributeSettings:
    """What to explain and where the results go (the IBA and estimator settings are their own groups).

    Args:
        checkpoint: fine-tuned model folder (null: runs/demo/model, else runs/imdb/model).
        text: the text to explain.
        text_pair: its second segment, for sentence-pair tasks.
        index: explain instance `index` of `split` of the dataset instead of a text.
        dataset: task of the instance and of the estimator's texts (null: the checkpoint's task).
        allow_task_transfer: explain the model on a task other than the one it was fine-tuned on.
        split: split the instance comes from.
        source: data source: hub | local | bundled | files | disk | auto.
        data_dir: folder of the original files (source local), or a datasets.save_to_disk DatasetDict folder (source disk).
        files: for source files (and an estimator.source files): one file a split, as run_glue.py's --train_file ...
        target: class to explain, name or index (null: the gold label, else the prediction).
        layer: layer index after which the bottleneck sits (null: the paper's depth, 8 of 12, 3 of 6).
        layers: 'all' or a list of layer indices: one row per layer (Figure 3).
        betas: several betas, one row each (Figure 5); null: iba.beta alone.
        max_length: longer texts are truncated (null: the checkpoint's fine-tuning max_length).
        seed: seed of the bottleneck's noise.
        out: folder for attribution.json, .html and .png.
    """

    checkpoint: str | None = None
    text: str | None = None
    text_pair: str | None = None
    index: int | None = None
    dataset: str | None = None
    allow_task_transfer: bool = False
    split: str = "test"
    source: str = "auto"
    data_dir: str | None = None
    files: DataFiles = field(default_factory=DataFiles)
    target: str | None = None
    layer: int | None = None
    layers: str | list[int] | None = None
    betas: str | list[float] | None = None
    max_length: int | None = None
    seed: int = 0
    out: str = "runs/attribute"


def build_parser(with_base_config: bool = True) -> ArgumentParser:
    """The parser; `with_base_config=False` gives the code's own defaults (tests compare them to the YAML)."""
    p = ArgumentParser(prog="attribute.py", description="Explain one prediction with an information bottleneck (SPEC §1-2).",
                       default_config_files=base_config("attribute") if with_base_config else [])
    p.add_argument("--config", action=ActionConfigFile, help="YAML file(s) with any of these keys (configs/attribute/)")
    p.add_class_arguments(AttributeSettings, None)
    p.add_class_arguments(BottleneckOptimizer, "iba", skip=IBA_SKIP)
    p.add_class_arguments(EstimatorSettings, "estimator")
    return p


def parse(args: list[str] | None = None) -> tuple[AttributeSettings, dict[str, Any], EstimatorSettings]:
    cfg = build_parser().parse_args(args)
    top = {f.name: cfg[f.name] for f in fields(AttributeSettings) if f.name != "files"}
    settings = AttributeSettings(**top, files=DataFiles(**cfg.files.as_dict()))
    return settings, cfg.iba.as_dict(), EstimatorSettings(**cfg.estimator.as_dict())


def _target(spec: str | None, model, fallback: int) -> int:
    if spec is None:
        return fallback
    spec = str(spec)
    names = {v: int(k) for k, v in model.config.id2label.items()}
    if spec in names:
        return names[spec]
    n = model.config.num_labels
    if spec.lstrip("-").isdigit() and 0 <= int(spec) < n:
        return int(spec)
    raise LightningIBAError(f"target {spec!r} is not a label of this model; valid: {', '.join(f'{i} ({model.config.id2label[i]})' for i in range(n))}")


def _instance(s: AttributeSettings, task: Task) -> tuple[str, str | None, int | None]:
    """(text, text_pair, gold label or None) from --text or from --index."""
    if s.index is None:
        if s.text is None:
            raise LightningIBAError("give --text (and --text_pair for pair tasks) or --index (an instance of --dataset)")
        if not s.text.strip():
            raise LightningIBAError("the text to explain is empty")
        if s.text_pair is not None and not s.text_pair.strip():
            raise LightningIBAError("the second segment to explain (--text_pair) is empty; leave it out for a single text")
        if task.is_pair and s.text_pair is None:
            raise LightningIBAError(f"{task.name} explains sentence pairs: give the second segment with --text_pair too")
        if not task.is_pair and s.text_pair is not None:
            raise LightningIBAError(f"{task.name} explains single texts: leave out --text_pair")
        return s.text, s.text_pair, None
    if s.text is not None:
        raise LightningIBAError("give --text or --index, not both")
    if s.text_pair is not None:
        raise LightningIBAError("--text_pair goes with --text; an --index instance brings its own second segment")
    from lightning_iba.data.sources import load_splits

    splits = load_splits(task, s.source, s.data_dir, files=s.files)
    if s.split not in splits:
        raise LightningIBAError(f"dataset {task.name} has no split {s.split!r}; valid: {', '.join(splits)}")
    split = splits[s.split]
    if not 0 <= s.index < len(split):
        raise LightningIBAError(f"--index {s.index} is outside 0..{len(split) - 1} of {task.name} {s.split}")
    row = split[s.index]
    return row["text"], row.get("text_pair"), int(row["label"])


def explain(s: AttributeSettings, iba_options: dict[str, Any], estimator_settings: EstimatorSettings) -> dict[str, Any]:
    """Runs IBA per the settings and writes the outputs; returns what attribution.json holds."""
    from lightning_iba.viz.heatmap import save_heatmap
    from lightning_iba.viz.html import save_html_examples
    from lightning_iba.viz.terminal import render_terminal

    out = check_writable(s.out, "--out")
    loaded, task = load_model_for_task(s.checkpoint, s.dataset, s.allow_task_transfer)
    model, tokenizer = loaded.model, loaded.tokenizer
    num_layers = model.config.num_hidden_layers
    max_length = resolve_max_length(s.max_length, loaded)
    layers = parse_layers(s.layers, num_layers) or [resolve_layer(s.layer, num_layers)]
    betas = parse_betas(s.betas, "--betas") if s.betas is not None else [iba_options["beta"]]
    if len(layers) > 1 and len(betas) > 1:
        raise LightningIBAError("give several layers (--layers) or several betas (--betas), not both")
    BottleneckOptimizer(model, layer=layers[0], **{**iba_options, "beta": betas[0]})  # every IBA setting checked before any work
    text, pair, gold = _instance(s, task)

    full = tokenizer(text, pair, truncation=False)["input_ids"]
    if len(full) > max_length:
        log.warning("attribute: the text has %d tokens; truncated to max_length %d", len(full), max_length)
    enc = tokenizer(text, pair, truncation=True, max_length=max_length, return_tensors="pt", return_token_type_ids=True)
    with torch.no_grad():
        probs = model(**enc).logits.softmax(-1)[0]
    predicted = int(probs.argmax())
    target = _target(s.target, model, gold if gold is not None else predicted)

    estimator = load_estimator(estimator_settings, loaded, task, s.source, s.data_dir, max_length, files=s.files)
    iba = lambda layer, beta: BottleneckOptimizer(model, layer=layer, estimator=estimator, seed=s.seed, **{**iba_options, "beta": beta})  # noqa: E731
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

    out.mkdir(parents=True, exist_ok=True)
    label_name = model.config.id2label[target]
    title = f"IBA towards '{label_name}' (p={probs[target]:.3f}, predicted '{model.config.id2label[predicted]}')"
    result = {
        "checkpoint": str(loaded.path), "model_fingerprint": loaded.fingerprint, "task": task.name,
        "task_transfer": loaded.task not in (None, task.name), "text": text, "text_pair": pair, "target": target,
        "target_name": label_name, "gold": gold, "predicted": predicted, "probabilities": [round(float(p), 6) for p in probs],
        "max_length": max_length, "seed": s.seed, "iba": iba_options, "estimator": asdict(estimator_settings),
        "layers": layers, "betas": betas, "rows": labels, "tokens": tokens, "scores": [[float(v) for v in row] for row in scores],
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
    return explain(*parse(args))

