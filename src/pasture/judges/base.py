"""The small contracts between providers, judges and the annotation engine.

A **provider** turns a chat request into a completion (OpenAI-compatible servers, Anthropic, llama.cpp in
process, transformers, ...). A **judge** = provider + prompt template + parser + decoding parameters, and
turns a :class:`JudgeRequest` into a :class:`Verdict` by slot. The **engine** (``pasture.annotate``) owns
keys, the store, concurrency, rate limits and retries; it only ever sees these types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from pasture.providers.base import ChatRequest, Completion, PermanentError, Provider, TransientError
from pasture.records import JudgeFingerprint

__all__ = [
    "ChatRequest",
    "Completion",
    "Judge",
    "JudgeRequest",
    "PermanentError",
    "Provider",
    "TransientError",
    "Verdict",
]


@dataclass(frozen=True)
class JudgeRequest:
    """One question to a judge. ``output_1`` is the reference slot, ``output_2`` the model slot."""

    instruction: str
    output_1: str
    output_2: str
    shown_first: Literal[1, 2]
    replicate: int = 0


@dataclass(frozen=True)
class Verdict:
    """A judge's answer, already mapped back to slots (1 = reference wins .. 2 = model wins).

    ``status`` is 'ok' or 'parse_error' (the call worked but its reply could not be read); call failures
    are raised as exceptions, never returned.
    """

    preference: float | None
    status: Literal["ok", "parse_error"]
    raw_completion: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    latency_s: float | None = None
    error: str | None = None


@runtime_checkable
class Judge(Protocol):
    """A fingerprinted judge. Equal fingerprints must give interchangeable verdicts."""

    name: str

    @property
    def fingerprint(self) -> JudgeFingerprint: ...

    async def judge(self, request: JudgeRequest) -> Verdict:
        """Judge one pair; raises :class:`TransientError`/:class:`PermanentError` when the call fails."""
        ...

    def estimate_tokens(self, request: JudgeRequest) -> tuple[int, int]:
        """(prompt tokens, completion tokens) expected for ``request``, for ``--dry-run`` cost estimates."""
        ...

    def price_per_token(self) -> tuple[float, float] | None:
        """US dollars per (prompt, completion) token, or None when unknown (local models: 0, 0)."""
        ...
