"""Parsers: a judge's completion -> a number, in the order the outputs were SHOWN.

A pairwise parser returns a shown-order preference: 1 = the output shown first wins, 2 = the output shown
second wins, 1.5 = tie. The judge (not the parser) maps it back to slots with ``JudgeRequest.shown_first``.
A score parser returns the grade it read. A critique parser returns a :class:`ResponseReading` (the
critique text and its good/bad verdict). Every parser raises :class:`ParseFailure` when the reply
cannot be read; the judge turns that into ``Verdict(status='parse_error')`` and never into a default
verdict.

A parser's ``name`` and ``version`` enter the judge fingerprint, so everything that changes what a parser
returns is either in its name (labels, strictness) or bumps its version.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from pasture.judges.base import Completion, ResponseReading

T_co = TypeVar("T_co", covariant=True)


class ParseFailure(ValueError):
    """The completion could not be read; the message says why (stored with the verdict)."""


class Parser(Protocol[T_co]):
    """Reads one completion; ``name`` and ``version`` enter the judge fingerprint."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> int: ...

    def parse(self, completion: Completion) -> T_co: ...


def _logsumexp(values: list[float]) -> float:
    finite = [v for v in values if v != -math.inf]
    if not finite:
        return -math.inf
    top = max(finite)
    return top + math.log(sum(math.exp(v - top) for v in finite))


@dataclass(frozen=True)
class LabelLogprobParser:
    """Preference from the probabilities of two label tokens at the first generated position.

    With p1, p2 the probabilities of ``first_label`` (the output shown first wins) and ``second_label``,
    the shown-order preference is ``1 + p2 / (p1 + p2)``. A label missing from the top alternatives counts
    as probability 0; when both are missing the reply is a parse failure. This is the rule of AlpacaEval 2's
    weighted judge (``2 - P(m) / (P(m) + P(M))`` with m = first shown); with labels m/M and ``loose=False``
    the name is ``logprob_mM``, the name in ``OFFICIAL_JUDGE_ALIASES``.

    ``loose=True`` also accepts tokens that equal a label after stripping whitespace (" A", "A\\n"):
    small local models often emit the label with a leading space. Their probabilities are summed.
    """

    first_label: str
    second_label: str
    loose: bool = False
    version: int = 1

    def __post_init__(self) -> None:
        if not self.first_label or self.first_label == self.second_label:
            raise ValueError("labels must be two different non-empty strings")

    @property
    def name(self) -> str:
        return f"logprob_{self.first_label}{self.second_label}" + ("_loose" if self.loose else "")

    def _logprob(self, alternatives: dict[str, float], label: str) -> float:
        if not self.loose:
            return alternatives.get(label, -math.inf)
        return _logsumexp([lp for tok, lp in alternatives.items() if tok.strip() == label])

    def parse(self, completion: Completion) -> float:
        if not completion.top_logprobs:
            raise ParseFailure("no logprobs in the completion (does the provider/server return them?)")
        alternatives = completion.top_logprobs[0]
        lp1 = self._logprob(alternatives, self.first_label)
        lp2 = self._logprob(alternatives, self.second_label)
        if lp1 == -math.inf and lp2 == -math.inf:
            shown = ", ".join(repr(t) for t in list(alternatives)[:10])
            raise ParseFailure(f"neither {self.first_label!r} nor {self.second_label!r} among top tokens [{shown}]")
        total = _logsumexp([lp1, lp2])
        p_second = math.exp(lp2 - total)
        return 1.0 + min(1.0, max(0.0, p_second))


DIGITS = "0123456789"


@dataclass(frozen=True)
class ExpectedDigitParser:
    """A grade 0-9 as the expected digit Σ d · p(d) at the first generated position (Self-J's score).

    p is the probability of each token that is exactly one digit ``0``..``9``, renormalised over the digits
    found among the top alternatives; a digit missing from them counts as probability 0 (ask for enough
    ``top_logprobs`` that all ten are there). No digit at all is a parse failure, never a default grade.
    """

    name: str = "expected_digit"
    version: int = 1

    def parse(self, completion: Completion) -> float:
        if not completion.top_logprobs:
            raise ParseFailure("no logprobs in the completion (does the provider/server return them?)")
        alternatives = completion.top_logprobs[0]
        found = {int(tok): lp for tok, lp in alternatives.items() if len(tok) == 1 and tok in DIGITS}
        if not found:
            shown = ", ".join(repr(t) for t in list(alternatives)[:10])
            raise ParseFailure(f"no digit 0-9 among the top tokens [{shown}]")
        total = _logsumexp(list(found.values()))
        return float(sum(d * math.exp(lp - total) for d, lp in found.items()))


GRADED_VERDICTS: dict[str, float] = {
    "A>>B": 1.0,
    "A>B": 1.25,
    "A=B": 1.5,
    "B>A": 1.75,
    "B>>A": 2.0,
}
"""Graded verdict (A = shown first) -> shown-order preference. Strong verdicts are the ends of the scale,
weak ones halfway between an end and a tie; documented in docs/judges.md."""

_VERDICT = re.compile(
    r"(?<![A-Za-z0-9])([AB])\s*(>>|≫|>|=|==|<<|≪|<)\s*([AB])(?![A-Za-z0-9])",
    re.IGNORECASE,
)


def normalize_verdict(left: str, op: str, right: str) -> str | None:
    """Canonical form of one verdict ('A>>B' .. 'B>>A'), or None for nonsense such as 'A>A'."""
    left, right = left.upper(), right.upper()
    op = {"≫": ">>", "≪": "<<", "==": "="}.get(op, op)
    if op in {"<", "<<"}:
        left, right, op = right, left, op.replace("<", ">")
    if op == "=":
        return "A=B" if {left, right} == {"A", "B"} else None
    if left == right:
        return None
    return f"{left}{op}{right}"


@dataclass(frozen=True)
class GradedVerdictParser:
    """Reads a graded verdict A>>B, A>B, A=B, B>A, B>>A from free text (A = the output shown first).

    Robust to what models actually write: markdown (``**[[A>B]]**``), brackets, lower case, spaces
    (``a > b``), the mirrored form (``B<A``), unicode ``≫``. The LAST verdict in the reply wins, because the
    template asks for reasoning first and the verdict at the end; a reply with no verdict is a failure.
    """

    name: str = "graded_verdict"
    version: int = 1

    def parse(self, completion: Completion) -> float:
        found = [v for m in _VERDICT.finditer(completion.text) if (v := normalize_verdict(*m.groups()))]
        if not found:
            raise ParseFailure("no verdict of the form A>>B, A>B, A=B, B>A or B>>A in the reply")
        return GRADED_VERDICTS[found[-1]]


_SCORE_PATTERNS = (
    re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]"),
    re.compile(r"(?:score|rating|grade)\s*(?:is|of)?\s*[:=]?\s*\**\s*\[?\s*(\d+(?:\.\d+)?)", re.IGNORECASE),
    re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*/\s*10(?![\d])"),
)


@dataclass(frozen=True)
class ScoreParser:
    """Reads a grade on ``low``..``high`` from free text.

    Looks first for ``[[N]]`` (what the templates ask for), then ``Score: N`` / ``Rating: N``, then ``N/10``;
    the last match of the first pattern that matches wins. A number outside the scale is a failure.
    """

    low: int = 1
    high: int = 10
    version: int = 1

    @property
    def name(self) -> str:
        return f"score_{self.low}_{self.high}"

    def parse(self, completion: Completion) -> float:
        for pattern in _SCORE_PATTERNS:
            hits = pattern.findall(completion.text)
            if hits:
                score = float(hits[-1])
                if not self.low <= score <= self.high:
                    raise ParseFailure(f"score {hits[-1]} outside {self.low}..{self.high}")
                return score
        raise ParseFailure(f"no score on {self.low}..{self.high} in the reply (expected [[N]])")


_CRITIQUE_VERDICT = re.compile(
    r"\[\[\s*(good|bad)\s*\]\]"  # [[good]]
    r"|\bverdict\b\W{0,6}?(?:is\s+)?[\s*_`'\"\[(:=\-]*(good|bad)\b[*_`'\")\]]*\.?",  # Verdict: **Good**.
    re.IGNORECASE,
)
_TRIM = " \t\r\n*_#:-"


@dataclass(frozen=True)
class CritiqueParser:
    """Reads a critique and its verdict: free text saying what is wrong with the answer (or that nothing is),
    and a verdict ``good`` or ``bad``.

    The verdict is the LAST ``Verdict: good|bad`` or ``[[good]]``/``[[bad]]`` in the reply, in any case, with
    markdown or brackets around it (``**Verdict:** Bad``, ``verdict - [good]``, ``Verdict is good.``). The
    critique is the reply with that verdict removed, trimmed of surrounding whitespace and markdown. A reply
    without a verdict, or with nothing but the verdict, is a failure: a critique must say something.

    >>> CritiqueParser().parse(Completion(text="The sum is wrong: 2+2 is 4, not 5.\\n**Verdict:** Bad"))
    ResponseReading(score=None, verdict='bad', critique='The sum is wrong: 2+2 is 4, not 5.')
    >>> CritiqueParser().parse(Completion(text="Nothing is wrong. [[GOOD]]")).verdict
    'good'
    """

    name: str = "critique_verdict"
    version: int = 1

    def parse(self, completion: Completion) -> ResponseReading:
        text = completion.text
        found = list(_CRITIQUE_VERDICT.finditer(text))
        if not found:
            raise ParseFailure("no verdict in the reply (expected 'Verdict: good' or 'Verdict: bad')")
        last = found[-1]
        word = (last.group(1) or last.group(2)).lower()
        verdict: Literal["good", "bad"] = "good" if word == "good" else "bad"
        critique = (text[: last.start()].strip(_TRIM) + "\n" + text[last.end() :].strip(_TRIM)).strip(_TRIM)
        if not critique:
            raise ParseFailure("the reply has a verdict but no critique text")
        return ResponseReading(verdict=verdict, critique=critique)
