"""Fixtures for the engine's tests: a fault proxy in front of the real llama.cpp server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from faultproxy import FaultProxy


@pytest.fixture
def proxy(llama_server) -> Iterator[FaultProxy]:  # type: ignore[no-untyped-def]
    """A fault proxy (no faults until a test sets a schedule) in front of the session's llama.cpp server."""
    with FaultProxy(f"http://127.0.0.1:{llama_server.port}") as p:
        yield p
