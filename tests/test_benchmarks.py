"""The GPU benchmark script runs end to end (on the CPU, tiny sizes) and writes the JSON the README quotes."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import REPO


@pytest.mark.slow
def test_gpu_script_dry_run_writes_every_part(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    proc = subprocess.run(["bash", "benchmarks/gpu.sh", "--dry-run", "--out", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "dry-run"
    for part in ("iba", "methods", "evaluation"):
        assert report[part]["status"] == "ok", (part, report[part])
    assert report["iba"]["agreement"]["min_spearman"] > 0.99  # batched and per-instance paths agree
    assert set(report["methods"]["methods"]) == {"iba", "ig", "lime", "random", "gradxinput", "attention"}
    assert report["evaluation"]["instances_done"] == report["evaluation"]["instances"]
    assert "drop_11" in report["evaluation"]["metrics_csv"]
