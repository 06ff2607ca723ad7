"""Shared fixtures. Resources a test needs (../shared, a model, Chromium) skip on a user's clone and fail
under CI=true, so CI can never go green by skipping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip (on a user's machine) or fail (under CI=true) when a needed resource is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"missing resource under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The read-only ../shared folder with real AlpacaEval data."""
    require((SHARED / "alpacaeval").is_dir(), f"../shared not found at {SHARED} (data for tests; see README)")
    return SHARED


@pytest.fixture(scope="session")
def alpacaeval(shared: Path) -> Path:
    return shared / "alpacaeval"
