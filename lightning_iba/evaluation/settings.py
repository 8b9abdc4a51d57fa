"""An evaluation's settings file: written before any work, compared on --resume, read back by the report.

`settings.json` in the output folder holds the settings that determine the results (the identity:
model fingerprint, task, data, methods and their options, IBA, estimator, degradation grid and
headline fraction), under "execution" those that only change how fast the run goes, and under
"report" those that only change how the results are reported (the bootstrap intervals). Neither of
the last two is compared on --resume: a resume with other report settings re-reports.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lightning_iba.errors import LightningIBAError

SETTINGS_FILE = "settings.json"
EXECUTION = "execution"
REPORT = "report"
#: Keys of settings.json that a resume may change.
NOT_COMPARED = (EXECUTION, REPORT)


def read_settings(out: str | Path) -> dict[str, Any] | None:
    """The settings file of an output folder, None if there is none; one-line error if it is damaged. A file written
    before ERASER's bins could count words reads as the word-piece unit it used, one written before the target
    was a setting as the gold label it explained."""
    path = Path(out) / SETTINGS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LightningIBAError(
            f"{path} is damaged ({err.__class__.__name__}: {err}); restore it, or start over in an empty --out"
        ) from None
    if not isinstance(data, dict) or "model_fingerprint" not in data:
        raise LightningIBAError(f"{path} is not an evaluation settings file of this version; start over in an empty --out")
    data.setdefault("target", "gold")
    if isinstance(data.get("plausibility"), dict) and "bin_unit" not in data["plausibility"]:
        data["plausibility"] = {**data["plausibility"], "bin_unit": "piece"}
    return data


def write_settings(out: str | Path, identity: dict[str, Any], execution: dict[str, Any], report: dict[str, Any] | None = None) -> Path:
    """Writes settings.json atomically (a kill never leaves half of it)."""
    path = Path(out) / SETTINGS_FILE
    tmp = path.with_name(f".{SETTINGS_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**identity, EXECUTION: execution, **({REPORT: report} if report is not None else {})}, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def check_resumable(out: str | Path, identity: dict[str, Any], resume: bool) -> None:
    """Refuses to mix results: an output folder with results needs --resume, the same model and the same settings."""
    previous = read_settings(out)
    if previous is None:
        return
    path = Path(out) / SETTINGS_FILE
    if not resume:
        raise LightningIBAError(f"{out} already holds an evaluation; pass --resume to continue it, or choose another --out")
    if previous.get("model_fingerprint") != identity.get("model_fingerprint"):
        raise LightningIBAError(
            f"--resume refused: {out} holds results of model {previous.get('model_fingerprint')} ({previous.get('checkpoint')}), "
            f"but {identity.get('checkpoint')} is now model {identity.get('model_fingerprint')} (retrained?); use another --out"
        )
    before, now = comparable(previous), comparable(identity)
    diff = [f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(before) | set(now))
            if k not in NOT_COMPARED and before.get(k) != now.get(k)]
    if diff:
        raise LightningIBAError(f"--resume with different settings than {path} ({'; '.join(diff)})")


def comparable(settings: Any) -> Any:
    """Settings without where this machine keeps the model and the data: the checkpoint's path (the model is compared by
    its fingerprint) and the path beside each content digest (the data by that digest). So a run copied to another
    machine or clone (reproduction_carry) resumes there, and a changed model or file is still refused."""
    if isinstance(settings, dict):
        return {k: comparable(v) for k, v in settings.items()
                if not (k == "checkpoint" and "model_fingerprint" in settings) and not (k == "path" and "sha256" in settings)}
    return settings
