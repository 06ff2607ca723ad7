"""AutoRule's rules on the synthetic task: the reasoner, extraction, the rule file, the reward, store verification."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pasture.errors import InputError
from pasture.train.rules import (
    SYNTHETIC_PREDICATES,
    LabelledPair,
    PredicateReasoner,
    Rule,
    RuleSet,
    extract_rules,
    programmatic_rule_judge,
    rule_reward,
    verify_rules,
    wilson_lower,
)
from pasture.train.synthetic import label_pairs, make_prompts, oracle_score


def test_reasoner_explains_by_separating_predicates() -> None:
    r = PredicateReasoner()
    # keyword a = 0; chosen "0000" (all keyword, same length) vs rejected "123456" (longer, no keyword)
    names = set(r.explain(LabelledPair("1234+a=", "0000", "123456")))
    assert {"same_length", "not_longer", "has_keyword", "keyword_half", "all_keyword", "starts_with_keyword"} <= names
    assert "longer" not in names and "digits_only" not in names  # both are digits; the rejected one is longer
    # reversed: "123456" is longer and has no repeated neighbours; "0000" has both lengths' other properties
    assert set(r.explain(LabelledPair("1234+a=", "123456", "0000"))) == {"longer", "no_repeats"}


def test_wilson_lower_by_hand() -> None:
    # 8 of 10, z = 1.96: (0.8 + 0.19208 − 1.96·√(0.016 + 0.0009604)) / 1.38416 ≈ 0.4902
    assert wilson_lower(8, 10) == pytest.approx(0.4902, abs=1e-4)
    assert wilson_lower(0, 0) == 0.0


def test_extraction_from_noisy_oracle_labels_keeps_keyword_rules_and_drops_bad_ones() -> None:
    """Pairs of (random mediocre answers) labelled by the oracle with 25 % flips: the reasoner, seeing only the
    labels, keeps keyword rules and never a rule the oracle punishes (copying the context, being longer)."""
    import numpy as np

    prompts = make_prompts(1500, seed=5)
    rng = np.random.default_rng(0)

    def answer(p: str) -> str:
        ctx, k = p.split("+")[0], str("abcdefghij".index(p[-2]))
        out = "".join(k if rng.random() < 0.4 else ch for ch in ctx)
        return out + "7" * int(rng.integers(0, 3)) if rng.random() < 0.3 else out

    a, b = [answer(p) for p in prompts], [answer(p) for p in prompts]
    noisy = label_pairs(prompts, a, b, p=0.25, seed=3)
    pairs = [LabelledPair(x.prompt, x.chosen, x.rejected) for x in noisy.pairs]
    rules = extract_rules(pairs, PredicateReasoner(), k=4, source="test")
    kept = [r.predicate for r in rules.rules]
    assert 1 <= len(kept) <= 4
    assert "has_keyword" in kept or "keyword_half" in kept
    assert not {"copies_context", "longer", "long"} & set(kept)
    assert all(r.precision_lower > 0.5 for r in rules.rules)
    assert len(rules.pair_keys) == len(pairs) and rules.pair_keys[0] == pairs[0].key


def test_rule_file_round_trip_and_bad_file(tmp_path: Path) -> None:
    pairs = [LabelledPair("1234+a=", "0000", "1234"), LabelledPair("5678+b=", "1111", "5678")] * 10
    rules = extract_rules(pairs, PredicateReasoner(), k=3, source="hand pairs")
    path = rules.write(tmp_path / "rules.json")
    data = json.loads(path.read_text())
    assert data["provenance"]["reasoner"].startswith("predicate_reasoner")
    assert data["provenance"]["n_pairs"] == 20 and data["provenance"]["source"] == "hand pairs"
    assert RuleSet.load(path) == rules
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(InputError, match="not a pasture rule file"):
        RuleSet.load(tmp_path / "bad.json")


def test_rule_reward_is_the_fraction_satisfied() -> None:
    lib = {p.name: p for p in SYNTHETIC_PREDICATES}
    rules = RuleSet(
        rules=tuple(
            Rule(f"r{i}", lib[n].statement, n, 1, 0, 0.6)
            for i, n in enumerate(["same_length", "has_keyword", "all_keyword", "digits_only"])
        ),
        reasoner="hand",
        reasoner_version="0",
        source="test",
        pair_keys=(),
        k=4,
        min_precision=0.5,
    )
    score = rule_reward(rules)
    # "0000" for 1234+a=: all four; "0099" : same length, has keyword, digits (3/4); "99999": digits only (1/4)
    assert score(["1234+a="] * 3, ["0000", "0099", "99999"]) == [1.0, 0.75, 0.25]
    assert oracle_score("1234+a=", "0000") == 1.0


def test_verification_through_the_store_is_cached_and_counts_failures(tmp_path: Path) -> None:
    from pasture.store import Store

    lib = {p.name: p for p in SYNTHETIC_PREDICATES}
    rules = RuleSet(
        rules=(
            Rule("r1", lib["same_length"].statement, "same_length", 1, 0, 0.6),
            Rule("r2", lib["has_keyword"].statement, "has_keyword", 1, 0, 0.6),
            Rule("r3", "The answer is polite.", None, 1, 0, 0.6),  # no verifier in the library: a failed check
        ),
        reasoner="hand",
        reasoner_version="0",
        source="test",
        pair_keys=(),
        k=3,
        min_precision=0.5,
    )
    judge = programmatic_rule_judge()
    with Store(tmp_path / "store.db") as store:
        first = verify_rules(store, judge, rules, ["1234+a=", "1234+a="], ["0000", "99"])
        again = verify_rules(store, judge, rules, ["1234+a=", "1234+a="], ["0000", "99"])
    assert first.rewards == (2 / 3, 0.0)  # the failed check counts as 'no' in the denominator of 3
    assert first.n_checks == 6 and first.n_failed == 2 and first.n_cached == 0
    assert again.rewards == first.rewards and again.n_cached == 4
    with pytest.raises(InputError, match="no programmatic verifier"):
        rule_reward(rules)


def test_rules_extract_cli(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pasture.cli import main

    pairs = tmp_path / "pairs.jsonl"
    rows = [{"prompt": f"{i:04d}5+a=", "chosen": "00000", "rejected": f"{i:04d}5"} for i in range(1, 30)]
    pairs.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "rules.json"
    result = CliRunner().invoke(main, ["rules", "extract", "--pairs", str(pairs), "-k", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rules = RuleSet.load(out)
    assert len(rules.rules) == 2 and rules.source == str(pairs) and len(rules.pair_keys) == 29
    assert "2 rules from 29 pairs" in result.output
    pairs.write_text(json.dumps({"prompt": "Write a poem.", "chosen": "a", "rejected": "b"}) + "\n")
    result = CliRunner().invoke(main, ["rules", "extract", "--pairs", str(pairs), "-o", str(out)])
    assert result.exit_code != 0 and "only explains synthetic-task prompts" in result.output
