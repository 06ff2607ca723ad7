"""``require``: skip on a user's clone, fail under CI=true, so CI can never go green by skipping.

Test modules import it as ``from test_resources import require`` (a unique name: several folders have a
conftest.py, so ``from conftest import ...`` is ambiguous).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip (on a user's machine) or fail (under CI=true) when a needed resource is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"missing resource under CI=true: {reason}")
    pytest.skip(reason)


def load_module(path: Path) -> ModuleType:
    """A script outside the package (e.g. ``benchmarks/stub_openai_server.py``) imported by file path, so tests
    run the very server and helpers the benchmarks use."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def test_require_passes_when_the_resource_is_there() -> None:
    require(True, "never shown")
