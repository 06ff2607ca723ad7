"""A fault-injecting HTTP proxy for the annotation engine's fault tests.

It sits on 127.0.0.1 in front of a real OpenAI-compatible server (the llama.cpp server in the tests) and,
following a deterministic schedule over the order in which POST requests arrive, either forwards a request
or injects a fault:

* ``ok``: forward and relay the answer;
* ``429``: answer 429 with a ``Retry-After`` header, without forwarding;
* ``500``: answer 500, without forwarding;
* ``400``: answer 400 (a permanent error: a bad request), without forwarding;
* ``hang``: hold the connection open past the client's timeout, then drop it, without forwarding;
* ``truncate``: forward (the server does the work), then send only half the body and close;
* ``garbage``: forward, then answer 200 with a body that is not JSON;
* ``unparsable``: forward, then relay a well-formed answer whose text and logprobs say nothing a judge
  can parse.

It counts requests received, requests that reached the real server (``forwarded``: what a hosted API
would bill) and successfully relayed answers per request body, so a test can check that no judgment was
paid twice. Written with the standard library's asyncio plus httpx; it runs its own event loop in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping

import httpx

ACTIONS = ("ok", "429", "500", "400", "hang", "truncate", "garbage", "unparsable")
FORWARDING = {"ok", "truncate", "garbage", "unparsable"}


class FaultProxy:
    """Proxy ``upstream`` (e.g. ``http://127.0.0.1:8000``) on a free local port, injecting scheduled faults.

    Parameters
    ----------
    upstream:
        Base URL of the real server, without ``/v1``.
    schedule:
        Request index (0-based, in arrival order, POST requests only) -> action; missing indices are ``ok``.
        A callable gets the index and returns the action.
    retry_after_s:
        The ``Retry-After`` value sent with 429s.
    hang_s:
        How long a ``hang`` holds the connection before dropping it.
    """

    def __init__(
        self,
        upstream: str,
        schedule: Mapping[int, str] | Callable[[int], str] | None = None,
        *,
        retry_after_s: float = 0.2,
        hang_s: float = 3.0,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self._schedule = schedule or {}
        self.retry_after_s = retry_after_s
        self.hang_s = hang_s
        self.requests = 0  # POST requests received
        self.forwarded = 0  # POST requests that reached the real server
        self.actions: Counter[str] = Counter()
        self.arrivals: list[tuple[float, str, str]] = []  # (monotonic time, sha256(body), action)
        self.delivered: Counter[str] = Counter()  # sha256(request body) -> 'ok' answers relayed intact
        self.port = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._client: httpx.AsyncClient | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _shutdown(self) -> None:
        assert self._server is not None and self._client is not None
        self._server.close()
        me = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not me]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._client.aclose()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_schedule(self, schedule: Mapping[int, str] | Callable[[int], str], *, reset: bool = True) -> None:
        with self._lock:
            self._schedule = schedule
            if reset:
                self.requests = self.forwarded = 0
                self.actions.clear()
                self.arrivals.clear()
                self.delivered.clear()

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._client = httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=64))
        self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    # -- one connection -------------------------------------------------------------------------------
    def _next_action(self) -> str:
        with self._lock:
            index = self.requests
            self.requests += 1
            sched = self._schedule
            action = sched(index) if callable(sched) else sched.get(index, "ok")
            if action not in ACTIONS:
                raise ValueError(f"unknown fault action {action!r}")
            self.actions[action] += 1
            if action in FORWARDING:
                self.forwarded += 1
            return action

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                if method != "POST":
                    status, resp_headers, payload = await self._forward(method, path, headers, body)
                    await self._send(writer, status, payload, resp_headers.get("content-type"))
                    continue
                action = self._next_action()
                with self._lock:
                    self.arrivals.append((time.monotonic(), hashlib.sha256(body).hexdigest(), action))
                if not await self._act(action, writer, method, path, headers, body):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _act(
        self, action: str, writer: asyncio.StreamWriter, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> bool:
        """Perform one scheduled action; returns whether the connection stays usable."""
        if action == "429":
            payload = json.dumps({"error": {"message": "rate limited by fault proxy", "type": "rate_limit"}})
            await self._send(
                writer, 429, payload.encode(), "application/json", {"retry-after": f"{self.retry_after_s:g}"}
            )
            return True
        if action == "500":
            payload = json.dumps({"error": {"message": "injected server error", "type": "server_error"}})
            await self._send(writer, 500, payload.encode(), "application/json")
            return True
        if action == "400":
            payload = json.dumps({"error": {"message": "injected bad request", "type": "invalid_request_error"}})
            await self._send(writer, 400, payload.encode(), "application/json")
            return True
        if action == "hang":
            await asyncio.sleep(self.hang_s)
            return False
        status, resp_headers, payload = await self._forward(method, path, headers, body)
        ctype = resp_headers.get("content-type", "application/json")
        if action == "truncate":
            head = f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {len(payload)}\r\n\r\n"
            writer.write(head.encode() + payload[: len(payload) // 2])
            await writer.drain()
            return False
        if action == "garbage":
            await self._send(writer, 200, b'{"id": "chatcmpl-x", "choices": [<<garbage>>', "application/json")
            return True
        if action == "unparsable" and status == 200:
            payload = _unparsable(payload)
        if status == 200 and action == "ok":
            with self._lock:
                self.delivered[hashlib.sha256(body).hexdigest()] += 1
        await self._send(writer, status, payload, ctype)
        return True

    async def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        assert self._client is not None
        keep = {k: v for k, v in headers.items() if k in {"content-type", "authorization", "accept"}}
        resp = await self._client.request(method, self.upstream + path, headers=keep, content=body)
        return resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.content

    @staticmethod
    async def _send(
        writer: asyncio.StreamWriter,
        status: int,
        payload: bytes,
        content_type: str | None,
        extra: dict[str, str] | None = None,
    ) -> None:
        lines = [f"HTTP/1.1 {status} X", f"Content-Type: {content_type or 'application/json'}"]
        lines.append(f"Content-Length: {len(payload)}")
        for name, value in (extra or {}).items():
            lines.append(f"{name}: {value}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        await writer.drain()


def _unparsable(payload: bytes) -> bytes:
    """A well-formed chat completion whose reply text and logprobs hold no verdict."""
    data = json.loads(payload)
    for choice in data.get("choices", []):
        if "message" in choice:
            choice["message"]["content"] = "banana"
        if "text" in choice:
            choice["text"] = "banana"
        choice["logprobs"] = None
    return json.dumps(data).encode()
