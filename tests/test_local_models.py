"""pasture.local_models: the SmolLM2 file, weights digests, and the llama.cpp server helper."""

import hashlib
from pathlib import Path

import httpx
import pytest

from pasture.errors import JudgeError
from pasture.local_models import SMOLLM2_FILE, LlamaServer, file_digest, free_port


def test_llama_server_serves_the_file_and_answers_a_chat_request(llama_server: LlamaServer) -> None:
    models = httpx.get(f"{llama_server.base_url}/models", timeout=30).json()
    assert [m["id"] for m in models["data"]] == [str(llama_server.model_path)]
    assert llama_server.model_path.name == SMOLLM2_FILE
    reply = httpx.post(
        f"{llama_server.base_url}/chat/completions",
        json={"model": "smollm2", "messages": [{"role": "user", "content": "Say yes."}], "max_tokens": 2},
        timeout=120,
    ).json()
    assert isinstance(reply["choices"][0]["message"]["content"], str)
    assert 1 <= reply["usage"]["completion_tokens"] <= 2 and reply["usage"]["prompt_tokens"] > 0


def test_server_that_cannot_start_is_a_clear_error_and_leaves_no_process(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-model.gguf"
    bad.write_bytes(b"GGUF but not really")
    server = LlamaServer(bad, log_path=tmp_path / "server.log", startup_timeout_s=60)
    with pytest.raises(JudgeError, match="exited with status"):
        server.start()
    assert server._proc is None or server._proc.poll() is not None
    assert (tmp_path / "server.log").stat().st_size > 0  # the reason is in the log


def test_file_digest_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"\x00weights" * 300_000)  # more than one 1 MiB block
    assert file_digest(f) == hashlib.sha256(f.read_bytes()).hexdigest()
    assert 1024 <= free_port() <= 65535


def test_local_extra_pins_llama_cpp_python_to_a_tested_minor_and_it_is_installed() -> None:
    """llama-cpp-python changes its API and server within 0.x minors: [local] must bound it above, and the
    installed copy (the one these tests ran against) must satisfy the bound."""
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    local = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["optional-dependencies"]["local"]
    (req,) = [Requirement(r) for r in local if Requirement(r).name == "llama-cpp-python"]
    assert "server" in req.extras
    assert any(s.operator == "<" for s in req.specifier) and any(s.operator == ">=" for s in req.specifier)
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'pasture[local]')")
    assert req.specifier.contains(version("llama_cpp_python")), (str(req.specifier), version("llama_cpp_python"))
