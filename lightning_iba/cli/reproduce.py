"""`make reproduce`: Table 1 and Figures 1-2 end to end, resumable, from one config (configs/reproduce/<profile>.yaml).

Per dataset, in order: fine-tune (skipped when the model exists), a layer sweep and then a beta sweep of
IBA on *validation* instances (the layer and beta with the largest validation drop are chosen; test is
never looked at), the evaluation of every method on the test split(s) with the chosen layer and beta,
then Figure 2b (a wide beta sweep with both estimators on validation; where its dataset-estimator sweep runs the
selection's instances and betas, it runs before the test evaluation and the beta is chosen in it). Every stage is a `train.py` or
`evaluate.py` command; the commands and their wall times are recorded in `<results>/stages.jsonl`, and
a stage that finished is skipped on the next run, so a killed reproduction restarts where it stopped
(`evaluate.py --resume true` continues a half-done evaluation instance by instance). The small outputs
(tables, curves, sweeps) are copied to `<results>` and summarised in `<results>/README.md`.

After Table 1, the plausibility plans (`rationales`): a model explained on a task with human rationales
(ERASER Movie Reviews), either a Table 1 model applied to it (`model_from`, a transfer run) or one
fine-tuned on its train split (`finetune`); its methods evaluated on validation and test against the
rationales (plausibility.csv), with a layer sweep of plausibility; summarised in `<results>/eraser/plausibility.md`.

This module is the entry point only: it parses the config into the settings and runs the plans in order. The parts:
reproduction_settings (the settings), reproduction_stages (the resumable stage runner), reproduction_commands (the
stage command lines), reproduction_plans (the stage sequences and the layer and beta choice), reproduction_outputs
(collecting the small outputs), reproduction_figures (Figure 2), reproduction_summaries (the Markdown pages) and
reproduction_status (`--status true`: where a run stands) and reproduction_carry (going on from a fresh clone: finished
stages from the committed results, a stage in progress from what `--save_progress true` committed).
"""
from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path

from jsonargparse import ActionConfigFile, ArgumentParser

from lightning_iba.cli.common import setup_logging
from lightning_iba.cli.reproduction_carry import save_progress
from lightning_iba.cli.reproduction_commands import rationale_evaluate_command, rationale_finetune_command
from lightning_iba.cli.reproduction_figures import sweep_points, write_figure2
from lightning_iba.cli.reproduction_outputs import collect, split_accuracy
from lightning_iba.cli.reproduction_plans import best_row, reproduce_dataset, reproduce_rationales
from lightning_iba.cli.reproduction_settings import RATIONALE_METHODS, DatasetPlan, RationalePlan, ReproduceSettings
from lightning_iba.cli.reproduction_stages import Stages
from lightning_iba.cli.reproduction_status import status_text
from lightning_iba.errors import LightningIBAError, exit_on_user_error

#: what the tests and callers import from here (the parts live in the reproduction_* modules)
__all__ = ["RATIONALE_METHODS", "DatasetPlan", "RationalePlan", "ReproduceSettings", "Stages", "best_row", "build_parser", "collect", "main",
           "parse", "rationale_evaluate_command", "rationale_finetune_command", "reproduce_dataset", "reproduce_rationales", "split_accuracy",
           "sweep_points", "write_figure2"]

log = logging.getLogger("lightning_iba.reproduce")


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m lightning_iba.cli.reproduce", description="Table 1 and Figures 1-2, resumable.")
    p.add_argument("--config", action=ActionConfigFile, help="configs/reproduce/<profile>.yaml")
    p.add_class_arguments(ReproduceSettings, None)
    p.add_argument("--status", type=bool, default=False, help="print where the reproduction stands (every stage, done or not) and exit")
    p.add_argument("--save_progress", type=bool, default=False,
                   help="copy the stage in progress (settings, shards, heartbeat) into <results> for a commit to carry to another machine, and exit")
    return p


def parse(args: list[str] | None = None) -> ReproduceSettings:
    return settings_from(build_parser().parse_args(args).as_dict())


def settings_from(cfg: dict) -> ReproduceSettings:
    """The reproduction's settings from a parsed config, checked."""
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


@exit_on_user_error
def main(args: list[str] | None = None) -> None:
    setup_logging()
    cfg = build_parser().parse_args(args).as_dict()
    s = settings_from(cfg)
    if cfg["status"]:
        print(status_text(s))
        return
    if cfg["save_progress"]:
        print(save_progress(Path(s.runs), Path(s.results)))
        return
    stages = Stages(Path(s.results), runs=Path(s.runs), after=partial(collect, s))
    start = time.time()
    stopped: list[str] = []
    plans = [(plan.name, partial(reproduce_dataset, s, plan)) for plan in s.datasets if s.runs_plan(plan.name)]
    plans += [(f"eraser/{r.name}", partial(reproduce_rationales, s, r)) for r in s.rationales if s.runs_plan(r.name, rationale=True)]
    for name, run in plans:
        try:
            run(stages)
        except LightningIBAError as err:  # a failed stage or a model at chance stops its own plan, not the others
            log.error("%s", err)
            stopped.append(f"{name} ({err})")
        collect(s)
    log.info("reproduce: finished in %.0f s (this invocation); stages and wall times in %s", time.time() - start, stages.log)
    if stopped:
        raise LightningIBAError(f"reproduce: {len(stopped)} plan(s) stopped, the others ran: " + "; ".join(stopped))


if __name__ == "__main__":
    main()
