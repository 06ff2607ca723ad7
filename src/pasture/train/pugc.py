"""PUGC: preference data from unlabelled user-generated content, with the document as the judge's reference.

From documents (posts, answers, reviews: any text a person wrote), :func:`pugc_pairs` makes DPO pairs in five
steps, every one cached in the store and resumable:

1. **questions**: a question writer (protocol ``item_list``, template ``document_questions_v1``, parser
   ``question_list``: every sentence ending with "?") writes up to ``questions_per_document`` reader questions per
   document;
2. **filter**: a judge answers "does the document answer it?" (protocol ``yes_no``, template
   ``document_answers_v1``) for each (question, document); only 'yes' is kept. A question kept for two documents
   stays with the first (one reference per question);
3. **samples**: ``samples_per_question`` responses per kept question from the policy (temperature
   ``temperature``), stored as outputs of a generator named by the policy's digest and the sampling settings
   (:func:`pasture.train.stored.stored_or_generate`);
4. **scores**: each response graded alone with the document as the reference (protocol ``reference_grade``: a
   single-response judgment reading ``reference``);
5. **pairs**: per question, the best-graded response (chosen) against the worst (rejected); a question whose best
   and worst grades are equal, or whose grades failed, gives no pair (counted).

Steps 1, 2 and 4 are single-response judgments through the annotation engine (keyed by the judge's fingerprint and
the texts, stored, never asked twice, failed ones retried by the next run); step 3's samples are stored outputs.
A killed run resumes where it stopped; a rerun with the same inputs asks and samples nothing. The pairs are
written as TRL-format JSONL (``prompt``/``chosen``/``rejected``) and trained with the existing DPO method
(:func:`pugc_train`, ``pasture pugc --train-out``). Any judge serves each step (:meth:`PUGCJudges.from_judge`
puts one provider under the three protocols); programmatic judges serve the synthetic task
(:mod:`pasture.train.pugc_synthetic`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn
from transformers import PreTrainedTokenizerBase

from pasture.annotate.engine import EngineSettings
from pasture.annotate.responses import ResponseToJudge, annotate_responses
from pasture.errors import InputError
from pasture.judges.base import ResponseJudge
from pasture.judges.definitions import get_response_judge
from pasture.store import Store
from pasture.train.core import PreferencePair, model_digest
from pasture.train.registry import DPOSettings, PUGCSettings, TrainSettings
from pasture.train.stored import prompt_set, stored_or_generate


def read_documents(paths: Sequence[str | Path], *, column: str = "text") -> list[str]:
    """Documents from files: a ``.txt``/``.md`` file is one document; a table (JSONL, JSON, CSV, Parquet) gives
    one document per row from ``column``. Empty documents are an error naming the file and row."""
    from pasture.io.files import read_rows

    if not paths:
        raise InputError("give at least one documents file")
    docs: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.suffix.lower() in (".txt", ".md"):
            try:
                text = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"cannot read document: {exc}", path=path) from None
            if not text:
                raise InputError("empty document", path=path)
            docs.append(text)
            continue
        for i, row in enumerate(read_rows(path), start=1):
            value = row.get(column)
            if not isinstance(value, str) or not value.strip():
                raise InputError(
                    f"no text in column {column!r} (choose the column with --column)", path=path, row=i, field=column
                )
            docs.append(value.strip())
    return docs


def question_instruction(n: int) -> str:
    """The question writer's ``instruction``: how many questions to write."""
    return f"Write up to {n} questions."


@dataclass(frozen=True)
class PUGCJudges:
    """The three judges of a pass: question writer (``item_list``), filter (``yes_no``: does the document answer
    the question?) and grader (``reference_grade``: a response against the document as reference)."""

    questions: ResponseJudge
    answers: ResponseJudge
    grader: ResponseJudge

    @classmethod
    def from_judge(cls, name_or_path: str | Path, *, digit_grade: bool = False, **overrides: Any) -> PUGCJudges:
        """The provider (model, arguments, decoding) of judge ``name_or_path`` under the three protocols; the
        ``overrides`` go to every :func:`~pasture.judges.get_judge` call (e.g. ``base_url``). ``digit_grade``: the
        grader answers one digit 1-9 read from its token probabilities (template ``reference_grade_digit_v1``,
        parser ``score_logprob``), for small models that rarely write ``[[N]]`` after their explanation."""

        def step(protocol: str, template: str, parser: str, tag: str, **extra: Any) -> ResponseJudge:
            return get_response_judge(
                name_or_path,
                protocol=protocol,
                template=template,
                parser={"kind": parser},
                name=f"{Path(str(name_or_path)).stem}/{tag}",
                **extra,
                **overrides,
            )

        if digit_grade:
            decoding = {"max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 20}
            grader = step("reference_grade", "reference_grade_digit_v1", "score_logprob", "grade", decoding=decoding)
        else:
            grader = step("reference_grade", "reference_score_v1", "score", "grade")
        return cls(
            questions=step("item_list", "document_questions_v1", "question_list", "questions"),
            answers=step("yes_no", "document_answers_v1", "yes_no", "answers"),
            grader=grader,
        )


@dataclass(frozen=True)
class ScoredQuestion:
    """A kept question, its document and its graded samples (score None: the grade failed)."""

    question: str
    document: int
    samples: tuple[str, ...]
    scores: tuple[float | None, ...]


@dataclass
class PUGCResult:
    """What a pass made: the pairs, the kept questions with their graded samples, and the counts of each step
    (``asked``/``cached``/``failed`` judgments; how many questions were written, kept, gave a pair)."""

    pairs: list[PreferencePair]
    questions: list[ScoredQuestion]
    counts: dict[str, Any] = field(default_factory=dict)

    def write_pairs(self, path: str | Path) -> Path:
        """The pairs as TRL-format JSONL (``prompt``/``chosen``/``rejected``), what ``pasture train dpo`` reads."""
        from pasture.io.files import write_rows

        if not self.pairs:
            raise InputError("PUGC made no pair: nothing to write (see the counts of each step)")
        rows = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in self.pairs]
        return write_rows(rows, path)


def _step_counts(report: Any) -> dict[str, int]:
    return {
        "asked": report.n_judgments,
        "cached": report.n_cached,
        "failed": report.n_parse_error + report.n_error + report.n_missing,
    }


def best_worst(question: str, samples: Sequence[str], scores: Sequence[float | None]) -> PreferencePair | None:
    """The best-graded sample against the worst (first in sample order on equal grades); None when fewer than two
    samples are graded, or the best and worst grades or texts are equal."""
    graded = [(s, x) for s, x in zip(scores, samples, strict=True) if s is not None]
    if len(graded) < 2:
        return None
    best = max(range(len(graded)), key=lambda i: (graded[i][0], -i))
    worst = min(range(len(graded)), key=lambda i: (graded[i][0], i))
    if graded[best][0] == graded[worst][0] or graded[best][1] == graded[worst][1]:
        return None
    return PreferencePair(question, graded[best][1], graded[worst][1])


def policy_samples(
    store: Store,
    questions: Sequence[str],
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    settings: PUGCSettings,
) -> list[list[str]]:
    """``samples_per_question`` stored samples of each question (sampled when missing), by question."""

    @dataclass(frozen=True)
    class _Sampling:
        max_new_tokens: int
        temperature: float

    sampling = {
        "policy": model_digest(model, tokenizer),
        "t": settings.temperature,
        "n": settings.max_new_tokens,
        "seed": settings.seed,
    }
    tag = hashlib.sha256(json.dumps(sampling, sort_keys=True).encode()).hexdigest()[:12]
    es = prompt_set(f"pugc-questions-{tag}", list(questions))
    cfg = _Sampling(settings.max_new_tokens, settings.temperature)
    per_index = [
        stored_or_generate(store, es, f"pugc/{tag}/s{i}", model, tokenizer, cfg, settings.seed + 7919 * i, i)
        for i in range(settings.samples_per_question)
    ]
    return [list(s) for s in zip(*per_index, strict=True)]


def pugc_pairs(
    store: Store,
    documents: Sequence[str],
    judges: PUGCJudges,
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    settings: PUGCSettings | None = None,
    *,
    engine: EngineSettings | None = None,
    progress: bool = False,
) -> PUGCResult:
    """One PUGC pass from ``documents`` to best/worst pairs (module docstring)."""
    settings = settings or PUGCSettings()
    settings.validate()
    if not documents:
        raise InputError("PUGC needs at least one document")
    counts: dict[str, Any] = {"documents": len(documents), "settings": asdict(settings)}

    def ask(step: str, judge: ResponseJudge, items: list[ResponseToJudge]) -> Any:
        report = annotate_responses(store, judge, items, settings=engine, progress=progress)
        counts[step] = _step_counts(report)
        return report

    instruction = question_instruction(settings.questions_per_document)
    docs = list(dict.fromkeys(documents))
    written = ask(
        "questions",
        judges.questions,
        [ResponseToJudge(instruction=instruction, output=d, generator="document") for d in docs],
    )
    lists = {j.output: (j.critique or "").split("\n") for j in written.judgments if j.status == "ok"}
    candidates: list[tuple[str, int]] = []
    for i, d in enumerate(docs):
        candidates.extend((q, i) for q in lists.get(d, [])[: settings.questions_per_document] if q.strip())
    counts["questions_written"] = len(candidates)
    if not candidates:
        raise InputError(f"the question writer wrote no question for any of {len(docs)} documents")
    filtered = ask(
        "filter",
        judges.answers,
        [ResponseToJudge(instruction=q, output=docs[i], generator="question") for q, i in candidates],
    )
    answered = {(j.instruction, j.output) for j in filtered.judgments if j.status == "ok" and j.verdict == "yes"}
    kept: dict[str, int] = {}
    for q, i in candidates:
        if (q, docs[i]) in answered and q not in kept:
            kept[q] = i
    counts["questions_kept"] = len(kept)
    if not kept:
        raise InputError(f"the filter kept none of {len(candidates)} questions: no document answers its questions")
    questions = list(kept)
    samples = policy_samples(store, questions, model, tokenizer, settings)
    items = [
        ResponseToJudge(instruction=q, output=s, generator="policy", reference=docs[kept[q]])
        for q, ss in zip(questions, samples, strict=True)
        for s in ss
    ]
    graded = ask("grades", judges.grader, items)
    score = {(j.instruction, j.output): j.score for j in graded.judgments if j.status == "ok"}
    scored = [
        ScoredQuestion(q, kept[q], tuple(ss), tuple(score.get((q, s)) for s in ss))
        for q, ss in zip(questions, samples, strict=True)
    ]
    pairs = [p for sq in scored if (p := best_worst(sq.question, sq.samples, sq.scores)) is not None]
    counts["pairs"] = len(pairs)
    counts["no_pair"] = len(scored) - len(pairs)
    return PUGCResult(pairs, scored, counts)


def pugc_train(
    pairs_path: str | Path,
    output: str | Path,
    *,
    model: str = "smollm2",
    settings: DPOSettings | None = None,
    train: TrainSettings | None = None,
) -> Any:
    """DPO on a PUGC pairs file with the existing method (:func:`pasture.train.run.train_from_files`, method
    ``dpo``, its settings and the shared training settings as `pasture train dpo` takes them): the checkpoint and
    its ``run.json`` go to ``output``; returns the training stats."""
    from pasture.train.run import FileInputs, train_from_files

    return train_from_files(
        "dpo",
        output,
        FileInputs(model=model, pairs=Path(pairs_path)),
        settings or DPOSettings(),
        train or TrainSettings(),
    )
