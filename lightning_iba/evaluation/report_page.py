"""`report.html`: an evaluation's settings, tables, curves and records prepared for the explorer page
(viz.explorer renders them; this module turns records, token ids and settings into its plain data)."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from lightning_iba.data.rationales import encode_words, piece_mask
from lightning_iba.evaluation.degradation import DegradationSettings, headline_index
from lightning_iba.evaluation.report import Report, strata_table, table1_with_intervals
from lightning_iba.evaluation.segments import SHARES
from lightning_iba.viz.explorer import drop_at, explorer_instance, save_explorer

REPORT_PAGE = "report.html"
#: A table the plausibility metrics may leave in the output folder; shown where present.
PLAUSIBILITY_FILE = "plausibility.csv"
#: The data sources attribute.py reads (it has no files.* group).
ATTRIBUTE_SOURCES = ("hub", "local", "bundled", "disk", "auto")


def _flag(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_flag(v) for v in value)
    return str(value)


def attribute_command(settings: Mapping[str, Any], methods: Sequence[str]) -> tuple[str, str]:
    """The `python attribute.py ...` command that explains one instance of this run (`{index}` where its
    index goes; with target predicted, `{predicted}` where its predicted class goes) with the run's model, data, layer, IBA and estimator settings, and a note on what it does
    not reproduce. A layer sweep gives `--layers all` (a row per layer), a beta sweep `--betas`."""
    s = dict(settings)
    args: list[tuple[str, Any]] = [("--checkpoint", s.get("checkpoint")), ("--dataset", s.get("dataset")), ("--split", s.get("split", "test"))]
    notes = []
    source = s.get("source")
    if source in ATTRIBUTE_SOURCES:
        args.append(("--source", source))
        if s.get("data_dir"):
            args.append(("--data_dir", s["data_dir"]))
    else:
        notes.append(f"This run read source {source!r}, which attribute.py does not read: give it the same text with --text instead.")
    if s.get("task_transfer"):
        args.append(("--allow_task_transfer", True))
    args.append(("--index", "{index}"))
    if s.get("target") == "predicted":
        args.append(("--target", "{predicted}"))  # attribute.py explains the gold label of a split's instance unless told
    if s.get("sweep") == "layer":
        args.append(("--layers", "all"))
    else:
        args.append(("--layer", s.get("layer")))
        if s.get("sweep") == "beta" and s.get("betas"):
            args.append(("--betas", s["betas"]))
    args += [("--max_length", s.get("max_length")), ("--seed", s.get("seed", 0))]
    for key, value in (s.get("iba") or {}).items():
        if not (s.get("sweep") == "beta" and key == "beta"):
            args.append((f"--iba.{key}", value))
    iba = next((m for m in methods if m.lower().startswith("iba")), None)
    variant = iba.split("@", 1)[0].split(":", 1)[1] if iba and ":" in iba.split("@", 1)[0] else None
    estimator = s.get("estimator") or {}
    name = variant or estimator.get("name") or "reference"  # no estimator settings stored: no dataset statistics were used
    args.append(("--estimator.name", name))
    if name == "dataset":
        for key in ("texts", "split", "seed", "source"):
            if estimator.get(key) is not None:
                args.append((f"--estimator.{key}", estimator[key]))
    if not s.get("sweep") and not iba:
        notes.append("This run has no IBA method: the command shows IBA's view of the instance.")
    notes.append("attribute.py runs IBA on this one instance: its scores may differ from the run's batched ones in the last digits.")
    command = "python attribute.py " + " ".join(
        f"{flag} {value}" if value in ("{index}", "{predicted}") else f"{flag} {shlex.quote(_flag(value))}" for flag, value in args
    )
    return command, " ".join(notes)


def explorer_instances(
    records: Sequence[Mapping[str, Any]],
    methods: Sequence[str],
    degradation: DegradationSettings,
    tokenizer=None,
    rationales: Mapping[int, Sequence[float]] | None = None,
) -> list[dict[str, Any]]:
    """Every record as the explorer embeds it: drops at the headline fraction, token strings (with the
    tokenizer, where the record holds input_ids), scores, the human rationale (from `rationales` by index,
    else the record's own "rationale") where there is one."""
    step = headline_index(degradation.grid, degradation.headline)
    special_ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    out = []
    for r in records:
        ids = r.get("input_ids") if tokenizer is not None else None
        tokens = tokenizer.convert_ids_to_tokens(list(ids)) if ids is not None else None
        rationale = (rationales or {}).get(r["index"], r.get("rationale"))
        if rationale is not None and tokens is not None and len(rationale) != len(tokens):
            rationale = None  # not aligned with these tokens: left out rather than shown wrong
        out.append(
            explorer_instance(
                index=r["index"], id=r["id"], label=r["label"], methods=methods, original_prob=r["original_prob"],
                drops={m: drop_at(r["remove"][m], step) for m in methods},
                predicted=r.get("predicted"), probs=r.get("probs"), tokens=tokens,
                scores=r.get("scores") if tokens is not None else None,
                special=[i in special_ids for i in ids] if ids is not None else None,
                rationale=rationale,
            )
        )
    return out


def token_rationales(records: Sequence[Mapping[str, Any]], split: Any, tokenizer: Any, max_length: int) -> dict[int, list[float]]:
    """The human rationale per stored token (1: the piece's word is in the rationale, 0 elsewhere and for the
    special tokens) of every record whose split row has one (`rationale`: one 0/1 per whitespace word) and
    whose text encodes to the stored input_ids; index -> marks."""
    out: dict[int, list[float]] = {}
    for r in records:
        if "input_ids" not in r:
            continue
        row = split[int(r["index"])]
        if row.get("rationale") is None or str(row.get("id", r["id"])) != str(r["id"]):
            continue
        ids, words = encode_words(tokenizer, row["text"], max_length)
        if ids == list(r["input_ids"]) and len(row["rationale"]) > int(words.max(initial=-1)):
            out[int(r["index"])] = piece_mask(row["rationale"], words).astype(float).tolist()
    return out


def _differences(report: Report) -> pd.DataFrame:
    d = report.differences
    percent = (report.bootstrap.percent if report.bootstrap else "95%")
    return pd.DataFrame({
        "method_a": d["method_a"], "method_b": d["method_b"], "metric": d["metric"],
        f"diff [{percent} CI]": [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in zip(d["diff"], d["lo"], d["hi"])],
        "excludes 0": ["yes" if x else "no" for x in d["excludes_zero"]],
    })


def write_report_page(
    out: Path,
    report: Report,
    records: Sequence[Mapping[str, Any]],
    methods: Sequence[str],
    settings: Mapping[str, Any],
    degradation: DegradationSettings,
    title: str,
    label_names: Sequence[str],
    tokenizer=None,
    rationales: Mapping[int, Sequence[float]] | None = None,
    plausibility: pd.DataFrame | None = None,
) -> Path:
    """Writes `<out>/report.html` (after the other report files: it embeds curves.png); returns its path.
    `plausibility` defaults to `<out>/plausibility.csv` where that exists."""
    out = Path(out)
    if plausibility is None and (out / PLAUSIBILITY_FILE).is_file():
        plausibility = pd.read_csv(out / PLAUSIBILITY_FILE)
    name = degradation.headline_name
    bootstrap = report.bootstrap
    table1 = table1_with_intervals(report.table1, name, bootstrap) if bootstrap else report.table1
    metrics = report.metrics.round(4).reset_index().rename(columns={"index": "method"})
    curves = out / "curves.png"
    command, note = attribute_command(settings, methods)
    summary = {
        "dataset": settings.get("dataset"), "split": settings.get("split"), "instances": len(records),
        "methods": ", ".join(methods), "layer": settings.get("layer"), "max_length": settings.get("max_length"),
        "headline": f"{round(100 * degradation.headline)} %", "model": settings.get("model_fingerprint"),
    }
    return save_explorer(
        out / REPORT_PAGE,
        title=title,
        methods=list(methods),
        label_names=label_names,
        instances=explorer_instances(records, methods, degradation, tokenizer, rationales),
        headline=degradation.headline,
        settings=settings,
        summary={k: v for k, v in summary.items() if v is not None},
        tables=[(f"Table 1 ({bootstrap.percent} CI)" if bootstrap else "Table 1", table1), ("Differences (paired bootstrap)", _differences(report)),
                ("Metrics", metrics),
                ("Drop within strata of the original probability p_0", strata_table(report.strata, name) if report.strata is not None else None),
                ("Drop within each gold label", strata_table(report.labels, name, key="label") if report.labels is not None else None),
                *((f"Removed tokens in the pair: {share} (segments.md)", strata_table(report.segments, share, key="label") if report.segments is not None else None)
                  for share in SHARES),
                ("Plausibility", plausibility)],
        curves_png=curves.read_bytes() if curves.is_file() else None,
        command=command,
        command_note=note,
        target=str(settings.get("target", "gold")),
    )
