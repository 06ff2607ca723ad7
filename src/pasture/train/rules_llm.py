"""AutoRule's extraction with a language model as the reasoner, over any judge/provider, cached in the store.

The programmatic reasoner (:class:`pasture.train.rules.PredicateReasoner`) picks rules from a fixed library; this
one writes them, as the paper's reasoning model does, in three steps (prompts written by the team,
:mod:`pasture.judges.method_protocols`):

1. **explain**: for each labelled pair, why the chosen response beats the rejected one (protocol
   ``preference_explanation``: ``output`` = chosen, ``subject`` = rejected);
2. **extract**: the explanation turned into candidate rules, one sentence each (protocol ``item_list``, template
   ``rule_extract_v1``, parser ``rule_list``: list items, or sentences starting "The answer");
3. **merge**: the distinct candidates merged into at most K rules (``item_list``, template ``rule_merge_v1``). When
   there are more candidates than fit one prompt (``merge_batch``), they are merged batch by batch and the merged
   lists merged again, until one list remains. A reply that still lists more than K rules is cut to its first K.

Every step is a single-response judgment through the annotation engine: keyed by the step judge's fingerprint and
the texts it saw, stored, reused by a rerun, retried when it failed; a killed extraction resumes where it stopped.
What did not work is counted and written into the rule file, never dropped silently: a pair whose explanation or
extraction failed contributes no candidate (``notes.steps``); a merge batch whose reply cannot be read passes its
candidates on unmerged to the next round; when the last merge cannot be read, the K candidates named by the most
pairs are kept and ``notes.final_merge`` says so.

A rule written by a model has no library predicate (``predicate`` None: verify it with a judge, e.g. protocol
``rule_check``); its ``support`` is the number of pairs whose candidates include its exact text (0 when the merge
reworded it), ``against`` and ``precision_lower`` are 0 (the model reasoner gives no evidence against a rule).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pasture.annotate.engine import EngineSettings
from pasture.annotate.responses import ResponseToJudge, annotate_responses
from pasture.errors import InputError
from pasture.judges.base import ResponseJudge
from pasture.judges.definitions import get_response_judge
from pasture.judges.method_protocols import list_items, normalize_item
from pasture.store import Store
from pasture.train.rules import LabelledPair, Rule, RuleSet

EXTRACT_INSTRUCTION = "Here is an explanation of why a reader preferred one answer to a request over another."
"""The ``instruction`` of every extraction step (fixed, so the key depends on the explanation only)."""

REASONER_VERSION = "1"
"""Bumped when the steps' logic (not their prompts: those are in the judges' fingerprints) changes."""


def merge_instruction(k: int) -> str:
    """The merge step's ``instruction``: how many rules to keep."""
    return f"Keep at most {k} rules."


@dataclass(frozen=True)
class LLMReasoner:
    """The three step judges of the model reasoner (all single-response judges)."""

    explainer: ResponseJudge
    extractor: ResponseJudge
    merger: ResponseJudge
    name: str

    @classmethod
    def from_judge(cls, name_or_path: str | Path, *, max_tokens: int | None = None, **overrides: Any) -> LLMReasoner:
        """The reasoner asking the provider (model, arguments, decoding) of judge ``name_or_path`` (a built-in
        name or a TOML file), under the reasoner's protocols and templates. ``overrides`` go to
        :func:`~pasture.judges.get_judge` (e.g. ``base_url``); ``max_tokens`` sets each step's reply budget."""
        decoding = {"max_tokens": max_tokens} if max_tokens is not None else {}

        def step(protocol: str, template: str, parser: str, tag: str) -> ResponseJudge:
            return get_response_judge(
                name_or_path,
                protocol=protocol,
                template=template,
                parser={"kind": parser},
                name=f"{Path(str(name_or_path)).stem}/{tag}",
                **({"decoding": decoding} if decoding else {}),
                **overrides,
            )

        return cls(
            explainer=step("preference_explanation", "preference_explanation_v1", "free_text", "explain"),
            extractor=step("item_list", "rule_extract_v1", "rule_list", "extract"),
            merger=step("item_list", "rule_merge_v1", "rule_list", "merge"),
            name=f"llm_reasoner({name_or_path})",
        )

    @property
    def digests(self) -> dict[str, str]:
        """Each step judge's fingerprint digest."""
        return {
            "explain": self.explainer.fingerprint.digest,
            "extract": self.extractor.fingerprint.digest,
            "merge": self.merger.fingerprint.digest,
        }

    @property
    def version(self) -> str:
        """A digest of the three step fingerprints and :data:`REASONER_VERSION`: two rule files with the same
        version came from the same prompts, model and decoding."""
        text = REASONER_VERSION + "|" + "|".join(f"{k}={v}" for k, v in sorted(self.digests.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class StepCounts:
    """How one step went: judgments asked, found in the store, failed (parse error, error, missing)."""

    asked: int = 0
    cached: int = 0
    failed: int = 0

    def add(self, report: Any) -> None:
        self.asked += report.n_judgments
        self.cached += report.n_cached
        self.failed += report.n_parse_error + report.n_error + report.n_missing


@dataclass
class LLMExtraction:
    """The rule set and how each step went."""

    rules: RuleSet
    steps: dict[str, StepCounts] = field(default_factory=dict)


def _texts(report: Any) -> dict[tuple[str, str, str | None], str]:
    return {(j.instruction, j.output, j.subject): j.critique or "" for j in report.judgments if j.status == "ok"}


def extract_rules_llm(
    store: Store,
    reasoner: LLMReasoner,
    pairs: Sequence[LabelledPair],
    *,
    k: int = 5,
    merge_batch: int = 20,
    source: str = "",
    settings: EngineSettings | None = None,
    progress: bool = False,
) -> LLMExtraction:
    """Explain, extract and merge (module docstring) into a :class:`RuleSet` of at most ``k`` rules."""
    if not pairs:
        raise InputError("rule extraction needs labelled pairs")
    if k < 1:
        raise InputError(f"a rule set keeps at least one rule (k >= 1), got {k}")
    if merge_batch < 2:
        raise InputError(f"merge_batch must be at least 2 (candidates per merge prompt), got {merge_batch}")
    steps = {s: StepCounts() for s in ("explain", "extract", "merge")}

    def ask(step: str, judge: ResponseJudge, items: list[ResponseToJudge]) -> dict[tuple[str, str, str | None], str]:
        report = annotate_responses(store, judge, items, settings=settings, progress=progress)
        steps[step].add(report)
        return _texts(report)

    explained = ask(
        "explain",
        reasoner.explainer,
        [ResponseToJudge(instruction=p.prompt, output=p.chosen, subject=p.rejected, generator="chosen") for p in pairs],
    )
    explanations = [explained.get((p.prompt, p.chosen, p.rejected)) for p in pairs]
    extract_items = [
        ResponseToJudge(instruction=EXTRACT_INSTRUCTION, output=e, generator="explanation")
        for e in dict.fromkeys(e for e in explanations if e)
    ]
    extracted = ask("extract", reasoner.extractor, extract_items) if extract_items else {}
    support: dict[str, int] = {}
    first_text: dict[str, str] = {}
    for e in explanations:
        if not e:
            continue
        rules_text = extracted.get((EXTRACT_INSTRUCTION, e, None))
        for item in dict.fromkeys(list_items("- " + rules_text.replace("\n", "\n- ")) if rules_text else []):
            key = normalize_item(item)
            support[key] = support.get(key, 0) + 1
            first_text.setdefault(key, item)
    if not support:
        raise InputError(
            f"the reasoner gave no usable rule for any of {len(pairs)} pairs "
            f"(failed: {steps['explain'].failed} explanations, {steps['extract'].failed} extractions); "
            "its replies are stored with their raw text"
        )
    ranked = sorted(support, key=lambda c: (-support[c], c))
    candidates = [first_text[c] for c in ranked]
    notes: dict[str, Any] = {
        "judges": reasoner.digests,
        "candidates": {first_text[c]: support[c] for c in ranked},
        "merge_rounds": 0,
        "merge_batches_failed": 0,
        "truncated_to_k": 0,
    }
    current = candidates
    final: list[str] | None = None
    while final is None:
        batches = [current[i : i + merge_batch] for i in range(0, len(current), merge_batch)]
        items = [
            ResponseToJudge(
                instruction=merge_instruction(k),
                output="\n".join(f"- {c}" for c in batch),
                generator="candidates",
            )
            for batch in batches
        ]
        merged = ask("merge", reasoner.merger, items)
        notes["merge_rounds"] += 1
        nxt: list[str] = []
        for batch, asked in zip(batches, items, strict=True):
            text = merged.get((asked.instruction, asked.output, None))
            if text is None:
                notes["merge_batches_failed"] += 1
                nxt.extend(batch)
            else:
                nxt.extend(text.split("\n"))
        nxt = list(dict.fromkeys(nxt))
        if len(batches) == 1:
            if merged.get((items[0].instruction, items[0].output, None)) is None:
                final = candidates[:k]
                notes["final_merge"] = "failed: kept the candidates named by the most pairs"
            else:
                final = nxt
                notes["final_merge"] = "ok"
        elif len(nxt) >= len(current):  # no batch reduced anything: merging again would not end
            final = candidates[:k]
            notes["final_merge"] = "no progress: kept the candidates named by the most pairs"
        else:
            current = nxt
    notes["truncated_to_k"] = max(0, len(final) - k)
    final = final[:k]
    rules = tuple(
        Rule(f"r{i + 1}", text, None, support.get(normalize_item(text), 0), 0, 0.0) for i, text in enumerate(final)
    )
    notes["steps"] = {s: vars(c) for s, c in steps.items()}
    notes["n_explained"] = sum(1 for e in explanations if e)
    ruleset = RuleSet(
        rules=rules,
        reasoner=reasoner.name,
        reasoner_version=reasoner.version,
        source=source,
        pair_keys=tuple(p.key for p in pairs),
        k=k,
        min_precision=0.0,
        notes=notes,
    )
    return LLMExtraction(ruleset, steps)


def alpacaeval_pairs(path: str | Path, n: int, *, seed: int = 0, max_chars: int | None = 1500) -> list[LabelledPair]:
    """``n`` labelled pairs from an AlpacaEval annotation file with texts (``instruction``, ``output_1``,
    ``output_2``, ``preference``): chosen = the output the annotator preferred; ties, failed rows and (with
    ``max_chars``) rows whose instruction and outputs together exceed ``max_chars`` characters are skipped (a
    small reasoner's context is short); the ``n`` are drawn at random with ``seed`` from what remains."""
    from pasture.io.files import read_rows

    p = Path(path)
    rows = read_rows(p)
    eligible: list[LabelledPair] = []
    for i, row in enumerate(rows, start=1):
        try:
            instruction, o1, o2 = str(row["instruction"]), str(row["output_1"]), str(row["output_2"])
            pref = row.get("preference")
        except KeyError as exc:
            raise InputError(
                f"row {i} has no {exc.args[0]!r}; want instruction/output_1/output_2/preference", path=p
            ) from None
        if pref is None or not isinstance(pref, (int, float)) or pref != pref or pref == 1.5 or not 1 <= pref <= 2:
            continue
        if max_chars is not None and len(instruction) + len(o1) + len(o2) > max_chars:
            continue
        if not o1.strip() or not o2.strip() or o1 == o2:
            continue
        chosen, rejected = (o2, o1) if pref > 1.5 else (o1, o2)
        eligible.append(LabelledPair(instruction, chosen, rejected))
    if len(eligible) < n:
        raise InputError(f"only {len(eligible)} usable pairs (of {len(rows)} rows) for n = {n}", path=p)
    return random.Random(seed).sample(eligible, n)
