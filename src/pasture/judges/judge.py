"""Judges: provider + prompt template + parser + decoding parameters + protocol, with a fingerprint.

How a judge asks and how a reply becomes a verdict is its protocol (``pasture.judges.protocols``, one class
per protocol, registered by name; docs/judges.md has the table). Pairwise protocols give a preference by
slot; single-response protocols (``critique``, ``response_score``) give a score, a verdict and/or a
critique of ONE output. :class:`LLMJudge` asks a model under any registered protocol;
:class:`ProgrammaticJudge` and :class:`ProgrammaticResponseJudge` are Python functions (protocols
``programmatic`` and ``programmatic_response``).

Pairwise templates name the outputs by the order they are shown: ``{output_1}`` is filled with the output
shown first and ``{output_2}`` with the one shown second. Parsers answer in shown order; the protocol maps
the answer back to slots with ``JudgeRequest.shown_first`` (slot 1 = reference, slot 2 = model).
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pasture.errors import JudgeError
from pasture.judges.base import (
    ChatRequest,
    Completion,
    JudgeRequest,
    PermanentError,
    Provider,
    ResponseReading,
    ResponseRequest,
    ResponseVerdict,
    Verdict,
)
from pasture.judges.parsers import ParseFailure, Parser
from pasture.judges.protocols import (
    REFERENCE_ANCHOR,
    PairwiseProtocol,
    ProtocolKind,
    ResponseProtocol,
    get_protocol,
    score_preference,
    slot_preference,
)
from pasture.judges.templates import PromptTemplate
from pasture.records import JudgeFingerprint

__all__ = [
    "CHARS_PER_TOKEN",
    "REFERENCE_ANCHOR",
    "LLMJudge",
    "ProgrammaticJudge",
    "ProgrammaticResponseJudge",
    "normalize_decoding",
    "score_preference",
    "slot_preference",
]

CHARS_PER_TOKEN = 4.0
"""Rough characters per token for ``--dry-run`` estimates (English text with BPE tokenizers)."""


def normalize_decoding(decoding: Mapping[str, Any]) -> dict[str, Any]:
    """Decoding parameters as they enter the fingerprint: integral floats become ints (1.0 -> 1).

    TOML and JSON users write ``temperature = 1`` or ``1.0`` meaning the same thing; canonical JSON would
    hash them differently. Lists (``stop``) become lists.
    """
    out: dict[str, Any] = {}
    for key, value in decoding.items():
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


@dataclass(frozen=True)
class _Usage:
    """Tokens, price and time of the calls behind one verdict (None when any call did not say)."""

    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    latency_s: float | None

    @classmethod
    def of(cls, completions: Sequence[Completion]) -> _Usage:
        def total(values: list[Any]) -> Any:
            return None if any(v is None for v in values) else sum(values)

        return cls(
            prompt_tokens=total([c.prompt_tokens for c in completions]),
            completion_tokens=total([c.completion_tokens for c in completions]),
            cost_usd=total([c.cost_usd for c in completions]),
            latency_s=total([c.latency_s for c in completions]),
        )

    def fields(self) -> dict[str, Any]:
        """As the usage fields of a verdict (``Verdict`` and ``ResponseVerdict`` name them alike)."""
        return asdict(self)


class LLMJudge:
    """A judge that asks a model through a :class:`Provider`, under a registered protocol.

    Parameters
    ----------
    name:
        Human-readable name (stored with judgments; not part of the fingerprint).
    provider:
        Who answers (``pasture.providers.get_provider``).
    template:
        The prompt; must contain exactly the placeholders of ``protocol`` (``get_protocol(p).fields``).
    parser:
        Reads the reply: a pairwise parser for ``pairwise_*`` protocols, a score parser for grades, a
        critique parser for ``critique`` (``definitions.make_parser`` gives the protocol's default).
    decoding:
        Decoding parameters sent with every call (max_tokens, temperature, logprobs, top_logprobs, ...).
    protocol:
        A registered protocol name (``pasture.judges.protocols.protocol_names()``). A pairwise one makes a
        :class:`~pasture.judges.base.Judge` (use ``judge``); a single-response one a
        :class:`~pasture.judges.base.ResponseJudge` (use ``judge_response``).
    """

    def __init__(
        self,
        name: str,
        provider: Provider,
        template: PromptTemplate,
        parser: Parser[Any],
        decoding: Mapping[str, Any],
        protocol: str,
    ) -> None:
        how = get_protocol(protocol)
        how.check_template(template)
        how.check_decoding(decoding)
        self.name = name
        self.provider = provider
        self.template = template
        self.parser = parser
        self.decoding = normalize_decoding(decoding)
        self.protocol = protocol
        self.how = how
        self._fingerprint: JudgeFingerprint | None = None

    def __repr__(self) -> str:
        return f"LLMJudge(name={self.name!r}, provider={self.provider!r}, protocol={self.protocol!r})"

    @property
    def kind(self) -> ProtocolKind:
        """'pairwise' or 'response': which engine entry point judges with it."""
        return self.how.kind

    @property
    def reads(self) -> frozenset[str]:
        """Optional request fields the verdict depends on (single-response protocols)."""
        return self.how.reads

    @property
    def fingerprint(self) -> JudgeFingerprint:
        if self._fingerprint is None:
            identity = self.provider.identity()
            self._fingerprint = JudgeFingerprint(
                provider=self.provider.name,
                model=str(identity["model"]),
                weights_digest=identity.get("weights_digest"),
                template_digest=self.template.digest,
                parser=self.parser.name,
                parser_version=self.parser.version,
                decoding=self.decoding,
                protocol=self.protocol,
            )
        return self._fingerprint

    def _pairwise(self) -> PairwiseProtocol:
        if not isinstance(self.how, PairwiseProtocol):
            raise JudgeError(
                f"judge {self.name!r} (protocol {self.protocol}) judges one response at a time: "
                "use pasture.annotate.annotate_responses / judge_response"
            )
        return self.how

    def _single(self) -> ResponseProtocol:
        if not isinstance(self.how, ResponseProtocol):
            raise JudgeError(
                f"judge {self.name!r} (protocol {self.protocol}) compares pairs: use pasture.annotate.annotate / judge"
            )
        return self.how

    def messages(self, request: JudgeRequest | ResponseRequest) -> list[tuple[dict[str, str], ...]]:
        """The chat messages of each call this judge makes for ``request`` (one, or two for single_score)."""
        if isinstance(request, ResponseRequest):
            return self._single().calls(self.template, request)
        return self._pairwise().calls(self.template, request)

    async def _ask_all(self, calls: list[tuple[dict[str, str], ...]]) -> list[Completion]:
        return [await self.provider.complete(ChatRequest(messages=m, decoding=dict(self.decoding))) for m in calls]

    async def judge(self, request: JudgeRequest) -> Verdict:
        how = self._pairwise()
        completions = await self._ask_all(how.calls(self.template, request))
        usage = _Usage.of(completions)
        raw = how.raw(completions, request)
        try:
            preference = how.preference(self.parser, completions, request)
        except ParseFailure as exc:
            return Verdict(preference=None, status="parse_error", raw_completion=raw, error=str(exc), **usage.fields())
        return Verdict(preference=preference, status="ok", raw_completion=raw, **usage.fields())

    async def judge_response(self, request: ResponseRequest) -> ResponseVerdict:
        how = self._single()
        completions = await self._ask_all(how.calls(self.template, request))
        usage = _Usage.of(completions)
        raw = how.raw(completions, request)
        try:
            reading = how.reading(self.parser, completions, request)
        except ParseFailure as exc:
            return ResponseVerdict(status="parse_error", raw_completion=raw, error=str(exc), **usage.fields())
        return ResponseVerdict(
            status="ok",
            raw_completion=raw,
            score=reading.score,
            verdict=reading.verdict,
            critique=reading.critique,
            **usage.fields(),
        )

    def estimate_tokens(self, request: JudgeRequest | ResponseRequest) -> tuple[int, int]:
        calls = self.messages(request)
        chars = sum(len(m["content"]) + 8 for msgs in calls for m in msgs)
        max_tokens = int(self.decoding.get("max_tokens", 512))
        return int(chars / CHARS_PER_TOKEN) + 1, max_tokens * len(calls)

    def price_per_token(self) -> tuple[float, float] | None:
        price_fn = getattr(self.provider, "price", None)
        price = price_fn() if callable(price_fn) else None
        return price.per_token() if price is not None else None


ProgrammaticFn = Callable[[str, str, str], float | None]
"""``fn(instruction, output_1, output_2) -> preference by slot in [1, 2]``, or None when it cannot decide."""


def _function_digest(fn: Callable[..., Any], version: str | None) -> str:
    if version is not None:
        payload = f"version:{version}"
    else:
        try:
            payload = "source:" + inspect.getsource(fn)
        except (OSError, TypeError):
            raise JudgeError(
                f"cannot read the source of {getattr(fn, '__qualname__', fn)!r}; pass version='...' instead"
            ) from None
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ProgrammaticJudge:
    """A judge that is a Python function of the outputs: for verifiable tasks and tests of methods.

    The function sees slots directly (``output_1`` = reference, ``output_2`` = model) and returns the
    preference by slot; ``shown_first`` does not matter to it. Its fingerprint names the function
    (``module.qualname``) and digests its source, or the ``version`` string when one is given (use it for
    functions whose behaviour depends on more than their own source). A None or out-of-range result is a
    ``parse_error`` verdict; an exception is a :class:`PermanentError` naming the function.
    """

    def __init__(self, fn: ProgrammaticFn, *, name: str | None = None, version: str | None = None) -> None:
        self.fn = fn
        self.qualified_name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
        self.name = name or self.qualified_name
        self._fingerprint = JudgeFingerprint(
            provider="python",
            model=self.qualified_name,
            weights_digest=None,
            template_digest=_function_digest(fn, version),
            parser="python",
            decoding={},
            protocol="programmatic",
        )

    def __repr__(self) -> str:
        return f"ProgrammaticJudge({self.qualified_name})"

    @property
    def fingerprint(self) -> JudgeFingerprint:
        return self._fingerprint

    async def judge(self, request: JudgeRequest) -> Verdict:
        try:
            value = self.fn(request.instruction, request.output_1, request.output_2)
        except Exception as exc:
            raise PermanentError(f"{self.qualified_name} raised {type(exc).__name__}: {exc}") from exc
        if value is None:
            return Verdict(preference=None, status="parse_error", raw_completion=None, error="function gave None")
        value = float(value)
        if not 1.0 <= value <= 2.0:
            return Verdict(
                preference=None, status="parse_error", raw_completion=repr(value), error="preference outside [1, 2]"
            )
        return Verdict(preference=value, status="ok", raw_completion=repr(value), cost_usd=0.0, latency_s=0.0)

    def estimate_tokens(self, request: JudgeRequest) -> tuple[int, int]:
        return 0, 0

    def price_per_token(self) -> tuple[float, float] | None:
        return 0.0, 0.0


ResponseFn = Callable[[ResponseRequest], ResponseReading | None]
"""``fn(request) -> ResponseReading`` (score, verdict, critique of ``request.output``), or None when it cannot
decide."""

RESPONSE_FIELDS = frozenset({"reference", "subject"})
"""The optional request fields a single-response judge may read."""


class ProgrammaticResponseJudge:
    """A single-response judge that is a Python function: exact critiques, scores and rule checks for
    synthetic tasks and tests of methods.

    ``fn`` receives a :class:`ResponseRequest` and returns a :class:`ResponseReading` (a score and/or a
    verdict, and optionally a critique text). ``reads`` names the optional fields it uses (``reference``,
    ``subject``): only those are given to it, they are required for every output, and only they enter the
    judgment key. The fingerprint (protocol ``programmatic_response``) names the function, digests its source
    (or the ``version`` string) and lists ``reads``. A None result, or a reading without score and verdict, is
    a ``parse_error``; an exception is a :class:`PermanentError` naming the function.
    """

    def __init__(
        self,
        fn: ResponseFn,
        *,
        name: str | None = None,
        version: str | None = None,
        reads: Sequence[str] = (),
    ) -> None:
        unknown = sorted(set(reads) - RESPONSE_FIELDS)
        if unknown:
            raise JudgeError(f"reads may name {sorted(RESPONSE_FIELDS)}, got {unknown}")
        self.fn = fn
        self.qualified_name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
        self.name = name or self.qualified_name
        self._reads = frozenset(reads)
        self._fingerprint = JudgeFingerprint(
            provider="python",
            model=self.qualified_name,
            weights_digest=None,
            template_digest=_function_digest(fn, version),
            parser="python",
            decoding={"reads": sorted(self._reads)},
            protocol="programmatic_response",
        )

    def __repr__(self) -> str:
        return f"ProgrammaticResponseJudge({self.qualified_name})"

    kind: ProtocolKind = "response"

    @property
    def reads(self) -> frozenset[str]:
        return self._reads

    @property
    def fingerprint(self) -> JudgeFingerprint:
        return self._fingerprint

    async def judge_response(self, request: ResponseRequest) -> ResponseVerdict:
        try:
            reading = self.fn(request)
        except Exception as exc:
            raise PermanentError(f"{self.qualified_name} raised {type(exc).__name__}: {exc}") from exc
        if reading is None:
            return ResponseVerdict(status="parse_error", raw_completion=None, error="function gave None")
        if not isinstance(reading, ResponseReading):
            raise PermanentError(f"{self.qualified_name} must return a ResponseReading or None, got {reading!r}")
        if reading.score is None and reading.verdict is None:
            return ResponseVerdict(status="parse_error", raw_completion=repr(reading), error="no score or verdict")
        return ResponseVerdict(
            status="ok",
            raw_completion=repr(reading),
            score=None if reading.score is None else float(reading.score),
            verdict=reading.verdict,
            critique=reading.critique,
            cost_usd=0.0,
            latency_s=0.0,
        )

    def estimate_tokens(self, request: ResponseRequest) -> tuple[int, int]:
        return 0, 0

    def price_per_token(self) -> tuple[float, float] | None:
        return 0.0, 0.0


def longer_output_wins(instruction: str, output_1: str, output_2: str) -> float:
    """The longer output (in characters) wins, equal lengths tie: a length-biased judge for method tests."""
    if len(output_2) == len(output_1):
        return 1.5
    return 2.0 if len(output_2) > len(output_1) else 1.0


def shorter_output_wins(instruction: str, output_1: str, output_2: str) -> float:
    """The shorter output wins, equal lengths tie: the opposite bias, for tests."""
    return 3.0 - longer_output_wins(instruction, output_1, output_2)
