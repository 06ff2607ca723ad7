"""Helpers shared by providers: decoding parameters, Retry-After, HTTP status -> error class."""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from pasture.providers.base import PermanentError, TransientError

DECODING_KEYS = frozenset(
    {"max_tokens", "temperature", "top_p", "seed", "stop", "logprobs", "top_logprobs", "presence_penalty",
     "frequency_penalty", "top_k"}
)  # fmt: skip
"""Decoding parameters a ChatRequest may carry. Anything else is refused: a typo must not pass silently."""

TRANSIENT_STATUS = frozenset({408, 409, 425, 429})
"""HTTP statuses below 500 that are worth retrying (timeout, conflict, too early, rate limited)."""


def check_decoding(decoding: Mapping[str, Any]) -> None:
    unknown = set(decoding) - DECODING_KEYS
    if unknown:
        raise PermanentError(f"unknown decoding parameter(s) {sorted(unknown)}; known: {sorted(DECODING_KEYS)}")


def stop_list(stop: Any) -> list[str] | None:
    if stop is None:
        return None
    return [stop] if isinstance(stop, str) else [str(s) for s in stop]


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date), or None."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        return max(0.0, parsed.timestamp() - time.time())


def status_error(status: int, message: str, headers: Mapping[str, str] | None, secret: str | None = None) -> Exception:
    """TransientError for 408/409/425/429/5xx (with Retry-After), PermanentError for other statuses.

    The message is redacted (:func:`redact`)."""
    message = short(redact(message, secret))
    if status >= 500 or status in TRANSIENT_STATUS:
        return TransientError(f"HTTP {status}: {message}", retry_after=retry_after_seconds(headers))
    return PermanentError(f"HTTP {status}: {message}")


def sdk_error(exc: Exception, sdk: Any, *, timeout_s: float, secret: str | None = None) -> Exception:
    """Our error for an exception of the ``openai`` or ``anthropic`` SDK (both share one exception hierarchy).

    Status errors go through :func:`status_error`; timeouts, dropped connections and unreadable responses
    are transient. Every message is redacted.
    """
    if isinstance(exc, sdk.APIStatusError):
        return status_error(exc.status_code, exc.message, exc.response.headers, secret)
    if isinstance(exc, sdk.APITimeoutError):  # a subclass of APIConnectionError: test it first
        return TransientError(f"timed out after {timeout_s:g}s")
    if isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__ or exc
        return TransientError(f"connection failed: {short(redact(type(cause).__name__ + ': ' + str(cause), secret))}")
    return TransientError(f"bad response: {short(redact(str(exc), secret))}")


def short(text: object, limit: int = 300) -> str:
    s = str(text).replace("\n", " ")
    return s if len(s) <= limit else s[: limit - 3] + "..."


_KEY_LIKE = re.compile(r"\b(sk|pk|rk|key)[-_][A-Za-z0-9_*\-]{6,}")


def redact(text: str, secret: str | None = None) -> str:
    """``text`` with the secret and anything key-shaped (``sk-...``, masked or not) replaced.

    Servers echo keys in error messages (OpenAI: "Incorrect API key provided: sk-proj-****abcd"); error
    messages end up in stored judgments and logs, so they are scrubbed before they leave the provider.
    """
    if secret:
        text = text.replace(secret, "[redacted]")
    return _KEY_LIKE.sub("[redacted]", text)


class _AsyncClosable(Protocol):
    async def close(self) -> None: ...


_C = TypeVar("_C", bound=_AsyncClosable)


class ClientPerLoop(Generic[_C]):
    """One SDK client per event loop, closed on that loop before the loop closes.

    Why: an httpx-based client (``openai.AsyncOpenAI``, ``anthropic.AsyncAnthropic``) holds connections bound
    to the loop that opened them. Left open, it is garbage-collected later, often while another loop runs, and
    its ``__del__`` schedules ``aclose()`` there, which fails with "Task exception was never retrieved ...
    RuntimeError: Event loop is closed". Every ``asyncio.run`` in pasture (annotate, generate, simulate, a test)
    makes a new loop, so each gets its own client, and each client is closed on its own loop:

    * explicitly, by :meth:`aclose` (a provider's ``aclose()``), from a caller that ends its loop itself;
    * otherwise when ``asyncio.run`` shuts the loop down: the client's closer is an async generator started
      on that loop, and ``loop.shutdown_asyncgens()`` finalizes it there before the loop closes.
    """

    def __init__(self, make: Callable[[], _C]) -> None:
        self._make = make
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[_C, AsyncGenerator[None, None]]] = (
            weakref.WeakKeyDictionary()
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its clients, which belong to this process's loops: a copy (e.g. in a Ray worker,
        pasture.annotate.ray_backend) makes its own on its own loop."""
        return {"_make": self._make}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._make = state["_make"]
        self._clients = weakref.WeakKeyDictionary()

    async def get(self) -> _C:
        """The running loop's client, made on first use."""
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is None:
            client = self._make()
            closer = _close_at_shutdown(client.close)
            await closer.__anext__()  # started on this loop: the loop now finalizes it at shutdown
            entry = (client, closer)
            self._clients[loop] = entry
        return entry[0]

    async def aclose(self) -> None:
        """Close the running loop's client now (a later :meth:`get` on this loop makes a new one)."""
        entry = self._clients.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[1].aclose()


async def _close_at_shutdown(close: Callable[[], Awaitable[None]]) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await close()
