"""The package's layering: imports only run downward, so each layer can be used and tested alone."""
from __future__ import annotations

import ast

import pytest

from conftest import REPO

PACKAGE = REPO / "lightning_iba"
#: package -> the project packages it may import (besides itself and the top-level helper modules)
ALLOWED = {
    "data": set(),
    "models": {"data"},
    "viz": set(),
    "attribution": {"data", "models"},
    "evaluation": {"data", "models", "attribution", "viz"},
    "cli": {"data", "models", "attribution", "evaluation", "viz"},
}


def project_imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    return {n.split(".")[1] for n in names if n.startswith("lightning_iba.") and n.count(".") >= 1}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_only_run_downward(package):
    subpackages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    for path in (PACKAGE / package).glob("*.py"):
        wrong = {m for m in project_imports(path) if m in subpackages and m != package and m not in ALLOWED[package]}
        assert not wrong, f"{path.relative_to(REPO)} imports lightning_iba.{', lightning_iba.'.join(sorted(wrong))}"


def test_every_subpackage_has_a_place_in_the_layering():
    subpackages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert subpackages == set(ALLOWED)


def test_argument_parsing_lives_in_the_cli_package():
    for package in ("attribution", "evaluation", "data", "models", "viz"):
        for path in (PACKAGE / package).glob("*.py"):
            text = path.read_text()
            assert "ArgumentParser" not in text and "argparse" not in text, path.relative_to(REPO)
