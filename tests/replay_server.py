"""A tiny HTTP server on 127.0.0.1 that replays scripted responses and records the requests it got.

Used to test providers' request/response handling where the real service cannot run here (Anthropic)
and to send bodies a healthy server never sends (truncated, not JSON). Each scripted response is
(status, headers, body bytes, mode) with mode 'normal' or 'truncate' (announce a longer body, send half,
close the connection).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "providers" / "data"


@dataclass
class Scripted:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    mode: str = "normal"

    @classmethod
    def json(cls, status: int, payload: Any, **headers: str) -> Scripted:
        return cls(status, json.dumps(payload).encode(), {"content-type": "application/json", **headers})

    @classmethod
    def recorded(cls, name: str, **headers: str) -> Scripted:
        """A response recorded in tests/providers/data/<name>.json: {"status": ..., "body": {...}}."""
        data = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
        return cls.json(int(data["status"]), data["body"], **{**data.get("headers", {}), **headers})


class ReplayServer:
    """Serves ``script`` in order (the last entry repeats); ``requests`` holds (path, headers, json body)."""

    def __init__(self, script: list[Scripted]) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                with server._lock:
                    server.requests.append(
                        (self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(body or b"null"))
                    )
                    item = server.script.pop(0) if len(server.script) > 1 else server.script[0]
                self.send_response(item.status)
                for k, v in item.headers.items():
                    self.send_header(k, v)
                if item.mode == "truncate":
                    self.send_header("content-length", str(len(item.body) * 2))
                    self.send_header("connection", "close")
                    self.end_headers()
                    self.wfile.write(item.body[: len(item.body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.send_header("content-length", str(len(item.body)))
                self.end_headers()
                self.wfile.write(item.body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
