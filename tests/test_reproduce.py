"""The reproduction driver: finished stages are skipped, failed ones are not, and the layer/beta choice reads the sweep."""
from __future__ import annotations

import json
import sys
from types import SimpleNamespace
from pathlib import Path

import pandas as pd
import pytest

from lightning_iba.cli.reproduce import Stages, best_row
from lightning_iba.errors import LightningIBAError


def test_a_finished_stage_is_skipped_and_a_failed_one_runs_again(tmp_path):
    stages = Stages(tmp_path / "results")
    marker = tmp_path / "count.txt"
    bump = [sys.executable, "-c", f"import pathlib; p = pathlib.Path({str(marker)!r}); p.write_text(str(int(p.read_text() if p.exists() else 0) + 1))"]
    stages.run("a", bump)
    stages.run("a", bump)  # done: skipped
    assert marker.read_text() == "1"
    stages.run("b", bump, done_when=tmp_path / "absent")  # done_when missing: runs every time
    stages.run("b", bump, done_when=tmp_path / "absent")
    assert marker.read_text() == "3"
    with pytest.raises(LightningIBAError, match="stage c failed"):
        stages.run("c", [sys.executable, "-c", "raise SystemExit(3)"])
    rows = [json.loads(line) for line in (tmp_path / "results" / "stages.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows] == ["a", "b", "b", "c"] and rows[-1]["status"] == "failed (3)"
    assert set(stages.done()) == {"a", "b"} and all(r["seconds"] >= 0 and r["command"].startswith("python -c ") for r in rows)


def test_a_finished_stage_whose_command_changed_runs_again(tmp_path, caplog):
    """Skipping a finished stage whose command is now another (e.g. other methods) would report the old run
    under the new config; an older record naming this machine's interpreter path is the same command."""
    stages = Stages(tmp_path / "results")
    marker = tmp_path / "count.txt"
    bump = lambda extra: [sys.executable, "-c", f"import pathlib; p = pathlib.Path({str(marker)!r}); p.write_text(str(int(p.read_text() if p.exists() else 0) + 1)) # {extra}"]  # noqa: E731
    stages.run("a", bump("methods x"))
    stages.run("a", bump("methods x"))
    assert marker.read_text() == "1"
    stages.run("a", bump("methods y"))  # changed: runs again, and says so
    assert marker.read_text() == "2" and "a finished before with another command, so it runs again" in caplog.text
    record = json.loads(stages.log.read_text().splitlines()[-1])
    record["command"] = "/some/where/.venv/bin/python3.11 " + record["command"].removeprefix("python ")
    stages.log.write_text(stages.log.read_text() + json.dumps(record) + "\n")
    stages.run("a", bump("methods y"))  # the same command, recorded with an interpreter path: skipped
    assert marker.read_text() == "2"


def test_a_killed_stage_resumed_records_the_running_time_of_every_attempt(tmp_path, monkeypatch):
    from lightning_iba.cli import reproduction_stages
    from lightning_iba.cli.reproduction_summaries import stage_table

    monkeypatch.setattr(reproduction_stages, "HEARTBEAT_SECONDS", 0.2)
    stages = Stages(tmp_path / "results")
    seen = tmp_path / "beat.json"
    # the command reads the heartbeat of its own attempt while it runs
    peek = [sys.executable, "-c", f"import shutil, time; time.sleep(1.5); shutil.copy({str(stages.running)!r}, {str(seen)!r})"]
    stages.running.write_text(json.dumps({"stage": "other", "seconds": 500.0, "attempts": 4}))  # another stage's: ignored
    stages.run("a", peek)
    beat = json.loads(seen.read_text())
    assert beat["stage"] == "a" and beat["attempts"] == 1 and 0.2 <= beat["seconds"] < 1.5 and "out" not in beat
    first = json.loads(stages.log.read_text().splitlines()[-1])
    assert first["attempts"] == 1 and 1.5 <= first["seconds"] < 100 and not stages.running.exists()
    # an attempt at "b" killed after 600 s left its heartbeat; the next attempt adds its own time to it
    stages.running.write_text(json.dumps({"stage": "b", "seconds": 600.0, "attempts": 1}))
    stages.run("b", [sys.executable, "-c", "pass"])
    second = json.loads(stages.log.read_text().splitlines()[-1])
    assert second["attempts"] == 2 and 600 <= second["seconds"] < 700 and not stages.running.exists()
    lines = stage_table([first, second])
    assert "(2 attempts)" in lines[3] and "attempts" not in lines[2]


def test_stage_table_names_the_interpreter_python_also_in_older_records():
    from lightning_iba.cli.reproduction_summaries import stage_table

    rows = [{"stage": "x/finetune", "status": "done", "seconds": 60, "commit": "abc", "command": "/somewhere/.venv/bin/python3.11 train.py --config a.yaml"},
            {"stage": "x/evaluate-test", "status": "done", "seconds": 120, "commit": "abc", "command": "python evaluate.py --split test"}]
    lines = stage_table(rows)
    assert "`python train.py --config a.yaml`" in lines[2] and "/somewhere" not in "\n".join(lines)
    assert "`python evaluate.py --split test`" in lines[3]


def test_the_recorded_commit_says_changes_for_code_but_not_for_the_committed_results(tmp_path, monkeypatch):
    import subprocess

    from lightning_iba.cli import reproduction_stages

    git = lambda *a: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table1.md").write_text("old\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "c")
    monkeypatch.setattr(reproduction_stages, "REPO", tmp_path)
    commit = reproduction_stages.current_commit()
    assert len(commit) >= 7 and "+" not in commit
    (tmp_path / "results" / "table1.md").write_text("rewritten by the run\n")
    assert reproduction_stages.current_commit() == commit
    (tmp_path / "code.py").write_text("x = 2\n")
    assert reproduction_stages.current_commit() == commit + "+changes"


def test_best_row_takes_the_largest_validation_drop(tmp_path):
    table = pd.DataFrame({"method": ["layer 0", "layer 1", "layer 2", "x only"], "drop_11": [0.1, 0.3, 0.2, 0.9],
                          "drop_11_lo": [0, 0, 0, 0.8]}).set_index("method")
    table.to_csv(tmp_path / "metrics.csv")
    assert best_row(tmp_path / "metrics.csv", "layer ") == ("layer 1", 0.3)  # "x only" is not a candidate
    assert best_row(tmp_path / "metrics.csv", "layer ", among={"layer 0", "layer 2"}) == ("layer 2", 0.2)  # layer 1 is not among them
    with pytest.raises(LightningIBAError, match=r"no rows starting with 'layer ' among \['layer 5'\]"):
        best_row(tmp_path / "metrics.csv", "layer ", among={"layer 5"})
    from lightning_iba.cli.reproduction_settings import beta_labels
    assert beta_labels("1e-6, 0.0001,1e-1") == {"beta 1e-06", "beta 0.0001", "beta 0.1"}  # as evaluate.py labels the rows
    assert beta_labels("1.2345678e-5") == {"beta 1.23457e-05"}  # a beta with more digits still names its row
    with pytest.raises(LightningIBAError, match="no rows starting with 'beta '"):
        best_row(tmp_path / "metrics.csv", "beta ")


def test_table1_summary_reads_orderings_against_the_paper(tmp_path):
    from lightning_iba.evaluation.table1_summary import load_column, summary_markdown

    folder = tmp_path / "eval-test"
    folder.mkdir()
    pd.DataFrame({"method": ["iba:reference", "ig:published", "random"], "dataset": "rte", "n": 277, "original_prob": 0.7,
                  "drop_11": [0.05, 0.08, 0.01], "drop_11_lo": [0.03, 0.06, 0.0], "drop_11_hi": [0.07, 0.10, 0.02]}).to_csv(folder / "table1.csv", index=False)
    pd.DataFrame({"method_a": ["iba:reference", "iba:reference", "ig:published"], "method_b": ["ig:published", "random", "random"],
                  "metric": "drop_11", "diff": [-0.03, 0.04, 0.07], "lo": [-0.05, 0.02, 0.05], "hi": [-0.01, 0.06, 0.09],
                  "excludes_zero": True}).to_csv(folder / "differences.csv", index=False)
    assert load_column(tmp_path / "absent", "rte", "test") is None
    page = summary_markdown([load_column(folder, "rte", "test")])
    assert "| iba:reference | 0.050 [0.030, 0.070] |" in page and "RTE (n=277)" in page
    # the paper has IBA 0.059 > IG 0.043 > Random 0.012 on RTE: ours reverses IBA and IG, keeps the rest
    assert "Reversed: IBA − IG = -0.030 [-0.050, -0.010] (excludes 0)" in page
    assert "IBA − Random = +0.040 [+0.020, +0.060] (excludes 0)" in page and "IG − Random = +0.070" in page


def test_figure2_panels_from_the_sweeps(tmp_path):
    from lightning_iba.cli.reproduce import DatasetPlan, ReproduceSettings, sweep_points, write_figure2

    s = ReproduceSettings(runs=str(tmp_path / "runs"), results=str(tmp_path / "results"),
                          datasets=[DatasetPlan("rte"), DatasetPlan("imdb", figure2b=True)])
    for name in ("rte", "imdb"):  # the sweeps as collected into results (a fresh clone's runs has only its own)
        folder = tmp_path / "results" / name / "layer-sweep"
        folder.mkdir(parents=True)
        pd.DataFrame({"method": [f"layer {i}" for i in range(3)], "drop_11": [0.1, 0.2, 0.15], "drop_11_lo": [0.05, 0.1, 0.1],
                      "drop_11_hi": [0.15, 0.3, 0.2]}).set_index("method").to_csv(folder / "metrics.csv")
    for estimator in ("dataset", "reference"):
        folder = tmp_path / "results" / "imdb" / f"figure2b-{estimator}"
        folder.mkdir(parents=True)
        pd.DataFrame({"method": ["beta 1e-08", "beta 1e-05", "beta 0.1", "x only"], "drop_11": [0.2, 0.2, 0.1, 0.05]}).set_index(
            "method").to_csv(folder / "metrics.csv")
    points = sweep_points(tmp_path / "results" / "imdb" / "figure2b-dataset" / "metrics.csv", "beta ", estimator="dataset")
    assert points["value"].tolist() == [1e-8, 1e-5, 0.1] and set(points["estimator"]) == {"dataset"}
    written = write_figure2(s)
    assert [p.name for p in written] == ["figure2a.png", "figure2b.png"] and all(p.stat().st_size > 1000 for p in written)
    assert written[1].parent.name == "imdb"


def test_figure_titles_give_the_measured_number_of_instances():
    from lightning_iba.cli.reproduction_figures import measured_n

    assert measured_n(pd.DataFrame({"n": [200, 200, 200]})) == "200"  # not the configured count: what the sweeps measured
    assert measured_n(pd.DataFrame({"n": [200, 180, 200]})) == "180-200"
    assert measured_n(pd.DataFrame({"drop_11": [0.1]})) == "?"


# ---------------------------------------------------------------- the plausibility plans (ERASER)


class RecordedStages:
    """Stages that record each (stage, command) instead of running it; `on_run(stage, command)` may write its outputs."""

    def __init__(self, on_run=None):
        self.commands: list[tuple[str, list[str]]] = []
        self.on_run = on_run

    def run(self, stage, command, done_when=None):
        self.commands.append((stage, command))
        if self.on_run is not None:
            self.on_run(stage, command)


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def rationale_settings(tmp_path, *plans):
    from lightning_iba.cli.reproduce import DatasetPlan, ReproduceSettings

    return ReproduceSettings(runs=str(tmp_path / "runs"), results=str(tmp_path / "results"), datasets=[DatasetPlan("imdb")],
                             evaluate_flags=["--degradation.count", "all"], rationales=list(plans))


def test_the_cpu_profile_plans_a_transfer_and_a_finetuned_eraser_model():
    from lightning_iba.cli.reproduce import RATIONALE_METHODS, parse

    s = parse(["--config", "configs/reproduce/cpu.yaml"])
    transfer, finetuned = s.rationales
    assert (transfer.name, transfer.model_from, transfer.finetune, transfer.transfer) == ("imdb-transfer", "imdb", None, True)
    assert finetuned.model_from is None and finetuned.finetune and not finetuned.transfer
    for plan in s.rationales:
        assert (plan.dataset, plan.splits, plan.instances, plan.max_length, plan.methods) == (
            "eraser_movies", ["validation", "test"], None, 256, RATIONALE_METHODS)
    assert s.runs_plan("imdb-transfer", rationale=True) and s.runs_plan("imdb")
    s.only = ["imdb"]
    assert s.runs_plan("imdb") and not s.runs_plan("imdb-transfer", rationale=True)
    s.only = ["eraser/finetuned"]
    assert s.runs_plan("finetuned", rationale=True) and not s.runs_plan("imdb-transfer", rationale=True) and not s.runs_plan("imdb")


@pytest.mark.parametrize("plan, message", [
    ("{name: a}", "give exactly one of model_from"),
    ("{name: a, model_from: imdb, finetune: []}", "give exactly one of model_from"),
    ("{name: a, model_from: rte}", "model_from 'rte' is not a dataset of the plan"),
])
def test_a_rationale_plan_names_one_model(plan, message):
    from lightning_iba.cli.reproduce import parse

    with pytest.raises(LightningIBAError, match=message):
        parse(["--datasets", "[{name: imdb}]", "--rationales", f"[{plan}]"])


def test_a_transfer_plan_evaluates_the_table1_model_with_its_layer_and_beta(tmp_path):
    from lightning_iba.cli.reproduce import RationalePlan, reproduce_rationales

    plan = RationalePlan("imdb-transfer", model_from="imdb", evaluate=["configs/evaluate/cpu_minilm/eraser_movies.yaml"])
    s = rationale_settings(tmp_path, plan)
    with pytest.raises(LightningIBAError, match="reproduce imdb first"):
        reproduce_rationales(s, plan, RecordedStages())
    (tmp_path / "runs" / "imdb" / "model").mkdir(parents=True)
    (tmp_path / "runs" / "imdb" / "model" / "config.json").write_text("{}")
    (tmp_path / "results" / "imdb").mkdir(parents=True)
    (tmp_path / "results" / "imdb" / "selection.json").write_text(json.dumps(
        {"layer": 2, "layer_validation_drop": 0.3, "beta": 1e-5, "beta_validation_drop": 0.31, "rule": "largest drop"}))
    stages = RecordedStages()
    selection = reproduce_rationales(s, plan, stages)
    assert [name for name, _ in stages.commands] == ["eraser/imdb-transfer/layer-sweep", "eraser/imdb-transfer/evaluate-validation",
                                                     "eraser/imdb-transfer/evaluate-test"]
    runs = tmp_path / "runs" / "eraser" / "imdb-transfer"
    for name, command in stages.commands:
        assert command[1] == "evaluate.py" and flag(command, "--allow_task_transfer") == "true"
        assert flag(command, "--checkpoint") == str(tmp_path / "runs" / "imdb" / "model")
        assert command[command.index("--config") + 1] == "configs/evaluate/eraser_movies.yaml" and "configs/evaluate/cpu_minilm/eraser_movies.yaml" in command
        assert (flag(command, "--max_length"), flag(command, "--instances"), flag(command, "--degradation.count")) == ("256", "null", "all")
        assert "--plausibility.window_stride" not in command
        assert flag(command, "--plausibility.bin_unit") == "word"  # named, so a stage of another unit is never skipped as done
    sweep, validation, test = (c for _, c in stages.commands)
    assert (flag(sweep, "--sweep"), flag(sweep, "--split"), flag(sweep, "--out")) == ("layer", "validation", str(runs / "layer-sweep"))
    for split, command in (("validation", validation), ("test", test)):
        assert (flag(command, "--split"), flag(command, "--layer"), flag(command, "--iba.beta")) == (split, "2", "1e-05")
        assert flag(command, "--methods") == plan.methods and flag(command, "--out") == str(runs / f"eval-{split}")
    written = json.loads((tmp_path / "results" / "eraser" / "imdb-transfer" / "selection.json").read_text())
    assert written == selection and written["transfer"] and written["trained_on"] == "imdb" and written["layer"] == 2
    assert "imdb validation" in written["chosen_on"]


def test_a_finetuned_plan_chooses_its_layer_and_beta_on_its_own_validation(tmp_path):
    from lightning_iba.cli.reproduce import RationalePlan, reproduce_rationales

    plan = RationalePlan("finetuned", finetune=["configs/finetune/cpu.yaml"], window_stride=200, splits=["test"])
    s = rationale_settings(tmp_path, plan)

    # the last row has the largest drop: layer 4, and "x only" above every beta (it is no candidate)
    stages = RecordedStages(fake_sweep_outputs(["layer 0", "layer 1", "layer 4"], ["beta 1e-06", "beta 0.0001", "x only"]))
    selection = reproduce_rationales(s, plan, stages)
    names = [name for name, _ in stages.commands]
    assert names == ["eraser/finetuned/finetune", "eraser/finetuned/layer-sweep", "eraser/finetuned/beta-selection", "eraser/finetuned/evaluate-test"]
    finetune = stages.commands[0][1]
    runs = tmp_path / "runs" / "eraser" / "finetuned"
    assert finetune[1:4] == ["train.py", "--config", "configs/finetune/eraser_movies.yaml"] and flag(finetune, "--data.max_length") == "256"
    assert flag(finetune, "--export.dirpath") == str(runs / "model")
    assert (selection["layer"], selection["beta"], selection["transfer"]) == (4, 1e-4, False)  # "x only" is no candidate
    for _, command in stages.commands[1:]:
        assert "--allow_task_transfer" not in command and flag(command, "--checkpoint") == str(runs / "model")
        assert flag(command, "--plausibility.window_stride") == "200"
    assert flag(stages.commands[2][1], "--layer") == "4"
    assert (flag(stages.commands[3][1], "--layer"), flag(stages.commands[3][1], "--iba.beta")) == ("4", "0.0001")


def fake_sweep_outputs(layer_rows, beta_rows):
    """on_run for RecordedStages: a sweep stage writes a metrics.csv whose last row has the largest drop."""
    def write(stage, command):
        if "--sweep" in command:
            rows = layer_rows if flag(command, "--sweep") == "layer" else beta_rows
            folder = Path(flag(command, "--out"))
            folder.mkdir(parents=True, exist_ok=True)
            drops = [0.1 * (i + 1) for i in range(len(rows))]
            pd.DataFrame({"method": rows, "drop_11": drops}).set_index("method").to_csv(folder / "metrics.csv")
    return write


def test_every_stage_of_the_cpu_profile_parses_to_runnable_settings_on_the_6_layer_minilm(tmp_path):
    """Each Table 1 dataset's evaluate.py stages, parsed as the stage would parse them: the layer sweep runs at
    base.yaml's beta for every dataset (no BERT-base overlay value leaks in) and the test runs use the chosen layer and beta."""
    from lightning_iba.cli.common import resolve_layer
    from lightning_iba.cli.evaluate import parse as parse_evaluate
    from lightning_iba.cli.reproduce import parse, reproduce_dataset

    s = parse(["--config", "configs/reproduce/cpu.yaml", "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")])
    base_beta = parse_evaluate([]).iba["beta"]
    for plan in s.datasets:
        stages = RecordedStages(fake_sweep_outputs(["layer 0", "layer 4"], ["beta 1e-06", "beta 0.0001", "x only"]))
        reproduce_dataset(s, plan, stages)
        for stage, command in stages.commands:
            if command[1] != "evaluate.py":
                continue
            settings = parse_evaluate(command[2:])
            assert settings.dataset == plan.name, stage
            sweep = settings.sweep
            layer = resolve_layer(settings.layer, 6)  # every stage's layer is one of MiniLM's, even where a sweep ignores it
            if sweep == "layer":
                assert settings.iba["beta"] == base_beta, f"{stage}: the layer sweep runs at beta {settings.iba['beta']}"
            else:
                assert layer == 4, stage
            if stage.endswith(("evaluate-test", "evaluate-test_mismatched")):
                assert settings.iba["beta"] == 1e-4 and settings.split in ("test", "test_mismatched"), stage
        assert (tmp_path / "results" / plan.name / "selection.json").is_file()


def test_imdb_chooses_its_beta_in_figure2b_sweep_among_the_selection_betas_only(tmp_path):
    """Figure 2b's dataset-estimator sweep runs the selection's instances and betas (and more): it replaces the
    beta-selection stage, and the choice stays among selection_betas even where another beta drops more."""
    from lightning_iba.cli.reproduce import parse, reproduce_dataset

    s = parse(["--config", "configs/reproduce/cpu.yaml", "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results"),
               "--only", "[imdb]"])
    imdb = next(p for p in s.datasets if p.name == "imdb")
    assert s.beta_from_figure2b(imdb) and not s.beta_from_figure2b(next(p for p in s.datasets if p.name == "rte"))
    stages = RecordedStages(fake_sweep_outputs(["layer 0", "layer 3"], ["beta 1e-08", "beta 1e-06", "beta 0.0001", "beta 0.1", "x only"]))
    reproduce_dataset(s, imdb, stages)
    names = [name for name, _ in stages.commands]
    assert names == ["imdb/finetune", "imdb/layer-sweep", "imdb/figure2b-dataset", "imdb/evaluate-test", "imdb/figure2b-reference"]
    commands = dict(stages.commands)
    assert flag(commands["imdb/figure2b-dataset"], "--betas") == s.figure2b_betas and flag(commands["imdb/figure2b-dataset"], "--layer") == "3"
    assert flag(commands["imdb/evaluate-test"], "--iba.beta") == "0.0001"  # beta 0.1 dropped more, but is not a selection beta
    selection = json.loads((tmp_path / "results" / "imdb" / "selection.json").read_text())
    assert selection["beta"] == 1e-4 and selection["beta_sweep"] == "figure2b-dataset" and selection["layer"] == 3

    # Figure 2b on other instances than the selection's: the selection runs a sweep of its own again
    other = parse(["--config", "configs/reproduce/cpu.yaml", "--runs", str(tmp_path / "b"), "--results", str(tmp_path / "rb"),
                   "--figure2b_instances", "100"])
    assert not other.beta_from_figure2b(next(p for p in other.datasets if p.name == "imdb"))
    stages = RecordedStages(fake_sweep_outputs(["layer 0", "layer 3"], ["beta 1e-06", "beta 0.0001", "x only"]))
    reproduce_dataset(other, next(p for p in other.datasets if p.name == "imdb"), stages)
    assert [name for name, _ in stages.commands] == ["imdb/finetune", "imdb/layer-sweep", "imdb/beta-selection", "imdb/evaluate-test",
                                                     "imdb/figure2b-dataset", "imdb/figure2b-reference"]


def plausibility_csv(folder, methods, split, f1):
    folder.mkdir(parents=True, exist_ok=True)
    columns = {"dataset": "eraser_movies", "split": split, "n": 190, "coverage": 0.25}
    for metric, values in (("token_f1", f1), ("iou_f1", [v / 2 for v in f1]), ("auprc", [v + 0.1 for v in f1])):
        columns.update({metric: values, f"{metric}_lo": [v - 0.02 for v in values], f"{metric}_hi": [v + 0.02 for v in values]})
    pd.DataFrame({"method": methods, **columns}).set_index("method").to_csv(folder / "plausibility.csv")


def test_collect_copies_the_plausibility_files_and_writes_the_combined_summary(tmp_path):
    from lightning_iba.cli.reproduce import RationalePlan, collect, split_accuracy

    transfer, finetuned = RationalePlan("imdb-transfer", model_from="imdb"), RationalePlan("finetuned", finetune=[], splits=["test"])
    s = rationale_settings(tmp_path, transfer, finetuned)
    runs = tmp_path / "runs" / "eraser"
    for name, split in (("imdb-transfer", "validation"), ("imdb-transfer", "test"), ("finetuned", "test")):
        folder = runs / name / f"eval-{split}"
        plausibility_csv(folder, ["iba:dataset", "random"], split, [0.3, 0.1] if name == "finetuned" else [0.2, 0.1])
        (folder / "table1.csv").write_text("method\n")
        (folder / "plausibility_coverage.json").write_text(json.dumps({"max_length": 256, "window_stride": None}))
        (folder / "shards").mkdir()
        (folder / "shards" / "rank-0.jsonl").write_text("".join(json.dumps(
            {"index": i, "id": str(i), "label": i % 2, "original_prob": 0.9, "remove": {}, "keep": {}, "predicted": 1 if i < 8 else 0}) + "\n"
            for i in range(10)))
    sweep = runs / "imdb-transfer" / "layer-sweep"
    plausibility_csv(sweep, ["layer 0", "layer 1", "layer 2"], "validation", [0.15, 0.25, 0.2])
    (sweep / "table1.csv").write_text("method\n")
    pd.DataFrame({"method": ["layer 0", "layer 1", "layer 2"], "drop_11": [0.1, 0.2, 0.3]}).set_index("method").to_csv(sweep / "metrics.csv")
    pd.DataFrame({"method_a": ["layer 0", "layer 0", "layer 1"], "method_b": ["layer 1", "layer 2", "layer 2"], "metric": "token_f1",
                  "diff": [-0.1, -0.05, 0.05], "lo": [-0.15, -0.1, 0.01], "hi": [-0.05, 0.0, 0.09], "excludes_zero": True}).to_csv(
        sweep / "plausibility_differences.csv", index=False)
    (runs / "finetuned" / "model").mkdir(parents=True)
    (runs / "finetuned" / "model" / "finetune_metrics.json").write_text(json.dumps({"validation_acc": 0.8, "test_acc": 0.79}))
    results = tmp_path / "results"
    (results / "eraser" / "imdb-transfer").mkdir(parents=True)
    (results / "eraser" / "imdb-transfer" / "selection.json").write_text(json.dumps({"layer": 2, "beta": 1e-5, "chosen_on": "imdb validation"}))
    (results / "stages.jsonl").write_text(json.dumps({"stage": "eraser/imdb-transfer/evaluate-test", "command": "python evaluate.py --split test",
                                                      "seconds": 600.0, "commit": "abc1234", "status": "done"}) + "\n")

    accuracy = split_accuracy(runs / "finetuned" / "eval-test")  # labels 0,1,0,1,...; predicted 1 for the first 8: 4 + 1 right
    assert (accuracy["accuracy"], accuracy["n"], accuracy["correct"]) == (0.5, 10, 5) and accuracy["lo"] < 0.5 < accuracy["hi"]
    collect(s)
    out = results / "eraser"
    for name, split in (("imdb-transfer", "validation"), ("imdb-transfer", "test"), ("finetuned", "test")):
        assert {"plausibility.csv", "plausibility_coverage.json", "accuracy.json", "table1.csv"} <= {p.name for p in (out / name / f"eval-{split}").iterdir()}
    assert (out / "imdb-transfer" / "layer-sweep" / "plausibility_differences.csv").is_file()
    assert json.loads((out / "finetuned" / "finetune_metrics.json").read_text())["test_acc"] == 0.79
    page = (out / "plausibility.md").read_text()
    assert "| imdb-transfer | imdb (**transfer**) | eraser_movies, 256 tokens | 2 | 1e-05 | imdb validation |" in page
    assert "## imdb-transfer, validation (transfer: the imdb model)" in page and "## finetuned, test\n" in page
    assert "| iba:dataset | 0.300 [0.280, 0.320] | 0.150 [0.130, 0.170] | 0.400 [0.380, 0.420] |" in page  # the fine-tuned model's test row
    assert "Accuracy 0.500 [" in page and "plausibility n = 190 reviews; coverage 25.0 %" in page and "the first 256 tokens" in page
    # layer 1 agrees most; layer 0 - layer 1 = -0.1 [-0.15, -0.05] is read from layer 1's side, against the runner-up layer 2
    assert "Highest token F1: **layer 1** (0.250); minus the runner-up, layer 2: +0.050 [+0.010, +0.090] (excludes 0)." in page
    assert "| layer 2 | 0.200 [0.180, 0.220] | 0.100 [0.080, 0.120] | 0.300 [0.280, 0.320] | 0.300 |" in page
    assert "| eraser/imdb-transfer/evaluate-test | done | 10.0 min | abc1234 | `python evaluate.py --split test` |" in page
    assert "ERASER's test annotations differ" in page and "Wall time of the finished stages: 0.17 h" in page
    assert "eraser/plausibility.md" in (results / "README.md").read_text()


def test_a_model_at_chance_on_validation_is_not_explained(tmp_path):
    from lightning_iba.cli.reproduction_plans import ModelAtChance, check_above_chance
    from lightning_iba.cli.reproduce import ReproduceSettings

    model = tmp_path / "model"
    model.mkdir()
    write = lambda accuracy, n: (model / "finetune_metrics.json").write_text(json.dumps({"validation_acc": accuracy, "validation_n": n}))  # noqa: E731
    s = ReproduceSettings()
    write(0.558, 249)  # RTE from the pretrained MiniLM: 55.8 % [49.6 %, 61.9 %] on 249 pairs includes chance (50 %)
    with pytest.raises(ModelAtChance, match=r"the rte model is not above chance on validation \(55.8% \[49.6%, 61.9%\] on 249, chance 50%\)"):
        check_above_chance(s, "rte", "rte", model)
    write(0.62, 249)  # [55.7 %, 67.7 %]: above chance
    check_above_chance(s, "rte", "rte", model)
    write(0.37, 1000)  # 3 labels: chance is 33 %, and [34.1 %, 40.1 %] is above it
    check_above_chance(s, "mnli", "mnli", model)
    write(0.35, 1000)  # [32.1 %, 38.0 %]: not
    with pytest.raises(ModelAtChance, match="chance 33%"):
        check_above_chance(s, "mnli", "mnli", model)
    check_above_chance(ReproduceSettings(above_chance=False), "mnli", "mnli", model)  # the check switched off
    (model / "finetune_metrics.json").unlink()
    check_above_chance(s, "mnli", "mnli", model)  # nothing recorded: let through (with a warning)


def test_a_stopped_plan_does_not_stop_the_others_and_the_run_says_which_stopped(tmp_path, monkeypatch, capsys):
    from lightning_iba.cli import reproduce
    from lightning_iba.cli.reproduction_plans import ModelAtChance

    ran = []

    def fake_dataset(s, plan, stages):
        ran.append(plan.name)
        if plan.name == "rte":
            raise ModelAtChance("reproduce: the rte model is not above chance on validation")

    monkeypatch.setattr(reproduce, "reproduce_dataset", fake_dataset)
    monkeypatch.setattr(reproduce, "reproduce_rationales", lambda s, plan, stages: ran.append(f"eraser/{plan.name}"))
    monkeypatch.setattr(reproduce, "collect", lambda s: None)
    with pytest.raises(SystemExit) as info:
        reproduce.main(["--config", "configs/reproduce/cpu.yaml", "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")])
    assert info.value.code == 2
    assert ran == ["mnli", "rte", "agnews", "imdb", "eraser/imdb-transfer", "eraser/finetuned"]
    err = capsys.readouterr().err
    assert "1 plan(s) stopped, the others ran: rte (reproduce: the rte model is not above chance on validation)" in err


def test_a_stage_resumed_at_another_commit_records_both_and_a_rerun_supersedes_the_old_record(tmp_path, monkeypatch):
    from lightning_iba.cli import reproduction_stages
    from lightning_iba.cli.reproduction_summaries import stage_table, write_readme

    stages = Stages(tmp_path / "results")
    # an attempt at "a" killed at commit aaa; the next attempt runs at bbb
    stages.running.write_text(json.dumps({"stage": "a", "seconds": 600.0, "attempts": 1, "commits": ["aaa"]}))
    monkeypatch.setattr(reproduction_stages, "current_commit", lambda: "bbb")
    stages.run("a", [sys.executable, "-c", "pass"])
    resumed = json.loads(stages.log.read_text().splitlines()[-1])
    assert resumed["commits"] == ["aaa", "bbb"] and resumed["commit"] == "bbb"
    # a heartbeat written by older code names no commit: the earlier attempt's is unknown, not taken for this one's
    stages.running.write_text(json.dumps({"stage": "c", "seconds": 60.0, "attempts": 1}))
    stages.run("c", [sys.executable, "-c", "pass"])
    assert json.loads(stages.log.read_text().splitlines()[-1])["commits"] == ["unknown", "bbb"]
    stages.log.write_text("\n".join(stages.log.read_text().splitlines()[:1]) + "\n")
    # "a" re-run with another command: the first record is superseded, and its time is not the results' cost
    stages.run("a", [sys.executable, "-c", "import time; time.sleep(0.1)"])
    records = [json.loads(line) for line in stages.log.read_text().splitlines()]
    lines = stage_table(records)
    assert "superseded (done; re-run below)" in lines[2] and "aaa, bbb" in lines[2]
    assert "| a | done |" in lines[3] and "superseded" not in lines[3]
    # a failed attempt before a finished one replaced no outputs: it is shown as failed, not superseded
    failed = {**records[0], "status": "failed (1)"}
    assert "| a | failed (1) |" in stage_table([failed, records[1]])[2]
    readme = write_readme(SimpleNamespace(results=str(tmp_path / "results"), rationales=[], datasets=[]), tmp_path / "results").read_text()
    assert f"finished stages: {records[1]['seconds'] / 3600:.2f} h" in readme
    assert f"superseded runs (re-run after their command changed, or on a machine whose runs/ lacked their outputs, such as a fine-tune on a fresh clone: their outputs were replaced or moved aside) took another {records[0]['seconds'] / 3600:.2f} h" in readme
    assert "`aaa`, `bbb`" in readme


def test_status_lists_the_stages_the_plans_run_in_their_order(tmp_path):
    from lightning_iba.cli.reproduce import parse, reproduce_dataset, reproduce_rationales
    from lightning_iba.cli.reproduction_status import planned_stages

    s = parse(["--config", "configs/reproduce/cpu.yaml", "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")])
    stages = RecordedStages(fake_sweep_outputs(["layer 0", "layer 4"], ["beta 1e-06", "beta 0.0001", "x only"]))
    for plan in s.datasets:
        reproduce_dataset(s, plan, stages)
    (tmp_path / "runs" / "imdb" / "model").mkdir(parents=True)
    (tmp_path / "runs" / "imdb" / "model" / "config.json").write_text("{}")
    for plan in s.rationales:
        reproduce_rationales(s, plan, stages)
    ran = [name for name, _ in stages.commands]
    assert planned_stages(s) == ran and len(ran) == 26 and "imdb/figure2b-reference" in ran and "imdb/beta-selection" not in ran
    only = parse(["--config", "configs/reproduce/cpu.yaml", "--only", "[rte, eraser]"])
    assert planned_stages(only) == [n for n in ran if n.startswith(("rte/", "eraser/"))]


def test_status_says_what_is_done_running_interrupted_failed_or_not_started(tmp_path, capsys):
    import os

    from lightning_iba.cli.reproduce import main, parse
    from lightning_iba.cli.reproduction_status import stage_states

    results = tmp_path / "results"
    results.mkdir()
    record = lambda stage, status, seconds, **kw: json.dumps({"stage": stage, "command": "python x.py", "seconds": seconds, "status": status, **kw})  # noqa: E731
    (results / "stages.jsonl").write_text("\n".join([
        record("mnli/finetune", "done", 600.0, attempts=2, finished="2026-11-27 01:00:00"),
        record("mnli/layer-sweep", "failed (1)", 30.0),
        record("old/stage", "done", 60.0),
    ]) + "\n")
    (results / "running.json").write_text(json.dumps({"stage": "mnli/beta-selection", "seconds": 90.0, "attempts": 1}))
    s = parse(["--config", "configs/reproduce/cpu.yaml", "--results", str(results), "--only", "[mnli]"])
    beat = (results / "running.json").stat().st_mtime
    states = dict(stage_states(s, now=beat + 5))
    assert states["mnli/finetune"] == "done: 10.0 min (2 attempts), 2026-11-27 01:00:00"
    assert states["mnli/layer-sweep"].startswith("failed (1) after 0.5 min")
    assert states["mnli/beta-selection"] == "running: 1.5 min so far (attempt 1)"
    assert states["mnli/evaluate-test"] == states["mnli/evaluate-test_mismatched"] == "not started"
    assert states["old/stage"].endswith("(not in the plans now)")
    later = dict(stage_states(s, now=beat + 3600))  # no beat for an hour: the process is gone
    assert later["mnli/beta-selection"].startswith("interrupted after 1.5 min (attempt 1; 60 min ago)")
    # an evaluation stage's heartbeat names its folder: the status counts the instances done there
    out = tmp_path / "beta-selection"
    (out / "shards").mkdir(parents=True)
    (out / "settings.json").write_text(json.dumps({"model_fingerprint": "sha256:x", "instances": 200}))
    (out / "shards" / "rank-0.jsonl").write_text("".join(json.dumps({"index": i, "id": str(i), "label": 0, "original_prob": 0.5, "remove": {}, "keep": {}}) + "\n"
                                                       for i in range(96)))
    (results / "running.json").write_text(json.dumps({"stage": "mnli/beta-selection", "seconds": 90.0, "attempts": 1, "out": str(out)}))
    beat = (results / "running.json").stat().st_mtime
    assert dict(stage_states(s, now=beat + 5))["mnli/beta-selection"] == "running: 1.5 min so far (attempt 1, 96 of 200 instances done)"
    os.utime(results / "running.json")
    main(["--config", "configs/reproduce/cpu.yaml", "--results", str(results), "--only", "[mnli]", "--status", "true"])
    out = capsys.readouterr().out
    assert out.startswith(f"reproduction {results}: 2 of 6 stages done") and "mnli/beta-selection" in out
    assert not (results / "README.md").exists()  # status runs nothing and writes nothing


def test_the_models_table_gives_accuracies_with_wilson_intervals(tmp_path):
    from lightning_iba.cli.reproduce import DatasetPlan, ReproduceSettings
    from lightning_iba.cli.reproduction_summaries import finetune_accuracy_cell as accuracy_cell, write_summary

    assert accuracy_cell(0.682731, 249) == "68.3 % [62.3, 73.7]" and accuracy_cell(None, 249) is None and accuracy_cell(0.7, 0) is None
    s = ReproduceSettings(runs=str(tmp_path / "runs"), results=str(tmp_path / "results"), datasets=[DatasetPlan("rte"), DatasetPlan("imdb")])
    (tmp_path / "results" / "rte").mkdir(parents=True)
    (tmp_path / "results" / "rte" / "finetune_metrics.json").write_text(json.dumps(
        {"validation_acc": 0.682731, "validation_n": 249, "test_acc": 0.67148, "test_n": 277}))
    (tmp_path / "results" / "rte" / "eval-test").mkdir()
    pd.DataFrame({"method": ["random"], "dataset": "rte", "n": 277, "original_prob": 0.7, "drop_11": [0.01], "drop_11_lo": [0.0],
                  "drop_11_hi": [0.02]}).to_csv(tmp_path / "results" / "rte" / "eval-test" / "table1.csv", index=False)
    pd.DataFrame(columns=["method_a", "method_b", "metric", "diff", "lo", "hi", "excludes_zero"]).to_csv(
        tmp_path / "results" / "rte" / "eval-test" / "differences.csv", index=False)
    page = write_summary(s).read_text()
    assert "| rte | 68.3 % [62.3, 73.7] | 249 | 67.1 % [61.4, 72.4] | 277 |" in page, page
    assert "| imdb | – | – | – | – |" in page


def test_a_rerun_moves_the_earlier_outputs_aside_once_so_the_evaluation_does_not_refuse_to_mix(tmp_path):
    stages = Stages(tmp_path / "results")
    out = tmp_path / "eval-test"
    # the stage writes a file named after its command into --out, and refuses a folder another command wrote (as evaluate.py does)
    write = lambda tag: [sys.executable, "-c", f"import pathlib, sys; o = pathlib.Path(sys.argv[2]); o.mkdir(exist_ok=True); "  # noqa: E731
                         f"sys.exit(3) if any(p.name not in ({tag!r}, 'stage.json') for p in o.iterdir()) else (o / {tag!r}).write_text('x')", "--out", str(out)]
    stages.run("d/evaluate-test", write("first"))
    stages.run("d/evaluate-test", write("second"))  # another command: the first run's folder goes aside, the re-run succeeds
    assert sorted(p.name for p in out.iterdir()) == ["second", "stage.json"]  # stage.json: the command that wrote them
    assert sorted(p.name for p in (tmp_path / "eval-test-superseded-1").iterdir()) == ["first", "stage.json"]
    # a re-run interrupted mid-way (its heartbeat left) resumes in its own folder: nothing is moved again
    stages.running.write_text(json.dumps({"stage": "d/evaluate-test", "seconds": 5.0, "attempts": 1, "commits": ["x"]}))
    stages.run("d/evaluate-test", write("second") + ["--again"])
    assert sorted(p.name for p in out.iterdir()) == ["second", "stage.json"] and not (tmp_path / "eval-test-superseded-2").exists()
    stages.run("d/evaluate-test", write("third"))  # changed again, nothing in flight: superseded-2
    assert (tmp_path / "eval-test-superseded-2" / "second").exists() and (out / "third").exists()


def test_collecting_a_re_reported_run_drops_the_breakdowns_it_no_longer_has(tmp_path):
    """results/ never keeps a labels.md or strata.md that the run, re-reported without them, has removed."""
    from lightning_iba.cli.reproduction_outputs import SMALL_FILES, copy_small

    runs, results = tmp_path / "runs", tmp_path / "results"
    (runs / "eval-test").mkdir(parents=True)
    for name in ("table1.csv", "labels.md", "strata.md"):
        (runs / "eval-test" / name).write_text(name)
    copy_small(runs, results, ["eval-test"], SMALL_FILES)
    assert sorted(p.name for p in (results / "eval-test").iterdir()) == ["labels.md", "strata.md", "table1.csv"]
    (runs / "eval-test" / "labels.md").unlink()  # re-reported with --bootstrap.by_label false
    (results / "eval-test" / "notes.md").write_text("kept")  # not a report file: left alone
    copy_small(runs, results, ["eval-test"], SMALL_FILES)
    assert sorted(p.name for p in (results / "eval-test").iterdir()) == ["notes.md", "strata.md", "table1.csv"]


def fake_model(folder: Path, weights: bytes) -> str:
    """A model folder as the fingerprint reads it; returns its fingerprint."""
    from lightning_iba.models.fingerprint import model_fingerprint

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "model.safetensors").write_bytes(weights)
    return model_fingerprint(folder)


def evaluation_writer(marker: Path, out: Path) -> list[str]:
    """A stage command that counts its runs in `marker` and leaves a finished evaluation in `out` (settings of the
    model its --checkpoint names)."""
    code = ("import json, pathlib, sys; from lightning_iba.models.fingerprint import model_fingerprint as f; "
            f"m = pathlib.Path({str(marker)!r}); m.write_text(str(int(m.read_text() if m.exists() else 0) + 1)); "
            "a = sys.argv; o = pathlib.Path(a[a.index('--out') + 1]); o.mkdir(parents=True, exist_ok=True); "
            "(o / 'settings.json').write_text(json.dumps({'model_fingerprint': f(a[a.index('--checkpoint') + 1])})); "
            "(o / 'table1.csv').write_text('method,drop\\nrandom,0.1\\n')")
    return [sys.executable, "-c", code, "--checkpoint", str(out.parent / "model"), "--out", str(out)]


def test_on_a_fresh_clone_a_finished_stage_comes_from_the_committed_results_only_for_the_same_model(tmp_path, caplog):
    """A new machine has the committed results but not runs/: a finished evaluation is taken from them if the model
    fine-tuned again is the same (its fingerprint), else it runs again rather than mix two models."""
    from lightning_iba.cli.reproduction_outputs import SMALL_FILES, copy_small

    runs, results = tmp_path / "runs", tmp_path / "results"
    stages, marker, out = Stages(results, runs=runs), tmp_path / "count.txt", runs / "imdb" / "layer-sweep"
    fake_model(runs / "imdb" / "model", b"weights")
    stages.run("imdb/layer-sweep", evaluation_writer(marker, out))
    copy_small(runs / "imdb", results / "imdb", ["layer-sweep"], SMALL_FILES)  # collect: what a commit carries
    shutil_rmtree(out)  # another machine: runs/ is gone
    stages.run("imdb/layer-sweep", evaluation_writer(marker, out))
    assert marker.read_text() == "1" and (out / "table1.csv").read_text() == (results / "imdb" / "layer-sweep" / "table1.csv").read_text()
    shutil_rmtree(out)
    fake_model(runs / "imdb" / "model", b"other weights")  # the fine-tune did not give the same model
    stages.run("imdb/layer-sweep", evaluation_writer(marker, out))
    assert marker.read_text() == "2" and "not reused" in caplog.text and "so it runs again" in caplog.text
    # with its folder present, a finished stage is simply skipped
    stages.run("imdb/layer-sweep", evaluation_writer(marker, out))
    assert marker.read_text() == "2"
    # the record names a command whose outputs were not collected yet (a commit between the stage's end and collect):
    # the committed outputs, of the command before, are not taken for it
    copy_small(runs / "imdb", results / "imdb", ["layer-sweep"], SMALL_FILES)
    shutil_rmtree(out)
    changed = evaluation_writer(marker, out) + ["--instances", "300"]
    stages.run("imdb/layer-sweep", changed)  # runs: another command than the record's
    record = json.loads(stages.log.read_text().splitlines()[-1])
    assert marker.read_text() == "3" and json.loads((out / "stage.json").read_text())["command"] == record["command"]
    shutil_rmtree(out)  # ... and that machine went away before collect
    stages.run("imdb/layer-sweep", changed)
    assert marker.read_text() == "4" and "not by this stage's command: not reused" in caplog.text
    (out / "stage.json").unlink()  # outputs that no record vouches for (a kill before stage.json): collect drops the old one
    copy_small(runs / "imdb", results / "imdb", ["layer-sweep"], SMALL_FILES)
    assert not (results / "imdb" / "layer-sweep" / "stage.json").exists()


def test_a_saved_stage_in_progress_resumes_on_a_fresh_clone_with_its_shards_and_wall_time(tmp_path, caplog):
    from lightning_iba.cli.reproduction_carry import PROGRESS_DIR, save_progress
    from lightning_iba.cli.reproduction_outputs import SMALL_FILES, copy_small
    from lightning_iba.cli.reproduction_stages import printable_command
    from lightning_iba.evaluation.settings import check_resumable

    caplog.set_level("INFO", logger="lightning_iba.reproduce")
    runs, results = tmp_path / "runs", tmp_path / "results"
    stages, out = Stages(results, runs=runs), runs / "imdb" / "figure2b-dataset"
    fingerprint = fake_model(runs / "imdb" / "model", b"weights")
    (out / "shards").mkdir(parents=True)
    identity = {"model_fingerprint": fingerprint, "checkpoint": "/another/machine/runs/imdb/model", "instances": 200, "target": "gold",
                "data": {"files": {"path": "/another/machine/shared/test.csv", "sha256": "ab12"}}}
    (out / "settings.json").write_text(json.dumps(identity))
    record = {"index": 0, "id": "a", "label": 1, "original_prob": 0.9, "remove": {}, "keep": {}}
    (out / "shards" / "rank-0.jsonl").write_text(json.dumps(record) + "\n" + json.dumps({**record, "index": 1}) + "\n")
    seen = tmp_path / "seen.txt"
    check = [sys.executable, "-c", f"import pathlib; o = pathlib.Path({str(out)!r}); pathlib.Path({str(seen)!r}).write_text("
             "str(len((o / 'shards' / 'rank-0.jsonl').read_text().splitlines())))", "--checkpoint", str(runs / "imdb" / "model"), "--out", str(out)]
    beat = {"stage": "imdb/figure2b-dataset", "seconds": 3600.0, "attempts": 2, "commits": ["aaa"], "out": str(out)}
    stages.running.write_text(json.dumps(beat))
    with pytest.raises(LightningIBAError, match="names no command"):  # a heartbeat of older code: nothing to resume it by
        save_progress(runs, results)
    stages.running.write_text(json.dumps({**beat, "command": printable_command(check)}))
    said = save_progress(runs, results)
    saved = results / "imdb" / "figure2b-dataset" / PROGRESS_DIR
    assert "2 instances done (1.00 h over 2 attempt(s))" in said and (saved / "shards" / "rank-0.jsonl").is_file()
    with pytest.raises(LightningIBAError, match="nothing to save"):
        save_progress(runs, tmp_path / "elsewhere")
    shutil_rmtree(runs / "imdb" / "figure2b-dataset")  # another machine: no runs/, no heartbeat
    stages.running.unlink()
    from lightning_iba.cli.reproduce import parse
    from lightning_iba.cli.reproduction_status import status_text

    status = status_text(parse(["--config", "configs/reproduce/cpu.yaml", "--runs", str(runs), "--results", str(results), "--only", "[imdb]"]))
    assert "imdb/figure2b-dataset    saved after 60.0 min (attempt 2, 2 of 200 instances done)" in status and "the next run resumes it if its command is unchanged" in status
    with pytest.raises(LightningIBAError, match="failed"):  # another command: nothing restored (so this one finds no shards)
        stages.run("imdb/figure2b-dataset", check + ["--layer", "3"])
    assert not (out / "settings.json").exists() and "not of this stage's command: not resumed" in caplog.text
    stages.run("imdb/figure2b-dataset", check)
    record = json.loads(stages.log.read_text().splitlines()[-1])
    assert seen.read_text() == "2" and "2 instances done before" in caplog.text
    # evaluate.py --resume takes the restored run here, where the model and data lie elsewhere but are the same
    check_resumable(out, {**identity, "checkpoint": str(runs / "imdb" / "model"), "data": {"files": {"path": "/here/test.csv", "sha256": "ab12"}}}, True)
    for changed in ({"model_fingerprint": "sha256:0"}, {"data": {"files": {"path": "/here/test.csv", "sha256": "cd34"}}}, {"instances": 100}):
        with pytest.raises(LightningIBAError, match="refused|different settings"):
            check_resumable(out, {**identity, **changed}, True)
    assert record["attempts"] == 3 and record["seconds"] >= 3600 and record["commits"][0] == "aaa"
    (out / "table1.csv").write_text("method,drop\n")
    copy_small(runs / "imdb", results / "imdb", ["figure2b-dataset"], SMALL_FILES)  # finished: the saved progress goes
    assert not saved.exists()
    # progress of another model is not put back: the stage starts over
    save_dir = results / "imdb" / "figure2b-reference"
    (save_dir / PROGRESS_DIR / "shards").mkdir(parents=True)
    (save_dir / PROGRESS_DIR / "settings.json").write_text(json.dumps({"model_fingerprint": "sha256:0000000000000000"}))
    other = runs / "imdb" / "figure2b-reference"
    command = [sys.executable, "-c", "pass", "--checkpoint", str(runs / "imdb" / "model"), "--out", str(other)]
    (save_dir / PROGRESS_DIR / "heartbeat.json").write_text(json.dumps({**beat, "stage": "imdb/figure2b-reference", "command": printable_command(command)}))
    stages.run("imdb/figure2b-reference", command)
    assert not (other / "settings.json").exists() and "(fine-tuned again with other weights): not reused" in caplog.text


def shutil_rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)
