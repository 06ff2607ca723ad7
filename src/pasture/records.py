"""Typed records that every part of pasture passes around and stores.

Conventions (see docs/conventions.md):

* A pairwise judgment compares ``output_1`` (the **reference** slot) with ``output_2`` (the **model** slot).
  ``preference`` is by slot: 1 = reference wins, 2 = model wins, 1.5 = tie, values in between are soft.
* Which output the judge saw first is ``shown_first`` (1 or 2), never folded into the slots.
* A model output is identified by (eval-set digest, instruction, generator, sample_index).
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

KEY_SCHEMA_VERSION = 1
"""Bumped whenever the judgment key's definition changes, so old keys can never collide with new ones."""


def sha256_text(text: str) -> str:
    """Hex SHA-256 of UTF-8 text: the content address used for texts, templates and data digests."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
"""One encoder for :func:`canonical_json`: ``json.dumps`` with these options builds a new encoder per call,
which was two thirds of the cost of every judgment key. Same class, same options: the same bytes."""


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace, so equal values always hash equally."""
    return _CANONICAL.encode(value)


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Instruction(_Record):
    """One prompt of an eval set."""

    instruction: str = Field(description="The prompt text, exactly as given to the model and the judge.")
    dataset: str | None = Field(
        default=None, description="Source subset or category (AlpacaEval's `dataset` column), for breakdowns."
    )


class EvalSet(_Record):
    """An ordered, duplicate-free list of instructions with a content digest.

    The digest depends only on the set of instruction texts (sorted), so reordering a file does not make
    it a different eval set, while adding or editing any instruction does.
    """

    name: str = Field(description="Human-readable name, e.g. 'alpaca_eval_2' or a file stem.")
    instructions: tuple[Instruction, ...] = Field(description="Instructions in file order.")

    @property
    def digest(self) -> str:
        """SHA-256 over the sorted instruction texts (first 16 hex digits are shown to users)."""
        return eval_set_digest(i.instruction for i in self.instructions)

    def texts(self) -> list[str]:
        return [i.instruction for i in self.instructions]

    def __len__(self) -> int:
        return len(self.instructions)


def eval_set_digest(instructions: Any) -> str:
    """Digest of an eval set from its instruction texts; order-independent, duplicates not allowed upstream."""
    return sha256_text(canonical_json(sorted(set(instructions))))


class ModelOutput(_Record):
    """One generation of one model (``generator``) for one instruction."""

    instruction: str = Field(description="The instruction text this output answers.")
    output: str = Field(description="The model's answer, untrusted text.")
    generator: str = Field(description="Name of the model or setting that produced the output.")
    sample_index: int = Field(default=0, ge=0, description="Index among several samples for one instruction.")
    dataset: str | None = Field(default=None, description="Category of the instruction, if known.")
    prompt_tokens: int | None = Field(default=None, description="Tokens in the prompt, when the generator said.")
    completion_tokens: int | None = Field(default=None, description="Tokens generated, when known.")
    latency_s: float | None = Field(default=None, description="Wall time of the generation call, seconds.")


class JudgeFingerprint(_Record):
    """Everything that can change a judge's verdict; its digest is part of every judgment key.

    Two judges with equal fingerprints are interchangeable: pasture reuses their stored judgments.
    """

    provider: str = Field(description="Provider registry name, e.g. 'openai', 'anthropic', 'llama_cpp'.")
    model: str = Field(description="Model id as the provider knows it.")
    weights_digest: str | None = Field(
        default=None, description="Digest of local weights (GGUF/checkpoint); None for hosted models."
    )
    template_digest: str = Field(description="SHA-256 of the prompt template text.")
    parser: str = Field(description="Name of the completion parser.")
    parser_version: int = Field(default=1, description="Bumped when the parser's behaviour changes.")
    decoding: dict[str, Any] = Field(
        default_factory=dict, description="Decoding parameters (temperature, max_tokens, logprobs, ...)."
    )
    protocol: str = Field(default="pairwise", description="Judging protocol name, e.g. 'pairwise_logprob'.")
    key_schema: int = Field(default=KEY_SCHEMA_VERSION, description="Version of the judgment key definition.")

    @model_validator(mode="after")
    def _imported_only_by_name(self) -> JudgeFingerprint:
        # The imported-judge marker and provider go together, so a configured judge (whose template digest is
        # a SHA-256 of real template bytes) can never produce an imported judge's fingerprint.
        if (self.provider == IMPORTED_JUDGE_PROVIDER) != (self.template_digest == IMPORTED_TEMPLATE_MARKER):
            raise ValueError(
                f"provider {IMPORTED_JUDGE_PROVIDER!r} and template digest {IMPORTED_TEMPLATE_MARKER!r} are reserved "
                "for judges imported by name (imported_judge_fingerprint)"
            )
        return self

    @property
    def digest(self) -> str:
        return sha256_text(canonical_json(self.model_dump(mode="json")))

    @property
    def imported(self) -> bool:
        """True for a judge known only by the annotator name in imported files (template unknown)."""
        return self.provider == IMPORTED_JUDGE_PROVIDER


IMPORTED_JUDGE_PROVIDER = "imported"
"""Provider of a judge known only by name from imported annotation files; no provider is registered under it."""

IMPORTED_TEMPLATE_MARKER = "unknown:imported-by-name"
"""Template digest of an imported judge: not a SHA-256, so no template's digest can equal it."""


def imported_judge_fingerprint(annotator: str) -> JudgeFingerprint:
    """The fingerprint of an annotator pasture has no definition for: "imported by name, template unknown".

    Why: AlpacaEval files of other annotators (``alpaca_eval_gpt4``, ``chatgpt_fn``, ...) carry verdicts
    worth scoring, but nothing says which prompt, parser or decoding produced them. Such a judge is kept
    apart from every other judge (its own digest, one per annotator name) and never answers a configured
    judge's question: a configured judge's fingerprint cannot carry the reserved provider and template marker
    (the validator above refuses the mix).
    """
    name = annotator.strip()
    if not name:
        raise ValueError("an imported judge needs the annotator's name")
    return JudgeFingerprint(
        provider=IMPORTED_JUDGE_PROVIDER,
        model=name,
        template_digest=IMPORTED_TEMPLATE_MARKER,
        parser="unknown",
        parser_version=0,
        protocol="imported",
    )


OFFICIAL_ALPACA_EVAL_TEMPLATE_DIGEST = "784227e6dc2832fc08c43d2c8ea3a308e7523780187a1aaad2f85e30bac85f62"
"""SHA-256 of the official ``alpaca_eval_clf.txt`` template (its bytes are never shipped, only this digest)."""

OFFICIAL_JUDGE_ALIASES: dict[str, JudgeFingerprint] = {
    "weighted_alpaca_eval_gpt4_turbo": JudgeFingerprint(
        provider="openai",
        model="gpt-4-1106-preview",
        template_digest=OFFICIAL_ALPACA_EVAL_TEMPLATE_DIGEST,
        parser="logprob_mM",
        decoding={"max_tokens": 1, "temperature": 1, "logprobs": True, "top_logprobs": 5},
        protocol="pairwise_logprob",
    ),
}
"""Documented fingerprints for AlpacaEval's official judges, used when their annotation files are imported.

A judge that a user configures identically (same provider, model, template bytes, parser and decoding)
gets the same digest and therefore reuses the imported judgments instead of calling a model.
"""


def annotator_fingerprint(annotator: str) -> JudgeFingerprint:
    """The judge behind an AlpacaEval ``annotator`` name: its documented alias, else an imported judge."""
    alias = OFFICIAL_JUDGE_ALIASES.get(annotator)
    return alias if alias is not None else imported_judge_fingerprint(annotator)


JudgmentStatus = Literal["ok", "parse_error", "error"]

Position = Literal["alpaca_eval", "both", "reference_first", "model_first"]
"""Which order(s) a pair is shown in: AlpacaEval's per-instruction draw (``pasture.position``), both orders
(two judgments per pair, for position-bias analysis), or always the reference / the model first."""


def judgment_key(
    judge_digest: str,
    instruction: str,
    output_1: str,
    output_2: str,
    shown_first: int,
    replicate: int = 0,
    annotator: str | None = None,
) -> str:
    """Content address of a judgment: everything that can change the verdict, and nothing else.

    ``annotator`` names an independent annotator (a pool member that samples, docs/simulate.md): it enters
    the key only when given, so two independent copies of one judge never share a verdict while every key
    without one (deterministic judges, all keys made before it existed) stays what it was.
    """
    fields: dict[str, Any] = {
        "schema": KEY_SCHEMA_VERSION,
        "judge": judge_digest,
        "instruction": instruction,
        "output_1": output_1,
        "output_2": output_2,
        "shown_first": shown_first,
        "replicate": replicate,
    }
    if annotator is not None:
        fields["annotator"] = annotator
    return sha256_text(canonical_json(fields))


class Judgment(_Record):
    """One judge call comparing a reference output (slot 1) with a model output (slot 2)."""

    judge_digest: str = Field(description="Digest of the JudgeFingerprint that produced this judgment.")
    judge_name: str = Field(description="Human-readable judge name at the time of judging.")
    instruction: str = Field(description="The instruction both outputs answer.")
    output_1: str = Field(description="Reference (baseline) output.")
    generator_1: str = Field(description="Generator of output_1.")
    output_2: str = Field(description="Model output under evaluation.")
    generator_2: str = Field(description="Generator of output_2.")
    shown_first: Literal[1, 2] = Field(description="Slot whose output the judge saw first.")
    replicate: int = Field(default=0, ge=0, description="Replicate index for repeated judging of one pair.")
    annotator: str | None = Field(
        default=None,
        description="Independent annotator whose verdict this is (a sampling pool member); None when any "
        "identically configured judge may share it. Part of the key only when set.",
    )
    dataset: str | None = Field(default=None, description="Category of the instruction.")
    status: JudgmentStatus = Field(
        default="ok", description="'ok', 'parse_error' (reply unparsable) or 'error' (call failed)."
    )
    preference: float | None = Field(
        default=None, description="1 = reference wins .. 2 = model wins; None unless status is 'ok'."
    )
    raw_completion: str | None = Field(default=None, description="The judge's raw reply (text or JSON).")
    prompt_tokens: int | None = Field(default=None, description="Prompt tokens billed.")
    completion_tokens: int | None = Field(default=None, description="Completion tokens billed.")
    cost_usd: float | None = Field(default=None, description="Price of the call in US dollars, if known.")
    latency_s: float | None = Field(default=None, description="Wall time of the call in seconds.")
    error: str | None = Field(default=None, description="What went wrong, for status != 'ok'.")
    attempts: int = Field(default=1, ge=0, description="Calls made to obtain this record.")
    created_at: datetime = Field(default_factory=utcnow, description="When the judgment was recorded (UTC).")

    @field_validator("preference")
    @classmethod
    def _check_preference(cls, v: float | None) -> float | None:
        if v is not None and (math.isnan(v) or not 1.0 <= v <= 2.0):
            raise ValueError(f"preference must be in [1, 2], got {v}")
        return v

    @property
    def key(self) -> str:
        return judgment_key(
            self.judge_digest,
            self.instruction,
            self.output_1,
            self.output_2,
            self.shown_first,
            self.replicate,
            self.annotator,
        )


RESPONSE_KEY_SCHEMA = "response/1"
"""Schema tag of single-response judgment keys. A string, while pairwise keys carry the integer
``KEY_SCHEMA_VERSION``, and the two payloads have different fields: the two kinds of key can never collide.
Bumped (``response/2``) whenever the single-response key's definition changes."""

ResponseLabel = Literal["good", "bad", "yes", "no"]
"""A single-response verdict: 'good'/'bad' (a critique's conclusion) or 'yes'/'no' (a rule check)."""


def response_judgment_key(
    judge_digest: str,
    instruction: str,
    output: str,
    *,
    reference: str | None = None,
    subject: str | None = None,
    replicate: int = 0,
    annotator: str | None = None,
) -> str:
    """Content address of a judgment of ONE response: everything that can change the verdict, nothing else.

    ``reference`` (a reference answer) and ``subject`` (what the response is checked against, e.g. a rule's
    text) are in the key because they are in the prompt; the engine sets them to None for a judge that does
    not read them, so an unused reference never splits the cache. Generator, dataset and sample index are
    provenance, not part of the question, and stay out.
    """
    return sha256_text(
        canonical_json(
            {
                "schema": RESPONSE_KEY_SCHEMA,
                "judge": judge_digest,
                "instruction": instruction,
                "output": output,
                "reference": reference,
                "subject": subject,
                "replicate": replicate,
                "annotator": annotator,
            }
        )
    )


class ResponseJudgment(_Record):
    """One judge call about ONE output of one instruction: a score, a critique, a rule check, ...

    Which of ``score``, ``verdict`` and ``critique`` are set depends on the judge's protocol
    (docs/judges.md): ``critique`` gives critique + verdict good/bad, ``response_score`` a score, a rule
    check a verdict yes/no. All three are None unless ``status`` is 'ok'.
    """

    judge_digest: str = Field(description="Digest of the JudgeFingerprint that produced this judgment.")
    judge_name: str = Field(description="Human-readable judge name at the time of judging.")
    instruction: str = Field(description="The instruction the output answers.")
    output: str = Field(description="The judged output, untrusted text.")
    generator: str = Field(description="Who wrote the output (provenance, not part of the key).")
    reference: str | None = Field(
        default=None, description="Reference answer shown to the judge (reference-guided scoring); in the key."
    )
    subject: str | None = Field(
        default=None,
        description="What the output is checked against beyond the instruction, e.g. a rule's full text "
        "(its exact text, since it enters the key); None for protocols that check nothing named.",
    )
    replicate: int = Field(default=0, ge=0, description="Replicate index for repeated judging of one output.")
    annotator: str | None = Field(
        default=None, description="Independent annotator whose verdict this is; None when any equal judge shares it."
    )
    dataset: str | None = Field(default=None, description="Category of the instruction (provenance).")
    status: JudgmentStatus = Field(
        default="ok", description="'ok', 'parse_error' (reply unparsable) or 'error' (call failed)."
    )
    score: float | None = Field(default=None, description="A grade on the protocol's scale; None unless given.")
    verdict: ResponseLabel | None = Field(
        default=None, description="'good'/'bad' (critique) or 'yes'/'no' (rule check); None unless given."
    )
    critique: str | None = Field(
        default=None,
        description="The judge's written judgment: what is wrong with the output, or that nothing is.",
    )
    raw_completion: str | None = Field(default=None, description="The judge's raw reply (text or JSON).")
    prompt_tokens: int | None = Field(default=None, description="Prompt tokens billed.")
    completion_tokens: int | None = Field(default=None, description="Completion tokens billed.")
    cost_usd: float | None = Field(default=None, description="Price of the call in US dollars, if known.")
    latency_s: float | None = Field(default=None, description="Wall time of the call in seconds.")
    error: str | None = Field(default=None, description="What went wrong, for status != 'ok'.")
    attempts: int = Field(default=1, ge=0, description="Calls made to obtain this record.")
    created_at: datetime = Field(default_factory=utcnow, description="When the judgment was recorded (UTC).")

    @field_validator("score")
    @classmethod
    def _check_score(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError(f"score must be a finite number, got {v}")
        return v

    @model_validator(mode="after")
    def _check_outcome(self) -> ResponseJudgment:
        if self.status == "ok" and self.score is None and self.verdict is None:
            raise ValueError("an 'ok' single-response judgment needs a score or a verdict")
        if self.status != "ok" and (self.score is not None or self.verdict is not None):
            raise ValueError(f"a judgment with status {self.status!r} carries no score or verdict")
        return self

    @property
    def key(self) -> str:
        return response_judgment_key(
            self.judge_digest,
            self.instruction,
            self.output,
            reference=self.reference,
            subject=self.subject,
            replicate=self.replicate,
            annotator=self.annotator,
        )


class RunManifest(_Record):
    """Where a number came from: enough to reproduce it."""

    pasture_version: str
    created_at: datetime = Field(default_factory=utcnow)
    eval_set_digest: str | None = None
    reference_digest: str | None = Field(default=None, description="Digest of the reference outputs.")
    judge_digest: str | None = None
    judge_name: str | None = None
    seeds: dict[str, int] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(default_factory=dict, description="Named inputs (files, digests) used.")
    notes: tuple[str, ...] = Field(default=(), description="Caveats the user must see (fallbacks, estimates).")


class RunRecord(_Record):
    """One recorded run in the store: what was computed (``result``) on which board, and its manifest.

    Boards are keyed by (eval set, reference outputs, judge) digests; runs that belong to no board (e.g. a
    generator's settings) leave ``reference_digest`` and ``judge_digest`` empty.
    """

    id: int = Field(description="Store row id; later runs have larger ids.")
    eval_set_digest: str
    reference_digest: str = Field(description="Digest of the reference outputs, '' when not on a board.")
    judge_digest: str = Field(description="Judge fingerprint digest, '' when not on a board.")
    generator: str = Field(description="The model (or generator) the run is about.")
    kind: str = Field(description="'evaluate', 'import', 'generate', 'gamed', ...")
    result: dict[str, Any] = Field(default_factory=dict, description="What the run computed (kind-specific).")
    manifest: RunManifest
    created_at: datetime


class WinRateResult(_Record):
    """AlpacaEval 2 leaderboard columns for one model against the reference; see docs/metrics.md."""

    generator: str
    win_rate: float = Field(description="100 x mean(preference - 1) over scored pairs.")
    standard_error: float = Field(description="100 x standard error of the mean of (preference - 1).")
    n_wins: int = Field(description="Scored pairs with preference > 1.5.")
    n_wins_base: int = Field(description="Scored pairs with preference < 1.5.")
    n_draws: int = Field(description="Scored pairs with preference == 1.5.")
    n_total: int = Field(description="n_wins + n_wins_base + n_draws (scored pairs).")
    discrete_win_rate: float = Field(description="100 x (n_wins + n_draws / 2) / n_total.")
    avg_length: int = Field(description="Mean character length of the model's outputs over scored pairs.")
    n_failed: int = Field(default=0, description="Judgments that errored or could not be parsed (not scored).")
