"""A Self-J judge: a checkpoint trained by ``pasture train self_j``, asked through the ``transformers`` provider.

Why here and not in ``pasture.train``: a trained judge is used like any other judge (annotate, best-of-n,
``pasture analyze-judge``), so it is built from pieces the judges layer already has: the ``transformers``
provider over the checkpoint folder (completions endpoint: the prompt is the template's text, no chat turns),
a Self-J prompt template, the ``expected_digit`` parser and decoding that returns the first token's
probabilities. Its fingerprint digests the checkpoint folder (weights, tokenizer, config) and the template, so
two trainings never share stored judgments.

Two kinds, one checkpoint: a **single-response** judge (protocol ``expected_digit``: the grade of one output,
for selective answering and best-of-n) and a **pairwise** judge (protocol ``single_score`` with the
``expected_digit`` parser: each output graded alone, the higher grade wins; for ``pasture annotate`` and
``pasture analyze-judge``). The student prompt (no reference) is the one asked: the teacher's needs a gold
reference that judging time does not have.

A Self-J checkpoint says which prompt format it was trained with in its ``config.json`` (``self_j.format``),
written by the trainer; that is how :func:`is_self_j_checkpoint` recognises one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pasture.errors import InputError
from pasture.judges.judge import LLMJudge
from pasture.judges.parsers import ExpectedDigitParser
from pasture.judges.templates import PromptTemplate

SELF_J_CONFIG_KEY = "self_j"
"""The ``config.json`` key a Self-J checkpoint carries: ``{"format": <a SELF_J_FORMATS name>, "version": 1}``."""

TEMPLATES: dict[str, str] = {
    "self_j_student_v1": (
        "Request:\n{instruction}\n\nAnswer:\n{output}\n\n"
        "Rate the answer from 0 (useless or wrong) to 9 (excellent). Rating:"
    ),
    "self_j_teacher_v1": (
        "Request:\n{instruction}\n\nReference answer:\n{reference}\n\nAnswer:\n{output}\n\n"
        "Rate the answer from 0 (useless or wrong) to 9 (excellent), using the reference answer. Rating:"
    ),
    # the extended synthetic task: the task prompt, the answer, then '#' asks for the digit (the policy's own
    # grammar never puts '#' after an answer); the teacher adds '?' and the gold reference
    "self_j_synthetic_student_v1": "{instruction}{output}#",
    "self_j_synthetic_teacher_v1": "{instruction}{output}?{reference}#",
}
"""pasture's own Self-J prompts (plain completion text, no chat turns; the first reply token is the digit)."""

SELF_J_FORMATS: dict[str, tuple[str, str]] = {
    "plain": ("self_j_student_v1", "self_j_teacher_v1"),
    "synthetic": ("self_j_synthetic_student_v1", "self_j_synthetic_teacher_v1"),
}
"""Prompt format name -> (student template, teacher template)."""

SelfJFormat = Literal["plain", "synthetic"]

DECODING: dict[str, Any] = {"max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 20}
"""One greedy token and its top-20 alternatives: enough for all ten digits once the judge is trained."""


def template(name: str) -> PromptTemplate:
    """A Self-J template by name (:data:`TEMPLATES`)."""
    if name not in TEMPLATES:
        raise InputError(f"unknown Self-J template {name!r}; known: {', '.join(TEMPLATES)}")
    return PromptTemplate.from_text(TEMPLATES[name], source=f"<built-in {name}>")


def render(name: str, **values: str) -> str:
    """The text a completions-endpoint provider sends for template ``name`` filled with ``values`` (the
    trainer encodes exactly this, so judging and training see the same tokens)."""
    return "\n\n".join(m["content"] for m in template(name).fill(**values))


def self_j_format(path: str | Path) -> str | None:
    """The prompt format recorded in a checkpoint folder's ``config.json``, or None when it is not Self-J's."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return None
    try:
        entry = json.loads(config.read_text(encoding="utf-8")).get(SELF_J_CONFIG_KEY)
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    return str(entry["format"]) if isinstance(entry, dict) and "format" in entry else None


def is_self_j_checkpoint(path: str | Path) -> bool:
    """True when ``path`` is a folder saved by ``pasture train self_j``."""
    return Path(path).is_dir() and self_j_format(path) is not None


def load_self_j_judge(
    path: str | Path,
    *,
    kind: Literal["pairwise", "response"] = "pairwise",
    name: str | None = None,
    device: str = "cpu",
) -> LLMJudge:
    """The judge of a Self-J checkpoint: ``kind='response'`` grades one output (protocol ``expected_digit``),
    ``'pairwise'`` compares two by their grades (protocol ``single_score``)."""
    from pasture.providers import get_provider

    fmt = self_j_format(path)
    if fmt is None:
        raise InputError(
            f"not a Self-J checkpoint (its config.json has no {SELF_J_CONFIG_KEY!r} entry); "
            "make one with `pasture train self_j`",
            path=Path(path),
        )
    if fmt not in SELF_J_FORMATS:
        raise InputError(f"Self-J format {fmt!r} is unknown to this pasture; known: {', '.join(SELF_J_FORMATS)}")
    if kind not in ("pairwise", "response"):
        raise InputError(f"kind must be 'pairwise' or 'response', got {kind!r}")
    provider = get_provider("transformers", model=str(path), endpoint="completions", device=device)
    return LLMJudge(
        name=name or f"self-j-{Path(path).name}",
        provider=provider,
        template=template(SELF_J_FORMATS[fmt][0]),
        parser=ExpectedDigitParser(),
        decoding=DECODING,
        protocol="expected_digit" if kind == "response" else "single_score",
    )
