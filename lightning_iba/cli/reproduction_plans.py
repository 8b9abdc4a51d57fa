"""The reproduction's stage sequences: per Table 1 dataset (fine-tune, choose IBA's layer and beta on validation,
evaluate the test splits, Figure 2b's beta sweeps; where Figure 2b's dataset-estimator sweep runs the selection's
instances and betas, it runs before the test and the beta is chosen in it) and per plausibility plan (fine-tune or take a Table 1 model and its
choice, layer sweep, evaluate every split); Table 1's rule for the layer and beta (`choose_layer_and_beta`, `best_row`)."""
from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from lightning_iba.cli.reproduction_commands import evaluate_command, finetune_command, rationale_evaluate_command, rationale_finetune_command, rationale_model
from lightning_iba.cli.reproduction_settings import DatasetPlan, RationalePlan, ReproduceSettings, beta_labels, rationale_paths
from lightning_iba.cli.reproduction_stages import Stages
from lightning_iba.errors import LightningIBAError
from lightning_iba.evaluation.degradation import drop_column

log = logging.getLogger("lightning_iba.reproduce")


def sweep_rows(metrics_csv: Path, prefix: str) -> pd.DataFrame:
    """The rows of a sweep's metrics.csv (index: the variant's label) whose label starts with `prefix` ("layer ", "beta ")."""
    table = pd.read_csv(metrics_csv, index_col=0)
    return table[table.index.astype(str).str.startswith(prefix)]


def best_row(metrics_csv: Path, prefix: str, among: set[str] | None = None) -> tuple[str, float]:
    """The sweep row (e.g. "layer 3", "beta 1e-05") with the largest drop at the headline fraction, and that drop;
    `among`: only these rows (labels as the sweep writes them, reproduction_settings.beta_labels)."""
    table = sweep_rows(metrics_csv, prefix)
    if among is not None:
        table = table[table.index.astype(str).isin(among)]
    rows = table[drop_column(table.columns)]
    if rows.empty:
        raise LightningIBAError(f"{metrics_csv} has no rows starting with {prefix!r}" + (f" among {sorted(among)}" if among is not None else ""))
    return str(rows.idxmax()), float(rows.max())


SELECTION_RULE = "largest drop at the headline fraction on validation instances (dataset estimator)"


class ModelAtChance(LightningIBAError):
    """A fine-tuned model that is not above chance on validation: its plan stops before anything is explained."""


def check_above_chance(s: ReproduceSettings, plan_name: str, task_name: str, model: Path) -> None:
    """ModelAtChance unless the model's validation accuracy (finetune_metrics.json) is above 1 / labels with 95 %
    confidence (Wilson); a model without a recorded validation accuracy is let through with a warning."""
    from lightning_iba.data.tasks import get_task
    from lightning_iba.evaluation.intervals import wilson_interval

    if not s.above_chance:
        return
    metrics_file = model / "finetune_metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    accuracy, n = metrics.get("validation_acc"), metrics.get("validation_n")
    if accuracy is None or not n:
        log.warning("reproduce: %s records no validation accuracy; cannot check that it is above chance", metrics_file)
        return
    chance = 1 / get_task(task_name).num_labels
    lo, hi = wilson_interval(round(accuracy * n), n)
    if lo <= chance:
        raise ModelAtChance(
            f"reproduce: the {plan_name} model is not above chance on validation ({accuracy:.1%} [{lo:.1%}, {hi:.1%}] on {n}, "
            f"chance {chance:.0%}): its attributions would all look alike. Tune its fine-tune on validation (its configs), delete "
            f"{model} and run again; the other plans go on")
    log.info("reproduce: the %s model is above chance on validation: %.1f%% [%.1f, %.1f] on %d (chance %.0f%%)",
             plan_name, 100 * accuracy, 100 * lo, 100 * hi, n, 100 * chance)


def choose_layer_and_beta(s: ReproduceSettings, stages: Stages, prefix: str, runs: Path, command: Callable[..., list[str]],
                          validation: list[str], beta_sweep: Callable[[int], tuple[str, Path, list[str]]] | None = None) -> dict[str, Any]:
    """Table 1's rule: a layer sweep, then a beta sweep at the chosen layer, on validation (`validation`: the
    flags choosing those instances); the layer and then the beta (among `selection_betas`) with the largest drop.
    `command(out, *flags)`. `beta_sweep(layer)`: (stage, folder, command) of a wider beta sweep on the same instances
    (Figure 2b's) that runs in place of the beta-selection stage (ReproduceSettings.beta_from_figure2b)."""
    stages.run(f"{prefix}/layer-sweep", command(runs / "layer-sweep", *validation, "--sweep", "layer"))
    layer_row, layer_drop = best_row(runs / "layer-sweep" / "metrics.csv", "layer ")
    layer = int(layer_row.split()[1])
    if beta_sweep is None:
        stage, folder, argv = f"{prefix}/beta-selection", runs / "beta-selection", command(
            runs / "beta-selection", *validation, "--sweep", "beta", "--layer", str(layer), "--betas", s.selection_betas)
    else:
        stage, folder, argv = beta_sweep(layer)
    stages.run(stage, argv)
    beta_row, beta_drop = best_row(folder / "metrics.csv", "beta ", beta_labels(s.selection_betas))
    beta = float(beta_row.split()[1])
    return {"layer": layer, "layer_validation_drop": layer_drop, "beta": beta, "beta_validation_drop": beta_drop, "rule": SELECTION_RULE,
            "beta_sweep": folder.name}


def reproduce_dataset(s: ReproduceSettings, plan: DatasetPlan, stages: Stages) -> dict[str, Any]:
    runs, results = Path(s.runs) / plan.name, Path(s.results) / plan.name
    results.mkdir(parents=True, exist_ok=True)
    stages.run(f"{plan.name}/finetune", finetune_command(plan.name, plan.finetune, runs), done_when=runs / "model" / "config.json")
    check_above_chance(s, plan.name, plan.name, runs / "model")
    validation = ["--split", "validation", "--instances", str(s.validation_instances), *plan.validation]

    def figure2b(layer: int, estimator: str) -> tuple[str, Path, list[str]]:
        folder = runs / f"figure2b-{estimator}"
        return f"{plan.name}/figure2b-{estimator}", folder, evaluate_command(
            s, plan, folder, "--split", "validation", "--instances", str(s.figure2b_instances),
            *plan.validation, "--sweep", "beta", "--layer", str(layer), "--betas", s.figure2b_betas, "--estimator.name", estimator)

    in_figure2b = s.beta_from_figure2b(plan)
    selection = choose_layer_and_beta(s, stages, plan.name, runs, partial(evaluate_command, s, plan), validation,
                                      beta_sweep=partial(figure2b, estimator="dataset") if in_figure2b else None)
    layer, beta = selection["layer"], selection["beta"]
    (results / "selection.json").write_text(json.dumps(selection, indent=2) + "\n")
    for split in plan.splits:
        instances = "null" if plan.test_instances is None else str(plan.test_instances)
        stages.run(f"{plan.name}/evaluate-{split}", evaluate_command(
            s, plan, runs / f"eval-{split}", "--split", split, "--instances", instances, "--methods", s.methods,
            "--layer", str(layer), "--iba.beta", f"{beta:g}"))
    if plan.figure2b:
        for estimator in s.figure2b_estimators:
            if not (in_figure2b and estimator == "dataset"):  # that one ran for the selection
                stage, _, argv = figure2b(layer, estimator)
                stages.run(stage, argv)
    return selection


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
        check_above_chance(s, prefix, plan.dataset, model)
        selection = {**choose_layer_and_beta(s, stages, prefix, runs, command, validation), "chosen_on": f"{plan.dataset} validation ({plan.instances or 'all'} instances)"}
    selection.update(model=str(model), trained_on=plan.model_from or plan.dataset, evaluated_on=plan.dataset, transfer=plan.transfer,
                     max_length=plan.max_length)
    (results / "selection.json").write_text(json.dumps(selection, indent=2) + "\n")
    for split in plan.splits:
        stages.run(f"{prefix}/evaluate-{split}", command(
            runs / f"eval-{split}", "--split", split, "--instances", instances, "--methods", plan.methods,
            "--layer", str(selection["layer"]), "--iba.beta", f"{selection['beta']:g}"))
    return selection
