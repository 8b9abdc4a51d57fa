"""`make reproduce`: Table 1 and Figures 1-2 end to end, resumable, from one config (configs/reproduce/<profile>.yaml).

Per dataset, in order: fine-tune (skipped when the model exists), a layer sweep and then a beta sweep of
IBA on *validation* instances (the layer and beta with the largest validation drop are chosen; test is
never looked at), the evaluation of every method on the test split(s) with the chosen layer and beta,
then Figure 2b (a wide beta sweep with both estimators on validation). Every stage is a `train.py` or
`evaluate.py` command; the commands and their wall times are recorded in `<results>/stages.jsonl`, and
a stage that finished is skipped on the next run, so a killed reproduction restarts where it stopped
(`evaluate.py --resume true` continues a half-done evaluation instance by instance). The small outputs
(tables, curves, sweeps) are copied to `<results>` and summarised in `<results>/README.md`.
"""
from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
        only: run only these datasets (default: all).
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
    only: list[str] | None = None


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


def evaluate_command(s: ReproduceSettings, plan: DatasetPlan, out: Path, *flags: str) -> list[str]:
    configs = [f"configs/evaluate/{plan.name}.yaml", *plan.evaluate]
    return [sys.executable, "evaluate.py", *[a for c in configs for a in ("--config", c)],
            "--checkpoint", str(Path(s.runs) / plan.name / "model"), "--out", str(out), "--resume", "true",
            "--wandb_project", s.wandb_project, *s.evaluate_flags, *flags]


def best_row(metrics_csv: Path, prefix: str) -> tuple[str, float]:
    """The sweep row (e.g. "layer 3", "beta 1e-05") with the largest drop at the headline fraction, and that drop."""
    table = pd.read_csv(metrics_csv, index_col=0)
    drop = next(c for c in table.columns if c.startswith("drop_") and not c.endswith(("_lo", "_hi")))
    rows = table[table.index.astype(str).str.startswith(prefix)][drop]
    if rows.empty:
        raise LightningIBAError(f"{metrics_csv} has no rows starting with {prefix!r}")
    return str(rows.idxmax()), float(rows.max())


def reproduce_dataset(s: ReproduceSettings, plan: DatasetPlan, stages: Stages) -> dict[str, Any]:
    runs, results = Path(s.runs) / plan.name, Path(s.results) / plan.name
    results.mkdir(parents=True, exist_ok=True)
    model = runs / "model"
    stages.run(f"{plan.name}/finetune", [
        sys.executable, "train.py", "--config", f"configs/finetune/{plan.name}.yaml", *[a for c in plan.finetune for a in ("--config", c)],
        "--trainer.default_root_dir", str(runs), "--export.dirpath", str(model), "--export.overwrite", "true",
    ], done_when=model / "config.json")
    validation = ["--split", "validation", "--instances", str(s.validation_instances), *plan.validation]
    stages.run(f"{plan.name}/layer-sweep", evaluate_command(s, plan, runs / "layer-sweep", *validation, "--sweep", "layer"))
    layer_row, layer_drop = best_row(runs / "layer-sweep" / "metrics.csv", "layer ")
    layer = int(layer_row.split()[1])
    stages.run(f"{plan.name}/beta-selection", evaluate_command(
        s, plan, runs / "beta-selection", *validation, "--sweep", "beta", "--layer", str(layer), "--betas", s.selection_betas))
    beta_row, beta_drop = best_row(runs / "beta-selection" / "metrics.csv", "beta ")
    beta = float(beta_row.split()[1])
    selection = {"layer": layer, "layer_validation_drop": layer_drop, "beta": beta, "beta_validation_drop": beta_drop,
                 "rule": "largest drop at the headline fraction on validation instances (dataset estimator)"}
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


SMALL_FILES = ("table1.csv", "table1.md", "metrics.csv", "curves.csv", "curves.png", "differences.csv", "differences.md", "settings.json")


def collect(s: ReproduceSettings) -> None:
    """Copies the small outputs of every finished stage to `results` (models and shards stay in `runs`)."""
    import shutil

    for plan in s.datasets:
        runs, results = Path(s.runs) / plan.name, Path(s.results) / plan.name
        folders = ["layer-sweep", "beta-selection", *(f"eval-{split}" for split in plan.splits), *(f"figure2b-{e}" for e in s.figure2b_estimators)]
        for folder in folders:
            if not (runs / folder / "table1.csv").is_file():
                continue
            (results / folder).mkdir(parents=True, exist_ok=True)
            for name in SMALL_FILES:
                if (runs / folder / name).is_file():
                    shutil.copy2(runs / folder / name, results / folder / name)
        metrics = runs / "model" / "finetune_metrics.json"
        if metrics.is_file():
            shutil.copy2(metrics, results / "finetune_metrics.json")
    write_figure2(s)
    write_summary(s)


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


def write_readme(s: ReproduceSettings, results: Path) -> Path:
    stages = [json.loads(line) for line in (results / "stages.jsonl").read_text().splitlines() if line.strip()] if (results / "stages.jsonl").is_file() else []
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
        "`eval-<split>/` (Table 1 column, Figure 1 curves, metrics, differences), `figure2b-<estimator>/` (Figure 2b).", "",
        "| stage | status | wall time | commit | command |", "|---|---|---|---|---|",
        *[f"| {r['stage']} | {r['status']} | {r['seconds'] / 60:.1f} min | {r.get('commit', '')} | `{r['command']}` |" for r in stages],
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
        if s.only and plan.name not in s.only:
            continue
        reproduce_dataset(s, plan, stages)
        collect(s)
    collect(s)
    log.info("reproduce: finished in %.0f s (this invocation); stages and wall times in %s", time.time() - start, stages.log)


if __name__ == "__main__":
    main()
