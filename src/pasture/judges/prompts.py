"""pasture's own prompt templates (written for pasture; no third-party prompt text).

Pairwise templates show two answers labelled by the order they are shown: ``{output_1}`` is the answer
shown first (label A), ``{output_2}`` the one shown second (label B). Text is kept short because every
token of a template is paid on every call. Changing any character changes the template digest, and so
the fingerprint of every judge using it: edit by adding a new ``_v2`` entry, not by rewriting one.
"""

from __future__ import annotations

from pasture.errors import JudgeError
from pasture.judges.method_protocols import METHOD_TEMPLATES
from pasture.judges.templates import PromptTemplate

PAIRWISE_LOGPROB_V1 = """<|im_start|>system
You compare two answers to the same request and name the better one. Reply with one letter only.
<|im_end|>
<|im_start|>user
Request:
{instruction}

Answer A:
{output_1}

Answer B:
{output_2}

Which answer serves the request better: helpful, correct, clear, and no longer than needed? Reply with the single letter A or B.
<|im_end|>
"""

PAIRWISE_GRADED_V1 = """<|im_start|>system
You are a careful reviewer of answers written by AI assistants. You judge substance (correctness, helpfulness, following the request) over style, and you do not favour an answer for being longer or for being shown first.
<|im_end|>
<|im_start|>user
Request:
{instruction}

Answer A:
{output_1}

Answer B:
{output_2}

First explain briefly which answer is better and why. Then end with exactly one verdict in double brackets:
[[A>>B]] A is much better, [[A>B]] A is better, [[A=B]] about equally good, [[B>A]] B is better, [[B>>A]] B is much better.
<|im_end|>
"""

SINGLE_SCORE_V1 = """<|im_start|>system
You grade answers written by AI assistants on a scale from 1 (useless or wrong) to 10 (excellent: correct, helpful, clear and complete).
<|im_end|>
<|im_start|>user
Request:
{instruction}

Answer:
{output}

Explain the answer's main strengths and faults in a few sentences, then give the grade as [[N]] with N from 1 to 10.
<|im_end|>
"""

REFERENCE_SCORE_V1 = """<|im_start|>system
You grade an AI assistant's answer against a reference answer to the same request.
<|im_end|>
<|im_start|>user
Request:
{instruction}

Reference answer:
{reference}

Answer to grade:
{output}

Compare the answer with the reference on correctness, helpfulness and clarity. Use a scale from 1 to 10 where 5 means as good as the reference, 10 much better and 1 much worse. Explain briefly, then give the grade as [[N]].
<|im_end|>
"""

CRITIQUE_V1 = """<|im_start|>system
You review one answer written by an AI assistant. You look for real faults: wrong facts or reasoning, parts of the request it ignores or gets wrong, and unclear or padded text. You do not rewrite the answer.
<|im_end|>
<|im_start|>user
Request:
{instruction}

Answer:
{output}

Write a short critique of the answer. Name each fault you find and where it is; if you find none, say that nothing is wrong. Do not correct the answer. On the last line write "Verdict: good" if the answer has no real fault, or "Verdict: bad" if it has one.
<|im_end|>
"""
"""The ``critique`` protocol's template: a critique of ONE answer (faults named, never corrected), then a
verdict line read by ``CritiqueParser``."""

PAIRWISE_BATCHED_V1 = """<|im_start|>system
You compare pairs of answers. Each pair has a request and two answers, A and B. For every pair, name the answer that serves its request better: helpful, correct, clear, and no longer than needed.
<|im_end|>
<|im_start|>user
{pairs}

Reply with one line per pair, in order, each line the pair number, a colon and the letter A or B, e.g. "1: A". Write nothing else.
<|im_end|>
"""
"""The ``pairwise_batched`` template: ``{pairs}`` is filled with every pair of the batch (see
``pasture.judges.batched.format_pairs``), numbered from 1 in the order they are listed. Not in
``BUILTIN_TEMPLATES``: it is not a single-pair template (no ``{instruction}``) and only ``BatchedJudge`` fills it."""

BUILTIN_TEMPLATES: dict[str, str] = {
    "pairwise_logprob_v1": PAIRWISE_LOGPROB_V1,
    "pairwise_graded_v1": PAIRWISE_GRADED_V1,
    "single_score_v1": SINGLE_SCORE_V1,
    "reference_score_v1": REFERENCE_SCORE_V1,
    "critique_v1": CRITIQUE_V1,
    **METHOD_TEMPLATES,  # AutoRule's and PUGC's (pasture.judges.method_protocols)
}
"""Built-in templates by name; a judge definition may name one of these or give a file path."""


def builtin_template(name: str) -> PromptTemplate:
    try:
        text = BUILTIN_TEMPLATES[name]
    except KeyError:
        raise JudgeError(f"unknown built-in template {name!r}; known: {', '.join(sorted(BUILTIN_TEMPLATES))}") from None
    return PromptTemplate.from_text(text, source=f"<built-in {name}>")
