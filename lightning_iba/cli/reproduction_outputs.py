"""The reproduction's small outputs: `collect` copies them from `<runs>` to `<results>` after each stage and plan (tables,
curves, sweeps, plausibility files, each evaluated split's accuracy with a Wilson interval), then writes Figure 2 and
the summaries."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightning_iba.cli.reproduction_carry import PROGRESS_DIR, STAGE_FILE
from lightning_iba.cli.reproduction_figures import write_figure2
from lightning_iba.cli.reproduction_settings import ReproduceSettings, rationale_paths
from lightning_iba.cli.reproduction_summaries import write_plausibility_summary, write_summary
from lightning_iba.evaluation.report import LABEL_FILES, SEGMENT_FILES, STRATA_FILES


#: the report's breakdowns that a re-report may drop (evaluate.py --bootstrap.strata 0, --bootstrap.by_label false, ...)
OPTIONAL_FILES = (*STRATA_FILES, *LABEL_FILES, *SEGMENT_FILES)
SMALL_FILES = ("table1.csv", "table1.md", "metrics.csv", "curves.csv", "curves.png", "differences.csv", "differences.md", "settings.json", "timing.csv",
               STAGE_FILE, *OPTIONAL_FILES)
PLAUSIBILITY_FILES = ("plausibility.csv", "plausibility.md", "plausibility_differences.csv", "plausibility_differences.md", "plausibility_coverage.json")


def collect(s: ReproduceSettings) -> None:
    """Copies the small outputs of every finished stage to `results` (models and shards stay in `runs`)."""
    for plan in s.datasets:
        runs, results = Path(s.runs) / plan.name, Path(s.results) / plan.name
        selection = [] if s.beta_from_figure2b(plan) else ["beta-selection"]  # else the beta is chosen in figure2b-dataset
        copy_small(runs, results, ["layer-sweep", *selection, *(f"eval-{split}" for split in plan.splits),
                                   *(f"figure2b-{e}" for e in s.figure2b_estimators)], SMALL_FILES)
    for rationale in s.rationales:
        runs, results = rationale_paths(s, rationale)
        folders = [f"eval-{split}" for split in rationale.splits]
        copy_small(runs, results, ["layer-sweep", "beta-selection", *folders], SMALL_FILES + PLAUSIBILITY_FILES)
        for folder in folders:
            if (results / folder).is_dir() and (accuracy := split_accuracy(runs / folder)) is not None:
                (results / folder / "accuracy.json").write_text(json.dumps(accuracy, indent=2) + "\n")
    write_figure2(s)
    write_summary(s)
    if s.rationales:
        write_plausibility_summary(s)


def copy_small(runs: Path, results: Path, folders: list[str], names: tuple[str, ...]) -> None:
    """The files `names` of each finished evaluation folder (it has table1.csv) and the model's finetune_metrics.json. A
    report's optional breakdowns that the run no longer has (re-reported without them) are removed from `results`
    too, so they never contradict the run's settings."""
    import shutil

    for folder in folders:
        if not (runs / folder / "table1.csv").is_file():
            continue
        (results / folder).mkdir(parents=True, exist_ok=True)
        shutil.rmtree(results / folder / PROGRESS_DIR, ignore_errors=True)  # the stage's saved progress: finished now
        for name in names:
            if (runs / folder / name).is_file():
                shutil.copy2(runs / folder / name, results / folder / name)
            elif name in OPTIONAL_FILES or name == STAGE_FILE:  # a stage.json of an older run would vouch for these outputs
                (results / folder / name).unlink(missing_ok=True)
    metrics = runs / "model" / "finetune_metrics.json"
    if metrics.is_file():
        results.mkdir(parents=True, exist_ok=True)
        shutil.copy2(metrics, results / "finetune_metrics.json")


def split_accuracy(folder: Path) -> dict[str, Any] | None:
    """The model's accuracy on the evaluated instances (the records' predicted class against the gold label),
    with a 95 % Wilson interval; None without records that hold the prediction."""
    from lightning_iba.evaluation.intervals import wilson_interval
    from lightning_iba.evaluation.shards import read_records

    predicted = {r["index"]: r["predicted"] == r["label"] for r in read_records(folder) if "predicted" in r}
    n = len(predicted)
    if not n:
        return None
    correct = int(sum(predicted.values()))
    lo, hi = wilson_interval(correct, n)
    return {"accuracy": round(correct / n, 6), "lo": round(lo, 6), "hi": round(hi, 6), "n": n, "correct": correct, "interval": "95 % Wilson"}
