"""An instant OpenAI-compatible stub server for engine throughput benchmarks (standard library only).

It answers ``POST /v1/chat/completions`` and ``POST /v1/completions`` at once with one fixed, well-formed
completion whose top logprobs hold the labels both pasture's logprob judges ("A"/"B") and AlpacaEval's
weighted judge ("m"/"M") read, plus usage counts. ``GET /v1/models`` lists one model, ``GET /stats`` returns
``{"requests": n, "by_key": {key: n}, "connections": c, "max_gap_ms": g, "p99_gap_ms": q}`` over the POST
completions served since start or the last ``POST /reset``: how many, by :func:`request_key` of what was asked,
over how many client connections, and the longest and 99th-percentile gap between two consecutive arrivals. A
client whose event loop stalls (a blocking commit, a slow batch) leaves a gap as long as the stall, whatever it
reports itself. HTTP/1.1 keep-alive, no chunked bodies. With ``--latency-ms L`` every completion is answered L ms
after its request arrived (a fixed-latency judge, for scale-out measurements; requests wait concurrently). Run:
``python benchmarks/stub_openai_server.py --port 8765``; prints ``ready`` when up.

Why a raw asyncio server: it must never be the bottleneck of what it measures; parsing and answering a
request costs it a few tens of microseconds, far below an HTTP client's per-call cost.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

_LOGPROBS = [
    {"token": "A", "logprob": -0.40, "bytes": None},
    {"token": "B", "logprob": -1.30, "bytes": None},
    {"token": "m", "logprob": -0.60, "bytes": None},
    {"token": "M", "logprob": -0.90, "bytes": None},
    {"token": "The", "logprob": -4.00, "bytes": None},
]


def _chat_body(prompt_tokens: int) -> bytes:
    top = [dict(x) for x in _LOGPROBS]
    return json.dumps(
        {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": 0,
            "model": "stub",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "A"},
                    "logprobs": {"content": [{"token": "A", "logprob": -0.40, "bytes": None, "top_logprobs": top}]},
                    "finish_reason": "length",
                }
            ],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 1, "total_tokens": prompt_tokens + 1},
        }
    ).encode()


def _text_body(prompt_tokens: int) -> bytes:
    return json.dumps(
        {
            "id": "cmpl-stub",
            "object": "text_completion",
            "created": 0,
            "model": "stub",
            "choices": [
                {
                    "index": 0,
                    "text": "A",
                    "logprobs": {
                        "tokens": ["A"],
                        "token_logprobs": [-0.40],
                        "top_logprobs": [{x["token"]: x["logprob"] for x in _LOGPROBS}],
                        "text_offset": [0],
                    },
                    "finish_reason": "length",
                }
            ],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 1, "total_tokens": prompt_tokens + 1},
        }
    ).encode()


def request_key(asked: object) -> str:
    """The key the stub counts a completion under: a digest of its ``messages`` (chat) or ``prompt`` (text)."""
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()[:24]


class StubServer:
    def __init__(self, latency_s: float = 0.0) -> None:
        self.requests = 0
        self.by_key: dict[str, int] = {}
        self.latency_s = latency_s
        self.arrivals: list[float] = []  # perf_counter of each POST completion since the last reset
        self.connections: set[int] = set()  # connections that sent one since the last reset
        self._next_connection = 0

    def stats(self) -> dict[str, Any]:
        gaps = sorted(b - a for a, b in zip(self.arrivals, self.arrivals[1:], strict=False))
        return {
            "requests": self.requests,
            "by_key": self.by_key,
            "connections": len(self.connections),
            "max_gap_ms": 1000 * gaps[-1] if gaps else 0.0,
            "p99_gap_ms": 1000 * gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))] if gaps else 0.0,
        }

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._next_connection += 1
        connection = self._next_connection
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                first, _, rest = head.partition(b"\r\n")
                method, path, _ = first.decode("latin-1").split(" ", 2)
                length = 0
                for line in rest.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:].strip())
                body = await reader.readexactly(length) if length else b""
                status, payload = self.route(method, path, body)
                if method == "POST" and path.endswith("completions"):
                    self.connections.add(connection)
                    if self.latency_s:
                        await asyncio.sleep(self.latency_s)
                writer.write(
                    b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (status, len(payload), payload)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def route(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        path = path.split("?", 1)[0]
        if method == "POST" and path.endswith("/chat/completions"):
            self.count(body, "messages")
            return 200, _chat_body(len(body) // 4)
        if method == "POST" and path.endswith("/completions"):
            self.count(body, "prompt")
            return 200, _text_body(len(body) // 4)
        if method == "GET" and path.endswith("/models"):
            return 200, b'{"object": "list", "data": [{"id": "stub", "object": "model"}]}'
        if path == "/stats":
            return 200, json.dumps(self.stats()).encode()
        if method == "POST" and path == "/reset":
            self.requests = 0
            self.by_key = {}
            self.arrivals.clear()
            self.connections.clear()
            return 200, b"{}"
        return 404, b'{"error": {"message": "not found"}}'

    def count(self, body: bytes, field: str) -> None:
        self.requests += 1
        self.arrivals.append(time.perf_counter())
        try:
            key = request_key(json.loads(body).get(field))
        except (ValueError, AttributeError):
            key = "unreadable"
        self.by_key[key] = self.by_key.get(key, 0) + 1


async def serve(port: int, latency_s: float = 0.0) -> None:
    stub = StubServer(latency_s)
    server = await asyncio.start_server(stub.handle, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


class StubProcess:
    """The stub in a child process (so it never shares the measured client's interpreter), as a context manager."""

    def __init__(self, port: int, *, latency_ms: float = 0.0) -> None:
        self.port = port
        self.latency_ms = latency_ms
        self._proc: subprocess.Popen[str] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def requests(self) -> int:
        """POST completions served since start or the last reset."""
        return int(self.stats()["requests"])

    def stats(self) -> dict[str, Any]:
        """Requests, connections and arrival gaps since start or the last reset (see the module docstring)."""
        return dict(httpx.get(f"http://127.0.0.1:{self.port}/stats").json())

    def by_key(self) -> dict[str, int]:
        """POST completions served since start or the last reset, by :func:`request_key` of what was asked."""
        return {str(k): int(v) for k, v in httpx.get(f"http://127.0.0.1:{self.port}/stats").json()["by_key"].items()}

    def reset(self) -> None:
        httpx.post(f"http://127.0.0.1:{self.port}/reset")

    def __enter__(self) -> StubProcess:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--port", str(self.port)]
        cmd += ["--latency-ms", str(self.latency_ms)]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != "ready":
            raise RuntimeError("stub server did not start")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="answer each completion this late")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.latency_ms / 1000.0))


if __name__ == "__main__":
    main()
