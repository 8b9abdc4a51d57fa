"""The README's flag tables, generated from the commands' own parsers so that they stay true.

    python -m lightning_iba.cli.docs            # rewrite the tables in README.md
    python -m lightning_iba.cli.docs --check    # exit 1 if README.md is out of date (the tests do this)

A table sits between `<!-- flags:COMMAND -->` and `<!-- /flags:COMMAND -->` in README.md. Defaults
are the effective ones: the code's, with configs/<command>/base.yaml over them.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"
SKIP = {"help", "config", "print_config"}
#: fine-tuning keys documented here (the rest is LightningCLI's own: `python train.py --help`)
TRAIN_GROUPS = ("data.", "model.", "export.")
#: and the project's own fine-tuning keys outside them, with the meaning the project gives them (None: the flag's own
#: help; ModelCheckpoint's docstrings are pages long: `python train.py --help` has them)
TRAIN_KEYS = {
    "checkpoint.dirpath": "where the best checkpoint (and, with --resume, resume.ckpt) is written (null: runs/<dataset>/checkpoints, or under --trainer.default_root_dir)",
    "checkpoint.filename": "the best checkpoint's name (best.ckpt), which --export.* exports at the end",
    "checkpoint.monitor": "the validation metric that chooses the best checkpoint",
    "checkpoint.mode": "max or min of the monitored metric",
    "checkpoint.save_top_k": "how many best checkpoints to keep",
    "resume": None,
}


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _linked_targets(parser) -> set[str]:
    """Keys set from another key (LightningCLI's link_arguments): not flags of their own."""
    group = getattr(parser, "_links_group", None)
    return {a.target[0] for a in getattr(group, "_group_actions", []) if getattr(a, "target", None)}


def _rows(parser, defaults: dict[str, Any], keep=lambda dest: True) -> list[tuple[str, str, str]]:
    rows = []
    linked = _linked_targets(parser)
    for action in parser._actions:
        if action.dest in linked:
            continue
        dest = action.dest
        if dest in SKIP or not action.option_strings or action.help == argparse.SUPPRESS or not keep(dest):
            continue
        if type(action).__name__ in ("_ActionConfigLoad", "_ActionHelpClassPath"):  # "--iba CONFIG", "--data.files.help"
            continue
        help_text = " ".join((action.help or "").split()).replace("|", "\\|")  # a bare | would split the table cell
        rows.append((f"--{dest}", _value(defaults.get(dest, action.default)), help_text))
        rows += _dataclass_rows(action, keep)
    return rows


def _dataclass_rows(action, keep) -> list[tuple[str, str, str]]:
    """The fields of an optional dataclass argument (`--data.files.train_file`, ...), documented by a parser of their own."""
    import dataclasses
    import typing

    from jsonargparse import ArgumentParser

    cls = next((t for t in typing.get_args(getattr(action, "_typehint", None)) if dataclasses.is_dataclass(t)), None)
    if cls is None:
        return []
    sub = ArgumentParser()
    sub.add_class_arguments(cls, action.dest)
    return _rows(sub, _flatten(sub.get_defaults().as_dict()), keep)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (tree.items() if isinstance(tree, dict) else []):
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def table(command: str) -> str:
    """The Markdown flag table of `command` (attribute, evaluate or train)."""
    if command == "train":
        parser, keep, meanings = _train_parser(), lambda dest: dest.startswith(TRAIN_GROUPS) or dest in TRAIN_KEYS, TRAIN_KEYS
    else:
        module = __import__(f"lightning_iba.cli.{command}", fromlist=["build_parser"])
        parser, keep, meanings = module.build_parser(), lambda dest: True, {}
    defaults = _flatten(parser.get_defaults().as_dict())
    lines = ["| flag | default | meaning |", "|---|---|---|"]
    lines += [f"| `{flag}` | `{default}` | {meanings.get(flag[2:]) or text} |" for flag, default, text in _rows(parser, defaults, keep)]
    return "\n".join(lines)


def _train_parser():
    """The fine-tuning CLI's parser, without instantiating the model or data."""
    from lightning_iba.cli.common import base_config
    from lightning_iba.cli.train import FinetuneCLI, program_arguments
    from lightning_iba.data.datamodule import TextClassificationDataModule
    from lightning_iba.models.classifier import SequenceClassifier

    class ParserOnly(FinetuneCLI):
        def parse_arguments(self, parser, args) -> None:  # keep the parser, parse nothing
            raise _Parser(parser)

    try:
        with program_arguments([]):
            ParserOnly(SequenceClassifier, TextClassificationDataModule, run=False, args=[],
                       parser_kwargs={"default_config_files": base_config("finetune")})
    except _Parser as found:
        return found.args[0]
    raise RuntimeError("the fine-tuning CLI did not build its parser")


class _Parser(Exception):
    pass


def render(text: str) -> str:
    """README text with every flags block regenerated."""
    def replace(match: re.Match) -> str:
        command = match.group(1)
        return f"<!-- flags:{command} -->\n{table(command)}\n<!-- /flags:{command} -->"

    return re.sub(r"<!-- flags:(\w+) -->.*?<!-- /flags:\1 -->", replace, text, flags=re.S)


def main(argv: list[str] | None = None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    current = README.read_text(encoding="utf-8")
    fresh = render(current)
    if check:
        if fresh != current:
            print("README.md flag tables are out of date; run `python -m lightning_iba.cli.docs`", file=sys.stderr)
            return 1
        return 0
    README.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
