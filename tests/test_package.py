"""The package's lazy exports: every public name resolves, and the three lists that name them agree."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pasture

INIT = Path(pasture.__file__)


def _type_checking_imports() -> dict[str, str]:
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    (block,) = [node for node in tree.body if isinstance(node, ast.If)]
    return {
        alias.name: node.module or "" for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names
    }


def test_exports_type_checking_imports_and_all_name_the_same_things() -> None:
    lazy = {name: module for module, names in pasture._EXPORTS.items() for name in names}
    assert lazy == _type_checking_imports()
    assert set(pasture.__all__) == set(lazy) | {"__version__"}


def test_every_export_resolves_to_its_modules_object() -> None:
    import importlib

    for module, names in pasture._EXPORTS.items():
        for name in names:
            assert getattr(pasture, name) is getattr(importlib.import_module(module), name)
    assert "Store" in dir(pasture)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        pasture.no_such_export  # noqa: B018
    except AttributeError as err:
        assert "no_such_export" in str(err)
    else:
        raise AssertionError("an unknown attribute resolved")


def test_importing_a_submodule_does_not_load_the_analyses() -> None:
    """The point of the lazy exports: a worker that needs records does not import pandas or scipy."""
    code = "import sys, pasture.records; print(sorted(m for m in ('pandas', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_commands_help_does_not_load_torch() -> None:
    """`pasture --help` loads every command module; torch (about a second) waits until a command trains or
    generates (analyze-pool's settings live in the torch-free pasture.analysis.survey)."""
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom pasture.cli import main\n"
        "assert CliRunner().invoke(main, ['--help']).exit_code == 0\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
