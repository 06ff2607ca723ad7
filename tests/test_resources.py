"""``require``: skip on a user's clone, fail under CI=true, so CI can never go green by skipping.

Test modules import it as ``from test_resources import require`` (a unique name: several folders have a
conftest.py, so ``from conftest import ...`` is ambiguous).
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip (on a user's machine) or fail (under CI=true) when a needed resource is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"missing resource under CI=true: {reason}")
    pytest.skip(reason)


def test_require_passes_when_the_resource_is_there() -> None:
    require(True, "never shown")
