"""Judges: provider + prompt template + parser + decoding parameters + protocol, with a fingerprint.

Protocols (see docs/judges.md for how each turns into a preference by slot):

* ``pairwise_logprob`` — one output token; preference from the two label tokens' probabilities.
* ``pairwise_graded`` — reasoning, then a graded verdict A>>B .. B>>A.
* ``single_score`` — each output graded 1-10 on its own (two calls); preference from the two scores.
* ``reference_score`` — the model output graded 1-10 against the reference output (one call; 5 = as good).
* ``programmatic`` — a Python function of the outputs (:class:`ProgrammaticJudge`).

Pairwise templates name the outputs by the order they are shown: ``{output_1}`` is filled with the output
shown first and ``{output_2}`` with the one shown second. Parsers answer in shown order; this module maps
the answer back to slots with ``JudgeRequest.shown_first`` (slot 1 = reference, slot 2 = model).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Mapping
from typing import Any

from pasture.errors import JudgeError
from pasture.judges.base import ChatRequest, Completion, JudgeRequest, PermanentError, Provider, Verdict
from pasture.judges.parsers import ParseFailure, Parser
from pasture.judges.templates import PromptTemplate
from pasture.records import JudgeFingerprint

PROTOCOL_FIELDS: dict[str, tuple[str, ...]] = {
    "pairwise_logprob": ("instruction", "output_1", "output_2"),
    "pairwise_graded": ("instruction", "output_1", "output_2"),
    "single_score": ("instruction", "output"),
    "reference_score": ("instruction", "reference", "output"),
}
"""Placeholders each LLM protocol fills (a template must contain all of them)."""

REFERENCE_ANCHOR = 5.0
"""In ``reference_score`` a grade equal to this means "as good as the reference" (a tie)."""

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


def slot_preference(shown_preference: float, shown_first: int) -> float:
    """Map a shown-order preference (1 = first shown wins) to slots (1 = reference wins)."""
    return shown_preference if shown_first == 1 else 3.0 - shown_preference


def score_preference(score_1: float, score_2: float) -> float:
    """Preference by slot from two grades: 2 if the model's grade is higher, 1 if lower, 1.5 if equal.

    The sign, not the size, of the difference: a win rate from these is P(model graded higher) + half the
    ties, the same meaning as a win rate from pairwise verdicts.
    """
    if score_2 > score_1:
        return 2.0
    if score_2 < score_1:
        return 1.0
    return 1.5


def _add(a: float | int | None, b: float | int | None) -> Any:
    return None if a is None or b is None else a + b


class LLMJudge:
    """A judge that asks a model through a :class:`Provider`.

    Parameters
    ----------
    name:
        Human-readable name (stored with judgments; not part of the fingerprint).
    provider:
        Who answers (``pasture.providers.get_provider``).
    template:
        The prompt; must contain the placeholders of ``protocol`` (see ``PROTOCOL_FIELDS``).
    parser:
        Reads the reply: a pairwise parser for ``pairwise_*`` protocols, a score parser otherwise.
    decoding:
        Decoding parameters sent with every call (max_tokens, temperature, logprobs, top_logprobs, ...).
    protocol:
        One of ``PROTOCOL_FIELDS``.
    """

    def __init__(
        self,
        name: str,
        provider: Provider,
        template: PromptTemplate,
        parser: Parser,
        decoding: Mapping[str, Any],
        protocol: str,
    ) -> None:
        if protocol not in PROTOCOL_FIELDS:
            raise JudgeError(f"unknown protocol {protocol!r}; known: {', '.join(sorted(PROTOCOL_FIELDS))}")
        template.require(*PROTOCOL_FIELDS[protocol])
        if protocol == "pairwise_logprob" and not (decoding.get("logprobs") or decoding.get("top_logprobs")):
            raise JudgeError("protocol pairwise_logprob needs decoding logprobs=true and top_logprobs >= 2")
        self.name = name
        self.provider = provider
        self.template = template
        self.parser = parser
        self.decoding = normalize_decoding(decoding)
        self.protocol = protocol
        self._fingerprint: JudgeFingerprint | None = None

    def __repr__(self) -> str:
        return f"LLMJudge(name={self.name!r}, provider={self.provider!r}, protocol={self.protocol!r})"

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

    def messages(self, request: JudgeRequest) -> list[tuple[dict[str, str], ...]]:
        """The chat messages of each call this judge makes for ``request`` (one, or two for single_score)."""
        first, second = (
            (request.output_1, request.output_2) if request.shown_first == 1 else (request.output_2, request.output_1)
        )
        if self.protocol in ("pairwise_logprob", "pairwise_graded"):
            return [self.template.fill(instruction=request.instruction, output_1=first, output_2=second)]
        if self.protocol == "single_score":
            return [self.template.fill(instruction=request.instruction, output=o) for o in (first, second)]
        return [
            self.template.fill(instruction=request.instruction, reference=request.output_1, output=request.output_2)
        ]

    async def _ask(self, messages: tuple[dict[str, str], ...]) -> Completion:
        return await self.provider.complete(ChatRequest(messages=messages, decoding=dict(self.decoding)))

    def _raw(self, completion: Completion) -> str:
        if self.protocol == "pairwise_logprob":
            # what the parser reads, compact: enough to re-parse without a new call
            return json.dumps(
                {"text": completion.text, "top_logprobs": list(completion.top_logprobs[:1])}, ensure_ascii=False
            )
        return completion.text

    async def judge(self, request: JudgeRequest) -> Verdict:
        calls = self.messages(request)
        if self.protocol == "single_score":
            return await self._judge_scores(request, calls)
        completion = await self._ask(calls[0])
        common: dict[str, Any] = {
            "raw_completion": self._raw(completion),
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "cost_usd": completion.cost_usd,
            "latency_s": completion.latency_s,
        }
        try:
            value = self.parser.parse(completion)
        except ParseFailure as exc:
            return Verdict(preference=None, status="parse_error", error=str(exc), **common)
        if self.protocol == "reference_score":
            preference = score_preference(REFERENCE_ANCHOR, value)
        else:
            preference = slot_preference(value, request.shown_first)
        return Verdict(preference=preference, status="ok", **common)

    async def _judge_scores(self, request: JudgeRequest, calls: list[tuple[dict[str, str], ...]]) -> Verdict:
        shown = [await self._ask(m) for m in calls]
        # back to slots: shown[0] graded the output shown first
        by_slot = shown if request.shown_first == 1 else shown[::-1]
        raw = json.dumps({"output_1": by_slot[0].text, "output_2": by_slot[1].text}, ensure_ascii=False)
        common: dict[str, Any] = {
            "raw_completion": raw,
            "prompt_tokens": _add(shown[0].prompt_tokens, shown[1].prompt_tokens),
            "completion_tokens": _add(shown[0].completion_tokens, shown[1].completion_tokens),
            "cost_usd": _add(shown[0].cost_usd, shown[1].cost_usd),
            "latency_s": _add(shown[0].latency_s, shown[1].latency_s),
        }
        scores = []
        for slot, completion in enumerate(by_slot, start=1):
            try:
                scores.append(self.parser.parse(completion))
            except ParseFailure as exc:
                return Verdict(preference=None, status="parse_error", error=f"output_{slot}: {exc}", **common)
        return Verdict(preference=score_preference(scores[0], scores[1]), status="ok", **common)

    def estimate_tokens(self, request: JudgeRequest) -> tuple[int, int]:
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


def longer_output_wins(instruction: str, output_1: str, output_2: str) -> float:
    """The longer output (in characters) wins, equal lengths tie: a length-biased judge for method tests."""
    if len(output_2) == len(output_1):
        return 1.5
    return 2.0 if len(output_2) > len(output_1) else 1.0


def shorter_output_wins(instruction: str, output_1: str, output_2: str) -> float:
    """The shorter output wins, equal lengths tie: the opposite bias, for tests."""
    return 3.0 - longer_output_wins(instruction, output_1, output_2)
