"""The timing report: seconds per instance per method and device, from the shard writer's per-batch timing files."""
from __future__ import annotations

import json

import pytest

from lightning_iba.evaluation.timing import timing_table, write_timing


def write(path, entries):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))


def entry(indices, device, **seconds):
    return {"indices": indices, "device": device, "seconds": {m: {"attribution": a, "degradation": d} for m, (a, d) in seconds.items()}}


def test_seconds_per_instance_per_method_and_device_each_batch_once(tmp_path):
    write(tmp_path / "shards" / "timing-rank-0.jsonl", [
        entry([0, 1], "cpu (2 threads)", iba=(4.0, 1.0), random=(0.0, 1.0)),
        entry([0, 1], "cpu (2 threads)", iba=(40.0, 10.0), random=(0.0, 10.0)),  # the same batch again: counted once
        entry([5, 6, 7], "NVIDIA H100", iba=(0.3, 0.3), random=(0.0, 0.3)),  # resumed on a GPU: rows of its own
    ])
    (tmp_path / "shards" / "timing-rank-1.jsonl").write_text(json.dumps(entry([2, 3], "cpu (2 threads)", iba=(2.0, 1.0), random=(0.2, 1.0))) + "\n"
                                                           + '{"indices": [4], "dev')  # cut short by a kill: skipped
    table = timing_table(tmp_path, ["iba", "random"]).set_index(["device", "method"])
    assert table.loc[("cpu (2 threads)", "iba"), "instances"] == 4
    assert table.loc[("cpu (2 threads)", "iba"), "attribution_s"] == pytest.approx(6.0 / 4)
    assert table.loc[("cpu (2 threads)", "iba"), "total_s"] == pytest.approx(8.0 / 4)
    assert table.loc[("cpu (2 threads)", "random"), "degradation_s"] == pytest.approx(2.0 / 4)
    assert table.loc[("NVIDIA H100", "iba"), "instances"] == 3 and table.loc[("NVIDIA H100", "iba"), "total_s"] == pytest.approx(0.2)
    assert list(timing_table(tmp_path, ["random"])["method"].unique()) == ["random"]  # only the methods asked for


def test_no_timing_file_means_no_timing_report(tmp_path):
    (tmp_path / "shards").mkdir()
    assert write_timing(tmp_path, ["iba"]) is None and not (tmp_path / "timing.csv").exists()
