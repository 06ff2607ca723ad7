"""Expert-level synthetic alignment data, PiKa's recipe: personas → instructions → responses → judged filter.

Why: PiKa showed that a small set of persona-driven, knowledge-heavy instructions with judged responses
trains better than sets over ten times larger. The pipeline, each step stored and resumable:

1. **Instructions.** For each persona (a file: one per line, or rows with a ``persona`` field), the
   generator model is asked ``instructions_per_persona`` times (sampled, seeds differ) to write one
   question or task that needs that persona's specialist knowledge (:data:`INSTRUCTION_PROMPT`, written for
   pasture). Outputs go through :func:`pasture.generate.generate`, so they are in the store and a rerun
   asks only for what is missing.
2. **Cleaning and dedup.** Replies are stripped of labels and quotes; empty ones are counted and dropped.
   Then every instruction is checked against the eval set(s) it must never leak into
   (:class:`EvalIndex`): an exact duplicate after normalisation
   (:func:`pasture.metrics.textsim.normalize_text`), or a near duplicate whose character 5-shingle
   Jaccard similarity with an eval instruction is at least ``near_duplicate_threshold`` (0.5, see
   docs/data.md for how it was chosen and validated), is dropped with its reason and match. Repeats among
   the generated instructions are dropped the same way.
3. **Responses.** ``responses_per_instruction`` responses per kept instruction (again :func:`generate`).
4. **Judged filter.** Every response is judged on its own by a ``response_score`` judge through
   :func:`pasture.annotate.annotate_responses` (cached by key in the store, resumable). Failed judgments
   are counted; an instruction with any failed judgment is left out of both files (a rerun retries it).
5. **Files** (TRL formats): ``sft.jsonl`` holds, per instruction whose best response scores at least
   ``min_score``, ``{"messages": [user, assistant]}`` (TRL's conversational SFT format); ``preference.jsonl``
   holds, per instruction with two judged responses whose scores differ by at least ``min_gap``,
   ``{"prompt": [user], "chosen": [assistant], "rejected": [assistant]}`` (TRL's conversational
   preference format: best vs worst). Each row also carries ``persona`` and the scores.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pasture.annotate import EngineSettings
from pasture.annotate.responses import ResponseToJudge, annotate_responses
from pasture.errors import InputError
from pasture.generate import GenerationSettings, generate
from pasture.judges.base import Provider, ResponseJudge
from pasture.metrics.textsim import SHINGLE_K, normalize_text, shingles
from pasture.records import EvalSet, Instruction
from pasture.store import Store

NEAR_DUPLICATE_THRESHOLD = 0.5
"""Character 5-shingle Jaccard at or above which an instruction is a near duplicate (docs/data.md)."""

INSTRUCTION_PROMPT = (
    "You are {persona}.\n"
    "Write one question or task that someone with your expertise would ask an AI assistant: it should need "
    "specialist knowledge of your field to answer well, be specific and self-contained, and be answerable "
    "in a few paragraphs.\n"
    "Reply with the question or task only."
)
"""How the generator is asked for an instruction (written for pasture)."""

_LABEL_RE = re.compile(r"^\s*(?:\*\*)?(?:question|task|instruction|prompt)\s*(?:\d+)?\s*[:：](?:\*\*)?\s*", re.I)


# -- dedup ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DuplicateMatch:
    """Why a text was dropped: ``reason`` 'exact' or 'near', the eval text it matched, and the Jaccard."""

    reason: str
    match: str
    similarity: float


class EvalIndex:
    """Eval instructions indexed for exact (normalised) and near-duplicate (shingle Jaccard) lookups.

    Near duplicates are found through an inverted index from shingle to eval texts, so a lookup compares a
    text only with eval texts that share at least one shingle; the Jaccard computed is exact.
    """

    def __init__(self, texts: Iterable[str], *, threshold: float = NEAR_DUPLICATE_THRESHOLD, k: int = SHINGLE_K):
        if not 0 < threshold <= 1:
            raise InputError(f"near-duplicate threshold must be in (0, 1], got {threshold}", param="threshold")
        self.threshold = threshold
        self.k = k
        self.texts: list[str] = []
        self.sizes: list[int] = []
        self.exact: dict[str, int] = {}
        self.postings: dict[str, list[int]] = {}
        for text in texts:
            self.add(text)

    def add(self, text: str) -> None:
        i = len(self.texts)
        sh = shingles(text, self.k)
        self.texts.append(text)
        self.sizes.append(len(sh))
        self.exact.setdefault(normalize_text(text), i)
        for s in sh:
            self.postings.setdefault(s, []).append(i)

    def match(self, text: str) -> DuplicateMatch | None:
        """The eval text ``text`` duplicates (exact first, else the most similar at/above the threshold)."""
        norm = normalize_text(text)
        if norm in self.exact:
            return DuplicateMatch("exact", self.texts[self.exact[norm]], 1.0)
        sh = shingles(text, self.k)
        shared: Counter[int] = Counter()
        for s in sh:
            shared.update(self.postings.get(s, ()))
        best: tuple[float, int] | None = None
        for i, inter in shared.items():
            jaccard = inter / (len(sh) + self.sizes[i] - inter)
            if jaccard >= self.threshold and (best is None or jaccard > best[0]):
                best = (jaccard, i)
        return None if best is None else DuplicateMatch("near", self.texts[best[1]], best[0])


# -- personas, cleaning -------------------------------------------------------------------------------------


def read_personas(path: str | Path) -> list[str]:
    """Personas from a text file (one per non-empty line) or JSON/JSONL/CSV rows with a ``persona`` field."""
    path = Path(path)
    if not path.is_file():
        raise InputError("personas file not found", path=path)
    if path.suffix in {".txt", ".md", ""}:
        personas = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        from pasture.io import read_rows

        personas = []
        for i, row in enumerate(read_rows(path), start=1):
            value = row.get("persona")
            if not isinstance(value, str) or not value.strip():
                raise InputError("missing or empty persona", path=path, row=i, field="persona")
            personas.append(value.strip())
    if not personas:
        raise InputError("no personas in the file", path=path)
    seen: set[str] = set()
    for i, p in enumerate(personas, start=1):
        if p in seen:
            raise InputError(f"persona repeated: {p[:60]!r}", path=path, row=i)
        seen.add(p)
    return personas


def clean_instruction(reply: str) -> str:
    """A generated instruction without a leading label ('Question:') or wrapping quotes; '' when nothing is left."""
    text = _LABEL_RE.sub("", reply.strip()).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“”":
        text = text[1:-1].strip()
    if text.startswith("“") and text.endswith("”"):
        text = text[1:-1].strip()
    return text


# -- the pipeline -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthesisSettings:
    """What the pipeline asks for and keeps.

    Attributes
    ----------
    name:
        Prefix of the generator names in the store (``NAME-instructions``, ``NAME-responses``).
    instructions_per_persona:
        Instructions asked of the generator per persona (sampled; needs temperature > 0 when above 1).
    responses_per_instruction:
        Responses per kept instruction (2 or more for preference pairs).
    instruction_generation, response_generation:
        Sampling of the two generation steps (max tokens, temperature, seed).
    min_score:
        Lowest judge score (the judge's scale, 1-10 for ``response_score``) an SFT response may have.
    min_gap:
        Smallest score difference between chosen and rejected in a preference pair.
    near_duplicate_threshold:
        Shingle Jaccard at or above which an instruction duplicates an eval instruction.
    """

    name: str = "synth"
    instructions_per_persona: int = 2
    responses_per_instruction: int = 2
    instruction_generation: GenerationSettings = field(
        default_factory=lambda: GenerationSettings(max_tokens=96, temperature=0.9)
    )
    response_generation: GenerationSettings = field(
        default_factory=lambda: GenerationSettings(max_tokens=512, temperature=0.8)
    )
    min_score: float = 7.0
    min_gap: float = 1.0
    near_duplicate_threshold: float = NEAR_DUPLICATE_THRESHOLD

    def validate(self) -> None:
        if not self.name.strip():
            raise InputError("a synthesis run needs a name", param="name")
        if self.instructions_per_persona < 1 or self.responses_per_instruction < 1:
            raise InputError("instructions per persona and responses per instruction must be at least 1")
        if self.min_gap < 0:
            raise InputError(f"min gap must be >= 0, got {self.min_gap}", param="min_gap")
        for settings in (self.instruction_generation, self.response_generation):
            settings.validate()


@dataclass(frozen=True)
class SynthesisReport:
    """What :func:`synthesize` produced and dropped, step by step (every count is out of the step before)."""

    n_personas: int
    n_asked: int
    n_generation_failed: int
    n_empty: int
    dropped: tuple[tuple[str, DuplicateMatch], ...]
    n_kept_instructions: int
    n_responses: int
    n_judged_ok: int
    n_judge_failed: int
    sft: tuple[dict[str, Any], ...]
    preference: tuple[dict[str, Any], ...]
    n_below_min_score: int

    def summary(self) -> str:
        reasons = Counter(m.reason for _, m in self.dropped)
        return (
            f"{self.n_personas} personas → {self.n_asked} instructions asked ({self.n_generation_failed} failed, "
            f"{self.n_empty} empty), {reasons['exact']} exact and {reasons['near']} near duplicates dropped → "
            f"{self.n_kept_instructions} kept → {self.n_responses} responses, {self.n_judged_ok} judged "
            f"({self.n_judge_failed} judgments FAILED) → {len(self.sft)} SFT rows ({self.n_below_min_score} "
            f"below the minimum score), {len(self.preference)} preference pairs"
        )


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def synthesize(
    store: Store,
    personas: Sequence[str],
    generator: Provider,
    judge: ResponseJudge,
    *,
    eval_sets: Sequence[EvalSet] = (),
    settings: SynthesisSettings | None = None,
    engine: EngineSettings | None = None,
    progress: bool = True,
) -> SynthesisReport:
    """Run the recipe (module docstring) for ``personas`` with ``generator``, filtered by ``judge``.

    Parameters
    ----------
    store:
        Where generations and judgments are kept (and read, to resume).
    personas:
        Who writes the instructions (distinct texts).
    generator:
        Writes instructions and responses (any provider).
    judge:
        A single-response judge (protocol ``response_score`` or a programmatic response judge with scores).
    eval_sets:
        Instructions that training data must never hold (exactly or nearly).
    settings, engine:
        The pipeline's knobs (:class:`SynthesisSettings`) and the judging engine's.
    """
    settings = settings if settings is not None else SynthesisSettings()
    settings.validate()
    if not personas:
        raise InputError("no personas given", param="personas")
    if len(set(personas)) != len(personas):
        raise InputError("personas must be distinct", param="personas")
    prompts = EvalSet(
        name=f"{settings.name}-personas",
        instructions=tuple(Instruction(instruction=INSTRUCTION_PROMPT.format(persona=p), dataset=p) for p in personas),
    )
    asked = generate(
        store,
        prompts,
        generator,
        generator=f"{settings.name}-instructions",
        settings=replace(settings.instruction_generation, samples=settings.instructions_per_persona),
        progress=progress,
    )
    index = EvalIndex((t for es in eval_sets for t in es.texts()), threshold=settings.near_duplicate_threshold)
    seen = EvalIndex((), threshold=settings.near_duplicate_threshold)
    dropped: list[tuple[str, DuplicateMatch]] = []
    kept: list[Instruction] = []
    n_empty = 0
    for out in sorted(asked.outputs, key=lambda o: (personas.index(o.dataset or ""), o.sample_index)):
        text = clean_instruction(out.output)
        if not text:
            n_empty += 1
            continue
        hit = index.match(text) or seen.match(text)
        if hit is not None:
            dropped.append((text, hit))
            continue
        seen.add(text)
        kept.append(Instruction(instruction=text, dataset=out.dataset))
    report_base: dict[str, Any] = {
        "n_personas": len(personas),
        "n_asked": len(personas) * settings.instructions_per_persona,
        "n_generation_failed": asked.n_failed,
        "n_empty": n_empty,
        "dropped": tuple(dropped),
        "n_kept_instructions": len(kept),
    }
    if not kept:
        return SynthesisReport(**report_base, n_responses=0, n_judged_ok=0, n_judge_failed=0, sft=(),
                               preference=(), n_below_min_score=0)  # fmt: skip
    instructions = EvalSet(name=f"{settings.name}-instructions", instructions=tuple(kept))
    answered = generate(
        store,
        instructions,
        generator,
        generator=f"{settings.name}-responses",
        settings=replace(settings.response_generation, samples=settings.responses_per_instruction),
        progress=progress,
    )
    persona_of = {i.instruction: i.dataset for i in kept}
    items = [
        ResponseToJudge(instruction=o.instruction, output=o.output, generator=o.generator, dataset=o.dataset)
        for o in answered.outputs
    ]
    judged = annotate_responses(store, judge, items, settings=engine, progress=progress)
    by_pair = {(j.instruction, j.output): j for j in judged.judgments}
    scored: dict[str, list[tuple[float, str]]] = {}
    failed: set[str] = {o.instruction for o in answered.outputs if (o.instruction, o.output) not in by_pair}
    for o in answered.outputs:
        j = by_pair.get((o.instruction, o.output))
        if j is None or j.status != "ok" or j.score is None:
            failed.add(o.instruction)
            continue
        scored.setdefault(o.instruction, []).append((j.score, o.output))
    failed |= {i.instruction for i in kept if i.instruction not in scored}
    sft: list[dict[str, Any]] = []
    preference: list[dict[str, Any]] = []
    below = 0
    for item in kept:
        text = item.instruction
        if text in failed:
            continue
        ranked = sorted(scored[text], key=lambda s: -s[0])
        best_score, best = ranked[0]
        if best_score >= settings.min_score:
            sft.append({"messages": [_user(text), _assistant(best)], "persona": persona_of[text], "score": best_score})
        else:
            below += 1
        worst_score, worst = ranked[-1]
        if len(ranked) >= 2 and best_score - worst_score >= settings.min_gap and best != worst:
            preference.append(
                {
                    "prompt": [_user(text)],
                    "chosen": [_assistant(best)],
                    "rejected": [_assistant(worst)],
                    "persona": persona_of[text],
                    "score_chosen": best_score,
                    "score_rejected": worst_score,
                }
            )
    return SynthesisReport(
        **report_base,
        n_responses=len(answered.outputs),
        n_judged_ok=sum(len(v) for v in scored.values()),
        n_judge_failed=judged.n_parse_error + judged.n_error + judged.n_missing,
        sft=tuple(sft),
        preference=tuple(preference),
        n_below_min_score=below,
    )


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """One JSON object per line (UTF-8), written to a temporary file and moved into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)
    return path
