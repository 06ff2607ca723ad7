"""The single-response protocols AutoRule and PUGC ask a model with, their parsers and templates.

Why single-response protocols: every model call these methods make (a rule check, a reference-guided grade, an
explanation of a preference, a list of rules or questions, a yes/no about a document) then goes through the
annotation engine like any judgment of one response: it is keyed by the judge's fingerprint and the texts it
saw, stored as a :class:`~pasture.records.ResponseJudgment`, never asked twice, retried when it failed, and a
killed run resumes where it stopped. Any provider serves (a judge definition names it).

* ``rule_check``: does the output satisfy the rule (``subject`` = the rule's full text)? Verdict yes/no.
* ``reference_grade``: the output graded 1-10 against a reference answer (``reference``; 5 = as good). The
  single-response sibling of the pairwise ``reference_score``: PUGC grades every sample alone, the document
  being the reference.
* ``yes_no``: a yes/no question about the output (PUGC's filter: ``instruction`` = a question, ``output`` = the
  document, "does the document answer it?").
* ``preference_explanation``: why the output beats the other answer (``subject`` = the answer it was preferred
  over). The reading's ``critique`` is the explanation; its verdict is 'yes' (an explanation was given).
* ``item_list``: a list the model writes about the output (``instruction`` says what to list: rules implied by
  an explanation, rules merged, questions a document answers). The reading's ``critique`` holds the items, one a
  line; its verdict is 'yes' (at least one item was read). A reply with no item is a parse failure.

The templates are pasture's own (written for pasture); see :data:`METHOD_TEMPLATES`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pasture.judges.base import Completion, ResponseReading, ResponseRequest
from pasture.judges.parsers import ParseFailure, Parser
from pasture.judges.protocols import ResponseProtocol, register_protocol

_YES_NO = re.compile(
    r"\[\[\s*(yes|no)\s*\]\]"  # [[yes]]
    r"|\b(?:answer|verdict)\b\W{0,6}?[\s*_`'\"\[(:=\-]*(yes|no)\b",  # Answer: **Yes**
    re.IGNORECASE,
)
_FIRST_WORD = re.compile(r"^[\s*_`'\"\[(]*(yes|no)\b", re.IGNORECASE)
_VERBS = r"(?:contain|answer|follow|satisf|meet|provide|include|address)"
_NEGATED = re.compile(
    r"\b(?:does\s+not|doesn't|do\s+not|don't|did\s+not|didn't|cannot|can't|can\s+not|fails?\s+to|is\s+not|"
    r"isn't|not)\s+(?:\w+\s+){0,2}?" + _VERBS,
    re.IGNORECASE,
)
_AFFIRMED = re.compile(
    r"\b(?:contains|answers|follows|satisfies|meets|provides|includes|addresses|does\s+(?:\w+\s+)?" + _VERBS + r")\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class YesNoParser:
    """Reads a yes/no verdict: the LAST ``[[yes]]``/``[[no]]`` or ``Answer: yes|no`` in the reply, else a reply
    that starts with the word yes or no, else the reply's first sentence in words: a negated verb of the question
    ("does not contain", "doesn't answer", "fails to follow") is 'no', the verb alone ("contains the answer",
    "follows the rule") is 'yes' (small models answer in a sentence). Anything else is a failure (never a default
    'no').

    >>> YesNoParser().parse(Completion(text="The answer is short. Answer: **Yes**")).verdict
    'yes'
    >>> YesNoParser().parse(Completion(text="No, it ignores the rule.")).verdict
    'no'
    """

    name: str = "yes_no"
    version: int = 1

    def parse(self, completion: Completion) -> ResponseReading:
        text = completion.text
        found = list(_YES_NO.finditer(text))
        if found:
            word = (found[-1].group(1) or found[-1].group(2)).lower()
        elif (m := _FIRST_WORD.match(text)) is not None:
            word = m.group(1).lower()
        else:
            first = re.split(r"(?<=[.!?])\s|\n", text.strip(), maxsplit=1)[0]
            if _NEGATED.search(first):
                word = "no"
            elif _AFFIRMED.search(first):
                word = "yes"
            else:
                raise ParseFailure("no yes/no verdict in the reply (expected [[yes]] or [[no]])")
        verdict: Literal["yes", "no"] = "yes" if word == "yes" else "no"
        return ResponseReading(verdict=verdict)


_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\(?\d{1,3}[.):])\s+(.+?)\s*$")


def list_items(text: str) -> list[str]:
    """The items of a list in ``text``: lines that start with ``-``, ``*``, ``•``, ``1.``, ``1)`` or ``(1)``,
    stripped of that marker and of markdown emphasis; repeats (ignoring case and spacing) kept once, in order."""
    items: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        m = _ITEM.match(line)
        if m is None:
            continue
        item = m.group(1).strip(" *_`\"'")
        key = normalize_item(item)
        if len(key) >= 3 and key not in seen:
            seen.add(key)
            items.append(item)
    return items


def normalize_item(text: str) -> str:
    """Lower case, single spaces, no trailing punctuation: how repeated rules or questions are recognised."""
    return re.sub(r"\s+", " ", text.strip().lower()).rstrip(" .;:!")


def _distinct_sentences(pattern: re.Pattern[str], text: str, *, min_words: int) -> list[str]:
    """Every match of ``pattern`` in ``text`` (stripped) of at least ``min_words`` words, each kept once
    (:func:`normalize_item` decides what repeats), in order: how rules and questions are read from prose."""
    out: list[str] = []
    seen: set[str] = set()
    for m in pattern.finditer(text):
        sentence = m.group(0).strip()
        key = normalize_item(sentence)
        if len(sentence.split()) >= min_words and key not in seen:
            seen.add(key)
            out.append(sentence)
    return out


@dataclass(frozen=True)
class _ListParser:
    """A parser whose reading is a list read from the reply (:meth:`items`): ``critique`` the items, one a line,
    verdict 'yes'; no item is a failure, named by :attr:`missing`."""

    missing: ClassVar[str]

    @staticmethod
    def items(text: str) -> list[str]:
        raise NotImplementedError

    def parse(self, completion: Completion) -> ResponseReading:
        items = self.items(completion.text)
        if not items:
            raise ParseFailure(self.missing)
        return ResponseReading(verdict="yes", critique="\n".join(items))


@dataclass(frozen=True)
class ItemListParser(_ListParser):
    """Reads a list (:func:`list_items`)."""

    name: str = "item_list"
    version: int = 1

    missing: ClassVar[str] = "no list item in the reply (expected lines starting with '- ')"
    items = staticmethod(list_items)


_RULE_SENTENCE = re.compile(r"\b(?:The|A good) answer\b[^.!?\n]*[.!]?", re.IGNORECASE)


def rule_items(text: str) -> list[str]:
    """The rules in ``text``: its list items (:func:`list_items`), or when it has none, every sentence starting with
    "The answer" or "A good answer" (the form the rule templates ask for) of at least four words; repeats kept
    once, in order. Small models often drop the list markers."""
    items = list_items(text)
    if items:
        return items
    return [r[0].upper() + r[1:] for r in _distinct_sentences(_RULE_SENTENCE, text, min_words=4)]


@dataclass(frozen=True)
class RuleListParser(_ListParser):
    """Reads rules (:func:`rule_items`)."""

    name: str = "rule_list"
    version: int = 1

    missing: ClassVar[str] = "no rule in the reply (expected lines starting with '- ' or sentences 'The answer ...')"
    items = staticmethod(rule_items)


_QUESTION_LABEL = re.compile(r"\b(?:question|q)\s*\d*\s*[:.)-]\s*", re.IGNORECASE)
_QUESTION = re.compile(r"[A-Z][^.?!\n]*\?")


def question_items(text: str) -> list[str]:
    """The questions in ``text``: every sentence that starts with a capital letter and ends with ``?`` (after
    dropping labels such as ``Question 1:``, list markers and markdown), of at least three words; repeats (ignoring
    case and spacing) kept once, in order. Small models write questions without list markers."""
    cleaned = _QUESTION_LABEL.sub("", text.replace("*", "").replace("`", ""))
    return _distinct_sentences(_QUESTION, cleaned, min_words=3)


@dataclass(frozen=True)
class QuestionListParser(_ListParser):
    """Reads questions (:func:`question_items`)."""

    name: str = "question_list"
    version: int = 1

    missing: ClassVar[str] = "no question in the reply (expected sentences ending with '?')"
    items = staticmethod(question_items)


@dataclass(frozen=True)
class FreeTextParser:
    """Reads free text: the reply trimmed; empty is a failure. The reading's ``critique`` is the text, its verdict
    'yes' (something was said)."""

    name: str = "free_text"
    version: int = 1

    def parse(self, completion: Completion) -> ResponseReading:
        text = completion.text.strip()
        if not text:
            raise ParseFailure("empty reply")
        return ResponseReading(verdict="yes", critique=text)


@dataclass(frozen=True)
class ScoreLogprobParser:
    """A grade 1-9 from the probabilities of the digit tokens at the first generated position: the mean digit
    weighted by their probabilities (tokens equal to a digit after stripping whitespace, summed). No digit among
    the top alternatives is a failure. For small models that grade with one token but rarely write ``[[N]]``;
    needs decoding ``logprobs = true``, ``top_logprobs`` >= 9, ``max_tokens = 1``."""

    name: str = "score_logprob_1_9"
    version: int = 1

    def parse(self, completion: Completion) -> float:
        if not completion.top_logprobs:
            raise ParseFailure("no logprobs in the completion (does the provider/server return them?)")
        weights: dict[int, float] = {}
        for token, logprob in completion.top_logprobs[0].items():
            t = token.strip()
            if len(t) == 1 and t in "123456789":
                weights[int(t)] = weights.get(int(t), 0.0) + math.exp(logprob)
        total = sum(weights.values())
        if total <= 0:
            shown = ", ".join(repr(t) for t in list(completion.top_logprobs[0])[:10])
            raise ParseFailure(f"no digit 1-9 among the top tokens [{shown}]")
        return sum(d * w for d, w in weights.items()) / total


METHOD_PARSERS: dict[str, Parser[Any]] = {
    p.name: p for p in (YesNoParser(), ItemListParser(), RuleListParser(), QuestionListParser(), FreeTextParser())
}
METHOD_PARSERS["score_logprob"] = ScoreLogprobParser()
"""The parsers of this module by kind (``definitions.make_parser`` builds them from ``{"kind": name}``)."""


def _reading(parser: Parser[Any], completion: Completion, protocol: str) -> ResponseReading:
    reading = parser.parse(completion)
    if not isinstance(reading, ResponseReading):
        raise ParseFailure(f"protocol {protocol} needs a parser that returns a reading, got {parser.name!r}")
    return reading


class _ReadingProtocol(ResponseProtocol):
    """A protocol whose parser returns the whole reading (verdict and/or text)."""

    def reading(
        self, parser: Parser[Any], completions: Sequence[Completion], request: ResponseRequest
    ) -> ResponseReading:
        return _reading(parser, completions[0], self.name)


@register_protocol
class RuleCheck(_ReadingProtocol):
    """Does the output satisfy the rule in ``subject``? One yes/no per rule per response (AutoRule's verifier)."""

    name = "rule_check"
    fields = ("instruction", "output", "subject")
    reads = frozenset({"subject"})
    default_parser: ClassVar[Mapping[str, Any]] = {"kind": "yes_no"}
    description = "one response and one rule (subject): does the response satisfy it? yes/no"


@register_protocol
class ReferenceGrade(ResponseProtocol):
    """The output graded against a reference answer (``reference``), alone: PUGC's reference-guided score."""

    name = "reference_grade"
    fields = ("instruction", "reference", "output")
    reads = frozenset({"reference"})
    default_parser: ClassVar[Mapping[str, Any]] = {"kind": "score"}
    description = "one response graded 1-10 against a reference answer (5 = as good)"

    def reading(
        self, parser: Parser[Any], completions: Sequence[Completion], request: ResponseRequest
    ) -> ResponseReading:
        return ResponseReading(score=float(parser.parse(completions[0])))


@register_protocol
class YesNo(_ReadingProtocol):
    """A yes/no question (``instruction``) about a text (``output``), e.g. does the document answer it?"""

    name = "yes_no"
    fields = ("instruction", "output")
    default_parser: ClassVar[Mapping[str, Any]] = {"kind": "yes_no"}
    description = "a yes/no question about one text (PUGC: does the document answer the question?)"


@register_protocol
class PreferenceExplanation(_ReadingProtocol):
    """Why the output was preferred over the other answer (``subject``): the explanation as the critique."""

    name = "preference_explanation"
    fields = ("instruction", "output", "subject")
    reads = frozenset({"subject"})
    default_parser: ClassVar[Mapping[str, Any]] = {"kind": "free_text"}
    description = "why one response was preferred over another (subject): an explanation in words"


@register_protocol
class ItemList(_ReadingProtocol):
    """A list about the output, what to list said by ``instruction``: the items, one a line, as the critique."""

    name = "item_list"
    fields = ("instruction", "output")
    default_parser: ClassVar[Mapping[str, Any]] = {"kind": "item_list"}
    description = "a list of items about one text (rules from an explanation, merged rules, questions)"


_SYSTEM_RULES = "You help write rules that describe what makes an AI assistant's answer good."

RULE_CHECK_V1 = """<|im_start|>system
You check whether an AI assistant's answer follows one rule. You judge only that rule.
<|im_end|>
<|im_start|>user
Request:
{instruction}

Answer:
{output}

Rule:
{subject}

Does the answer follow the rule? Reply with [[yes]] or [[no]] first, then one short sentence why.
<|im_end|>
"""

PREFERENCE_EXPLANATION_V1 = (
    """<|im_start|>system
"""
    + _SYSTEM_RULES
    + """
<|im_end|>
<|im_start|>user
Request:
{instruction}

Preferred answer:
{output}

Other answer:
{subject}

A reader preferred the first answer. Explain in a few sentences what makes the preferred answer better than the other one. Name concrete qualities (content, correctness, format, length, tone), not the topic.
<|im_end|>
"""
)

RULE_EXTRACT_V1 = (
    """<|im_start|>system
"""
    + _SYSTEM_RULES
    + """
<|im_end|>
<|im_start|>user
{instruction}

Explanation:
{output}

Turn the explanation into general rules that a good answer to any request follows. Write each rule as one short sentence starting with "The answer", one rule per line, each line starting with "- ".
<|im_end|>
"""
)

RULE_MERGE_V1 = (
    """<|im_start|>system
"""
    + _SYSTEM_RULES
    + """
<|im_end|>
<|im_start|>user
Candidate rules:
{output}

{instruction} Merge rules that say the same thing, drop rules about one topic only, and keep the most important ones. Write each rule as one sentence starting with "The answer", one per line, each line starting with "- ".
<|im_end|>
"""
)

DOCUMENT_QUESTIONS_V1 = """<|im_start|>system
You read a document and write questions a reader could ask that the document answers.
<|im_end|>
<|im_start|>user
Document:
{output}

{instruction} Each question must make sense without the document and be fully answered by it. Write one question per line, each line starting with "- ".
<|im_end|>
"""

DOCUMENT_ANSWERS_V1 = """<|im_start|>system
You decide whether a document answers a question.
<|im_end|>
<|im_start|>user
Question:
{instruction}

Document:
{output}

Does the document contain the answer to the question? Reply with [[yes]] or [[no]] first, then one short sentence why.
<|im_end|>
"""

REFERENCE_GRADE_DIGIT_V1 = """<|im_start|>system
You grade an AI assistant's answer against a reference answer to the same request. You reply with one digit.
<|im_end|>
<|im_start|>user
Request:
{instruction}

Reference answer:
{reference}

Answer to grade:
{output}

Grade the answer against the reference from 1 (much worse) to 9 (much better); 5 means as good as the reference. Reply with the digit only.
<|im_end|>
"""

METHOD_TEMPLATES: dict[str, str] = {
    "rule_check_v1": RULE_CHECK_V1,
    "preference_explanation_v1": PREFERENCE_EXPLANATION_V1,
    "rule_extract_v1": RULE_EXTRACT_V1,
    "rule_merge_v1": RULE_MERGE_V1,
    "document_questions_v1": DOCUMENT_QUESTIONS_V1,
    "document_answers_v1": DOCUMENT_ANSWERS_V1,
    "reference_grade_digit_v1": REFERENCE_GRADE_DIGIT_V1,
}
"""The templates of this module by built-in name (merged into ``prompts.BUILTIN_TEMPLATES``)."""
