"""Prompt templates: text with ``{placeholder}`` fields and optional chat-turn markers, filled in one pass.

Why one pass: model outputs are untrusted text. Filling placeholders one after another (as AlpacaEval
does with ``str.replace``) lets an instruction that contains ``{output_1}`` pull the other output into
itself. Here every placeholder of the *template* is located first and all are substituted at once, so
``{output_2}`` inside an output stays literal.

Turn markers follow the ChatML convention that AlpacaEval's template files use::

    <|im_start|>system
    ...system text...
    <|im_end|>
    <|im_start|>user
    ...user text with {instruction}, {output_1}, {output_2}...
    <|im_end|>

The template is split into turns *before* filling, so an output that contains ``<|im_start|>`` cannot add
a turn. Each turn's filled text is stripped of surrounding whitespace, as AlpacaEval does. A template
without markers is a single user turn. The template digest is the SHA-256 of the template text exactly as
written (for a file: its bytes decoded as UTF-8).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pasture.errors import InputError
from pasture.records import sha256_text

TURN_START = "<|im_start|>"
TURN_END = "<|im_end|>"
KNOWN_FIELDS = frozenset({"instruction", "output_1", "output_2", "output", "reference", "subject", "pairs"})
"""Placeholder names pasture fills. Other ``{...}`` text (JSON braces, ``{model_identifier}``) stays literal."""

_PLACEHOLDER = re.compile(r"\{(" + "|".join(sorted(KNOWN_FIELDS)) + r")\}")
_ROLES = frozenset({"system", "user", "assistant"})


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt template split into chat turns.

    ``text`` is the template as written (its SHA-256 is the fingerprint's ``template_digest``);
    ``turns`` are (role, text-with-placeholders) pairs parsed from it.
    """

    text: str
    turns: tuple[tuple[str, str], ...]
    source: str = "<built-in>"

    @classmethod
    def from_text(cls, text: str, *, source: str = "<built-in>") -> PromptTemplate:
        """Parse ``text``; raises :class:`InputError` when its turn markers are malformed."""
        return cls(text=text, turns=_split_turns(text, source), source=source)

    @classmethod
    def from_path(cls, path: str | Path) -> PromptTemplate:
        """Load a template file (third-party files are read at run time, never copied into pasture)."""
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read template: {exc.strerror or exc}", path=p) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("template is not UTF-8 text", path=p) from None
        return cls.from_text(text, source=str(p))

    @property
    def digest(self) -> str:
        """SHA-256 of the template text: part of the judge fingerprint."""
        return sha256_text(self.text)

    @property
    def fields(self) -> frozenset[str]:
        """Placeholder names that occur in the template."""
        return frozenset(m.group(1) for _, body in self.turns for m in _PLACEHOLDER.finditer(body))

    def require(self, *names: str) -> PromptTemplate:
        """Check that the template has the placeholders a protocol fills; returns self."""
        missing = [n for n in names if n not in self.fields]
        if missing:
            raise InputError(
                f"template lacks placeholder(s) {', '.join('{' + n + '}' for n in missing)}", path=self.source
            )
        return self

    def fill(self, **values: str) -> tuple[dict[str, str], ...]:
        """Chat messages with every placeholder replaced in one pass; unknown values raise ``KeyError``."""
        messages = []
        for role, body in self.turns:
            filled = _PLACEHOLDER.sub(lambda m: values[m.group(1)], body)
            messages.append({"role": role, "content": filled.strip()})
        return tuple(messages)


def _split_turns(text: str, source: str) -> tuple[tuple[str, str], ...]:
    if TURN_START not in text:
        if TURN_END in text:
            raise InputError(f"template has {TURN_END} without {TURN_START}", path=source)
        return (("user", text),)
    head, *chunks = text.split(TURN_START)
    if head.strip():
        raise InputError(f"template has text before the first {TURN_START}", path=source)
    turns = []
    for i, chunk in enumerate(chunks, start=1):
        header, sep, rest = chunk.partition("\n")
        role = header.strip()
        if not sep or role not in _ROLES:
            raise InputError(f"turn {i} has role {role!r}; expected one of {sorted(_ROLES)}", path=source)
        body, end, tail = rest.partition(TURN_END)
        if not end:
            raise InputError(f"turn {i} ({role}) is not closed by {TURN_END}", path=source)
        if tail.strip():
            raise InputError(f"text after {TURN_END} of turn {i} ({role})", path=source)
        turns.append((role, body))
    return tuple(turns)
