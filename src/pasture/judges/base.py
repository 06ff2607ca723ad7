"""The small contracts between providers, judges and the annotation engine.

A **provider** turns a chat request into a completion (OpenAI-compatible servers, Anthropic, llama.cpp in
process, transformers, ...). A **judge** = provider + prompt template + parser + decoding parameters, and
turns a :class:`JudgeRequest` into a :class:`Verdict` by slot. A **response judge** judges ONE output: it
turns a :class:`ResponseRequest` into a :class:`ResponseVerdict` (a score, a good/bad or yes/no verdict, a
critique). The **engine** (``pasture.annotate``) owns keys, the store, concurrency, rate limits and retries;
it only ever sees these types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from pasture.providers.base import ChatRequest, Completion, PermanentError, Provider, TransientError
from pasture.records import JudgeFingerprint, ResponseLabel

__all__ = [
    "ChatRequest",
    "Completion",
    "Judge",
    "JudgeRequest",
    "PermanentError",
    "Provider",
    "ResponseJudge",
    "ResponseReading",
    "ResponseRequest",
    "ResponseVerdict",
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


# -- judging one response -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponseRequest:
    """One output to judge on its own.

    ``reference`` (a reference answer) and ``subject`` (what the output is checked against, e.g. a rule's
    text) are given only to judges that read them (``ResponseJudge.reads``); the engine drops them
    otherwise, so they enter the judgment key only when they can change the verdict.
    """

    instruction: str
    output: str
    reference: str | None = None
    subject: str | None = None
    replicate: int = 0


@dataclass(frozen=True)
class ResponseReading:
    """What a reply (or a programmatic judge) says about one output; the protocol decides which parts are set.

    ``score``: a grade on the protocol's scale; ``verdict``: 'good'/'bad' or 'yes'/'no'; ``critique``: the
    written judgment (what is wrong, or that nothing is). A reading needs a score or a verdict.
    """

    score: float | None = None
    verdict: ResponseLabel | None = None
    critique: str | None = None


@dataclass(frozen=True)
class ResponseVerdict:
    """A response judge's answer. Like :class:`Verdict`: 'ok' or 'parse_error' (raw reply kept); call
    failures are raised as exceptions, never returned. ``score``/``verdict``/``critique`` are None unless ok."""

    status: Literal["ok", "parse_error"]
    raw_completion: str | None
    score: float | None = None
    verdict: ResponseLabel | None = None
    critique: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    latency_s: float | None = None
    error: str | None = None


@runtime_checkable
class ResponseJudge(Protocol):
    """A fingerprinted judge of one output at a time. Equal fingerprints must give interchangeable verdicts."""

    name: str

    @property
    def fingerprint(self) -> JudgeFingerprint: ...

    @property
    def reads(self) -> frozenset[str]:
        """Optional request fields the verdict depends on: a subset of {'reference', 'subject'}, all required."""
        ...

    async def judge_response(self, request: ResponseRequest) -> ResponseVerdict:
        """Judge one output; raises :class:`TransientError`/:class:`PermanentError` when the call fails."""
        ...

    def estimate_tokens(self, request: ResponseRequest) -> tuple[int, int]:
        """(prompt tokens, completion tokens) expected for ``request``."""
        ...

    def price_per_token(self) -> tuple[float, float] | None:
        """US dollars per (prompt, completion) token, or None when unknown (local models: 0, 0)."""
        ...
