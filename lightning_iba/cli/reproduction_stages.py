"""The reproduction's stage runner: `Stages` runs each command once, skips it on the next run when it finished,
and records the command, its wall time and the commit it ran with (`current_commit`) in `<results>/stages.jsonl`."""
from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lightning_iba.errors import LightningIBAError

log = logging.getLogger("lightning_iba.reproduce")
REPO = Path(__file__).resolve().parents[2]


class Stages:
    """Runs commands as stages, skipping finished ones, recording each command and its wall time."""

    def __init__(self, results: Path):
        self.log = results / "stages.jsonl"
        results.mkdir(parents=True, exist_ok=True)

    def done(self) -> dict[str, dict[str, Any]]:
        """The finished stages by name (the last record of each)."""
        return {r["stage"]: r for r in read_stages(self.log.parent) if r.get("status") == "done"}

    def run(self, stage: str, command: list[str], done_when: Path | None = None) -> None:
        """Runs `command` unless the stage finished before (and its output `done_when`, if given, exists)."""
        finished = self.done().get(stage)
        if finished and (done_when is None or done_when.exists()):
            log.info("reproduce: %s done before (%.0f s), skipped", stage, finished["seconds"])
            return
        printable = printable_command(command)
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


def printable_command(command: list[str]) -> str:
    """The command as a reader re-runs it from the repository root: this machine's interpreter path is `python`."""
    return " ".join(shlex.quote("python" if i == 0 and c == sys.executable else c) for i, c in enumerate(command))


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
