"""Carrying a reproduction to another machine (a fresh clone): the committed `<results>` stand in for the large
outputs in `<runs>`, which only the machine that made them has.

- A finished evaluation stage whose folder is gone from `<runs>` is restored from its small outputs in `<results>`
  (tables, metrics, curves: what the later stages read) if they are of this stage's command (`stage.json`, written
  beside the outputs when the stage finished) and of the model now in `<runs>` (the same model fingerprint, so a
  fine-tune re-run on the new machine must have given the same weights); otherwise the stage runs again, and its new
  outputs replace the committed ones.
- `save_progress` copies the settings and shards of the stage in progress and its heartbeat (its command, and its
  running time so far, which keeps counting) to `<results>/<folder>/progress/`, for a commit to carry;
  `restore_progress` puts them back before the same command runs again, under the same model check (and
  `evaluate.py --resume` compares every other setting). Once the stage has finished, `collect` removes the copy.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from lightning_iba.errors import LightningIBAError
from lightning_iba.evaluation.settings import SETTINGS_FILE, read_settings
from lightning_iba.evaluation.shards import SHARD_DIR, done_indices
from lightning_iba.models.fingerprint import model_fingerprint

log = logging.getLogger("lightning_iba.reproduce")
PROGRESS_DIR = "progress"
HEARTBEAT_FILE = "heartbeat.json"  # in the progress folder: the running.json of the stage when it was saved
STAGE_FILE = "stage.json"  # beside a finished evaluation's outputs: {stage, command} of the run that wrote them


def write_stage_file(out: Path, stage: str, command: str) -> None:
    """Records, beside a finished evaluation's outputs, the stage and command that wrote them."""
    (out / STAGE_FILE).write_text(json.dumps({"stage": stage, "command": command}, indent=2) + "\n")


def stage_command(folder: Path) -> str | None:
    """The command recorded in `folder`/stage.json, None without one."""
    try:
        return json.loads((folder / STAGE_FILE).read_text())["command"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def committed_folder(out: Path, runs: Path, results: Path) -> Path | None:
    """The folder in `results` that holds the small outputs of the evaluation folder `out` under `runs` (same
    relative path), None if `out` is not under `runs`."""
    try:
        return Path(results) / Path(os.path.normpath(out)).relative_to(os.path.normpath(runs))
    except ValueError:
        return None


def argument(command: list[str], flag: str) -> str | None:
    """The value after `flag` in `command`, None without it."""
    return command[command.index(flag) + 1] if flag in command[:-1] else None


def same_model(settings_folder: Path, checkpoint: str | None) -> bool:
    """Whether the settings.json in `settings_folder` names the model now at `checkpoint`; False (with the reason
    logged) when it names another one or either is missing."""
    settings = read_settings(settings_folder)
    if settings is None or checkpoint is None:
        return False
    try:
        now = model_fingerprint(checkpoint)
    except (LightningIBAError, OSError, ValueError):  # no model there (yet), or a damaged one
        return False
    if settings["model_fingerprint"] != now:
        log.warning("reproduce: %s was computed with model %s, but %s is now model %s (fine-tuned again with other weights): "
                    "not reused", settings_folder, settings["model_fingerprint"], checkpoint, now)
        return False
    return True


def restore_finished(out: Path, committed: Path, command: str, checkpoint: str | None) -> bool:
    """Copies the committed small outputs of a finished evaluation back to `out` (absent or empty here) when they were
    written by `command` with the model at `checkpoint`; whether it did."""
    if not (committed / "table1.csv").is_file() or (out.exists() and any(out.iterdir())):
        return False
    if stage_command(committed) != command:
        log.warning("reproduce: %s was written by %s, not by this stage's command: not reused", committed, stage_command(committed) or "an unrecorded command")
        return False
    if not same_model(committed, checkpoint):
        return False
    out.mkdir(parents=True, exist_ok=True)
    for path in committed.iterdir():
        if path.is_file():
            shutil.copy2(path, out / path.name)
    log.info("reproduce: %s restored from %s (the same command and model, %s)", out, committed, read_settings(committed)["model_fingerprint"])
    return True


def restore_progress(out: Path, committed: Path, stage: str, command: str, checkpoint: str | None, running: Path) -> bool:
    """Puts a saved stage in progress back into `out` (which holds no evaluation) and its heartbeat into `running`
    (unless that already names `stage`), if it was saved from `command` with the model at `checkpoint`; whether it did."""
    saved = committed / PROGRESS_DIR
    if (out / SETTINGS_FILE).is_file() or not (saved / SETTINGS_FILE).is_file():
        return False
    try:
        heartbeat = json.loads((saved / HEARTBEAT_FILE).read_text())
    except (OSError, ValueError):
        heartbeat = {}
    if heartbeat.get("stage") != stage or heartbeat.get("command") != command:
        log.warning("reproduce: %s holds progress of %s, not of this stage's command: not resumed (the stage starts over)", saved,
                    heartbeat.get("command") or "an unrecorded command")
        return False
    if not same_model(saved, checkpoint):
        return False
    (out / SHARD_DIR).mkdir(parents=True, exist_ok=True)
    shutil.copy2(saved / SETTINGS_FILE, out / SETTINGS_FILE)
    for shard in (saved / SHARD_DIR).glob("*.jsonl"):
        shutil.copy2(shard, out / SHARD_DIR / shard.name)
    if not names_stage(running, stage):
        shutil.copy2(saved / HEARTBEAT_FILE, running)
    log.info("reproduce: %s: %d instances done before, restored from %s", stage, len(done_indices(out)), saved)
    return True


def names_stage(running: Path, stage: str) -> bool:
    try:
        return json.loads(running.read_text()).get("stage") == stage
    except (OSError, ValueError):
        return False


def save_progress(runs: Path, results: Path) -> str:
    """Copies the stage in progress (named by `<results>/running.json`) to `<results>/<folder>/progress/`; says what
    it saved."""
    running = Path(results) / "running.json"
    try:
        beat = json.loads(running.read_text())
    except (OSError, ValueError):
        raise LightningIBAError(f"no stage in progress ({running} is missing): nothing to save") from None
    out = Path(beat["out"]) if beat.get("out") else None
    committed = committed_folder(out, runs, results) if out else None
    if committed is None or not (out / SETTINGS_FILE).is_file():
        raise LightningIBAError(f"the stage in progress, {beat.get('stage')}, is not an evaluation under {runs} with results yet: nothing to save")
    if not beat.get("command"):
        raise LightningIBAError(f"the heartbeat of {beat.get('stage')} names no command (written by older code): restart the reproduction, then save")
    saved = committed / PROGRESS_DIR
    shutil.rmtree(saved, ignore_errors=True)
    (saved / SHARD_DIR).mkdir(parents=True)
    shutil.copy2(out / SETTINGS_FILE, saved / SETTINGS_FILE)
    for shard in (out / SHARD_DIR).glob("*.jsonl"):
        shutil.copy2(shard, saved / SHARD_DIR / shard.name)
    (saved / HEARTBEAT_FILE).write_text(json.dumps(beat) + "\n")  # the beat read above: the stage and command named
    return (f"{beat['stage']}: {len(done_indices(saved))} instances done ({beat['seconds'] / 3600:.2f} h over {beat['attempts']} "
            f"attempt(s)) saved to {saved}; commit it, and a fresh clone resumes from there")
