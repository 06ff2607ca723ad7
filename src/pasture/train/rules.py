"""AutoRule's rule rewards: rules extracted from explained preferences, verified per response, rewarded as a fraction.

**Extraction.** A *reasoner* explains each labelled pair (why the chosen response beats the rejected one); the
candidate rules are what the explanations name; they are merged (one rule per distinct statement) and the at most K
best kept. The programmatic reasoner of the synthetic task (:class:`PredicateReasoner`) explains a pair by the
predicates of a fixed library (:data:`SYNTHETIC_PREDICATES`) that the chosen response satisfies and the rejected one
does not. It sees the pairs' labels and nothing else: never the oracle, never its definition. The noisy labels
(flipped with p = 0.25 upstream) are all it learns from; a predicate is kept when it explains more pairs than it
contradicts, with confidence (:func:`extract_rules`: the Wilson lower bound of its *precision*,
support / (support + against), must exceed ``min_precision``; ranked by that bound).

**The rule file** (:class:`RuleSet`, JSON, reviewable by hand): the rules (statement, predicate name when it has one,
support, against, precision bound) and their provenance: the reasoner's name and version, the number of pairs, the
keys of the pairs it saw (:func:`pasture.simulate.noise.example_key` of prompt, chosen, rejected), where they came
from, K and the threshold.

**Verification.** One yes/no per rule per response. :func:`rule_reward` verifies in memory with the predicates (for
training loops); :func:`verify_rules` verifies through the annotation engine as single-response judgments
(:class:`~pasture.records.ResponseJudgment`, ``subject`` = the rule's full statement), cached in the store and
resumable, with any single-response judge that reads ``subject`` (the programmatic one here:
:func:`programmatic_rule_judge`).

**Reward** = fraction of the rule set satisfied, in [0, 1]; a failed check counts as not satisfied and is counted
(``n_failed``), never dropped from the denominator.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pasture.errors import InputError
from pasture.simulate.noise import example_key
from pasture.train.synthetic import parse_prompt

RULES_FORMAT = "pasture.rules/1"
"""The rule file's format tag (checked on load)."""

Check = Callable[[str, str], bool]
"""A verifier: (prompt, response) → whether the response satisfies the rule."""


@dataclass(frozen=True)
class Predicate:
    """A checkable property of a response: its name, the rule's statement in words, and its verifier."""

    name: str
    statement: str
    check: Check


def _ctx(prompt: str) -> str:
    return parse_prompt(prompt)[0]


def _key(prompt: str) -> str:
    return parse_prompt(prompt)[1]


SYNTHETIC_PREDICATES: tuple[Predicate, ...] = (
    Predicate("same_length", "The answer has exactly as many characters as the context.",
              lambda p, r: len(r) == len(_ctx(p))),
    Predicate("not_longer", "The answer is no longer than the context.", lambda p, r: len(r) <= len(_ctx(p))),
    Predicate("not_shorter", "The answer is no shorter than the context.", lambda p, r: len(r) >= len(_ctx(p))),
    Predicate("longer", "The answer is longer than the context.", lambda p, r: len(r) > len(_ctx(p))),
    Predicate("long", "The answer has at least 8 characters.", lambda p, r: len(r) >= 8),
    Predicate("nonempty", "The answer is not empty.", lambda p, r: len(r) > 0),
    Predicate("digits_only", "The answer contains only digits.", lambda p, r: r.isdigit()),
    Predicate("has_keyword", "The answer contains the keyword digit.", lambda p, r: _key(p) in r),
    Predicate("keyword_half", "At least half of the answer's characters are the keyword digit.",
              lambda p, r: len(r) > 0 and 2 * r.count(_key(p)) >= len(r)),
    Predicate("all_keyword", "Every character of the answer is the keyword digit.",
              lambda p, r: len(r) > 0 and set(r) == {_key(p)}),
    Predicate("starts_with_keyword", "The answer starts with the keyword digit.", lambda p, r: r[:1] == _key(p)),
    Predicate("ends_with_keyword", "The answer ends with the keyword digit.", lambda p, r: r[-1:] == _key(p)),
    Predicate("copies_context", "The answer repeats the context unchanged.", lambda p, r: r == _ctx(p)),
    Predicate("no_repeats", "No character appears twice in a row in the answer.",
              lambda p, r: all(a != b for a, b in itertools.pairwise(r))),
)  # fmt: skip
"""The fixed library the synthetic task's reasoner picks from: properties anyone can check from the prompt's visible
parts (its context digits and keyword letter) and the answer; good, bad and irrelevant ones alike."""


def predicate_library(predicates: Sequence[Predicate] = SYNTHETIC_PREDICATES) -> dict[str, Predicate]:
    """Predicates by name (a duplicate name is an error)."""
    out: dict[str, Predicate] = {}
    for pr in predicates:
        if pr.name in out:
            raise InputError(f"predicate {pr.name!r} is defined twice")
        out[pr.name] = pr
    return out


@dataclass(frozen=True)
class LabelledPair:
    """A preference pair as the reasoner sees it: prompt, chosen, rejected (its label is the order)."""

    prompt: str
    chosen: str
    rejected: str

    @property
    def key(self) -> str:
        return example_key(self.prompt, self.chosen, self.rejected)


class PredicateReasoner:
    """Explains a pair by the library predicates the chosen response satisfies and the rejected one does not."""

    version = "1"

    def __init__(self, predicates: Sequence[Predicate] = SYNTHETIC_PREDICATES) -> None:
        self.library = predicate_library(predicates)
        self.name = f"predicate_reasoner({len(self.library)} predicates)"

    def explain(self, pair: LabelledPair) -> list[str]:
        """Names of the predicates that separate chosen from rejected in the chosen's favour."""
        return [
            n
            for n, pr in self.library.items()
            if pr.check(pair.prompt, pair.chosen) and not pr.check(pair.prompt, pair.rejected)
        ]


@dataclass(frozen=True)
class Rule:
    """One rule of a set: its id, statement (what a verifier checks), library predicate (None for free text), and
    the evidence: pairs it explains (support), pairs whose reverse it explains (against), the Wilson lower bound of
    support / (support + against)."""

    id: str
    statement: str
    predicate: str | None
    support: int
    against: int
    precision_lower: float


@dataclass(frozen=True)
class RuleSet:
    """A reviewable rule set with provenance (module docstring)."""

    rules: tuple[Rule, ...]
    reasoner: str
    reasoner_version: str
    source: str
    pair_keys: tuple[str, ...]
    k: int
    min_precision: float
    format: str = RULES_FORMAT
    notes: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        data["provenance"] = {
            "reasoner": data.pop("reasoner"),
            "reasoner_version": data.pop("reasoner_version"),
            "source": data.pop("source"),
            "n_pairs": len(self.pair_keys),
            "pair_keys": data.pop("pair_keys"),
            "k": data.pop("k"),
            "min_precision": data.pop("min_precision"),
        }
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    def write(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(self.to_json(), encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path) -> RuleSet:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            if data.get("format") != RULES_FORMAT:
                raise InputError(f"not a pasture rule file (format {data.get('format')!r}, want {RULES_FORMAT!r})")
            prov = data["provenance"]
            return cls(
                rules=tuple(Rule(**r) for r in data["rules"]),
                reasoner=prov["reasoner"],
                reasoner_version=prov["reasoner_version"],
                source=prov["source"],
                pair_keys=tuple(prov["pair_keys"]),
                k=int(prov["k"]),
                min_precision=float(prov["min_precision"]),
                notes=dict(data.get("notes", {})),
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"invalid rule file ({type(exc).__name__}: {exc}); write it with RuleSet.write") from None

    @property
    def statements(self) -> list[str]:
        return [r.statement for r in self.rules]


def wilson_lower(successes: int, n: int, z: float = 1.96) -> float:
    """Lower end of the Wilson score interval for a proportion (0 when n = 0)."""
    if n == 0:
        return 0.0
    ph = successes / n
    centre = ph + z * z / (2 * n)
    margin = z * math.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n))
    return (centre - margin) / (1 + z * z / n)


def extract_rules(
    pairs: Sequence[LabelledPair],
    reasoner: PredicateReasoner,
    *,
    k: int = 5,
    min_precision: float = 0.5,
    source: str = "",
) -> RuleSet:
    """Explain every pair (and its reverse), merge the explanations into rules, keep at most ``k``.

    A candidate's support is the number of pairs whose explanation names it, its ``against`` the number of pairs
    whose *reversed* explanation names it (it would have argued for the rejected response). Kept: Wilson lower bound
    of support / (support + against) above ``min_precision``, ranked by that bound (ties: more support first).
    """
    if not pairs:
        raise InputError("rule extraction needs labelled pairs")
    if k < 1:
        raise InputError(f"a rule set keeps at least one rule (k >= 1), got {k}")
    support: dict[str, int] = {}
    against: dict[str, int] = {}
    for pair in pairs:
        for name in reasoner.explain(pair):
            support[name] = support.get(name, 0) + 1
        for name in reasoner.explain(LabelledPair(pair.prompt, pair.rejected, pair.chosen)):
            against[name] = against.get(name, 0) + 1
    scored = []
    for name in sorted(set(support) | set(against)):
        s, a = support.get(name, 0), against.get(name, 0)
        scored.append((wilson_lower(s, s + a), s, a, name))
    scored.sort(key=lambda t: (-t[0], -t[1], t[3]))
    kept = [t for t in scored if t[0] > min_precision][:k]
    rules = tuple(
        Rule(f"r{i + 1}", reasoner.library[name].statement, name, s, a, round(lb, 4))
        for i, (lb, s, a, name) in enumerate(kept)
    )
    return RuleSet(
        rules=rules,
        reasoner=reasoner.name,
        reasoner_version=reasoner.version,
        source=source,
        pair_keys=tuple(p.key for p in pairs),
        k=k,
        min_precision=min_precision,
        notes={"candidates": {name: [s, a, round(lb, 4)] for lb, s, a, name in scored}},
    )


def rule_checks(rules: RuleSet, library: dict[str, Predicate] | None = None) -> list[Check]:
    """The programmatic verifier of every rule (each must name a library predicate)."""
    lib = library if library is not None else predicate_library()
    out = []
    for r in rules.rules:
        if r.predicate is None or r.predicate not in lib:
            raise InputError(f"rule {r.id} ({r.statement!r}) has no programmatic verifier; verify it with a judge")
        out.append(lib[r.predicate].check)
    return out


def rule_reward(
    rules: RuleSet, library: dict[str, Predicate] | None = None
) -> Callable[[Sequence[str], Sequence[str]], list[float]]:
    """Score function: the fraction of ``rules`` each (prompt, response) satisfies (programmatic verifiers)."""
    checks = rule_checks(rules, library)
    if not checks:
        raise InputError("the rule set is empty; a rule reward needs at least one rule")

    def score(prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        return [sum(c(p, r) for c in checks) / len(checks) for p, r in zip(prompts, responses, strict=True)]

    return score


def programmatic_rule_judge(library: dict[str, Predicate] | None = None) -> Any:
    """A single-response judge that answers a rule check (``subject`` = the rule's statement) yes/no with the
    library predicate of that statement; a statement outside the library is a parse error (counted, not dropped)."""
    from pasture.judges import ProgrammaticResponseJudge
    from pasture.judges.base import ResponseReading, ResponseRequest

    lib = library if library is not None else predicate_library()
    by_statement = {p.statement: p for p in lib.values()}

    def check_rule(req: ResponseRequest) -> ResponseReading | None:
        pr = by_statement.get(req.subject or "")
        if pr is None:
            return None
        return ResponseReading(verdict="yes" if pr.check(req.instruction, req.output) else "no")

    version = RULES_FORMAT + "|" + "|".join(sorted(by_statement))
    return ProgrammaticResponseJudge(check_rule, name="synthetic_rule_check", version=version, reads=("subject",))


@dataclass(frozen=True)
class RuleVerification:
    """Rule checks of a batch of responses through the store: the reward per response (fraction of rules answered
    'yes' over all rules, failed checks counting as 'no'), and how many checks were asked, cached, and failed."""

    rewards: tuple[float, ...]
    n_checks: int
    n_cached: int
    n_failed: int


def verify_rules(
    store: Any,
    judge: Any,
    rules: RuleSet,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    generator: str = "policy",
    settings: Any = None,
) -> RuleVerification:
    """One yes/no judgment per rule per response by ``judge`` (a single-response judge reading ``subject``),
    stored and reused by key (a rerun asks nothing twice); returns the rule reward per response."""
    from pasture.annotate.responses import ResponseToJudge, annotate_responses

    if len(prompts) != len(responses):
        raise InputError("prompts and responses differ in length")
    if not rules.rules:
        raise InputError("the rule set is empty; nothing to verify")
    items = [
        ResponseToJudge(instruction=p, output=r, generator=generator, subject=rule.statement)
        for p, r in zip(prompts, responses, strict=True)
        for rule in rules.rules
    ]
    report = annotate_responses(store, judge, items, settings=settings, progress=False)
    verdicts = {(j.instruction, j.output, j.subject): j.verdict for j in report.judgments if j.status == "ok"}
    rewards = []
    for p, r in zip(prompts, responses, strict=True):
        yes = sum(verdicts.get((p, r, rule.statement)) == "yes" for rule in rules.rules)
        rewards.append(yes / len(rules.rules))
    n_failed = report.n_parse_error + report.n_error + report.n_missing
    return RuleVerification(tuple(rewards), report.n_judgments, report.n_cached, n_failed)


def extract_rules_from_file(
    pairs_path: str | Path, *, k: int = 5, min_precision: float = 0.5, max_pairs: int | None = None
) -> RuleSet:
    """:func:`extract_rules` with the synthetic task's :class:`PredicateReasoner` over a TRL-format pairs JSONL
    (``prompt``/``chosen``/``rejected``), the first ``max_pairs`` of them when given (``pasture rules extract``)."""
    from pasture.train.models import read_preference_pairs

    pairs = read_preference_pairs(pairs_path)[:max_pairs]
    for i, p in enumerate(pairs):
        try:
            parse_prompt(p.prompt)
        except InputError as exc:
            raise InputError(
                f"{pairs_path}: pair {i + 1}: the programmatic reasoner only explains synthetic-task prompts ({exc})"
            ) from None
    return extract_rules(
        [LabelledPair(p.prompt, p.chosen, p.rejected) for p in pairs],
        PredicateReasoner(),
        k=k,
        min_precision=min_precision,
        source=str(pairs_path),
    )
