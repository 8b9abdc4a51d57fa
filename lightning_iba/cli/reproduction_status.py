"""Where a reproduction stands (`make reproduce-status`): every stage the plans will run, in order, with what the
records say of it: done (wall time, attempts), running or interrupted (the heartbeat's running time), failed, or
not started, or saved (a stage in progress committed by `--save_progress`). It reads `<results>/stages.jsonl`,
`<results>/running.json` and the saved progress only; nothing is run or changed.
"done" is the record's word: a stage whose command has changed since (new flags, another chosen layer) is
re-run by `make reproduce`, which says so, but not flagged here (the commands depend on earlier stages' outputs)."""
from __future__ import annotations

import json
import time
from pathlib import Path

from lightning_iba.cli.reproduction_carry import HEARTBEAT_FILE, PROGRESS_DIR
from lightning_iba.cli.reproduction_settings import ReproduceSettings
from lightning_iba.cli.reproduction_stages import HEARTBEAT_SECONDS, read_stages
from lightning_iba.errors import LightningIBAError


def planned_stages(s: ReproduceSettings) -> list[str]:
    """The names of the stages the reproduction runs, in order (`--only` applied), as reproduction_plans names them."""
    names = []
    for plan in s.datasets:
        if s.runs_plan(plan.name):
            in_figure2b = s.beta_from_figure2b(plan)  # the beta is chosen in Figure 2b's dataset-estimator sweep
            names += [f"{plan.name}/{stage}" for stage in ("finetune", "layer-sweep", "figure2b-dataset" if in_figure2b else "beta-selection")]
            names += [f"{plan.name}/evaluate-{split}" for split in plan.splits]
            names += [f"{plan.name}/figure2b-{e}" for e in s.figure2b_estimators if not (in_figure2b and e == "dataset")] if plan.figure2b else []
    for r in s.rationales:
        if s.runs_plan(r.name, rationale=True):
            prefix = f"eraser/{r.name}"
            if r.transfer:
                names += [f"{prefix}/layer-sweep"] if r.layer_sweep else []
            else:
                names += [f"{prefix}/{stage}" for stage in ("finetune", "layer-sweep", "beta-selection")]
            names += [f"{prefix}/evaluate-{split}" for split in r.splits]
    return names


def progress(out: str | None) -> str:
    """", 96 of 200 instances done" for an evaluation's output folder (its shards and settings.json); "" otherwise."""
    from lightning_iba.evaluation.settings import read_settings
    from lightning_iba.evaluation.shards import done_indices

    if not out or not Path(out).is_dir():
        return ""
    try:
        done = len(done_indices(Path(out)))
        wanted = (read_settings(Path(out)) or {}).get("instances")
    except (LightningIBAError, OSError):  # a damaged folder: the status says nothing of it (evaluate.py names the damage on resume)
        return ""
    return f", {done} of {wanted} instances done" if isinstance(wanted, int) else f", {done} instances done"


def stage_states(s: ReproduceSettings, now: float | None = None) -> list[tuple[str, str]]:
    """(stage, state) for every planned stage, then for recorded stages no plan names any more."""
    results = Path(s.results)
    last: dict[str, dict] = {}
    for record in read_stages(results):
        if record.get("status") == "done" or last.get(record["stage"], {}).get("status") != "done":
            last[record["stage"]] = record  # the last finished record, else the last record
    heartbeat = results / "running.json"
    try:
        beat = json.loads(heartbeat.read_text())
        age = (now or time.time()) - heartbeat.stat().st_mtime
    except (OSError, ValueError):
        beat, age = {}, 0.0
    saved = {}  # stage -> its progress committed by `--save_progress` (reproduction_carry), resumed on the next run
    for path in sorted(results.glob(f"**/{PROGRESS_DIR}/{HEARTBEAT_FILE}")):
        try:
            saved[json.loads(path.read_text())["stage"]] = json.loads(path.read_text()) | {"out": str(path.parent)}
        except (OSError, ValueError, KeyError):
            continue
    planned = planned_stages(s)
    states = []
    for name in [*planned, *(n for n in last if n not in planned)]:
        record = last.get(name)
        if beat.get("stage") == name:
            alive = age <= 2 * HEARTBEAT_SECONDS + 10  # beats every HEARTBEAT_SECONDS while the stage runs
            attempt = f"attempt {beat.get('attempts', 1)}"
            attempt += progress(beat.get("out"))
            state = (f"running: {beat['seconds'] / 60:.1f} min so far ({attempt})" if alive else
                     f"interrupted after {beat['seconds'] / 60:.1f} min ({attempt}; {age / 60:.0f} min ago): run the reproduction again to resume it")
            if record is not None and record.get("status") == "done":
                state += "; it had finished before with another command"
        elif (kept := saved.get(name)) is not None and (record is None or record.get("status") != "done"):
            state = (f"saved after {kept['seconds'] / 60:.1f} min (attempt {kept.get('attempts', 1)}{progress(kept['out'])}) in {kept['out']}: "
                     "the next run resumes it if its command is unchanged")
        elif record is None:
            state = "not started"
        elif record.get("status") == "done":
            attempts = record.get("attempts", 1)
            state = f"done: {record['seconds'] / 60:.1f} min" + (f" ({attempts} attempts)" if attempts > 1 else "") + f", {record.get('finished', '')}"
        else:
            state = f"{record['status']} after {record['seconds'] / 60:.1f} min: fix it and run again"
        states.append((name, state + ("" if name in planned else " (not in the plans now)")))
    return states


def status_text(s: ReproduceSettings, now: float | None = None) -> str:
    """The stage states as aligned text lines, with a count of the finished ones."""
    states = stage_states(s, now)
    width = max((len(n) for n, _ in states), default=0)
    done = sum(state.startswith("done") for _, state in states)
    return "\n".join([f"reproduction {s.results}: {done} of {len(states)} stages done", *(f"  {n:<{width}}  {state}" for n, state in states)])
