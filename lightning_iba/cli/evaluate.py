"""`evaluate.py`: settings in, sharded results out, merged into the paper's table and figures on rank 0.

Settings come from `configs/evaluate/base.yaml` (every science default), any `--config` overlay
(one per dataset, cpu, sweeps, demo) and flags. Groups: `--iba.*` (generated from
BottleneckOptimizer's signature, shared with attribute.py), `--estimator.*`, `--degradation.*`,
`--bootstrap.*` (the reports' intervals: reporting only, never part of the run's identity), and one
group per baseline generated from its class (`--ig.n_steps`, `--lime.kernel_width`, ...).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from jsonargparse import ActionConfigFile, ArgumentParser
from torch.utils.data import DataLoader

from lightning_iba.attribution.base import Attributor
from lightning_iba.attribution.optimizer import BottleneckOptimizer
from lightning_iba.attribution.registry import METHOD_CLASSES, SEEDED, build_attributor, parse_method, parse_methods
from lightning_iba.cli.common import (
    IBA_SKIP,
    EstimatorSettings,
    base_config,
    check_writable,
    load_estimator,
    load_model_for_task,
    parse_betas,
    resolve_layer,
    resolve_max_length,
    run_device,
    setup_logging,
)
from lightning_iba.data.files_source import DataFiles, run_data_identity
from lightning_iba.data.rationales import special_layout
from lightning_iba.data.sources import load_splits, require_split, resolve_source, split_hint
from lightning_iba.data.tasks import get_task
from lightning_iba.data.tokens import SpecialTokens
from lightning_iba.errors import LightningIBAError, check_choice, exit_on_user_error
from lightning_iba.evaluation.degradation import DegradationSettings
from lightning_iba.evaluation.intervals import BootstrapSettings
from lightning_iba.evaluation.plausibility import PlausibilitySettings
from lightning_iba.evaluation.plausibility_report import check_plausibility_run, report_plausibility
from lightning_iba.evaluation.report import Report, merged_records, write_report
from lightning_iba.evaluation.report_page import REPORT_PAGE, token_rationales, write_report_page
from lightning_iba.evaluation.run import TARGETS, EvaluationModule, Instance, add_windows, add_words, collate, select_indices
from lightning_iba.evaluation.settings import check_resumable, read_settings, write_settings
from lightning_iba.evaluation.shards import SHARD_DIR, ShardWriter, done_indices
from lightning_iba.evaluation.timing import TIMING_FILE, write_timing

log = logging.getLogger("lightning_iba.evaluation")
SWEEPS = ("layer", "beta")
#: Options of the methods' own groups that change speed, not results (left out of the run's identity).
SPEED_OPTIONS = {"batch_size", "internal_batch_size", "path", "pass_tokens"}
#: Arguments the per-method groups do not take: the run sets them.
METHOD_SKIP = {"model", "tokenizer", "seed"}


@dataclass
class EvaluationSettings:
    """Everything `evaluate.py` takes besides the per-method groups; YAML files under configs/evaluate/ set the same keys.

    Args:
        checkpoint: fine-tuned model folder (null: runs/demo/model, else runs/imdb/model).
        dataset: task to evaluate on (null: the task recorded in the checkpoint).
        allow_task_transfer: evaluate the model on a task other than its own (recorded in the settings).
        source: data source: hub | local | bundled | files | disk | auto.
        data_dir: folder of the original files (source local), or a datasets.save_to_disk DatasetDict folder (source disk).
        files: for source files (and an estimator.source files): one file a split, as run_glue.py's --train_file ...
        split: split to evaluate: test, or test_mismatched for MNLI.
        instances: number of instances drawn from the split with `seed` (null: the whole split).
        seed: seed of the draw, of the bottleneck's noise and of LIME's and random's draws.
        max_length: tokens per input (null: the checkpoint's fine-tuning max_length).
        methods: attribution methods: iba, ig, lime, random, gradxinput, occlusion, attention; variants
            iba:dataset / iba:reference (the estimator), ig:gold / ig:published / ig:class0 (the class explained:
            the gold label; the published code's class 0 for every instance, e.g. IMDB positive, MNLI contradiction;
            our label 0 for every instance), a seed suffix @seed<k> for iba, lime, random, and on sentence pairs a
            segment suffix /premise or /hypothesis (remove from that text first: random/premise, iba:dataset/hypothesis).
        layer: layer index after which the bottleneck sits (null: the paper's depth, 8 of 12, 3 of 6).
        target: the class every method explains and the degradation scores: gold (the instance's label, the paper's
            protocol) or predicted (the model's prediction, ERASER's: its comprehensiveness and sufficiency score the
            predicted class). With predicted, bare ig explains it; ig:gold is refused.
        sweep: "layer" (IBA after every layer, Figure 2a) or "beta" (the betas and "X only", Figure 2b).
        betas: the betas of a beta sweep.
        estimator: where the bottleneck's mean and std come from.
        degradation: fraction grid, headline fraction and removal rules.
        bootstrap: the paired bootstrap intervals of the reports (a change re-reports a finished run on --resume).
        out: output folder.
        resume: continue the evaluation in `out`, skipping the instances already done.
        batch_size: instances per batch.
        devices: processes (GPUs or CPU processes) per node.
        num_nodes: nodes.
        accelerator: auto | cpu | gpu.
        precision: "32" or "bf16" (IBA under autocast, for GPUs).
        wandb: log the table and curves to W&B (offline without an API key).
        wandb_project: the W&B project.
        store_scores: keep every instance's token ids and each method's token scores in the shards (for the
            per-instance views and plausibility); false keeps only the curves (smaller shards).
        plausibility: for tasks with human rationales (eraser_movies): top-k fraction and IOU threshold
            (reporting only); ERASER's bins, their unit, the word-level aggregation when the bins count words,
            and the plausibility windows (part of the run).
    """

    checkpoint: str | None = None
    dataset: str | None = None
    allow_task_transfer: bool = False
    source: str = "auto"
    data_dir: str | None = None
    files: DataFiles = field(default_factory=DataFiles)
    split: str = "test"
    instances: int | None = 1000
    seed: int = 0
    max_length: int | None = None
    methods: str | list[str] = "iba:dataset,iba:reference,ig,lime,random"
    layer: int | None = None
    target: str = "gold"
    sweep: str | None = None
    betas: str | list[float] = "1e-7,1e-6,1e-5,1e-4"
    estimator: EstimatorSettings = field(default_factory=EstimatorSettings)
    degradation: DegradationSettings = field(default_factory=DegradationSettings)
    bootstrap: BootstrapSettings = field(default_factory=BootstrapSettings)  # reporting: not in the identity
    plausibility: PlausibilitySettings = field(default_factory=PlausibilitySettings)  # in the identity on rationale tasks only
    # execution: how fast, not what
    out: str = "runs/eval"
    resume: bool = False
    batch_size: int = 16
    devices: int = 1
    num_nodes: int = 1
    accelerator: str = "auto"
    precision: str = "32"
    wandb: bool = True
    wandb_project: str = "lightning-iba"
    store_scores: bool = True
    # the method groups, filled in by parse()
    iba: dict[str, Any] = field(default_factory=dict)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.sweep is not None and self.sweep not in SWEEPS:
            raise LightningIBAError(f"unknown sweep {self.sweep!r}; valid: {', '.join(SWEEPS)}")
        for name in ("batch_size", "devices", "num_nodes"):
            if getattr(self, name) < 1:
                raise LightningIBAError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.instances is not None and self.instances < 1:
            raise LightningIBAError(f"instances must be at least 1 (or null for the whole split), got {self.instances}")
        self.methods = parse_methods(self.methods)
        check_choice("target", self.target, TARGETS)
        if self.target == "predicted" and any((spec.base, spec.variant) == ("ig", "gold") for spec in map(parse_method, self.methods)):
            raise LightningIBAError("method ig:gold explains the gold label, but this run explains the predicted class "
                                    "(target predicted); use ig, which explains the run's target")
        self.betas = parse_betas(self.betas, "betas")
        if str(self.precision) not in ("32", "bf16"):
            raise LightningIBAError(f"precision must be 32 or bf16, got {self.precision!r}")
        self.precision = str(self.precision)

    @property
    def uses_iba(self) -> bool:
        """IBA runs: as a method (any variant), or as the variants of a sweep."""
        return self.sweep is not None or any(parse_method(m).base == "iba" for m in self.methods)

    @property
    def uses_dataset_estimator(self) -> bool:
        """Some IBA run (or the sweep's "x only") needs the dataset statistics."""
        if self.sweep is not None:
            return self.estimator.name == "dataset"
        return any(
            spec.base == "iba" and (spec.variant or self.estimator.name) == "dataset" for spec in map(parse_method, self.methods)
        )

    EXECUTION = ("out", "resume", "batch_size", "devices", "num_nodes", "accelerator", "wandb", "wandb_project", "store_scores")

    def execution(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.EXECUTION}


def build_parser(with_base_config: bool = True) -> ArgumentParser:
    """The parser; `with_base_config=False` gives the code's own defaults (tests compare them to the YAML)."""
    p = ArgumentParser(prog="evaluate.py", description="Degradation test of attribution methods (SPEC §6).",
                       default_config_files=base_config("evaluate") if with_base_config else [])
    p.add_argument("--config", action=ActionConfigFile, help="YAML file(s) under configs/evaluate/")
    p.add_class_arguments(EvaluationSettings, None, skip={"iba", "options"})
    p.add_class_arguments(BottleneckOptimizer, "iba", skip=IBA_SKIP)
    for name, cls in METHOD_CLASSES.items():
        if name != "iba" and method_parameters(cls):
            p.add_class_arguments(cls, name, skip=METHOD_SKIP)
    return p


def method_parameters(cls: type) -> list[str]:
    """The constructor options of a method class that a config may set."""
    import inspect

    return [n for n in inspect.signature(cls.__init__).parameters if n not in METHOD_SKIP | {"self"}]


def parse(args: list[str] | None = None) -> EvaluationSettings:
    """Command line and `--config` YAML files into settings."""
    cfg = build_parser().parse_args(args)
    top = {f.name: cfg[f.name] for f in fields(EvaluationSettings) if f.name not in ("iba", "options", "estimator", "degradation", "bootstrap", "files", "plausibility")}
    options = {name: cfg[name].as_dict() for name in METHOD_CLASSES if name != "iba" and name in cfg}
    return EvaluationSettings(
        **top, estimator=EstimatorSettings(**cfg.estimator.as_dict()), degradation=DegradationSettings(**cfg.degradation.as_dict()),
        bootstrap=BootstrapSettings(**cfg.bootstrap.as_dict()), iba=cfg.iba.as_dict(), options=options, files=DataFiles(**cfg.files.as_dict()),
        plausibility=PlausibilitySettings(**cfg.plausibility.as_dict()),
    )


def first_process() -> bool:
    """True in the process that starts the run (before Lightning or torchrun launches the others)."""
    return int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", "0"))) == 0


def identity(s: EvaluationSettings, model, task_name: str, layer: int, source: str) -> dict[str, Any]:
    """The settings that determine the results: a resumed run must match them exactly."""
    keep = {k: v for k, v in dataclasses.asdict(s).items() if k not in EvaluationSettings.EXECUTION and k not in ("iba", "options", "bootstrap", "plausibility")}
    keep.update(
        checkpoint=str(Path(model.path).resolve()), model_fingerprint=model.fingerprint, dataset=task_name,
        task_transfer=model.task not in (None, task_name), layer=layer,
        source=source,
    )
    keep.update(run_data_identity([source, s.estimator.source or source], s.data_dir, s.files))  # files' contents too
    keep["degradation"] = {**dataclasses.asdict(s.degradation), "fractions": s.degradation.grid}
    keep["iba"] = {k: v for k, v in s.iba.items() if k not in SPEED_OPTIONS} if s.uses_iba else None
    bases = dict.fromkeys(parse_method(m).base for m in s.methods)
    keep["options"] = {m: {k: v for k, v in s.options[m].items() if k not in SPEED_OPTIONS} for m in bases if m in s.options}
    if not s.uses_dataset_estimator:
        keep["estimator"] = None
    if s.sweep != "beta":
        keep["betas"] = None  # only a beta sweep uses them
    if get_task(task_name).rationales:  # ERASER's bins and the plausibility windows change what is computed
        keep["plausibility"] = s.plausibility.identity()
    return keep


def build_attributors(s: EvaluationSettings, loaded, task, layer: int, source: str, splits=None) -> list[tuple[str, Attributor]]:
    """(label, method) pairs: the chosen methods (with their variants and seeds), or the variants of a sweep."""
    from lightning_iba.attribution.activations import ActivationScores

    model, tokenizer = loaded.model, loaded.tokenizer
    fit_on = run_device(s.accelerator)  # fit the statistics where the run will compute, not on the CPU it was loaded to
    estimator = (
        load_estimator(s.estimator, loaded, task, source, s.data_dir, s.max_length, splits, fit_on, files=s.files)
        if s.uses_dataset_estimator or s.sweep is not None
        else None
    )
    iba_options = {"layer": layer, "batch_size": s.batch_size, "seed": s.seed, "precision": s.precision, **s.iba}
    iba = lambda **kw: BottleneckOptimizer(model, **{**iba_options, "estimator": estimator, **kw})  # noqa: E731
    if s.sweep == "layer":
        return [(f"layer {l}", iba(layer=l)) for l in range(model.config.num_hidden_layers)]
    if s.sweep == "beta":
        return [(f"beta {b:g}", iba(beta=b)) for b in s.betas] + [("x only", ActivationScores(model, layer, estimator))]
    out = []
    for name in s.methods:
        spec = parse_method(name)
        if spec.base == "iba":
            chosen = spec.variant or s.estimator.name
            options = {**iba_options, "estimator": estimator if chosen == "dataset" else chosen}
        else:
            options = {**s.options.get(spec.base, {}), **({"seed": s.seed} if spec.base in SEEDED else {})}
        out.append((name, build_attributor(name, model, tokenizer, task=task, **options)))
    return out


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
    start = time.perf_counter()
    s = parse(args)
    out = check_writable(s.out, "--out")
    loaded, task = load_model_for_task(s.checkpoint, s.dataset, s.allow_task_transfer)
    log.info("evaluation: model %s (%s), task %s [%.1f s]", loaded.path, loaded.fingerprint, task.name, time.perf_counter() - start)
    s.max_length = resolve_max_length(s.max_length, loaded)
    # a layer sweep runs every layer: a configured --layer (e.g. a BERT-base overlay's 9 on a 6-layer model) is not used
    layer = resolve_layer(None if s.sweep == "layer" else s.layer, loaded.model.config.num_hidden_layers)
    source = resolve_source(task, s.source)
    ident = identity(s, loaded, task.name, layer, source)
    if task.rationales:
        check_plausibility_run(s.plausibility, s.store_scores, loaded.tokenizer, s.max_length)
    if first_process():
        check_resumable(out, ident, s.resume)  # before loading data or fitting anything
    splits = load_splits(task, source, s.data_dir, files=s.files)
    require_split(splits, s.split, task, source, "evaluation (--split)", split_hint(task, source, s.split))
    indices = select_indices(len(splits[s.split]), s.instances, s.seed)
    log.info("evaluation: %d instances of %s %s (%s) [%.1f s]", len(indices), task.name, s.split, source, time.perf_counter() - start)

    attributors = build_attributors(s, loaded, task, layer, source, splits)  # validates every method option first
    labels = [name for name, _ in attributors]
    module = EvaluationModule(loaded.model, attributors, SpecialTokens.from_tokenizer(loaded.tokenizer), s.degradation, s.batch_size,
                              store_scores=s.store_scores, eraser_bins=s.plausibility.bins if task.rationales else None,
                              layout=special_layout(loaded.tokenizer) if task.rationales else (1, 1),
                              eraser_unit=s.plausibility.bin_unit, eraser_aggregation=s.plausibility.aggregation, target=s.target)

    if first_process():
        if not s.resume:
            shutil.rmtree(out / SHARD_DIR, ignore_errors=True)
        out.mkdir(parents=True, exist_ok=True)
        write_settings(out, ident, s.execution(), {"bootstrap": dataclasses.asdict(s.bootstrap),
                                                   **({"plausibility": s.plausibility.reporting()} if task.rationales else {})})
    done = done_indices(out) if s.resume else set()
    pending = [i for i in indices if i not in done]
    if done:
        log.info("evaluation: resuming, %d of %d instances already done", len(indices) - len(pending), len(indices))

    if pending:
        log.info("evaluation: attributing %d instances with %s [%.1f s]", len(pending), ", ".join(labels), time.perf_counter() - start)
        tokenizer = loaded.tokenizer
        instances = tokenize_instances(splits[s.split], pending, tokenizer, s.max_length)
        texts = dict(zip(pending, splits[s.split].select(pending)["text"])) if task.rationales else {}
        if task.rationales and s.plausibility.bin_unit == "word":  # ERASER's bins count whole words
            add_words(instances, texts, tokenizer, s.max_length)
        if task.rationales and s.plausibility.window_stride:  # further windows over the whole text, for plausibility
            log.info("evaluation: %d instances longer than %d tokens get windows", add_windows(instances, texts, tokenizer, s.max_length, s.plausibility.window_stride), s.max_length)
        loader = DataLoader(
            instances, batch_size=s.batch_size,
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
    stored = read_settings(out) or ident  # the grid and headline the results were computed with
    degradation = DegradationSettings(**stored["degradation"])
    title = f"{task.name} ({s.split}, n={len(indices)})"
    records = merged_records(out, indices)
    report = write_report(out, task.name, labels, records, degradation, title, s.bootstrap,
                          pairs=SpecialTokens.from_tokenizer(loaded.tokenizer) if task.is_pair else None)
    if (timing := write_timing(out, labels)) is not None:  # seconds per instance of each method, per device
        report.files[TIMING_FILE] = timing
    plausibility = None
    if task.rationales:  # plausibility.csv/.md, plausibility_differences.*, the columns in metrics.csv
        plausibility = report_plausibility(out, task.name, s.split, labels, records, splits[s.split], loaded.tokenizer, stored,
                                           s.plausibility, s.bootstrap, report)
    if s.wandb:
        report.files["wandb"] = Path(log_run(report, out, stored, s, task.name, plausibility))
    config = loaded.model.config
    report.files[REPORT_PAGE] = write_report_page(  # the explorer page, last: it embeds the other files' content
        out, report, records, labels, stored, degradation, f"Evaluation: {title}",
        [str(config.id2label.get(i, i)) for i in range(config.num_labels)], loaded.tokenizer,
        rationales=token_rationales(records, splits[s.split], loaded.tokenizer, int(stored["max_length"])) if task.rationales else None,
    )
    log.info("evaluation: done [%.1f s]", time.perf_counter() - start)
    print(report.table1.to_string(index=False))
    for name, path in report.files.items():
        print(f"{name}: {path}")
    return report


def log_run(report: Report, out: Path, settings: dict[str, Any], s: EvaluationSettings, dataset: str, plausibility: Any = None) -> str:
    from lightning_iba.evaluation.wandb_report import log_to_wandb

    # one name per dataset and split (MNLI's matched and mismatched are two runs), sweeps apart
    name = f"evaluate-{dataset}" + (f"-{s.split}" if s.split != "test" else "") + (f"-{s.sweep}-sweep" if s.sweep else "")
    extra = {"plausibility": plausibility.table.reset_index()} if plausibility is not None else None
    return log_to_wandb(report, out, settings, s.wandb_project, name, extra, group=dataset)
