"""The reproduction's Markdown pages: `<results>/table1.md` (ours beside the paper's), `<results>/README.md`
(command, commits, wall time and command of every stage) and `<results>/eraser/plausibility.md` (the plausibility plans)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from lightning_iba.cli.reproduction_settings import ReproduceSettings, rationale_paths
from lightning_iba.cli.reproduction_stages import as_rerun, read_stages
from lightning_iba.evaluation.degradation import drop_column
from lightning_iba.evaluation.intervals import paired_difference


#: Table 1's column order
ORDER = [("imdb", "test"), ("mnli", "test"), ("mnli", "test_mismatched"), ("agnews", "test"), ("rte", "test")]


def finetune_accuracy_cell(accuracy: float | None, n: int | None) -> str | None:
    """"68.3 % [62.3, 73.7]": an accuracy on n instances with its 95 % Wilson interval (None when not measured)."""
    from lightning_iba.evaluation.intervals import wilson_interval

    if accuracy is None or not n:
        return None
    lo, hi = wilson_interval(round(accuracy * n), n)
    return f"{100 * accuracy:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]"


def write_summary(s: ReproduceSettings) -> Path:
    """`<results>/table1.md` (ours beside the paper's, differences, readings) and `<results>/README.md`
    (command, commit, wall time per stage)."""
    from lightning_iba.evaluation.table1_summary import load_column, summary_markdown

    results = Path(s.results)
    planned = {(p.name, split) for p in s.datasets for split in p.splits}
    order = [k for k in ORDER if k in planned] + sorted(planned - set(ORDER))
    columns = [c for d, split in order if (c := load_column(results / d / f"eval-{split}", d, split)) is not None]
    rows = []
    for plan in s.datasets:
        m, c = read_json(results / plan.name / "finetune_metrics.json"), read_json(results / plan.name / "selection.json")
        rows.append({"dataset": plan.name, "validation acc [95 % CI]": finetune_accuracy_cell(m.get("validation_acc"), m.get("validation_n")),
                     "validation n": m.get("validation_n"), "held-out test acc [95 % CI]": finetune_accuracy_cell(m.get("test_acc"), m.get("test_n")),
                     "test n": m.get("test_n"), "IBA layer": c.get("layer"), "IBA beta": c.get("beta")})
    table1 = results / "table1.md"
    table1.write_text(summary_markdown(columns, pd.DataFrame(rows)) if columns else "# Table 1\n\nNo evaluation has finished yet.\n")
    write_readme(s, results)
    return table1


#: The plausibility summary's metrics: (plausibility.csv column, heading)
SUMMARY_METRICS = (("token_f1", "token F1"), ("iou_f1", "IOU F1"), ("auprc", "AUPRC"))


def metric_cells(table: pd.DataFrame, first: str) -> pd.DataFrame:
    """One row per method of a plausibility.csv-like table (index: method), the column `first` holding the
    method, then one `value [lo, hi]` cell per summary metric ("—" where the table lacks it)."""
    from lightning_iba.evaluation.report import ci_cell

    shown = pd.DataFrame({first: table.index.astype(str)})
    for column, heading in SUMMARY_METRICS:
        shown[heading] = ([ci_cell(v, lo, hi) for v, lo, hi in zip(table[column], table[f"{column}_lo"], table[f"{column}_hi"])]
                          if {column, f"{column}_lo", f"{column}_hi"} <= set(table.columns) else "—")
    return shown


def accuracy_cell(accuracy: dict[str, Any] | None) -> str:
    return "—" if not accuracy else f"{accuracy['accuracy']:.3f} [{accuracy['lo']:.3f}, {accuracy['hi']:.3f}] (n={accuracy['n']})"


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def best_layer_reading(folder: Path) -> str | None:
    """Which layer's maps agree with the rationales most (token F1), and its paired difference from the runner-up."""
    table = pd.read_csv(folder / "plausibility.csv", index_col=0)
    scores = table[table.index.astype(str).str.startswith("layer ")]["token_f1"].sort_values(ascending=False, kind="stable")  # ties: the lower layer
    if scores.empty:
        return None
    best = scores.index[0]
    reading = f"Highest token F1: **{best}** ({scores.iloc[0]:.3f})"
    differences = folder / "plausibility_differences.csv"
    if len(scores) > 1 and differences.is_file():
        second = scores.index[1]
        if (found := paired_difference(pd.read_csv(differences), best, second, "token_f1")) is not None:
            diff, lo, hi = found
            reading += (f"; minus the runner-up, {second}: {diff:+.3f} [{lo:+.3f}, {hi:+.3f}] "
                        f"({'excludes 0' if lo > 0 or hi < 0 else 'includes 0: no layer stands out'})")
    return reading + "."


def write_plausibility_summary(s: ReproduceSettings) -> Path:
    """`<results>/eraser/plausibility.md`: per plan and split the model's accuracy, the coverage and each method's
    token F1 / IOU F1 / AUPRC with intervals; the layer sweeps of plausibility; the stages with command, commit, wall time."""
    from lightning_iba.evaluation.plausibility_report import SPLIT_CAVEAT
    from lightning_iba.evaluation.report import markdown_table

    root = Path(s.results) / "eraser"
    root.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Plausibility against human rationales: ERASER Movie Reviews ({Path(s.results).name})", "",
        "Written by `make reproduce PROFILE=cpu` after Table 1 (`rationales` of the reproduction config). Per model and split: "
        "each method's agreement with the human rationales at ERASER's word level: token F1 of the top-k words (k = the "
        "review's rationale words), ERASER's IOU F1 (top-k spans matching a human span at IOU >= 0.5) and AUPRC, each "
        "`value [lo, hi]` with a 95 % paired-bootstrap interval; `n`: the reviews with a rationale word within what the model "
        "saw, coverage: the share of the rationale words it saw. Accuracy: the model's predictions on the evaluated reviews "
        "(95 % Wilson interval). Per folder `eval-<split>/`: plausibility.csv/.md, plausibility_differences.csv/.md, "
        "plausibility_coverage.json, accuracy.json, Table 1's files.",
        "", SPLIT_CAVEAT, "",
        "| model | trained on | evaluated on | IBA layer | IBA beta | chosen on | " + " | ".join(f"{split} accuracy" for split in ("validation", "test")) + " |",
        "|---|---|---|---|---|---|---|---|",
    ]
    sections: list[str] = []
    for plan in s.rationales:
        results = rationale_paths(s, plan)[1]
        chosen = read_json(results / "selection.json")
        trained = f"{plan.model_from} (**transfer**)" if plan.transfer else f"{plan.dataset} train"
        accuracy = {split: read_json(results / f"eval-{split}" / "accuracy.json") for split in ("validation", "test")}
        lines.append(f"| {plan.name} | {trained} | {plan.dataset}, {plan.max_length} tokens | {chosen.get('layer', '—')} | "
                     f"{chosen.get('beta', '—')} | {chosen.get('chosen_on', '—')} | {accuracy_cell(accuracy['validation'])} | {accuracy_cell(accuracy['test'])} |")
        for split in plan.splits:
            folder = results / f"eval-{split}"
            if not (folder / "plausibility.csv").is_file():
                sections += [f"## {plan.name}, {split}", "", "Not finished yet.", ""]
                continue
            table = pd.read_csv(folder / "plausibility.csv", index_col=0)
            coverage = read_json(folder / "plausibility_coverage.json")
            seen = (f"windows every {coverage['window_stride']} word pieces" if coverage.get("window_stride")
                    else f"the first {coverage.get('max_length', plan.max_length)} tokens")
            sections += [
                f"## {plan.name}, {split}" + (f" (transfer: the {plan.model_from} model)" if plan.transfer else ""), "",
                f"Accuracy {accuracy_cell(read_json(folder / 'accuracy.json') or None)}; plausibility n = {int(table['n'].iloc[0])} reviews; "
                f"coverage {100 * float(table['coverage'].iloc[0]):.1f} % of the rationale words (the model saw {seen}).", "",
                markdown_table(metric_cells(table, "method")), "",
            ]
        sweep = results / "layer-sweep"
        if (sweep / "plausibility.csv").is_file():
            table = pd.read_csv(sweep / "plausibility.csv", index_col=0)
            shown = metric_cells(table, "layer")
            metrics = pd.read_csv(sweep / "metrics.csv", index_col=0) if (sweep / "metrics.csv").is_file() else pd.DataFrame()
            drop = drop_column(metrics.columns, required=False)
            if drop is not None:
                shown[f"{drop} (degradation)"] = [f"{v:.3f}" for v in metrics[drop].reindex(table.index)]
            sections += [f"## {plan.name}: which layer's maps agree with people most? (validation; IBA after each layer at the default "
                         "beta, as Table 1's layer sweeps)", "",
                         *([r, ""] if (r := best_layer_reading(sweep)) else []), markdown_table(shown), ""]
    done = [r for r in read_stages(Path(s.results)) if r["stage"].startswith("eraser/")]
    hours = sum(r["seconds"] for r, old in zip(done, superseded(done)) if r["status"] == "done" and not old) / 3600
    text = "\n".join([*lines, "", *sections, "## Stages", "", f"Wall time of the finished stages: {hours:.2f} h (sum over stages).", "",
                      *stage_table(done), ""])
    path = root / "plausibility.md"
    path.write_text(text)
    return path


def superseded(stages: list[dict[str, Any]]) -> list[bool]:
    """Per record, whether a later finished record of the same stage replaced it (a stage re-run after its command
    changed, or on a fresh machine without its outputs): its outputs were overwritten, so its wall time is not part of the results' cost."""
    last_done = {r["stage"]: i for i, r in enumerate(stages) if r.get("status") == "done"}
    return [r.get("status") == "done" and i < last_done.get(r["stage"], -1) for i, r in enumerate(stages)]


def stage_table(stages: list[dict[str, Any]]) -> list[str]:
    """The stages as Markdown table lines: status (or superseded by a later run of the stage), wall time (over every
    attempt of a resumed stage), the commit(s) of its attempts and its command."""
    attempts = lambda r: f" ({r['attempts']} attempts)" if r.get("attempts", 1) > 1 else ""  # noqa: E731
    commits = lambda r: ", ".join(r.get("commits") or [r.get("commit", "")])  # noqa: E731
    status = lambda r, old: f"superseded ({r['status']}; re-run below)" if old else r["status"]  # noqa: E731
    return ["| stage | status | wall time | commit(s) | command |", "|---|---|---|---|---|",
            *[f"| {r['stage']} | {status(r, old)} | {r['seconds'] / 60:.1f} min{attempts(r)} | {commits(r)} | `{as_rerun(r['command'])}` |"
              for r, old in zip(stages, superseded(stages))]]


def write_readme(s: ReproduceSettings, results: Path) -> Path:
    stages = read_stages(results)
    commits = sorted({c for r in stages for c in r.get("commits") or [r.get("commit", "unknown")]})
    marked = superseded(stages)
    done = [r for r, old in zip(stages, marked) if r["status"] == "done" and not old]
    replaced = [r for r, old in zip(stages, marked) if old]
    in_figure2b = [plan.name for plan in s.datasets if s.beta_from_figure2b(plan)]
    lines = [
        f"# Reproduction outputs ({Path(s.results).name})", "",
        "Written by `make reproduce PROFILE=cpu` (`python -m lightning_iba.cli.reproduce --config configs/reproduce/cpu.yaml`); "
        "run it again to continue after an interruption: finished stages are skipped. On a fresh clone (no `runs/`) the fine-tunes "
        "run again, and a finished evaluation is taken from these files only where its `settings.json` names the model the fine-tune "
        "gave (else it runs again); a `progress/` folder is a stage in progress saved by `make reproduce-save`, which the next run resumes.", "",
        f"- code: commit(s) {', '.join(f'`{c}`' for c in commits) or 'none yet'} (per stage below; `+changes`: tracked files other than `results/` differed from it)",
        f"- wall time of the finished stages: {sum(r['seconds'] for r in done) / 3600:.2f} h on this machine (sum over stages; "
        "a stage resumed after a kill counts the running time of every attempt; every stage's own command is below)"
        + (f"; superseded runs (re-run after their command changed, or on a machine whose runs/ lacked their outputs, such as a fine-tune on a fresh clone: their outputs were replaced or moved aside) took another {sum(r['seconds'] for r in replaced) / 3600:.2f} h" if replaced else ""),
        "- `table1.md`: Table 1 with intervals beside the paper's; per dataset `<dataset>/`: `finetune_metrics.json`, "
        "`selection.json` (layer and beta chosen on validation; `beta_sweep` names the sweep the beta was chosen in), "
        "`layer-sweep/` (Figure 2a), `beta-selection/`"
        + (f" ({', '.join(in_figure2b)}: none, the beta is chosen in `figure2b-dataset/`)" if in_figure2b else "") + ", "
        "`eval-<split>/` (Table 1 column, Figure 1 curves, metrics, differences, `strata.*` (the same within equal-count strata "
        "of the original p(gold), `--bootstrap.strata`), `labels.*` (the same within each gold label, `--bootstrap.by_label`), "
        "`segments.*` (sentence pairs: where each method's removed tokens lie; all three re-reported where the run predates them), settings, timing.csv where the "
        "run was timed), `figure2b-<estimator>/` (Figure 2b).",
        *(["- `eraser/plausibility.md`: plausibility against ERASER's human rationales (the `rationales` plans: "
           + ", ".join(f"`{r.name}`" + (f" = the {r.model_from} model, transfer" if r.transfer else " = fine-tuned on its train split") for r in s.rationales)
           + "); per plan `eraser/<name>/`: `selection.json`, `eval-<split>/`, `layer-sweep/`."] if s.rationales else []), "",
        *stage_table(stages),
        "",
    ]
    path = results / "README.md"
    path.write_text("\n".join(lines))
    return path
