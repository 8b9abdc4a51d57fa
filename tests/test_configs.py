"""The configs: every shipped file parses, the science defaults live in one place (base.yaml, and the
code agrees), and each task of the registry has exactly its two thin overlays."""
from __future__ import annotations

import inspect

import pytest
import yaml

from conftest import REPO
from lightning_iba.data.tasks import TASKS

CONFIGS = REPO / "configs"
#: overlays that are not a dataset: profiles and experiments
NOT_DATASETS = {"base", "cpu", "paper", "demo", "demo_256", "layer_sweep", "beta_sweep"}


def flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def yaml_of(path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


# ---------------------------------------------------------------- evaluate and attribute


@pytest.mark.parametrize("command", ["evaluate", "attribute"])
def test_base_yaml_holds_every_setting_with_the_codes_own_default(command):
    from lightning_iba.cli import attribute, evaluate

    module = {"evaluate": evaluate, "attribute": attribute}[command]
    code = flatten(module.build_parser(with_base_config=False).get_defaults().as_dict())
    code.pop("config", None)
    base = flatten(yaml_of(CONFIGS / command / "base.yaml"))
    assert set(base) == set(code), f"only in base.yaml: {set(base) - set(code)}; only in code: {set(code) - set(base)}"
    differ = {k: (base[k], code[k]) for k in base if str(base[k]) != str(code[k]) and base[k] != code[k]}
    assert not differ, f"base.yaml and the code disagree (yaml, code): {differ}"


@pytest.mark.parametrize("config", sorted((CONFIGS / "evaluate").glob("**/*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_evaluation_config_is_valid(config):
    """Each shipped config parses over base.yaml (no unknown keys) and names methods, estimator and dataset that exist."""
    from lightning_iba.cli.evaluate import parse
    from lightning_iba.data.tasks import get_task

    settings = parse(["--config", str(config)])  # raises on unknown keys and bad values
    assert settings.methods and settings.betas
    if settings.dataset is not None:
        get_task(settings.dataset)
    assert settings.degradation.headline_name == "drop_11"


@pytest.mark.parametrize("config", sorted((CONFIGS / "attribute").glob("*.yaml")), ids=lambda p: p.name)
def test_every_attribution_config_is_valid(config):
    from lightning_iba.cli.attribute import parse

    settings, iba, estimator = parse(["--config", str(config)])
    assert iba["beta"] > 0 and estimator.name in ("dataset", "reference")


def test_dataset_and_profile_overlays_compose():
    from lightning_iba.cli.evaluate import parse

    rte = parse(["--config", str(CONFIGS / "evaluate" / "rte.yaml"), "--config", str(CONFIGS / "evaluate" / "paper.yaml")])
    assert (rte.layer, rte.iba["beta"], rte.options["lime"]["num_samples"], rte.precision) == (9, 1e-4, 75, "bf16")
    cpu = parse(["--config", str(CONFIGS / "evaluate" / "rte.yaml"), "--config", str(CONFIGS / "evaluate" / "cpu.yaml")])
    assert cpu.layer is None and cpu.instances == 1000  # the relative depth of the smaller model
    assert parse(["--config", str(CONFIGS / "evaluate" / "layer_sweep.yaml")]).split == "validation"  # chosen on validation


# ---------------------------------------------------------------- train


def test_finetune_base_yaml_agrees_with_the_code():
    from lightning_iba.data.datamodule import TextClassificationDataModule
    from lightning_iba.models.callbacks import ExportBestModel
    from lightning_iba.models.classifier import SequenceClassifier

    base = yaml_of(CONFIGS / "finetune" / "base.yaml")
    for group, cls in (("data", TextClassificationDataModule), ("model", SequenceClassifier), ("export", ExportBestModel)):
        params = inspect.signature(cls.__init__).parameters
        for key, value in base[group].items():
            assert key in params, f"{group}.{key} is not an argument of {cls.__name__}"
            default = params[key].default
            if group == "export" and key == "dirpath":
                continue  # null in both: derived from the dataset
            assert default == value, f"{group}.{key}: base.yaml {value!r}, {cls.__name__} {default!r}"


@pytest.mark.parametrize(
    "configs",
    [[p.name] for p in sorted((CONFIGS / "finetune").glob("*.yaml")) if p.stem not in ("base", "cpu")] + [["imdb.yaml", "cpu.yaml"]]
    + [[f"{p.stem}.yaml", "cpu.yaml", f"cpu_minilm/{p.name}"] for p in sorted((CONFIGS / "finetune" / "cpu_minilm").glob("*.yaml"))],
    ids=lambda names: "+".join(names),
)
def test_every_finetune_config_parses(configs, capsys):
    """Each shipped config (and the cpu overlay) is accepted over base.yaml and names a known dataset."""
    from lightning_iba.cli.train import build_cli
    from lightning_iba.data.tasks import get_task

    args = [a for name in configs for a in ("--config", str(CONFIGS / "finetune" / name))]
    with pytest.raises(SystemExit) as exit_info:
        build_cli([*args, "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    get_task(printed["data"]["dataset"])
    assert printed["trainer"]["max_epochs"] or printed["trainer"]["max_steps"] > 0


def test_folders_follow_the_dataset_when_left_null():
    from lightning_iba.cli.common import base_config
    from lightning_iba.cli.train import FinetuneCLI, program_arguments
    from lightning_iba.data.datamodule import TextClassificationDataModule
    from lightning_iba.models.classifier import SequenceClassifier

    class Parsed(Exception):
        pass

    class Probe(FinetuneCLI):
        def instantiate_classes(self) -> None:  # stop once the derived defaults are filled in
            raise Parsed(self.config)

    args = ["--config", str(CONFIGS / "finetune" / "mnli.yaml")]
    with program_arguments(args), pytest.raises(Parsed) as parsed:
        Probe(SequenceClassifier, TextClassificationDataModule, run=False, args=args, parser_kwargs={"default_config_files": base_config("finetune")})
    c = parsed.value.args[0]
    assert c.trainer.default_root_dir == "runs/mnli" and c.trainer.max_epochs == 3
    assert (c.checkpoint.dirpath, c.export.dirpath) == ("runs/mnli/checkpoints", "runs/mnli/model")
    names = {str(lg.class_path).rsplit(".", 1)[-1]: (lg.init_args.save_dir, lg.init_args.name) for lg in c.trainer.logger}
    assert names == {"AutoWandbLogger": ("runs/mnli", "finetune-mnli"), "RunCSVLogger": ("runs/mnli", "csv")}


# ---------------------------------------------------------------- the registry and the overlays


def test_each_task_has_its_two_overlays_and_nothing_else_names_a_dataset():
    for command in ("finetune", "evaluate"):
        overlays = {p.stem for p in (CONFIGS / command).glob("*.yaml")} - NOT_DATASETS
        assert overlays == set(TASKS), f"configs/{command}: overlays {sorted(overlays)} vs registry {sorted(TASKS)}"


@pytest.mark.parametrize("command", ["finetune", "evaluate"])
def test_dataset_overlays_are_thin_they_never_restate_base(command):
    base = flatten(yaml_of(CONFIGS / command / "base.yaml"))
    for path in sorted((CONFIGS / command).glob("*.yaml")):
        if path.stem not in TASKS:
            continue  # profiles and experiments go over a dataset overlay and may set a base value back
        restated = {k: v for k, v in flatten(yaml_of(path)).items() if k in base and base[k] == v and k != "data.dataset"}
        assert not restated, f"{path.relative_to(REPO)} repeats base.yaml: {restated}"


def test_readme_flag_tables_are_generated_from_the_parsers():
    from lightning_iba.cli import docs

    assert docs.main(["--check"]) == 0, "README.md flag tables are stale: run `python -m lightning_iba.cli.docs`"


# ---------------------------------------------------------------- the reproduction

#: the pretrained model each reproduction profile starts from: the bundled MiniLM, or base.yaml's (the paper's)
PRETRAINED = {"cpu.yaml": "bundled-minilm", "paper.yaml": yaml.safe_load((CONFIGS / "finetune" / "base.yaml").read_text())["data"]["model_name_or_path"]}


@pytest.mark.parametrize("profile", sorted((CONFIGS / "reproduce").glob("*.yaml")), ids=lambda p: p.name)
def test_every_reproduction_config_composes_valid_train_and_evaluate_configs(profile, capsys):
    """Each dataset of a reproduction names overlays that exist and parse over the dataset's own overlay."""
    from lightning_iba.cli.evaluate import parse as parse_evaluate
    from lightning_iba.cli.reproduce import parse
    from lightning_iba.cli.train import build_cli

    plan = parse(["--config", str(profile)])
    assert {d.name for d in plan.datasets} >= {t.name for t in TASKS.values() if t.in_table1}, "a Table 1 column is missing"
    for d in plan.datasets:
        evaluate = [a for c in (f"configs/evaluate/{d.name}.yaml", *d.evaluate) for a in ("--config", str(REPO / c))]
        for split in d.splits:
            settings = parse_evaluate([*evaluate, "--split", split, "--methods", plan.methods, *d.validation])
            assert settings.dataset == d.name
        finetune = [a for c in (f"configs/finetune/{d.name}.yaml", *d.finetune) for a in ("--config", str(REPO / c))]
        with pytest.raises(SystemExit) as exit_info:
            build_cli([*finetune, "--print_config"])
        assert exit_info.value.code in (0, None)
        printed = yaml.safe_load(capsys.readouterr().out)
        earlier = {f"{plan.runs}/{e.name}/model" for e in plan.datasets[: plan.datasets.index(d)]}
        assert printed["data"]["dataset"] == d.name
        assert printed["data"]["model_name_or_path"] in {PRETRAINED[profile.name], *earlier}, "starts from another profile's model or one the plan has not made yet"


@pytest.mark.parametrize("profile", sorted((CONFIGS / "reproduce").glob("*.yaml")), ids=lambda p: p.name)
def test_every_plausibility_plan_composes_valid_train_and_evaluate_commands(profile, capsys):
    """Each rationale plan's stage commands, as the reproduction builds them, parse: a transfer plan's model has
    the task's labels, a fine-tuned plan starts from a model that exists when it runs, at the plan's max_length."""
    from lightning_iba.cli.evaluate import parse as parse_evaluate
    from lightning_iba.cli.reproduce import parse, rationale_evaluate_command, rationale_finetune_command
    from lightning_iba.cli.train import build_cli
    from lightning_iba.data.tasks import get_task

    plan = parse(["--config", str(profile)])
    models = {PRETRAINED[profile.name], *(f"{plan.runs}/{d.name}/model" for d in plan.datasets)}
    for r in plan.rationales:
        task = get_task(r.dataset)
        assert task.rationales, f"{r.name}: {r.dataset} has no human rationales"
        if r.transfer:
            assert get_task(r.model_from).label_names == task.label_names, f"{r.name}: the {r.model_from} model has other labels"
        for split in ("validation", *r.splits):
            command = rationale_evaluate_command(plan, r, REPO / "runs" / "unused", "--split", split, "--methods", r.methods)
            settings = parse_evaluate([a if not a.startswith("configs/") else str(REPO / a) for a in command[2:]])
            assert (settings.dataset, settings.max_length, settings.allow_task_transfer) == (r.dataset, r.max_length, r.transfer)
        if r.transfer:
            continue
        command = rationale_finetune_command(plan, r)
        with pytest.raises(SystemExit) as exit_info:
            build_cli([*[a if not a.startswith("configs/") else str(REPO / a) for a in command[2:]], "--print_config"])
        assert exit_info.value.code in (0, None)
        printed = yaml.safe_load(capsys.readouterr().out)
        assert (printed["data"]["dataset"], printed["data"]["max_length"]) == (r.dataset, r.max_length)
        assert printed["data"]["model_name_or_path"] in models, "starts from a model the plan has not made yet"


def test_the_paper_profile_takes_every_table1_split_from_the_hub_and_evaluates_whole_test_sets(capsys):
    """Profile paper never falls back to the bundled or local copies that `source: auto` picks offline: an offline node
    must stop, not evaluate IMDB on bundled train reviews. And it evaluates the paper's whole test sets."""
    from lightning_iba.cli.evaluate import parse as parse_evaluate
    from lightning_iba.cli.reproduce import parse
    from lightning_iba.cli.train import build_cli

    plan = parse(["--config", str(CONFIGS / "reproduce" / "paper.yaml")])
    for d in plan.datasets:
        assert d.test_instances is None, f"{d.name}: the paper evaluates the whole test set"
        evaluate = [a for c in (f"configs/evaluate/{d.name}.yaml", *d.evaluate) for a in ("--config", str(REPO / c))]
        settings = parse_evaluate([*evaluate, "--split", "validation", *d.validation])
        assert (settings.source, settings.estimator.source) == ("hub", None), d.name  # estimator texts: the run's source
        finetune = [a for c in (f"configs/finetune/{d.name}.yaml", *d.finetune) for a in ("--config", str(REPO / c))]
        with pytest.raises(SystemExit):
            build_cli([*finetune, "--print_config"])
        printed = yaml.safe_load(capsys.readouterr().out)
        assert (printed["data"]["source"], printed["data"]["max_length"]) == ("hub", 512), d.name
