"""Persona prompts for simulated annotators, written for pasture.

People disagree about answers partly because they want different things: some reward brevity, some
thoroughness, some only correctness. A pool of judges that share one model but read with different
personas reproduces part of that spread. Each persona is a complete prompt template for the
``pairwise_logprob`` protocol (one letter, A = the answer shown first, B = the one shown second), so it
works with any provider that returns logprobs, including the local SmolLM2 server. Texts are short on
purpose: every token is paid on every call.

Editing a persona's text changes its template digest and so its judges' fingerprints: add a new name
instead of rewriting one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pasture.errors import JudgeError
from pasture.judges.base import Judge, Provider
from pasture.judges.judge import LLMJudge
from pasture.judges.parsers import LabelLogprobParser
from pasture.judges.templates import PromptTemplate

_BODY = """<|im_start|>system
{persona} Reply with one letter only.
<|im_end|>
<|im_start|>user
Request:
{{instruction}}

Answer A:
{{output_1}}

Answer B:
{{output_2}}

{question} Reply with the single letter A or B.
<|im_end|>
"""


def _persona(persona: str, question: str) -> str:
    return _BODY.format(persona=persona, question=question)


PERSONAS: dict[str, str] = {
    "balanced": _persona(
        "You read two answers to the same request and pick the one a typical user would be happier with.",
        "Which answer would a typical user prefer?",
    ),
    "concise": _persona(
        "You are a busy reader. You value answers that get straight to the point; padding, repetition and "
        "needless detail count against an answer.",
        "Which answer is more direct and to the point?",
    ),
    "thorough": _persona(
        "You are a curious reader who likes complete answers. You value explanation, examples and detail; "
        "a bare answer counts against itself.",
        "Which answer is more complete and detailed?",
    ),
    "strict": _persona(
        "You are a fact checker. You prefer the answer without mistakes; an answer with a factual or logical "
        "error loses even if it is better written.",
        "Which answer is more accurate?",
    ),
}
"""Persona name -> template text (``pairwise_logprob`` protocol, labels A/B)."""

DEFAULT_PERSONA_DECODING: dict[str, Any] = {"max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 10}
"""One token, greedy, with the top-10 alternatives from which the A/B probabilities are read."""


def persona_template(persona: str) -> PromptTemplate:
    """The template of a built-in persona."""
    try:
        text = PERSONAS[persona]
    except KeyError:
        raise JudgeError(f"unknown persona {persona!r}; known: {', '.join(sorted(PERSONAS))}") from None
    return PromptTemplate.from_text(text, source=f"<persona {persona}>")


def persona_judge(
    persona: str,
    provider: Provider,
    *,
    name: str | None = None,
    decoding: Mapping[str, Any] | None = None,
    template: PromptTemplate | None = None,
) -> Judge:
    """A logprob judge that reads with ``persona``'s prompt (or ``template``, a user's own persona file).

    The preference is ``1 + P(B) / (P(A) + P(B))`` in shown order, mapped back to slots by the judge; label
    tokens are matched after stripping whitespace (small models often emit " A").
    """
    return LLMJudge(
        name=name or persona,
        provider=provider,
        template=template if template is not None else persona_template(persona),
        parser=LabelLogprobParser("A", "B", loose=True),
        decoding=dict(decoding if decoding is not None else DEFAULT_PERSONA_DECODING),
        protocol="pairwise_logprob",
    )
