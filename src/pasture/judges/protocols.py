"""Judging protocols: what a judge asks and how its reply becomes a verdict, one small class per protocol.

A protocol says

* its ``kind``: ``pairwise`` (a preference between the reference slot and the model slot) or ``response``
  (a score, a good/bad or yes/no verdict and/or a critique of ONE output);
* ``fields``: the placeholders its template must contain (and the only ones it fills);
* ``default_parser``: the parser definition used when a judge gives none (``definitions.make_parser``);
* ``reads`` (response kind): the optional request fields its verdict depends on (``reference``, ``subject``);
* ``check_decoding``: decoding it cannot work without (a logprob protocol needs logprobs);
* ``calls``: the chat messages of each call one question takes;
* ``raw``: the raw reply kept with the verdict (enough to re-parse it without a new call);
* ``preference`` / ``reading``: how the parsed replies become the verdict.

:class:`~pasture.judges.judge.LLMJudge`, judge definitions (TOML files, built-ins) and ``pasture judges``
read this registry. Adding a protocol = one subclass here + :func:`register_protocol`. The protocol's
``name`` is what enters the judge fingerprint. Two judge kinds have classes of their own and are not here:
``programmatic`` (a Python function, :class:`~pasture.judges.judge.ProgrammaticJudge` and
:class:`~pasture.judges.judge.ProgrammaticResponseJudge`) and ``pairwise_batched``
(:class:`~pasture.judges.batched.BatchedJudge`).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeVar

from pasture.errors import JudgeError
from pasture.judges.base import Completion, JudgeRequest, ResponseReading, ResponseRequest
from pasture.judges.parsers import ParseFailure, Parser
from pasture.judges.templates import PromptTemplate
from pasture.records import JudgeFingerprint

ProtocolKind = Literal["pairwise", "response"]
Messages = tuple[dict[str, str], ...]

REFERENCE_ANCHOR = 5.0
"""In ``reference_score`` a grade equal to this means "as good as the reference" (a tie)."""


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


class JudgeProtocol(ABC):
    """The common part of every protocol; subclass :class:`PairwiseProtocol` or :class:`ResponseProtocol`."""

    name: ClassVar[str]
    kind: ClassVar[ProtocolKind]
    fields: ClassVar[tuple[str, ...]]
    default_parser: ClassVar[Mapping[str, Any]]
    reads: ClassVar[frozenset[str]] = frozenset()
    description: ClassVar[str] = ""

    def check_decoding(self, decoding: Mapping[str, Any]) -> None:
        """Raise :class:`JudgeError` when ``decoding`` cannot work with this protocol (default: any works)."""
        return None

    def samples_verdict(self, decoding: Mapping[str, Any]) -> bool:
        """Whether two calls with ``decoding`` may give different verdicts: the reply is sampled, at a
        temperature above 0 or at the provider's default (OpenAI, Anthropic and llama.cpp default to
        sampling). Protocols that read the verdict from something else than the sampled text override it."""
        return sampling_decoding(decoding)

    def check_template(self, template: PromptTemplate) -> None:
        """The template must contain every placeholder of ``fields`` and no other pasture placeholder."""
        template.require(*self.fields)
        extra = sorted(template.fields - set(self.fields))
        if extra:
            raise JudgeError(
                f"template {template.source} has placeholder(s) {', '.join('{' + f + '}' for f in extra)} that "
                f"protocol {self.name} does not fill (it fills {', '.join('{' + f + '}' for f in self.fields)})"
            )

    def raw(self, completions: Sequence[Completion], request: JudgeRequest | ResponseRequest) -> str:
        """The raw reply kept with the verdict: by default the text of the (single) call."""
        return completions[0].text


class PairwiseProtocol(JudgeProtocol):
    """A protocol whose verdict is a preference by slot (1 = reference wins .. 2 = model wins)."""

    kind: ClassVar[ProtocolKind] = "pairwise"

    def calls(self, template: PromptTemplate, request: JudgeRequest) -> list[Messages]:
        """One call with ``{output_1}`` = the output shown first (the usual pairwise prompt)."""
        first, second = _shown(request)
        return [template.fill(instruction=request.instruction, output_1=first, output_2=second)]

    @abstractmethod
    def preference(self, parser: Parser[Any], completions: Sequence[Completion], request: JudgeRequest) -> float:
        """The preference by slot; raises :class:`ParseFailure` when a reply cannot be read."""


class ResponseProtocol(JudgeProtocol):
    """A protocol that judges one output: its verdict is a :class:`ResponseReading`."""

    kind: ClassVar[ProtocolKind] = "response"

    def calls(self, template: PromptTemplate, request: ResponseRequest) -> list[Messages]:
        """One call filling ``instruction``, ``output`` and whichever of ``reference``/``subject`` it reads."""
        values = {"instruction": request.instruction, "output": request.output}
        for name in self.reads:
            value = getattr(request, name)
            if value is None:
                raise JudgeError(f"protocol {self.name} needs a {name} for every output judged")
            values[name] = value
        return [template.fill(**values)]

    @abstractmethod
    def reading(
        self, parser: Parser[Any], completions: Sequence[Completion], request: ResponseRequest
    ) -> ResponseReading:
        """What the reply says about the output; raises :class:`ParseFailure` when it cannot be read."""


def sampling_decoding(decoding: Mapping[str, Any]) -> bool:
    """True unless ``decoding`` sets ``temperature`` to 0 (greedy): no temperature means the provider's
    default, which samples for OpenAI (1), Anthropic (1) and llama.cpp's server (0.8)."""
    temperature = decoding.get("temperature")
    return temperature is None or float(temperature) > 0


def verdict_is_sampled(fingerprint: JudgeFingerprint) -> bool:
    """Whether a judge with ``fingerprint`` may answer one question differently on two calls.

    Programmatic judges (provider ``python``) never do; a registered protocol decides by its
    ``samples_verdict``; other judge kinds (``pairwise_batched``) follow :func:`sampling_decoding`. Used to
    keep independent annotators apart in the cache (docs/simulate.md).
    """
    if fingerprint.provider == "python":
        return False
    how = _REGISTRY.get(fingerprint.protocol)
    if how is None:
        return sampling_decoding(fingerprint.decoding)
    return how.samples_verdict(fingerprint.decoding)


def _shown(request: JudgeRequest) -> tuple[str, str]:
    """(output shown first, output shown second)."""
    if request.shown_first == 1:
        return request.output_1, request.output_2
    return request.output_2, request.output_1


_REGISTRY: dict[str, JudgeProtocol] = {}
P = TypeVar("P", bound=type[JudgeProtocol])


def register_protocol(cls: P) -> P:
    """Class decorator: make a protocol known by its ``name`` (a name can be registered once)."""
    if cls.name in _REGISTRY:
        raise JudgeError(f"protocol {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls()
    return cls


def get_protocol(name: str) -> JudgeProtocol:
    """The registered protocol called ``name``; a clear error listing the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise JudgeError(f"unknown protocol {name!r}; known: {', '.join(protocol_names())}") from None


def protocol_names(kind: ProtocolKind | None = None) -> list[str]:
    """Registered protocol names (of one kind, or all), sorted."""
    return sorted(n for n, p in _REGISTRY.items() if kind is None or p.kind == kind)


# -- pairwise protocols -----------------------------------------------------------------------------------


@register_protocol
class PairwiseLogprob(PairwiseProtocol):
    """One output token; shown-order preference ``1 + p2 / (p1 + p2)`` from the two label probabilities."""

    name = "pairwise_logprob"
    fields = ("instruction", "output_1", "output_2")
    default_parser: ClassVar[Mapping[str, Any]] = {"kind": "logprob"}
    description = "one token; preference from the two label tokens' probabilities"

    def check_decoding(self, decoding: Mapping[str, Any]) -> None:
        if not (decoding.get("logprobs") or decoding.get("top_logprobs")):
            raise JudgeError("protocol pairwise_logprob needs decoding logprobs=true and top_logprobs >= 2")

    def samples_verdict(self, decoding: Mapping[str, Any]) -> bool:
        # the verdict is read from the label probabilities at the first position, which the sampled token
        # (and so the temperature) does not change
        return False

    def raw(self, completions: Sequence[Completion], request: JudgeRequest | ResponseRequest) -> str:
        # what the parser reads, compact: enough to re-parse without a new call
        c = completions[0]
        return json.dumps({"text": c.text, "top_logprobs": list(c.top_logprobs[:1])}, ensure_ascii=False)

    def preference(self, parser: Parser[Any], completions: Sequence[Completion], request: JudgeRequest) -> float:
        return slot_preference(float(parser.parse(completions[0])), request.shown_first)


@register_protocol
class PairwiseGraded(PairwiseProtocol):
    """Reasoning, then a graded verdict A>>B .. B>>A in shown order."""

    name = "pairwise_graded"
    fields = ("instruction", "output_1", "output_2")
    default_parser: ClassVar[Mapping[str, Any]] = {"kind": "graded_verdict"}
    description = "reasoning, then a graded verdict A>>B .. B>>A"

    def preference(self, parser: Parser[Any], completions: Sequence[Completion], request: JudgeRequest) -> float:
        return slot_preference(float(parser.parse(completions[0])), request.shown_first)


@register_protocol
class SingleScore(PairwiseProtocol):
    """Each output graded alone (two calls, in shown order); preference from the sign of the difference."""

    name = "single_score"
    fields = ("instruction", "output")
    default_parser: ClassVar[Mapping[str, Any]] = {"kind": "score"}
    description = "each output graded 1-10 alone (two calls); preference from the two grades"

    def calls(self, template: PromptTemplate, request: JudgeRequest) -> list[Messages]:
        return [template.fill(instruction=request.instruction, output=o) for o in _shown(request)]

    @staticmethod
    def _by_slot(completions: Sequence[Completion], request: JudgeRequest) -> Sequence[Completion]:
        return completions if request.shown_first == 1 else completions[::-1]

    def raw(self, completions: Sequence[Completion], request: JudgeRequest | ResponseRequest) -> str:
        """The two replies by slot: ``{"output_1": ..., "output_2": ...}``."""
        assert isinstance(request, JudgeRequest)
        by_slot = self._by_slot(completions, request)
        return json.dumps({"output_1": by_slot[0].text, "output_2": by_slot[1].text}, ensure_ascii=False)

    def preference(self, parser: Parser[Any], completions: Sequence[Completion], request: JudgeRequest) -> float:
        scores = []
        for slot, completion in enumerate(self._by_slot(completions, request), start=1):
            try:
                scores.append(float(parser.parse(completion)))
            except ParseFailure as exc:
                raise ParseFailure(f"output_{slot}: {exc}") from None
        return score_preference(scores[0], scores[1])


@register_protocol
class ReferenceScore(PairwiseProtocol):
    """The model output graded against the reference output (one call); ``REFERENCE_ANCHOR`` = as good."""

    name = "reference_score"
    fields = ("instruction", "reference", "output")
    default_parser: ClassVar[Mapping[str, Any]] = {"kind": "score"}
    description = "the model output graded 1-10 against the reference output (5 = as good)"

    def calls(self, template: PromptTemplate, request: JudgeRequest) -> list[Messages]:
        return [template.fill(instruction=request.instruction, reference=request.output_1, output=request.output_2)]

    def preference(self, parser: Parser[Any], completions: Sequence[Completion], request: JudgeRequest) -> float:
        return score_preference(REFERENCE_ANCHOR, float(parser.parse(completions[0])))


# -- single-response protocols ----------------------------------------------------------------------------


@register_protocol
class Critique(ResponseProtocol):
    """A critique of one output (what is wrong with it, or that nothing is) ending in a verdict good/bad."""

    name = "critique"
    fields = ("instruction", "output")
    default_parser: ClassVar[Mapping[str, Any]] = {"kind": "critique"}
    description = "one output: a critique (what is wrong, or that nothing is) and a verdict good/bad"

    def reading(
        self, parser: Parser[Any], completions: Sequence[Completion], request: ResponseRequest
    ) -> ResponseReading:
        reading = parser.parse(completions[0])
        if not isinstance(reading, ResponseReading) or reading.verdict not in ("good", "bad"):
            raise JudgeError(f"protocol critique needs a critique parser, got {parser.name!r}")
        return reading


@register_protocol
class ResponseScore(ResponseProtocol):
    """One output graded on its own; the scale is the parser's (``score`` 1-10 by default, 0-9 with low=0)."""

    name = "response_score"
    fields = ("instruction", "output")
    default_parser: ClassVar[Mapping[str, Any]] = {"kind": "score"}
    description = "one output graded on a scale (1-10 by default)"

    def reading(
        self, parser: Parser[Any], completions: Sequence[Completion], request: ResponseRequest
    ) -> ResponseReading:
        return ResponseReading(score=float(parser.parse(completions[0])))


@register_protocol
class ExpectedDigit(ResponseProtocol):
    """One output rated 0-9 by the probabilities of the first reply token: the expected digit (Self-J's score).

    Reads no text, so the sampled token (and the temperature) cannot change the grade; pairwise use is
    ``single_score`` with the ``expected_digit`` parser (two calls, preference from the two grades).
    """

    name = "expected_digit"
    fields = ("instruction", "output")
    default_parser: ClassVar[Mapping[str, Any]] = {"kind": "expected_digit"}
    description = "one output rated 0-9 as the expected digit of the first token's probabilities (Self-J)"

    def check_decoding(self, decoding: Mapping[str, Any]) -> None:
        if not (decoding.get("logprobs") or decoding.get("top_logprobs")):
            raise JudgeError("protocol expected_digit needs decoding logprobs=true and top_logprobs >= 10")

    def samples_verdict(self, decoding: Mapping[str, Any]) -> bool:
        return False

    def raw(self, completions: Sequence[Completion], request: JudgeRequest | ResponseRequest) -> str:
        c = completions[0]
        return json.dumps({"text": c.text, "top_logprobs": list(c.top_logprobs[:1])}, ensure_ascii=False)

    def reading(
        self, parser: Parser[Any], completions: Sequence[Completion], request: ResponseRequest
    ) -> ResponseReading:
        return ResponseReading(score=float(parser.parse(completions[0])))
