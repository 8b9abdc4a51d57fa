"""`make reproduce`: Table 1 and Figures 1-2 end to end, resumable, from one config (configs/reproduce/<profile>.yaml).

Per dataset, in order: fine-tune (skipped when the model exists), a layer sweep and then a beta sweep of
IBA on *validation* instances (the layer and beta with the largest validation drop are chosen; test is
never looked at), the evaluation of every method on the test split(s) with the chosen layer and beta,
then Figure 2b (a wide beta sweep with both estimators on validation). Every stage is a `train.py` or
`evaluate.py` command; the commands and their wall times are recorded in `<results>/stages.jsonl`, and
a stage that finished is skipped on the next run, so a killed reproduction restarts where it stopped
(`evaluate.py --resume true` continues a half-done evaluation instance by instance). The small outputs
(tables, curves, sweeps) are copied to `<results>` and summarised in `<results>/README.md`.

After Table 1, the plausibility plans (`rationales`): a model explained on a task with human rationales
(ERASER Movie Reviews), either a Table 1 model applied to it (`model_from`, a transfer run) or one
fine-tuned on its train split (`finetune`); its methods evaluated on validation and test against the
rationales (plausibility.csv), with a layer sweep of plausibility; summarised in `<results>/eraser/plausibility.md`.
"""
from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from jsonargparse import ActionConfigFile, ArgumentParser

from lightning_iba.cli.common import setup_logging
from lightning_iba.errors import LightningIBAError, exit_on_user_error

log = logging.getLogger("lightning_iba.reproduce")
REPO = Path(__file__).resolve().parents[2]


@dataclass
class DatasetPlan:
    """One Table 1 dataset of the reproduction.

    Args:
        name: the task (imdb, mnli, agnews, rte).
        finetune: config overlays of train.py after configs/finetune/<name>.yaml.
        evaluate: config overlays of evaluate.py after configs/evaluate/<name>.yaml (data source of the test split).
        validation: extra evaluate.py flags for the validation sweeps (e.g. the source of the validation split).
        splits: the test splits evaluated (MNLI: test and test_mismatched).
        test_instances: instances per test split (null: all).
        figure2b: also run the wide beta sweep of Figure 2b on this dataset's validation split.
    """

    name: str
    finetune: list[str] = field(default_factory=list)
    evaluate: list[str] = field(default_factory=list)
    validation: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=lambda: ["test"])
    test_instances: int | None = 1000
    figure2b: bool = False


#: The plausibility plans' methods: Table 1's without ig:class0 (it explains class 0, not the review's label),
#: with the gradient and attention baselines of ERASER-style comparisons.
RATIONALE_METHODS = "iba:dataset,iba:reference,ig:gold,lime,random,attention,gradxinput"


@dataclass
class RationalePlan:
    """One plausibility run of the reproduction: a model explained on a task with human rationales.

    Give exactly one of `model_from` and `finetune`. IBA's layer and beta are always the ones Table 1's
    rule chose for the model on its own task's validation split: for `model_from`, that dataset's
    selection.json; for `finetune`, a layer sweep and a beta sweep of the plan's own validation split.

    Args:
        name: the plan's folder under <runs>/eraser/ and <results>/eraser/ (e.g. imdb-transfer, finetuned).
        dataset: the task with rationales (eraser_movies).
        model_from: a Table 1 dataset whose model and selection.json are reused: a transfer run
            (evaluate.py --allow_task_transfer true; the labels must be the same).
        finetune: config overlays of train.py after configs/finetune/<dataset>.yaml: fine-tune a model on
            the dataset's train split into <runs>/eraser/<name>/model.
        evaluate: config overlays of evaluate.py after configs/evaluate/<dataset>.yaml.
        splits: the splits evaluated with every method (the plausibility tables).
        instances: instances of every evaluation of the plan, sweeps included (null: all).
        methods: the methods of the split evaluations.
        layer_sweep: a model_from plan also sweeps IBA's layer on validation (plausibility per layer); a
            finetune plan always does (the sweep chooses its layer).
        max_length: tokens per input, of the fine-tuning and of every evaluation.
        window_stride: null: plausibility over the first max_length tokens (the share of rationale words
            seen is reported); S: also windows every S word pieces over the whole review (evaluate.py
            --plausibility.window_stride; costs about one attribution per window).
    """

    name: str
    dataset: str = "eraser_movies"
    model_from: str | None = None
    finetune: list[str] | None = None
    evaluate: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=lambda: ["validation", "test"])
    instances: int | None = None
    methods: str = RATIONALE_METHODS
    layer_sweep: bool = True
    max_length: int = 256
    window_stride: int | None = None

    @property
    def transfer(self) -> bool:
        return self.model_from is not None


@dataclass
class ReproduceSettings:
    """The reproduction: which datasets, how many validation instances choose the layer and beta, which methods.

    Args:
        runs: folder of the large outputs (models, shards); ignored by git.
        results: folder of the small outputs that are committed (tables, curves, sweeps, README).
        datasets: the datasets, in the order they run.
        validation_instances: validation instances of the layer and beta sweeps that choose IBA's layer and beta.
        selection_betas: the betas the choice is made among.
        methods: the methods of the test evaluation.
        evaluate_flags: evaluate.py flags of every evaluation stage (e.g. the published counting).
        figure2b_instances: validation instances of Figure 2b's beta sweep.
        figure2b_betas: its betas.
        figure2b_estimators: its estimators.
        wandb_project: the W&B project holding every run of the reproduction.
        rationales: the plausibility plans, run after the datasets.
        only: run only these datasets (default: all); "eraser" runs every plausibility plan, "eraser/<name>" one.
    """

    runs: str = "runs/cpu-minilm"
    results: str = "results/cpu-minilm"
    datasets: list[DatasetPlan] = field(default_factory=list)
    validation_instances: int = 200
    selection_betas: str = "1e-6,1e-5,1e-4,1e-3"
    methods: str = "iba:dataset,iba:reference,ig:gold,ig:class0,lime,random"
    evaluate_flags: list[str] = field(default_factory=list)
    figure2b_instances: int = 200
    figure2b_betas: str = "1e-8,1e-7,1e-6,1e-5,1e-4,1e-3,1e-2,1e-1"
    figure2b_estimators: list[str] = field(default_factory=lambda: ["dataset", "reference"])
    wandb_project: str = "lightning-iba-reproduce"
    rationales: list[RationalePlan] = field(default_factory=list)
    only: list[str] | None = None

    def runs_plan(self, name: str, rationale: bool = False) -> bool:
        """Whether `--only` lets the dataset (or the plausibility plan) `name` run."""
        if not self.only:
            return True
        return ("eraser" in self.only or f"eraser/{name}" in self.only) if rationale else name in self.only


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m lightning_iba.cli.reproduce", description="Table 1 and Figures 1-2, resumable.")
    p.add_argument("--config", action=ActionConfigFile, help="configs/reproduce/<profile>.yaml")
    p.add_class_arguments(ReproduceSettings, None)
    return p


def parse(args: list[str] | None = None) -> ReproduceSettings:
    cfg = build_parser().parse_args(args).as_dict()
    top = {k: cfg[k] for k in ReproduceSettings.__dataclass_fields__}
    top["datasets"] = [DatasetPlan(**d) for d in top["datasets"] or []]
    if not top["datasets"]:
        raise LightningIBAError("no datasets to reproduce; give a config (configs/reproduce/cpu.yaml)")
    top["rationales"] = [RationalePlan(**r) for r in top["rationales"] or []]
    names = {d.name for d in top["datasets"]}
    for r in top["rationales"]:
        if (r.model_from is None) == (r.finetune is None):
            raise LightningIBAError(f"rationale plan {r.name}: give exactly one of model_from (a Table 1 model) and finetune (overlays)")
        if r.model_from is not None and r.model_from not in names:
            raise LightningIBAError(f"rationale plan {r.name}: model_from {r.model_from!r} is not a dataset of the plan ({', '.join(sorted(names))})")
    if len({r.name for r in top["rationales"]}) != len(top["rationales"]):
        raise LightningIBAError("rationale plans need distinct names (their folders)")
    return ReproduceSettings(**top)


# ---------------------------------------------------------------- stages


class Stages:
    """Runs commands as stages, skipping finished ones, recording each command and its wall time."""

    def __init__(self, results: Path):
        self.log = results / "stages.jsonl"
        results.mkdir(parents=True, exist_ok=True)

    def done(self) -> dict[str, dict[str, Any]]:
        if not self.log.is_file():
            return {}
        rows = [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]
        return {r["stage"]: r for r in rows if r.get("status") == "done"}

    def run(self, stage: str, command: list[str], done_when: Path | None = None) -> None:
        """Runs `command` unless the stage finished before (and its output `done_when`, if given, exists)."""
        finished = self.done().get(stage)
        if finished and (done_when is None or done_when.exists()):
            log.info("reproduce: %s done before (%.0f s), skipped", stage, finished["seconds"])
            return
        printable = " ".join(shlex.quote(c) for c in command)
        log.info("reproduce: %s: %s", stage, printable)
        commit = current_commit()  # the code the stage runs with
        start = time.time()
        result = subprocess.run(command, cwd=REPO)
        seconds = round(time.time() - start, 1)
        with self.log.open("a") as fh:
            fh.write(json.dumps({"stage": stage, "command": printable, "seconds": seconds, "commit": commit,
                                 "status": "done" if result.returncode == 0 else f"failed ({result.returncode})",
                                 "finished": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
        if result.returncode != 0:
            raise LightningIBAError(f"reproduce: stage {stage} failed (exit {result.returncode}); fix it and run the same command again")


def current_commit() -> str:
    """The checked-out commit, with "+changes" when tracked files differ from it (recorded with every stage)."""
    git = lambda *a: subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()  # noqa: E731
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def evaluate_args(s: ReproduceSettings, configs: list[str], checkpoint: Path, out: Path, *flags: str) -> list[str]:
    """An evaluate.py stage: the configs in order, the model, resumable output, the reproduction's flags, then `flags`."""
    return [sys.executable, "evaluate.py", *[a for c in configs for a in ("--config", c)],
            "--checkpoint", str(checkpoint), "--out", str(out), "--resume", "true",
            "--wandb_project", s.wandb_project, *s.evaluate_flags, *flags]


def evaluate_command(s: ReproduceSettings, plan: DatasetPlan, out: Path, *flags: str) -> list[str]:
    return evaluate_args(s, [f"configs/evaluate/{plan.name}.yaml", *plan.evaluate], Path(s.runs) / plan.name / "model", out, *flags)


def finetune_command(dataset: str, overlays: list[str], runs: Path, *flags: str) -> list[str]:
    """A train.py stage: configs/finetune/<dataset>.yaml and the overlays, the model exported to runs/model."""
    return [sys.executable, "train.py", "--config", f"configs/finetune/{dataset}.yaml", *[a for c in overlays for a in ("--config", c)],
            "--trainer.default_root_dir", str(runs), "--export.dirpath", str(runs / "model"), "--export.overwrite", "true", *flags]


def best_row(metrics_csv: Path, prefix: str) -> tuple[str, float]:
    """The sweep row (e.g. "layer 3", "beta 1e-05") with the largest drop at the headline fraction, and that drop."""
    table = pd.read_csv(metrics_csv, index_col=0)
    drop = next(c for c in table.columns if c.startswith("drop_") and not c.endswith(("_lo", "_hi")))
    rows = table[table.index.astype(str).str.startswith(prefix)][drop]
    if rows.empty:
        raise LightningIBAError(f"{metrics_csv} has no rows starting with {prefix!r}")
    return str(rows.idxmax()), float(rows.max())


SELECTION_RULE = "largest drop at the headline fraction on validation instances (dataset estimator)"


def choose_layer_and_beta(s: ReproduceSettings, stages: Stages, prefix: str, runs: Path, command: Callable[..., list[str]],
                          validation: list[str]) -> dict[str, Any]:
    """Table 1's rule: a layer sweep, then a beta sweep at the chosen layer, on validation (`validation`: the
    flags choosing those instances); the layer and then the beta with the largest drop. `command(out, *flags)`."""
    stages.run(f"{prefix}/layer-sweep", command(runs / "layer-sweep", *validation, "--sweep", "layer"))
    layer_row, layer_drop = best_row(runs / "layer-sweep" / "metrics.csv", "layer ")
    layer = int(layer_row.split()[1])
    stages.run(f"{prefix}/beta-selection", command(
        runs / "beta-selection", *validation, "--sweep", "beta", "--layer", str(layer), "--betas", s.selection_betas))
    beta_row, beta_drop = best_row(runs / "beta-selection" / "metrics.csv", "beta ")
    beta = float(beta_row.split()[1])
    return {"layer": layer, "layer_validation_drop": layer_drop, "beta": beta, "beta_validation_drop": beta_drop, "rule": SELECTION_RULE}


def reproduce_dataset(s: ReproduceSettings, plan: DatasetPlan, stages: Stages) -> dict[str, Any]:
    runs, results = Path(s.runs) / plan.name, Path(s.results) / plan.name
    results.mkdir(parents=True, exist_ok=True)
    stages.run(f"{plan.name}/finetune", finetune_command(plan.name, plan.finetune, runs), done_when=runs / "model" / "config.json")
    validation = ["--split", "validation", "--instances", str(s.validation_instances), *plan.validation]
    selection = choose_layer_and_beta(s, stages, plan.name, runs, partial(evaluate_command, s, plan), validation)
    layer, beta = selection["layer"], selection["beta"]
    (results / "selection.json").write_text(json.dumps(selection, indent=2) + "\n")
    for split in plan.splits:
        instances = "null" if plan.test_instances is None else str(plan.test_instances)
        stages.run(f"{plan.name}/evaluate-{split}", evaluate_command(
            s, plan, runs / f"eval-{split}", "--split", split, "--instances", instances, "--methods", s.methods,
            "--layer", str(layer), "--iba.beta", f"{beta:g}"))
    if plan.figure2b:
        for estimator in s.figure2b_estimators:
            stages.run(f"{plan.name}/figure2b-{estimator}", evaluate_command(
                s, plan, runs / f"figure2b-{estimator}", "--split", "validation", "--instances", str(s.figure2b_instances),
                *plan.validation, "--sweep", "beta", "--layer", str(layer), "--betas", s.figure2b_betas, "--estimator.name", estimator))
    return selection


# ---------------------------------------------------------------- plausibility (ERASER)


def rationale_paths(s: ReproduceSettings, plan: RationalePlan) -> tuple[Path, Path]:
    """The plan's large-output folder (<runs>/eraser/<name>) and small-output folder (<results>/eraser/<name>)."""
    return Path(s.runs) / "eraser" / plan.name, Path(s.results) / "eraser" / plan.name


def rationale_model(s: ReproduceSettings, plan: RationalePlan) -> Path:
    return Path(s.runs) / plan.model_from / "model" if plan.transfer else rationale_paths(s, plan)[0] / "model"


def rationale_evaluate_command(s: ReproduceSettings, plan: RationalePlan, out: Path, *flags: str) -> list[str]:
    """An evaluate.py stage of the plan: its model (a transfer run says so), max_length and windows."""
    return evaluate_args(
        s, [f"configs/evaluate/{plan.dataset}.yaml", *plan.evaluate], rationale_model(s, plan), out, "--max_length", str(plan.max_length),
        *(("--allow_task_transfer", "true") if plan.transfer else ()),
        *(("--plausibility.window_stride", str(plan.window_stride)) if plan.window_stride is not None else ()), *flags)


def rationale_finetune_command(s: ReproduceSettings, plan: RationalePlan) -> list[str]:
    return finetune_command(plan.dataset, plan.finetune or [], rationale_paths(s, plan)[0], "--data.max_length", str(plan.max_length))


def reproduce_rationales(s: ReproduceSettings, plan: RationalePlan, stages: Stages) -> dict[str, Any]:
    """One plausibility plan: (fine-tune,) choose or take IBA's layer and beta, (layer sweep,) evaluate every split."""
    runs, results = rationale_paths(s, plan)
    results.mkdir(parents=True, exist_ok=True)
    prefix, model = f"eraser/{plan.name}", rationale_model(s, plan)
    instances = "null" if plan.instances is None else str(plan.instances)
    validation = ["--split", "validation", "--instances", instances]
    command = partial(rationale_evaluate_command, s, plan)
    if plan.transfer:
        chosen = Path(s.results) / plan.model_from / "selection.json"
        if not chosen.is_file() or not (model / "config.json").is_file():
            raise LightningIBAError(f"rationale plan {plan.name} reuses the {plan.model_from} model and its {chosen}: "
                                    f"reproduce {plan.model_from} first (--only [{plan.model_from}])")
        taken = json.loads(chosen.read_text())
        selection = {**{k: taken[k] for k in ("layer", "layer_validation_drop", "beta", "beta_validation_drop")}, "rule": taken.get("rule", SELECTION_RULE),
                     "chosen_on": f"{plan.model_from} validation (Table 1's choice, {chosen})"}
        if plan.layer_sweep:
            stages.run(f"{prefix}/layer-sweep", command(runs / "layer-sweep", *validation, "--sweep", "layer"))
    else:
        stages.run(f"{prefix}/finetune", rationale_finetune_command(s, plan), done_when=model / "config.json")
        selection = {**choose_layer_and_beta(s, stages, prefix, runs, command, validation), "chosen_on": f"{plan.dataset} validation ({plan.instances or 'all'} instances)"}
    selection.update(model=str(model), trained_on=plan.model_from or plan.dataset, evaluated_on=plan.dataset, transfer=plan.transfer,
                     max_length=plan.max_length)
    (results / "selection.json").write_text(json.dumps(selection, indent=2) + "\n")
    for split in plan.splits:
        stages.run(f"{prefix}/evaluate-{split}", command(
            runs / f"eval-{split}", "--split", split, "--instances", instances, "--methods", plan.methods,
            "--layer", str(selection["layer"]), "--iba.beta", f"{selection['beta']:g}"))
    return selection


SMALL_FILES = ("table1.csv", "table1.md", "metrics.csv", "curves.csv", "curves.png", "differences.csv", "differences.md", "settings.json")
PLAUSIBILITY_FILES = ("plausibility.csv", "plausibility.md", "plausibility_differences.csv", "plausibility_differences.md", "plausibility_coverage.json")


def collect(s: ReproduceSettings) -> None:
    """Copies the small outputs of every finished stage to `results` (models and shards stay in `runs`)."""
    for plan in s.datasets:
        runs, results = Path(s.runs) / plan.name, Path(s.results) / plan.name
        copy_small(runs, results, ["layer-sweep", "beta-selection", *(f"eval-{split}" for split in plan.splits),
                                   *(f"figure2b-{e}" for e in s.figure2b_estimators)], SMALL_FILES)
    for rationale in s.rationales:
        runs, results = rationale_paths(s, rationale)
        folders = [f"eval-{split}" for split in rationale.splits]
        copy_small(runs, results, ["layer-sweep", "beta-selection", *folders], SMALL_FILES + PLAUSIBILITY_FILES)
        for folder in folders:
            if (results / folder).is_dir() and (accuracy := split_accuracy(runs / folder)) is not None:
                (results / folder / "accuracy.json").write_text(json.dumps(accuracy, indent=2) + "\n")
    write_figure2(s)
    write_summary(s)
    if s.rationales:
        write_plausibility_summary(s)


def copy_small(runs: Path, results: Path, folders: list[str], names: tuple[str, ...]) -> None:
    """The files `names` of each finished evaluation folder (it has table1.csv) and the model's finetune_metrics.json."""
    import shutil

    for folder in folders:
        if not (runs / folder / "table1.csv").is_file():
            continue
        (results / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            if (runs / folder / name).is_file():
                shutil.copy2(runs / folder / name, results / folder / name)
    metrics = runs / "model" / "finetune_metrics.json"
    if metrics.is_file():
        results.mkdir(parents=True, exist_ok=True)
        shutil.copy2(metrics, results / "finetune_metrics.json")


def split_accuracy(folder: Path, z: float = 1.959964) -> dict[str, Any] | None:
    """The model's accuracy on the evaluated instances (the records' predicted class against the gold label),
    with a 95 % Wilson interval; None without records that hold the prediction."""
    from lightning_iba.evaluation.shards import read_records

    predicted = {r["index"]: r["predicted"] == r["label"] for r in read_records(folder) if "predicted" in r}
    n = len(predicted)
    if not n:
        return None
    p = sum(predicted.values()) / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / (1 + z * z / n)
    return {"accuracy": round(p, 6), "lo": round(centre - half, 6), "hi": round(centre + half, 6), "n": n, "correct": int(sum(predicted.values())),
            "interval": "95 % Wilson"}


def sweep_points(metrics_csv: Path, prefix: str, **labels: Any) -> pd.DataFrame:
    """The rows of a sweep's metrics.csv whose label starts with `prefix` ("layer ", "beta "), with the
    label's number as column `value` and `labels` as constant columns."""
    table = pd.read_csv(metrics_csv, index_col=0)
    rows = table[table.index.astype(str).str.startswith(prefix)].copy()
    rows["value"] = [float(str(i).split()[1]) for i in rows.index]
    return rows.reset_index(drop=True).assign(**labels)


def write_figure2(s: ReproduceSettings) -> list[Path]:
    """Figure 2a (drop at the headline fraction per layer, every dataset) and 2b (per beta, both estimators,
    with "X only" dashed) as single panels in `results`, from the finished sweeps."""
    from lightning_iba.viz.curves import save_sweep

    written = []
    layers = [sweep_points(f, "layer ", dataset=p.name) for p in s.datasets if (f := Path(s.runs) / p.name / "layer-sweep" / "metrics.csv").is_file()]
    if layers:
        points = pd.concat(layers, ignore_index=True).rename(columns={"value": "layer"})
        drop = next(c for c in points.columns if c.startswith("drop_") and not c.endswith(("_lo", "_hi")))
        written.append(save_sweep(Path(s.results) / "figure2a.png", points, "layer", drop, "dataset",
                                  title=f"IBA after each layer, validation (n={s.validation_instances} per dataset)"))
    for p in s.datasets:
        runs = [(e, Path(s.runs) / p.name / f"figure2b-{e}" / "metrics.csv") for e in s.figure2b_estimators]
        runs = [(e, f) for e, f in runs if f.is_file()]
        if not runs:
            continue
        points = pd.concat([sweep_points(f, "beta ", estimator=e) for e, f in runs], ignore_index=True).rename(columns={"value": "beta"})
        drop = next(c for c in points.columns if c.startswith("drop_") and not c.endswith(("_lo", "_hi")))
        x_only = pd.concat([pd.read_csv(f, index_col=0).loc[["x only"]].assign(estimator=e) for e, f in runs])
        written.append(save_sweep(Path(s.results) / p.name / "figure2b.png", points, "beta", drop, "estimator", log_x=True,
                                  reference=x_only, title=f"{p.name}: IBA per beta, validation (n={s.figure2b_instances}); dashed: X only"))
    return written


#: Table 1's column order
ORDER = [("imdb", "test"), ("mnli", "test"), ("mnli", "test_mismatched"), ("agnews", "test"), ("rte", "test")]


def write_summary(s: ReproduceSettings) -> Path:
    """`<results>/table1.md` (ours beside the paper's, differences, readings) and `<results>/README.md`
    (command, commit, wall time per stage)."""
    from lightning_iba.evaluation.table1_summary import load_column, summary_markdown

    results = Path(s.results)
    planned = {(p.name, split) for p in s.datasets for split in p.splits}
    order = [k for k in ORDER if k in planned] + sorted(planned - set(ORDER))
    columns = [c for d, split in order if (c := load_column(results / d / f"eval-{split}", d, split)) is not None]
    rows = []
    for plan in s.datasets:
        model, chosen = results / plan.name / "finetune_metrics.json", results / plan.name / "selection.json"
        m = json.loads(model.read_text()) if model.is_file() else {}
        c = json.loads(chosen.read_text()) if chosen.is_file() else {}
        rows.append({"dataset": plan.name, "validation acc": m.get("validation_acc"), "validation n": m.get("validation_n"),
                     "held-out test acc": m.get("test_acc"), "test n": m.get("test_n"), "IBA layer": c.get("layer"), "IBA beta": c.get("beta")})
    table1 = results / "table1.md"
    table1.write_text(summary_markdown(columns, pd.DataFrame(rows)) if columns else "# Table 1\n\nNo evaluation has finished yet.\n")
    write_readme(s, results)
    return table1


#: The plausibility summary's metrics: (plausibility.csv column, heading)
SUMMARY_METRICS = (("token_f1", "token F1"), ("iou_f1", "IOU F1"), ("auprc", "AUPRC"))


def metric_cells(table: pd.DataFrame, first: str) -> pd.DataFrame:
    """One row per method of a plausibility.csv-like table (index: method), the column `first` holding the
    method, then one `value [lo, hi]` cell per summary metric ("—" where the table lacks it)."""
    from lightning_iba.evaluation.report import ci_cell

    shown = pd.DataFrame({first: table.index.astype(str)})
    for column, heading in SUMMARY_METRICS:
        shown[heading] = ([ci_cell(v, lo, hi) for v, lo, hi in zip(table[column], table[f"{column}_lo"], table[f"{column}_hi"])]
                          if {column, f"{column}_lo", f"{column}_hi"} <= set(table.columns) else "—")
    return shown


def accuracy_cell(accuracy: dict[str, Any] | None) -> str:
    return "—" if not accuracy else f"{accuracy['accuracy']:.3f} [{accuracy['lo']:.3f}, {accuracy['hi']:.3f}] (n={accuracy['n']})"


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def best_layer_reading(folder: Path) -> str | None:
    """Which layer's maps agree with the rationales most (token F1), and its paired difference from the runner-up."""
    table = pd.read_csv(folder / "plausibility.csv", index_col=0)
    scores = table[table.index.astype(str).str.startswith("layer ")]["token_f1"].sort_values(ascending=False, kind="stable")  # ties: the lower layer
    if scores.empty:
        return None
    best = scores.index[0]
    reading = f"Highest token F1: **{best}** ({scores.iloc[0]:.3f})"
    differences = folder / "plausibility_differences.csv"
    if len(scores) > 1 and differences.is_file():
        second = scores.index[1]
        d = pd.read_csv(differences)
        d = d[d["metric"] == "token_f1"]
        row = d[(d["method_a"] == best) & (d["method_b"] == second)]
        sign = 1.0
        if row.empty:
            row, sign = d[(d["method_a"] == second) & (d["method_b"] == best)], -1.0
        if not row.empty:
            diff, lo, hi = (sign * float(row.iloc[0][c]) for c in ("diff", "lo", "hi"))
            lo, hi = min(lo, hi), max(lo, hi)
            reading += (f"; minus the runner-up, {second}: {diff:+.3f} [{lo:+.3f}, {hi:+.3f}] "
                        f"({'excludes 0' if lo > 0 or hi < 0 else 'includes 0: no layer stands out'})")
    return reading + "."


def write_plausibility_summary(s: ReproduceSettings) -> Path:
    """`<results>/eraser/plausibility.md`: per plan and split the model's accuracy, the coverage and each method's
    token F1 / IOU F1 / AUPRC with intervals; the layer sweeps of plausibility; the stages with command, commit, wall time."""
    from lightning_iba.evaluation.plausibility_report import SPLIT_CAVEAT
    from lightning_iba.evaluation.report import markdown_table

    root = Path(s.results) / "eraser"
    root.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Plausibility against human rationales: ERASER Movie Reviews ({Path(s.results).name})", "",
        "Written by `make reproduce PROFILE=cpu` after Table 1 (`rationales` of the reproduction config). Per model and split: "
        "each method's agreement with the human rationales at ERASER's word level: token F1 of the top-k words (k = the "
        "review's rationale words), ERASER's IOU F1 (top-k spans matching a human span at IOU >= 0.5) and AUPRC, each "
        "`value [lo, hi]` with a 95 % paired-bootstrap interval; `n`: the reviews with a rationale word within what the model "
        "saw, coverage: the share of the rationale words it saw. Accuracy: the model's predictions on the evaluated reviews "
        "(95 % Wilson interval). Per folder `eval-<split>/`: plausibility.csv/.md, plausibility_differences.csv/.md, "
        "plausibility_coverage.json, accuracy.json, Table 1's files.",
        "", SPLIT_CAVEAT, "",
        "| model | trained on | evaluated on | IBA layer | IBA beta | chosen on | " + " | ".join(f"{split} accuracy" for split in ("validation", "test")) + " |",
        "|---|---|---|---|---|---|---|---|",
    ]
    sections: list[str] = []
    for plan in s.rationales:
        results = rationale_paths(s, plan)[1]
        chosen = read_json(results / "selection.json")
        trained = f"{plan.model_from} (**transfer**)" if plan.transfer else f"{plan.dataset} train"
        accuracy = {split: read_json(results / f"eval-{split}" / "accuracy.json") for split in ("validation", "test")}
        lines.append(f"| {plan.name} | {trained} | {plan.dataset}, {plan.max_length} tokens | {chosen.get('layer', '—')} | "
                     f"{chosen.get('beta', '—')} | {chosen.get('chosen_on', '—')} | {accuracy_cell(accuracy['validation'])} | {accuracy_cell(accuracy['test'])} |")
        for split in plan.splits:
            folder = results / f"eval-{split}"
            if not (folder / "plausibility.csv").is_file():
                sections += [f"## {plan.name}, {split}", "", "Not finished yet.", ""]
                continue
            table = pd.read_csv(folder / "plausibility.csv", index_col=0)
            coverage = read_json(folder / "plausibility_coverage.json")
            seen = (f"windows every {coverage['window_stride']} word pieces" if coverage.get("window_stride")
                    else f"the first {coverage.get('max_length', plan.max_length)} tokens")
            sections += [
                f"## {plan.name}, {split}" + (f" (transfer: the {plan.model_from} model)" if plan.transfer else ""), "",
                f"Accuracy {accuracy_cell(read_json(folder / 'accuracy.json') or None)}; plausibility n = {int(table['n'].iloc[0])} reviews; "
                f"coverage {100 * float(table['coverage'].iloc[0]):.1f} % of the rationale words (the model saw {seen}).", "",
                markdown_table(metric_cells(table, "method")), "",
            ]
        sweep = results / "layer-sweep"
        if (sweep / "plausibility.csv").is_file():
            table = pd.read_csv(sweep / "plausibility.csv", index_col=0)
            shown = metric_cells(table, "layer")
            metrics = pd.read_csv(sweep / "metrics.csv", index_col=0) if (sweep / "metrics.csv").is_file() else pd.DataFrame()
            drop = next((c for c in metrics.columns if c.startswith("drop_") and not c.endswith(("_lo", "_hi"))), None)
            if drop is not None:
                shown[f"{drop} (degradation)"] = [f"{v:.3f}" for v in metrics[drop].reindex(table.index)]
            sections += [f"## {plan.name}: which layer's maps agree with people most? (validation; IBA after each layer at the default "
                         "beta, as Table 1's layer sweeps)", "",
                         *([r, ""] if (r := best_layer_reading(sweep)) else []), markdown_table(shown), ""]
    done = [r for r in read_stages(Path(s.results)) if r["stage"].startswith("eraser/")]
    hours = sum(r["seconds"] for r in done if r["status"] == "done") / 3600
    text = "\n".join([*lines, "", *sections, "## Stages", "", f"Wall time of the finished stages: {hours:.2f} h (sum over stages).", "",
                      *stage_table(done), ""])
    path = root / "plausibility.md"
    path.write_text(text)
    return path


def read_stages(results: Path) -> list[dict[str, Any]]:
    log_file = results / "stages.jsonl"
    return [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()] if log_file.is_file() else []


def stage_table(stages: list[dict[str, Any]]) -> list[str]:
    """The stages as Markdown table lines: status, wall time, commit and command of each."""
    return ["| stage | status | wall time | commit | command |", "|---|---|---|---|---|",
            *[f"| {r['stage']} | {r['status']} | {r['seconds'] / 60:.1f} min | {r.get('commit', '')} | `{r['command']}` |" for r in stages]]


def write_readme(s: ReproduceSettings, results: Path) -> Path:
    stages = read_stages(results)
    commits = sorted({r.get("commit", "unknown") for r in stages})
    done = [r for r in stages if r["status"] == "done"]
    lines = [
        f"# Reproduction outputs ({Path(s.results).name})", "",
        "Written by `make reproduce PROFILE=cpu` (`python -m lightning_iba.cli.reproduce --config configs/reproduce/cpu.yaml`); "
        "run it again to continue after an interruption: finished stages are skipped.", "",
        f"- code: commit(s) {', '.join(f'`{c}`' for c in commits) or 'none yet'} (per stage below; `+changes`: tracked files differed from it)",
        f"- wall time of the finished stages: {sum(r['seconds'] for r in done) / 3600:.2f} h on this machine (sum over stages; "
        "every stage's own command is below)",
        "- `table1.md`: Table 1 with intervals beside the paper's; per dataset `<dataset>/`: `finetune_metrics.json`, "
        "`selection.json` (layer and beta chosen on validation), `layer-sweep/` (Figure 2a), `beta-selection/`, "
        "`eval-<split>/` (Table 1 column, Figure 1 curves, metrics, differences), `figure2b-<estimator>/` (Figure 2b).",
        *(["- `eraser/plausibility.md`: plausibility against ERASER's human rationales (the `rationales` plans: "
           + ", ".join(f"`{r.name}`" + (f" = the {r.model_from} model, transfer" if r.transfer else " = fine-tuned on its train split") for r in s.rationales)
           + "); per plan `eraser/<name>/`: `selection.json`, `eval-<split>/`, `layer-sweep/`."] if s.rationales else []), "",
        *stage_table(stages),
        "",
    ]
    path = results / "README.md"
    path.write_text("\n".join(lines))
    return path


@exit_on_user_error
def main(args: list[str] | None = None) -> None:
    setup_logging()
    s = parse(args)
    stages = Stages(Path(s.results))
    start = time.time()
    for plan in s.datasets:
        if not s.runs_plan(plan.name):
            continue
        reproduce_dataset(s, plan, stages)
        collect(s)
    for rationale in s.rationales:
        if not s.runs_plan(rationale.name, rationale=True):
            continue
        reproduce_rationales(s, rationale, stages)
        collect(s)
    collect(s)
    log.info("reproduce: finished in %.0f s (this invocation); stages and wall times in %s", time.time() - start, stages.log)


if __name__ == "__main__":
    main()
