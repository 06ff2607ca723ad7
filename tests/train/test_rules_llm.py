"""AutoRule's model reasoner (pasture.train.rules_llm): the explain/extract/merge logic with programmatic step
judges (exact, fast), and a handful of real AlpacaEval pairs explained by SmolLM2 behind a llama.cpp server."""

from __future__ import annotations

import pytest

from pasture.errors import InputError
from pasture.judges import ProgrammaticResponseJudge
from pasture.judges.base import ResponseReading, ResponseRequest
from pasture.store import Store
from pasture.train.rules import LabelledPair, RuleSet
from pasture.train.rules_llm import EXTRACT_INSTRUCTION, LLMReasoner, alpacaeval_pairs, extract_rules_llm

CALLS: list[str] = []


def _explain(req: ResponseRequest) -> ResponseReading | None:
    CALLS.append("explain")
    if "unexplainable" in req.instruction:
        return None  # a reply that cannot be read
    return ResponseReading(verdict="yes", critique=f"It is shorter: {len(req.output)} vs {len(req.subject or '')}.")


def _extract(req: ResponseRequest) -> ResponseReading | None:
    CALLS.append("extract")
    assert req.instruction == EXTRACT_INSTRUCTION
    n = int(req.output.split(": ")[1].split(" ")[0])
    return ResponseReading(verdict="yes", critique=f"The answer is concise.\nThe answer has {n} characters.")


def _merge_first_two(req: ResponseRequest) -> ResponseReading | None:
    CALLS.append("merge")
    items = [line[2:] for line in req.output.splitlines()]
    return ResponseReading(verdict="yes", critique="\n".join(items[:2]))


def _merge_unreadable(req: ResponseRequest) -> ResponseReading | None:
    return None


def _reasoner(merge=_merge_first_two) -> LLMReasoner:  # type: ignore[no-untyped-def]
    return LLMReasoner(
        explainer=ProgrammaticResponseJudge(_explain, reads=("subject",)),
        extractor=ProgrammaticResponseJudge(_extract),
        merger=ProgrammaticResponseJudge(merge),
        name="test_reasoner",
    )


PAIRS = [LabelledPair(f"q{i}", "a" * (i + 1), "b" * (i + 10)) for i in range(6)] + [
    LabelledPair("unexplainable q", "x", "yy")
]


def test_explain_extract_merge_into_at_most_k_rules_with_provenance_cached_on_rerun(tmp_path):
    CALLS.clear()
    with Store(tmp_path / "s.db") as store:
        out = extract_rules_llm(store, _reasoner(), PAIRS, k=2, merge_batch=3, source="test pairs")
        rules = out.rules
        assert len(rules.rules) <= 2 and rules.rules[0].statement == "The answer is concise."
        assert rules.rules[0].support == 6 and rules.rules[0].predicate is None
        assert rules.pair_keys == tuple(p.key for p in PAIRS) and rules.source == "test pairs"
        assert out.steps["explain"].asked == 7 and out.steps["explain"].failed == 1
        assert rules.notes["n_explained"] == 6 and rules.notes["candidates"]["The answer is concise."] == 6
        assert rules.notes["merge_rounds"] >= 2 and rules.notes["final_merge"] == "ok"  # 7 candidates, batches of 3
        path = rules.write(tmp_path / "rules.json")
        assert RuleSet.load(path).statements == rules.statements
        n_calls = len(CALLS)
        again = extract_rules_llm(store, _reasoner(), PAIRS, k=2, merge_batch=3, source="test pairs")
        assert again.rules.statements == rules.statements
        assert set(CALLS[n_calls:]) == {"explain"}  # only the unreadable explanation is asked again (and retried)
        assert again.steps["merge"].cached == again.steps["merge"].asked


def test_an_unreadable_last_merge_keeps_the_most_supported_candidates_and_says_so(tmp_path):
    with Store(tmp_path / "s.db") as store:
        out = extract_rules_llm(store, _reasoner(_merge_unreadable), PAIRS[:3], k=1, merge_batch=10)
    assert out.rules.statements == ["The answer is concise."]
    assert out.rules.notes["final_merge"].startswith("failed")
    assert out.steps["merge"].failed == 1


def test_bad_inputs_are_refused(tmp_path):
    with Store(tmp_path / "s.db") as store:
        with pytest.raises(InputError, match="needs labelled pairs"):
            extract_rules_llm(store, _reasoner(), [], k=2)
        with pytest.raises(InputError, match="k >= 1"):
            extract_rules_llm(store, _reasoner(), PAIRS, k=0)
        with pytest.raises(InputError, match="no usable rule"):
            extract_rules_llm(store, _reasoner(), PAIRS[-1:], k=2)


def test_alpacaeval_pairs_take_the_preferred_output_as_chosen(alpacaeval):
    path = alpacaeval / "results" / "alpaca-7b" / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json.gz"
    pairs = alpacaeval_pairs(path, 5, seed=1)
    assert len(pairs) == 5 and len({p.key for p in pairs}) == 5
    assert pairs == alpacaeval_pairs(path, 5, seed=1)
    assert all(len(p.prompt) + len(p.chosen) + len(p.rejected) <= 1500 for p in pairs)
    with pytest.raises(InputError, match="usable pairs"):
        alpacaeval_pairs(path, 10_000)


@pytest.mark.model
@pytest.mark.slow
def test_smollm2_reasoner_extracts_rules_from_real_pairs_and_a_rerun_asks_nothing(alpacaeval, llama_server, tmp_path):
    """A handful of real pairs (CI size; the 100-pair run is experiments/rules_smollm2.py)."""
    path = alpacaeval / "results" / "alpaca-7b" / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json.gz"
    pairs = alpacaeval_pairs(path, 2, seed=0, max_chars=700)
    reasoner = LLMReasoner.from_judge("smollm2-graded-server", base_url=llama_server.base_url, max_tokens=64)
    with Store(tmp_path / "s.db") as store:
        try:
            out = extract_rules_llm(store, reasoner, pairs, k=3, source=str(path))
        except InputError as exc:  # a 135M model may write no list at all: that must be said, not hidden
            assert "no usable rule" in str(exc)
            assert store.count_response_judgments() >= 2
            return
        assert 1 <= len(out.rules.rules) <= 3 and all(r.statement for r in out.rules.rules)
        assert out.rules.notes["judges"] == reasoner.digests and out.rules.reasoner_version == reasoner.version
        n = store.count_response_judgments()
        again = extract_rules_llm(store, reasoner, pairs, k=3, source=str(path))
        assert again.rules.statements == out.rules.statements
        failed = sum(c.failed for c in out.steps.values())
        assert store.count_response_judgments() == n and sum(c.cached for c in again.steps.values()) >= n - failed
