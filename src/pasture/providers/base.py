"""The provider contract: a chat request in, a completion out, and the two kinds of failure.

Providers sit below judges and generation: a judge is a provider plus a prompt, a parser and a protocol
(``pasture.judges``), and ``pasture generate`` asks the same providers for model outputs. Nothing here
knows about judgments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class TransientError(Exception):
    """A failure worth retrying: HTTP 429 or 5xx, a timeout, a dropped connection, a truncated body.

    ``retry_after`` carries the server's Retry-After, in seconds, when it sent one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """A failure that retrying cannot fix: bad credentials, an unknown model, a malformed request."""


@dataclass(frozen=True)
class ChatRequest:
    """What a provider is asked: chat messages plus decoding parameters (max_tokens, temperature, ...)."""

    messages: tuple[dict[str, str], ...]
    decoding: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Completion:
    """What a provider answered.

    ``top_logprobs`` holds, per generated position, the provider's top alternatives as token -> logprob
    (empty when the provider gives none). ``raw`` is the provider's response as JSON text, kept for
    re-parsing without a new call.
    """

    text: str
    top_logprobs: tuple[dict[str, float], ...] = ()
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    latency_s: float | None = None
    raw: str | None = None


@runtime_checkable
class Provider(Protocol):
    """Anything that completes chat requests; registered by name in ``pasture.providers``."""

    name: str
    model: str

    def identity(self) -> dict[str, Any]:
        """Fingerprint parts that name the model exactly: ``{"model": ..., "weights_digest": ...}``."""
        ...

    async def complete(self, request: ChatRequest) -> Completion:
        """One completion; raises :class:`TransientError` or :class:`PermanentError` on failure."""
        ...
