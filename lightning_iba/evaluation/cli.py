"""`evaluate.py`: settings in, sharded results out, merged into the paper's table and figures on rank 0."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path

import pytorch_lightning as pl
from jsonargparse import ActionConfigFile, ActionYesNo, ArgumentParser
from torch.utils.data import DataLoader

from lightning_iba.attribution.base import Attributor
from lightning_iba.data.sources import load_splits, sample_texts
from lightning_iba.data.tasks import get_task
from lightning_iba.errors import LightningIBAError, exit_on_user_error
from lightning_iba.evaluation.degradation import SpecialTokens
from lightning_iba.evaluation.report import Report, merged_records, write_report
from lightning_iba.evaluation.run import EvaluationModule, Instance, collate, select_indices
from lightning_iba.evaluation.settings import EvaluationSettings, check_resumable
from lightning_iba.evaluation.shards import SHARD_DIR, ShardWriter, done_indices
from lightning_iba.finetune import setup_logging
from lightning_iba.models.loading import load_finetuned

log = logging.getLogger("lightning_iba.evaluation")
FLAGS = ("resume", "wandb")


def parse(args: list[str] | None = None) -> EvaluationSettings:
    """Command line and `--config` YAML files (configs/evaluate/) into settings."""
    parser = ArgumentParser(prog="evaluate.py", description="Degradation test of attribution methods (SPEC §6).")
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file(s) under configs/evaluate/")
    parser.add_class_arguments(EvaluationSettings, None, skip=set(FLAGS))
    defaults = EvaluationSettings()
    parser.add_argument("--resume", action=ActionYesNo, default=defaults.resume, help="skip instances already in the output's shards")
    parser.add_argument("--wandb", action=ActionYesNo, default=defaults.wandb, help="log table and curves to W&B (offline without an API key)")
    cfg = parser.parse_args(args)
    fields = {f.name for f in dataclasses.fields(EvaluationSettings)}
    return EvaluationSettings(**{k: v for k, v in vars(cfg).items() if k in fields})


def first_process() -> bool:
    """True in the process that starts the run (before Lightning or torchrun launches the others)."""
    return int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", "0"))) == 0


def build_attributors(s: EvaluationSettings, model, tokenizer, train_split) -> list[tuple[str, Attributor]]:
    """(label, method) pairs: the chosen methods, or the variants of a layer or beta sweep."""
    from lightning_iba.attribution.activations import ActivationScores
    from lightning_iba.attribution.estimators import get_estimator, load_or_fit
    from lightning_iba.attribution.optimizer import BottleneckOptimizer
    from lightning_iba.attribution.registry import build_attributor, parse_methods

    methods = parse_methods(s.methods)
    needs_iba = "iba" in methods or s.sweep is not None
    estimator = get_estimator(s.estimator)
    if needs_iba and s.estimator == "dataset":
        texts = lambda: sample_texts(train_split, s.estimator_texts, s.seed)  # noqa: E731 (sampled only if not cached)
        estimator = load_or_fit(model, texts, tokenizer, max_length=s.max_length or 512, model_dir=s.checkpoint)
    iba = lambda **kw: BottleneckOptimizer(  # noqa: E731
        model, **{"layer": s.layer, "beta": s.beta, "steps": s.iba_steps, "lr": s.iba_lr, "samples": s.iba_samples,
                  "estimator": estimator, "batch_size": s.batch_size, "seed": s.seed, "precision": s.precision, **kw}
    )
    if s.sweep == "layer":
        return [(f"layer {layer}", iba(layer=layer)) for layer in range(model.config.num_hidden_layers)]
    if s.sweep == "beta":
        return [(f"beta {b:g}", iba(beta=b)) for b in s.beta_values] + [("x only", ActivationScores(model, s.layer, estimator))]
    options = {"ig": {"n_steps": s.ig_steps}, "lime": {"num_samples": s.lime_samples, "seed": s.seed}, "random": {"seed": s.seed}}
    return [(m, iba() if m == "iba" else build_attributor(m, model, tokenizer, **options.get(m, {}))) for m in methods]


def tokenize_instances(split, indices: list[int], tokenizer, max_length: int) -> list[Instance]:
    """The chosen instances, tokenised and sorted longest first (length bucketing for every method)."""
    rows = split.select(indices)
    pair = "text_pair" in rows.column_names
    enc = tokenizer(list(rows["text"]), list(rows["text_pair"]) if pair else None, truncation=True, max_length=max_length, return_token_type_ids=True)
    out = [Instance(i, r_id, int(y), ids, types) for i, r_id, y, ids, types in zip(indices, rows["id"], rows["label"], enc["input_ids"], enc["token_type_ids"])]
    return sorted(out, key=lambda inst: (-len(inst.input_ids), inst.index))


@exit_on_user_error
def main(args: list[str] | None = None) -> Report | None:
    """Runs (or resumes) one evaluation; returns the merged report on rank 0, None on the other ranks."""
    setup_logging()
    s = parse(args)
    out = Path(s.out)
    model, tokenizer, trained_on = load_finetuned(s.checkpoint)
    task = get_task(s.dataset or trained_on or "imdb")
    if model.config.num_labels != task.num_labels:
        raise LightningIBAError(f"checkpoint {s.checkpoint} has {model.config.num_labels} labels but dataset {task.name} has {task.num_labels} ({', '.join(task.label_names)})")
    if s.max_length is None:
        s.max_length = int(getattr(model.config, "lightning_iba_max_length", None) or 512)
    splits = load_splits(task, s.source, s.data_dir)
    if s.split not in splits:
        raise LightningIBAError(f"dataset {task.name} has no split {s.split!r}; valid: {', '.join(splits)}")
    indices = select_indices(len(splits[s.split]), s.samples, s.seed)

    attributors = build_attributors(s, model, tokenizer, splits["train"])  # validates every method option first
    labels = [name for name, _ in attributors]
    module = EvaluationModule(model, attributors, SpecialTokens.from_tokenizer(tokenizer), s)

    identity = s.identity()
    if first_process():
        check_resumable(out, identity, s.resume)
        if not s.resume:
            shutil.rmtree(out / SHARD_DIR, ignore_errors=True)
        out.mkdir(parents=True, exist_ok=True)
        (out / "settings.json").write_text(json.dumps(identity, indent=2) + "\n")
    done = done_indices(out) if s.resume else set()
    pending = [i for i in indices if i not in done]
    if done:
        log.info("evaluation: resuming, %d of %d instances already done", len(indices) - len(pending), len(indices))

    if pending:
        loader = DataLoader(
            tokenize_instances(splits[s.split], pending, tokenizer, s.max_length), batch_size=s.batch_size,
            collate_fn=lambda batch: collate(batch, tokenizer.pad_token_id),
        )
        trainer = pl.Trainer(
            accelerator=s.accelerator, devices=s.devices, num_nodes=s.num_nodes,
            strategy="ddp" if s.devices * s.num_nodes > 1 else "auto",
            logger=False, callbacks=[ShardWriter(out)], inference_mode=False, enable_model_summary=False,
        )
        trainer.predict(module, dataloaders=loader, return_predictions=False)
        trainer.strategy.barrier("merge")
        if not trainer.is_global_zero:
            return None
    title = f"{task.name} ({s.split}, n={len(indices)})"
    report = write_report(out, task.name, labels, merged_records(out, indices), s.degradation_steps, title)
    if s.wandb:
        run_dir = log_run(report, out, identity, s, task.name)
        report.files["wandb"] = Path(run_dir)
    print(report.table1.to_string(index=False))
    for name, path in report.files.items():
        print(f"{name}: {path}")
    return report


def log_run(report: Report, out: Path, identity: dict, s: EvaluationSettings, dataset: str) -> str:
    from lightning_iba.evaluation.wandb_report import log_to_wandb

    name = f"evaluate-{dataset}" + (f"-{s.sweep}-sweep" if s.sweep else "")
    return log_to_wandb(report, out, identity, s.wandb_project, name)
