"""The reproduction's stage runner: `Stages` runs each command once, skips it on the next run when it finished,
and records the command, its wall time and the commit it ran with (`current_commit`) in `<results>/stages.jsonl`.

A stage killed mid-way (the machine's session ended) resumes when the reproduction is run again; its recorded wall
time is the running time of every attempt, kept across kills by a heartbeat file (`<results>/running.json`)."""
from __future__ import annotations

import json
import logging
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from lightning_iba.cli.reproduction_carry import argument, committed_folder, restore_finished, restore_progress, write_stage_file
from lightning_iba.errors import LightningIBAError

log = logging.getLogger("lightning_iba.reproduce")
REPO = Path(__file__).resolve().parents[2]
HEARTBEAT_SECONDS = 30  # a killed attempt's running time is known to within this
INTERPRETER = re.compile(r"^/\S*/python[0-9.]*\s")  # a machine's interpreter path at the start of a recorded command


class Stages:
    """Runs commands as stages, skipping finished ones, recording each command and its wall time."""

    def __init__(self, results: Path, runs: Path | None = None, after: Callable[[], None] | None = None):
        """`runs`: the folder of the large outputs; given, an evaluation stage whose folder there is gone (another
        machine) is taken from the committed outputs in `results` where they are of the same command and model
        (reproduction_carry). `after`: called after each stage that finished (the reproduction collects its outputs, so
        that `results` never pairs a stage's record with an older run's outputs for longer than that)."""
        self.log = results / "stages.jsonl"
        self.running = results / "running.json"  # {stage, seconds, attempts, commits, out, command} of the stage in progress
        self.results, self.runs, self.after = results, runs, after
        results.mkdir(parents=True, exist_ok=True)

    def done(self) -> dict[str, dict[str, Any]]:
        """The finished stages by name (the last record of each)."""
        return {r["stage"]: r for r in read_stages(self.log.parent) if r.get("status") == "done"}

    def run(self, stage: str, command: list[str], done_when: Path | None = None) -> None:
        """Runs `command` unless the stage finished before (and its output `done_when`, if given, exists)."""
        finished = self.done().get(stage)
        printable = printable_command(command)
        out = argument(command, "--out")  # an evaluation's folder: its progress
        committed = committed_folder(Path(out), self.runs, self.results) if out and self.runs is not None else None
        if finished and (done_when is None or done_when.exists()):
            if as_rerun(finished["command"]) != printable:
                log.warning("reproduce: %s finished before with another command, so it runs again; was: %s", stage, as_rerun(finished["command"]))
            elif committed is None or (Path(out) / "table1.csv").is_file() or restore_finished(Path(out), committed, printable, argument(command, "--checkpoint")):
                log.info("reproduce: %s done before (%.0f s), skipped", stage, finished["seconds"])
                return
            else:
                log.warning("reproduce: %s finished before, but neither %s nor its committed outputs (this command, same model) are "
                            "here, so it runs again", stage, out)
        if committed is not None:
            restore_progress(Path(out), committed, stage, printable, argument(command, "--checkpoint"), self.running)
        earlier = self._earlier_attempts(stage)
        if finished and not earlier["attempts"] and out and Path(out).exists():  # a re-run's first attempt: keep the old results
            aside = move_aside(Path(out))
            log.warning("reproduce: %s: the earlier run's outputs moved to %s (the re-run would refuse to mix with them)", stage, aside)
        log.info("reproduce: %s%s: %s", stage, f" (attempt {earlier['attempts'] + 1}, {earlier['seconds']:.0f} s before)"
                 if earlier["attempts"] else "", printable)
        commit = current_commit()  # the code the stage runs with
        before = earlier.get("commits", ["unknown"] if earlier["attempts"] else [])  # a heartbeat of older code kept none
        commits = list(dict.fromkeys([*before, commit]))  # every attempt's, first seen first
        start = time.time()
        elapsed = lambda: round(earlier["seconds"] + time.time() - start, 1)  # noqa: E731
        beat = lambda: self._beat(stage, elapsed(), earlier["attempts"] + 1, commits, out, printable)  # noqa: E731
        process = subprocess.Popen(command, cwd=REPO)
        beat()  # a kill before the first interval still counts the attempt
        while True:
            try:
                returncode = process.wait(timeout=HEARTBEAT_SECONDS)
                break
            except subprocess.TimeoutExpired:
                beat()
        seconds = elapsed()
        if returncode == 0 and out and Path(out).is_dir():  # before the record: a kill between the two leaves no stale stage.json
            write_stage_file(Path(out), stage, printable)
        with self.log.open("a") as fh:
            fh.write(json.dumps({"stage": stage, "command": printable, "seconds": seconds, "attempts": earlier["attempts"] + 1,
                                 "commit": commit, "commits": commits, "status": "done" if returncode == 0 else f"failed ({returncode})",
                                 "finished": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
        self.running.unlink(missing_ok=True)
        if returncode != 0:
            raise LightningIBAError(f"reproduce: stage {stage} failed (exit {returncode}); fix it and run the same command again")
        if self.after is not None:
            self.after()

    def _earlier_attempts(self, stage: str) -> dict[str, Any]:
        """Running time, number and commits of the killed attempts at `stage` (none if the heartbeat names another stage)."""
        try:
            beat = json.loads(self.running.read_text())
        except (OSError, ValueError):
            beat = {}
        return beat if beat.get("stage") == stage else {"stage": stage, "seconds": 0.0, "attempts": 0, "commits": []}

    def _beat(self, stage: str, seconds: float, attempts: int, commits: list[str], out: str | None = None, command: str | None = None) -> None:
        partial = self.running.with_suffix(".tmp")
        partial.write_text(json.dumps({"stage": stage, "seconds": seconds, "attempts": attempts, "commits": commits,
                                       **({"out": out} if out else {}), **({"command": command} if command else {})}))
        partial.replace(self.running)  # atomic: a kill leaves the previous beat or this one


def move_aside(folder: Path) -> Path:
    """Renames `folder` to `<folder>-superseded-<k>` (the first k free) and returns the new path."""
    k = 1
    while (aside := folder.with_name(f"{folder.name}-superseded-{k}")).exists():
        k += 1
    folder.rename(aside)
    return aside


def printable_command(command: list[str]) -> str:
    """The command as a reader re-runs it from the repository root: this machine's interpreter path is `python`."""
    return " ".join(shlex.quote("python" if i == 0 and c == sys.executable else c) for i, c in enumerate(command))


def as_rerun(recorded: str) -> str:
    """A recorded command as `printable_command` writes it today (older records name this machine's interpreter path)."""
    return INTERPRETER.sub("python ", recorded)


def read_stages(results: Path) -> list[dict[str, Any]]:
    """Every record of `<results>/stages.jsonl`, in the order written (none before the first stage)."""
    log_file = results / "stages.jsonl"
    return [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()] if log_file.is_file() else []


def current_commit() -> str:
    """The checked-out commit, with "+changes" when tracked files other than the committed outputs under results/
    differ from it (recorded with every stage: a run rewrites its own results/, which says nothing about its code)."""
    git = lambda *a: subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()  # noqa: E731
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results") else "")
