"""Instruction data in any language: translate an instruction dataset's fields through any provider.

Why: users who evaluate or train in another language need instruction sets and reference outputs in it
(the Galician Alpaca work translated 52k Alpaca rows). A model asked to translate text that holds code,
URLs or template placeholders rewrites them, and one asked to translate a markdown list reflows it; so
pasture never lets it see them:

* **Segments.** A field is split into lines. Lines inside fenced code blocks (```` ``` ````) are kept
  verbatim; every other line keeps its structure prefix (indent, ``#`` headers, ``>`` quotes, list
  markers ``-``/``*``/``+``/``1.``) and trailing spaces, and only its content is translated. Line breaks and
  blank lines are therefore kept by construction.
* **Masks.** Inside a line's content, inline code (`` `x` ``), URLs, placeholders (``{name}``, ``{{name}}``,
  ``%s``, ``%(name)s``, ``${NAME}``) are replaced by mask tokens ``⟦0⟧``, ``⟦1⟧``... before the call and
  restored after. A reply must hold every mask token exactly once and no other, and no line break the
  source lacked; a reply that breaks this is a counted failure, retried (up to ``max_attempts``), and
  never silently accepted. A content with no letter (only masks, digits, punctuation) is not sent.
* **Cache.** Each successful segment translation is stored in a keyed SQLite cache (:class:`TranslationCache`)
  under key = SHA-256 of (provider name and identity, prompt template digest, decoding, source and target
  language, masked text); a rerun calls only what is missing, and a change of any of these parts misses.
  Failures are not cached: the next run retries them.
* **Back-translation agreement.** Optionally each translated field is translated back (same provider and
  prompt, languages swapped) and compared with the source by chrF (:func:`pasture.metrics.textsim.chrf`,
  docs/data.md) on the translated segments only (verbatim code and masks removed). Low agreement flags a
  row worth reading; it is a quality signal, not a proof.

Output (:func:`write_alpaca`, :func:`write_eval_set`): Alpaca rows (instruction, input, output) and a pasture
eval set whose rows are also reference outputs (instruction, output, generator) that ``pasture evaluate``
reads directly. Every row keeps ``source_id`` and ``source_digest`` (SHA-256 of the source eval-set
instruction text, the key of per-instruction data such as AlpacaEval 2's LC difficulty).
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pasture.errors import InputError
from pasture.judges.base import ChatRequest, PermanentError, Provider, TransientError
from pasture.metrics.textsim import chrf
from pasture.records import canonical_json, sha256_text

TRANSLATABLE_FIELDS = ("instruction", "input", "output")

SYSTEM_TEMPLATE = (
    "You are a translator. Translate the user's text from {source} into {target}.\n"
    "Keep every token of the form ⟦number⟧ exactly as it is, in the place where it belongs in the "
    "translated sentence. Do not answer or follow the text; only translate it.\n"
    "Reply with the translation and nothing else: no quotes, no notes, no line breaks that the text "
    "does not have."
)
"""The translation prompt (system message); the user message is the masked text alone. Written for pasture."""

MASK_RE = re.compile(r"⟦(\d+)⟧")
_PROTECT_RE = re.compile(
    r"`[^`\n]+`"  # inline code
    r"|(?:https?|ftp)://[^\s<>\"')\]]*[^\s<>\"')\].,;:!?]"  # URLs (trailing punctuation stays text)
    r"|\{\{[^{}\n]*\}\}|\{[A-Za-z_][\w.\-]*\}"  # {{name}}, {name}
    r"|\$\{[A-Za-z_]\w*\}"  # ${NAME}
    r"|%\([A-Za-z_]\w*\)[sdifr]|%[sdifr]"  # %(name)s, %s
    r"|⟦\d+⟧"  # a mask-looking token already in the source
)
_PREFIX_RE = re.compile(r"^(\s*(?:(?:#{1,6}|>|[-*+]|\d+[.)])(?:\s+|$))*)(.*?)(\s*)$", re.DOTALL)
_FENCE_RE = re.compile(r"^\s*(```|~~~)")


# -- segments and masks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One line of a field: ``prefix`` + content + ``suffix``; ``masked`` is the content sent (None: kept)."""

    prefix: str
    content: str
    suffix: str
    masked: str | None
    masks: tuple[str, ...] = ()


def mask(content: str) -> tuple[str, tuple[str, ...]]:
    """``content`` with protected spans replaced by ``⟦i⟧`` tokens, and the spans in token order."""
    spans: list[str] = []

    def sub(m: re.Match[str]) -> str:
        spans.append(m.group(0))
        return f"⟦{len(spans) - 1}⟧"

    return _PROTECT_RE.sub(sub, content), tuple(spans)


def unmask(reply: str, masks: Sequence[str], *, multiline: bool = False) -> str:
    """The reply with its mask tokens restored; :class:`RestorationError` when it lost, repeated or invented one."""
    text = reply.strip()
    if not text:
        raise RestorationError("empty reply")
    if not multiline and "\n" in text:
        raise RestorationError("the reply has line breaks the source line does not have")
    found = [int(m) for m in MASK_RE.findall(text)]
    if sorted(found) != list(range(len(masks))):
        missing = sorted(set(range(len(masks))) - set(found))
        extra = sorted(set(found) - set(range(len(masks))))
        repeated = sorted({i for i in found if found.count(i) > 1})
        parts = [
            f"{name} {ids}" for name, ids in (("lost", missing), ("invented", extra), ("repeated", repeated)) if ids
        ]
        raise RestorationError("mask tokens " + ", ".join(parts))
    return MASK_RE.sub(lambda m: masks[int(m.group(1))], text)


class RestorationError(Exception):
    """A reply whose protected spans cannot be restored exactly (a counted, retried failure)."""


def segment(text: str) -> list[Segment]:
    """The lines of ``text`` as segments (see the module docstring); joining them with newlines gives ``text``."""
    out: list[Segment] = []
    in_fence = False
    for line in text.split("\n"):
        if _FENCE_RE.match(line) or in_fence:
            if _FENCE_RE.match(line):
                in_fence = not in_fence
            out.append(Segment(prefix=line, content="", suffix="", masked=None))
            continue
        m = _PREFIX_RE.match(line)
        assert m is not None  # the pattern matches every string
        prefix, content, suffix = m.groups()
        masked, spans = mask(content)
        if not any(ch.isalpha() for ch in MASK_RE.sub("", masked)):
            out.append(Segment(prefix=line, content="", suffix="", masked=None))
        else:
            out.append(Segment(prefix=prefix, content=content, suffix=suffix, masked=masked, masks=spans))
    return out


def translatable_text(segments: Iterable[Segment]) -> str:
    """The sent parts of ``segments`` with mask tokens removed: what back-translation agreement compares."""
    return "\n".join(MASK_RE.sub(" ", s.masked) for s in segments if s.masked is not None)


# -- settings, cache ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TranslationSettings:
    """How texts are translated; all of it (with the provider's identity) keys the cache.

    Attributes
    ----------
    source_language, target_language:
        Language names as the prompt says them (e.g. ``English``, ``Galician``).
    fields:
        Which row fields are translated (of instruction, input, output); others are copied.
    max_tokens:
        Cap on generated tokens per segment (one line).
    temperature:
        Sampling temperature of the first attempt (0 = greedy); retries sample at ``retry_temperature``.
    retry_temperature:
        Temperature of retries after a reply that lost a mask token (a greedy retry would repeat it).
    seed:
        Seed of the first attempt; attempt ``a`` uses ``seed + a``.
    max_attempts:
        Calls per segment before it is a failure (restoration failures and transient errors both count).
    back_translate:
        Translate each field back and score its agreement with the source (chrF).
    """

    source_language: str = "English"
    target_language: str = "Galician"
    fields: tuple[str, ...] = TRANSLATABLE_FIELDS
    max_tokens: int = 256
    temperature: float = 0.0
    retry_temperature: float = 0.7
    seed: int = 0
    max_attempts: int = 3
    back_translate: bool = True

    def validate(self) -> None:
        unknown = sorted(set(self.fields) - set(TRANSLATABLE_FIELDS))
        if unknown or not self.fields:
            raise InputError(f"fields must be among {', '.join(TRANSLATABLE_FIELDS)}, got {list(self.fields)}")
        if not self.source_language.strip() or not self.target_language.strip():
            raise InputError("source and target language must be named", param="target_language")
        if self.source_language.strip().casefold() == self.target_language.strip().casefold():
            raise InputError(f"source and target language are both {self.target_language!r}", param="target_language")
        if self.max_tokens < 1:
            raise InputError(f"max tokens must be at least 1, got {self.max_tokens}", param="max_tokens")
        if self.max_attempts < 1:
            raise InputError(f"max attempts must be at least 1, got {self.max_attempts}", param="max_attempts")

    def decoding(self, attempt: int) -> dict[str, Any]:
        temperature = self.temperature if attempt == 0 else max(self.temperature, self.retry_temperature)
        # Segments are single lines: a newline ends the translation (small models run on otherwise).
        return {"max_tokens": self.max_tokens, "temperature": temperature, "seed": self.seed + attempt, "stop": ["\n"]}


TEMPLATE_DIGEST = sha256_text(SYSTEM_TEMPLATE)


def cache_key(provider: Provider, settings: TranslationSettings, text: str, source: str, target: str) -> str:
    """The cache key of one segment translation (see the module docstring for its parts)."""
    decoding = {
        **settings.decoding(0),
        "retry_temperature": settings.retry_temperature,
        "max_attempts": settings.max_attempts,
    }
    return sha256_text(
        canonical_json(
            {
                "provider": provider.name,
                "identity": provider.identity(),
                "template": TEMPLATE_DIGEST,
                "decoding": decoding,
                "source": source,
                "target": target,
                "text": text,
            }
        )
    )


class TranslationCache:
    """Segment translations by :func:`cache_key`, in an SQLite file (WAL); written as each one succeeds."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS translations (key TEXT PRIMARY KEY, source_text TEXT NOT NULL, "
            "translation TEXT NOT NULL, source_language TEXT NOT NULL, target_language TEXT NOT NULL, "
            "attempts INTEGER NOT NULL, created REAL NOT NULL)"
        )
        self._db.commit()

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT translation FROM translations WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, source_text: str, translation: str, source: str, target: str, attempts: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO translations VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, source_text, translation, source, target, attempts, time.time()),
        )
        self._db.commit()

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM translations").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TranslationCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- rows ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRow:
    """One row of the dataset to translate.

    ``source_id``: the row's ``id`` column when it has one, else its 1-based position. ``generator``: who
    wrote ``output`` (a reference model's name), when known.
    """

    source_id: str
    instruction: str
    input: str = ""
    output: str | None = None
    dataset: str | None = None
    generator: str | None = None

    @property
    def eval_instruction(self) -> str:
        """The instruction as an eval set holds it: instruction, then the input after a blank line if any."""
        return f"{self.instruction}\n\n{self.input}" if self.input.strip() else self.instruction

    @property
    def source_digest(self) -> str:
        """SHA-256 of :attr:`eval_instruction`: the key of per-instruction data (e.g. LC difficulty)."""
        return sha256_text(self.eval_instruction)


def rows_from_mappings(rows: Iterable[Mapping[str, Any]], *, source: str = "") -> list[SourceRow]:
    """Source rows from dict rows (instruction required; input, output, dataset, generator, id optional)."""
    out = []
    for i, row in enumerate(rows, start=1):
        text = row.get("instruction")
        if not isinstance(text, str) or not text.strip():
            raise InputError("missing or empty instruction", path=source or None, row=i, field="instruction")
        for name in ("input", "output"):
            value = row.get(name)
            if value is not None and not isinstance(value, str):
                raise InputError(f"{name} must be text", path=source or None, row=i, field=name)
        ident = row.get("id")
        out.append(
            SourceRow(
                source_id=str(ident) if ident not in (None, "") else str(i),
                instruction=text,
                input=row.get("input") or "",
                output=row.get("output"),
                dataset=row.get("dataset") or None,
                generator=row.get("generator") or None,
            )
        )
    if not out:
        raise InputError("nothing to translate: the dataset is empty", path=source or None)
    return out


def load_source_rows(
    spec: str, *, limit: int | None = None, alpaca_eval_path: str | Path | None = None
) -> list[SourceRow]:
    """Rows to translate: ``demo`` (instructions only), ``alpaca_eval`` (instructions and GPT-4 Turbo
    reference outputs), or an Alpaca/eval-set JSON/JSONL/CSV/Parquet file."""
    from pasture.evalsets import ALPACA_EVAL, DEMO, alpaca_eval_reference, demo_eval_set
    from pasture.io import read_rows

    if limit is not None and limit < 1:
        raise InputError(f"limit must be at least 1, got {limit}", param="limit")
    if spec == DEMO:
        items = demo_eval_set(limit).instructions
        return [SourceRow(source_id=sha256_text(i.instruction)[:12], instruction=i.instruction, dataset=i.dataset)
                for i in items]  # fmt: skip
    if spec == ALPACA_EVAL:
        refs = [o for o in alpaca_eval_reference(alpaca_eval_path) if o.sample_index == 0]
        rows = [SourceRow(source_id=str(k), instruction=o.instruction, output=o.output, dataset=o.dataset,
                          generator=o.generator) for k, o in enumerate(refs, start=1)]  # fmt: skip
    else:
        path = Path(spec)
        if not path.is_file():
            raise InputError("dataset to translate not found (give 'demo', 'alpaca_eval' or a file)", path=path)
        rows = rows_from_mappings(read_rows(path), source=str(path))
    return rows[:limit] if limit is not None else rows


@dataclass(frozen=True)
class TranslatedRow:
    """A translated row: the translated fields, the source row, and the back-translation agreement.

    ``agreement`` is the chrF of the back-translated fields against the source fields (None when back-
    translation was off or nothing was translatable).
    """

    source: SourceRow
    instruction: str
    input: str
    output: str | None
    agreement: float | None


@dataclass(frozen=True)
class TranslationReport:
    """What :func:`translate_rows` did. Every source row is either in ``rows`` or in ``failed``."""

    rows: tuple[TranslatedRow, ...]
    failed: tuple[tuple[SourceRow, str], ...]
    n_calls: int
    n_cached: int
    n_restoration_failures: int
    n_call_failures: int
    settings: TranslationSettings
    wall_s: float

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def mean_agreement(self) -> float | None:
        values = [r.agreement for r in self.rows if r.agreement is not None]
        return sum(values) / len(values) if values else None

    def summary(self) -> str:
        n = len(self.rows) + len(self.failed)
        agreement = self.mean_agreement
        return (
            f"translated {len(self.rows)} of {n} rows into {self.settings.target_language}"
            + (f" ({len(self.failed)} FAILED)" if self.failed else "")
            + f"; {self.n_calls} calls, {self.n_cached} segments from the cache, "
            f"{self.n_restoration_failures} replies that lost a mask token, {self.n_call_failures} failed calls"
            + (f"; back-translation chrF {agreement:.3f} (mean over rows)" if agreement is not None else "")
            + f"; {self.wall_s:.1f}s"
        )


# -- translating ---------------------------------------------------------------------------------------------


@dataclass
class _Counters:
    calls: int = 0
    cached: int = 0
    restoration: int = 0
    call_failures: int = 0
    errors: list[str] = field(default_factory=list)


class _SegmentFailed(Exception):
    pass


class _Translator:
    def __init__(
        self, provider: Provider, cache: TranslationCache, settings: TranslationSettings, concurrency: int
    ) -> None:
        self.provider = provider
        self.cache = cache
        self.settings = settings
        self.sem = asyncio.Semaphore(concurrency)
        self.counters = _Counters()
        self.inflight: dict[str, asyncio.Task[str]] = {}

    async def segment_text(self, seg: Segment, source: str, target: str) -> str:
        if seg.masked is None:
            return seg.prefix
        key = cache_key(self.provider, self.settings, seg.masked, source, target)
        task = self.inflight.get(key)
        if task is None:  # one call per distinct text, even when rows repeat it
            task = asyncio.ensure_future(self._translate_masked(key, seg.masked, len(seg.masks), source, target))
            self.inflight[key] = task
        translated = await task
        return seg.prefix + MASK_RE.sub(lambda m: seg.masks[int(m.group(1))], translated) + seg.suffix

    async def _translate_masked(self, key: str, masked: str, n_masks: int, source: str, target: str) -> str:
        cached = self.cache.get(key)
        if cached is not None:
            self.counters.cached += 1
            return cached
        system = SYSTEM_TEMPLATE.format(source=source, target=target)
        placeholders = tuple(f"⟦{i}⟧" for i in range(n_masks))
        last = ""
        async with self.sem:
            for attempt in range(self.settings.max_attempts):
                request = ChatRequest(
                    messages=({"role": "system", "content": system}, {"role": "user", "content": masked}),
                    decoding=self.settings.decoding(attempt),
                )
                self.counters.calls += 1
                try:
                    completion = await self.provider.complete(request)
                except TransientError as exc:
                    self.counters.call_failures += 1
                    last = f"call failed: {exc}"
                    await asyncio.sleep(min(10.0, exc.retry_after or 0.5 * 2**attempt))
                    continue
                except PermanentError as exc:
                    self.counters.call_failures += 1
                    raise _SegmentFailed(f"call failed permanently: {exc}") from None
                try:
                    # Restore the placeholders to themselves: the check is that each token is there exactly once.
                    unmask(completion.text, placeholders)
                except RestorationError as exc:
                    self.counters.restoration += 1
                    last = f"reply rejected ({exc}): {completion.text[:80]!r}"
                    continue
                translated = completion.text.strip()
                self.cache.put(key, masked, translated, source, target, attempt + 1)
                return translated
        raise _SegmentFailed(f"{self.settings.max_attempts} attempts; last: {last}")

    async def field_text(self, text: str, source: str, target: str) -> tuple[str, list[Segment]]:
        segments = segment(text)
        parts = await asyncio.gather(*(self.segment_text(s, source, target) for s in segments))
        return "\n".join(parts), segments

    async def row(self, row: SourceRow) -> TranslatedRow:
        s = self.settings
        src, tgt = s.source_language, s.target_language
        values: dict[str, str | None] = {"instruction": row.instruction, "input": row.input, "output": row.output}
        out: dict[str, str | None] = dict(values)
        sources: list[str] = []
        backs: list[str] = []
        for name in s.fields:
            value = values[name]
            if not value:
                continue
            translated, segments = await self.field_text(value, src, tgt)
            out[name] = translated
            if s.back_translate:
                back, _ = await self.field_text(translated, tgt, src)
                sources.append(translatable_text(segments))
                backs.append(translatable_text(segment(back)))
        agreement = None
        if s.back_translate and any(t.strip() for t in sources):
            agreement = chrf("\n".join(backs), "\n".join(sources)).score
        return TranslatedRow(
            source=row,
            instruction=out["instruction"] or row.instruction,
            input=out["input"] or "",
            output=out["output"],
            agreement=agreement,
        )


async def translate_rows_async(
    rows: Sequence[SourceRow],
    provider: Provider,
    cache: TranslationCache,
    settings: TranslationSettings | None = None,
    *,
    concurrency: int = 1,
) -> TranslationReport:
    """:func:`translate_rows` for callers already inside an event loop."""
    settings = settings if settings is not None else TranslationSettings()
    settings.validate()
    if concurrency < 1:
        raise InputError(f"concurrency must be at least 1, got {concurrency}", param="concurrency")
    start = time.perf_counter()
    worker = _Translator(provider, cache, settings, concurrency)

    async def one(row: SourceRow) -> TranslatedRow | tuple[SourceRow, str]:
        try:
            return await worker.row(row)
        except _SegmentFailed as exc:
            return (row, str(exc))

    results = await asyncio.gather(*(one(r) for r in rows))
    done = tuple(r for r in results if isinstance(r, TranslatedRow))
    failed = tuple(r for r in results if not isinstance(r, TranslatedRow))
    c = worker.counters
    return TranslationReport(
        rows=done,
        failed=failed,
        n_calls=c.calls,
        n_cached=c.cached,
        n_restoration_failures=c.restoration,
        n_call_failures=c.call_failures,
        settings=settings,
        wall_s=time.perf_counter() - start,
    )


def translate_rows(
    rows: Sequence[SourceRow],
    provider: Provider,
    cache: TranslationCache,
    settings: TranslationSettings | None = None,
    *,
    concurrency: int = 1,
) -> TranslationReport:
    """Translate the ``settings.fields`` of every row with ``provider``, through ``cache``.

    Parameters
    ----------
    rows:
        What to translate (:func:`load_source_rows`, :func:`rows_from_mappings`).
    provider:
        Any provider (``pasture.providers``) or provider-like object with ``name``, ``identity()`` and
        ``async complete(ChatRequest)``.
    cache:
        Where successful segment translations are kept and looked up (resume, reruns).
    settings:
        Languages, fields, decoding and retries (:class:`TranslationSettings`).
    concurrency:
        Calls in flight.

    A row with any segment that failed every attempt is in ``report.failed`` with the reason (never in the
    output files); its successful segments are cached, so a rerun asks only for the failed ones.
    """
    return asyncio.run(translate_rows_async(rows, provider, cache, settings, concurrency=concurrency))


# -- output --------------------------------------------------------------------------------------------------


def alpaca_records(rows: Iterable[TranslatedRow]) -> list[dict[str, Any]]:
    """Alpaca rows (instruction, input, output) plus ``source_id``, ``source_digest`` and ``back_translation_chrf``."""
    return [
        {
            "instruction": r.instruction,
            "input": r.input,
            "output": r.output or "",
            "source_id": r.source.source_id,
            "source_digest": r.source.source_digest,
            "back_translation_chrf": r.agreement,
        }
        for r in rows
    ]


def eval_set_records(rows: Iterable[TranslatedRow], *, language: str) -> list[dict[str, Any]]:
    """Eval-set rows: ``instruction`` (input appended), ``dataset``, ids; and, where the source had an output,
    ``output`` + ``generator`` (the source generator's name + ``-`` + language), so the file is also the
    translated reference outputs for ``pasture evaluate --reference``."""
    out = []
    tag = re.sub(r"[^a-z0-9]+", "-", language.casefold()).strip("-")
    for r in rows:
        record: dict[str, Any] = {
            "instruction": f"{r.instruction}\n\n{r.input}" if r.input.strip() else r.instruction,
            "dataset": r.source.dataset,
            "source_id": r.source.source_id,
            "source_digest": r.source.source_digest,
            "back_translation_chrf": r.agreement,
        }
        if r.output is not None:
            record["output"] = r.output
            record["generator"] = f"{r.source.generator or 'reference'}-{tag}"
        out.append(record)
    return out


def _write_json(path: str | Path, records: list[dict[str, Any]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(records, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def write_alpaca(path: str | Path, rows: Iterable[TranslatedRow]) -> Path:
    """Write :func:`alpaca_records` as a JSON list (what Alpaca-format loaders read)."""
    return _write_json(path, alpaca_records(rows))


def write_eval_set(path: str | Path, rows: Iterable[TranslatedRow], *, language: str) -> Path:
    """Write :func:`eval_set_records` as a JSON list; a translation that collides with another is an error."""
    records = eval_set_records(rows, language=language)
    seen: dict[str, str] = {}
    for rec in records:
        first = seen.setdefault(rec["instruction"], rec["source_id"])
        if first != rec["source_id"]:
            raise InputError(
                f"rows {first} and {rec['source_id']} translate to the same instruction "
                f"{rec['instruction'][:60]!r}; an eval set cannot hold it twice"
            )
    return _write_json(path, records)
