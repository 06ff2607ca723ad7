"""Independent annotators: pool members whose verdicts are sampled never share a cached verdict.

A pool of copies of one stochastic judge used to collapse into one annotator (the second copy read the
first one's cached verdicts), overstating inter-annotator agreement. Copies that sample, or that are marked
independent, now have keys of their own; identical deterministic members still share.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pasture.judges import ProgrammaticJudge, get_judge
from pasture.judges.protocols import verdict_is_sampled
from pasture.records import judgment_key
from pasture.simulate.labels import OutputPair, cross_annotate, sample_pairs
from pasture.simulate.pool import AnnotatorPool, PoolMember, make_pool
from pasture.simulate.synthetic import arithmetic_oracle, arithmetic_outputs
from pasture.store import Store


def _same_order_pairs(pool: AnnotatorPool, pairs: list[OutputPair], n: int) -> list[OutputPair]:
    """Pairs that both members see in the same order: where a shared cache would hand one's verdict to the other."""
    a, b = (m.name for m in pool.members)
    chosen = [p for p in pairs if pool.shown_first(p.key, a) == pool.shown_first(p.key, b)][:n]
    assert len(chosen) == n
    return chosen


def test_which_judges_sample_their_verdict() -> None:
    assert verdict_is_sampled(get_judge("gpt-4o-mini-graded", decoding={"temperature": 0.7}).fingerprint)
    assert not verdict_is_sampled(get_judge("gpt-4o-mini-graded").fingerprint)  # temperature 0
    assert verdict_is_sampled(get_judge("claude-graded").fingerprint)  # no temperature: the API samples
    # a logprob verdict is read from label probabilities, not from the sampled token
    assert not verdict_is_sampled(get_judge("gpt-4o-mini-logprob", decoding={"temperature": 1}).fingerprint)
    assert not verdict_is_sampled(ProgrammaticJudge(arithmetic_oracle).fingerprint)


def test_deterministic_copies_share_and_independent_ones_do_not(tmp_path: Path) -> None:
    pairs = sample_pairs(arithmetic_outputs(40, seed=3), seed=2).pairs
    copies = [ProgrammaticJudge(arithmetic_oracle, name=n) for n in ("a", "b")]
    shared = make_pool(copies, p=0.0)
    assert [m.annotator for m in shared.members] == [None, None]
    chosen = _same_order_pairs(shared, pairs, 6)
    with Store(tmp_path / "s.db") as store:
        run = cross_annotate(chosen, shared, store)
        assert run.n_calls == 6  # the second copy reads the first one's verdicts: one annotator, rightly
        keys = [lab.judgment_key for lab in run.labels]
        assert keys[:6] == keys[6:]
        # the old keys (no annotator) are still the keys of deterministic members
        lab = run.labels[0]
        assert lab.judgment_key == judgment_key(
            lab.judge_digest, lab.pair.instruction, lab.pair.output_1, lab.pair.output_2, lab.shown_first
        )
        apart = make_pool([PoolMember(judge=j, independent=True) for j in copies], p=0.0)
        assert [m.annotator for m in apart.members] == ["a", "b"]
        run = cross_annotate(chosen, apart, store)
        assert run.n_calls == 12 and len({lab.judgment_key for lab in run.labels}) == 12
        assert store.count_judgments() == 6 + 12
        assert [d["independent"] for d in apart.describe()] == [True, True]


@pytest.mark.model
@pytest.mark.slow
def test_two_copies_of_a_sampling_judge_on_the_real_server_are_two_annotators(llama_server, tmp_path: Path) -> None:
    def copy(name: str) -> PoolMember:
        judge = get_judge(
            "smollm2-graded-server", base_url=llama_server.base_url, decoding={"temperature": 0.8, "max_tokens": 8}
        )
        return PoolMember(judge=judge, name=name)

    pool = make_pool([copy("a"), copy("b")], p=0.0, seed=4)
    assert [m.independent for m in pool.members] == [True, True]  # temperature 0.8: sampled verdicts
    pairs = _same_order_pairs(pool, sample_pairs(arithmetic_outputs(40, seed=3), seed=2).pairs, 2)
    with Store(tmp_path / "s.db") as store:
        run = cross_annotate(pairs, pool, store)
        # each copy asked the server about each pair itself: 4 judgments under 4 keys (parse retries may add calls)
        assert len(run.labels) == 4 and len({lab.judgment_key for lab in run.labels}) == 4
        assert run.n_calls >= 4 and store.count_judgments() == 4
        stored = store.get_judgments()
        assert sorted(j.annotator or "" for j in stored) == ["a", "a", "b", "b"]
        assert {j.judge_digest for j in stored} == {pool.members[0].judge.fingerprint.digest}
        # a rerun of the same pool pays nothing for what is judged: only failed labels are asked again
        # (each with at most one parse retry)
        n_failed = run.n_failed
        again = cross_annotate(pairs, pool, store)
        assert n_failed <= again.n_calls <= 2 * n_failed
        assert [lab.judgment_key for lab in again.labels] == [lab.judgment_key for lab in run.labels]
