"""Online CUT in rounds on the extended synthetic task (smoke size, one seed): the programmatic critic as a stored
single-response judge, rounds that resume from the store, and keys that never let a changed setting reuse a
round's data."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pasture.annotate.responses import ResponseToJudge, annotate_responses
from pasture.records import EvalSet, Instruction
from pasture.store import Store
from pasture.train.cut_online import CUTOnlineConfig, run_cut_online
from pasture.train.cut_synthetic import SMOKE, synthetic_critic_judge
from pasture.train.registry import CUTSettings, TrainSettings
from pasture.train.synthetic import (
    MAX_RESPONSE_TOKENS,
    critic,
    critique_prompt,
    extended_oracle_score,
    make_prompts,
    train_start_policy,
)


@pytest.fixture(scope="module")
def start():  # type: ignore[no-untyped-def]
    return train_start_policy(SMOKE.start)


def test_the_critic_judge_stores_critiques_and_answers_from_the_store(tmp_path: Path) -> None:
    judge = synthetic_critic_judge()
    items = [
        ResponseToJudge("1234+b=", "1111", "g"),  # all right: good, nothing to name
        ResponseToJudge("1234+b=", "1211", "g"),  # position 1 wrong: still good (score 3/4)
        ResponseToJudge("1234+b=", "22", "g"),  # short and wrong: bad
    ]
    with Store(tmp_path / "s.db") as store:
        first = annotate_responses(store, judge, items, progress=False)
        assert first.n_new == 3 and first.calls == 3
        got = {j.output: (j.verdict, j.critique) for j in first.judgments}
        assert got == {"1111": ("good", ""), "1211": ("good", "1"), "22": ("bad", "0123")}
        for item in items:  # the stored critique is the critic's, verdict included
            good, text = critic(item.instruction, item.output)
            assert got[item.output] == ("good" if good else "bad", text)
        again = annotate_responses(store, judge, items, progress=False)
        assert again.n_cached == 3 and again.calls == 0
        assert store.count_response_judgments() == 3
    assert judge.fingerprint.digest == synthetic_critic_judge().fingerprint.digest


@pytest.mark.slow
def test_three_online_rounds_resume_and_key_every_setting(start, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    judge = synthetic_critic_judge()
    train_p, eval_p = make_prompts(48, seed=10_001), make_prompts(24, seed=30_001)
    cfg = CUTOnlineConfig(
        settings=CUTSettings.online(),
        train=TrainSettings(steps=3, lr=1e-3, batch_size=16, seed=0),
        rounds=3,
        samples_per_prompt=2,
        max_new_tokens=MAX_RESPONSE_TOKENS,
    )
    store, work = tmp_path / "s.db", tmp_path / "work"
    train_digest = EvalSet(name="x", instructions=tuple(Instruction(instruction=p) for p in train_p)).digest

    def run(c: CUTOnlineConfig):  # type: ignore[no-untyped-def]
        result = run_cut_online(
            start.model, start.tokenizer, train_p, eval_p, judge, store, work, c,
            render=critique_prompt, score=extended_oracle_score,
        )  # fmt: skip
        with Store(store) as s:
            return result, s.count_response_judgments(), sorted(s.generators(train_digest))

    first, n1, gens1 = run(cfg)
    assert [r.round for r in first.rounds] == [0, 1, 2] and len({r.key for r in first.rounds}) == 3
    for r in first.rounds:
        assert r.n_samples == 96 and r.n_good + r.n_bad == 96 and r.n_failed == 0 and r.n_failed_eval == 0
        assert r.stats.steps == 3 and r.stats.method == "cut"
        assert r.win_rate_vs_start is not None and 0 <= r.win_rate_vs_start <= 100
        assert set(r.seconds) == {"sample", "critique", "train", "generate", "evaluate"}
    assert len(gens1) == 6  # two sample generators per round
    assert 0 < n1 <= 3 * 96 + 4 * 24  # distinct (instruction, output) pairs only
    record = json.loads((work / "result.json").read_text())
    assert [r["win_rate_vs_start"] for r in record["rounds"]] == [r.win_rate_vs_start for r in first.rounds]

    # the same configuration again: every round from the store, no judge call, no training
    again, n2, gens2 = run(cfg)
    assert n2 == n1 and gens2 == gens1
    assert all(r.judge_calls == 0 for r in again.rounds)
    assert [r.stats.history for r in again.rounds] == [r.stats.history for r in first.rounds]
    assert [r.win_rate_vs_start for r in again.rounds] == [r.win_rate_vs_start for r in first.rounds]

    # another α: new keys for every round, new samples' generators and checkpoints, retrained
    other = dataclasses.replace(cfg, settings=CUTSettings(online_preset=True, alpha=0.5), rounds=2)
    changed, _, gens3 = run(other)
    assert {r.key for r in changed.rounds}.isdisjoint({r.key for r in first.rounds})
    assert len(gens3) == 6 + 4 and set(gens1) < set(gens3)
    assert changed.rounds[0].stats.history != first.rounds[0].stats.history
    assert len(list((work / "rounds").iterdir())) == 5

    # another seed: other samples (round 0 already), so other judgments
    seeded, n4, _ = run(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=1), rounds=1))
    assert seeded.rounds[0].key not in {r.key for r in first.rounds} and n4 > n2
    assert seeded.rounds[0].judge_calls > 0

    # more rounds of the first configuration reuse its first three
    longer, _, _ = run(dataclasses.replace(cfg, rounds=4))
    assert [r.key for r in longer.rounds[:3]] == [r.key for r in first.rounds]
    assert all(r.judge_calls == 0 for r in longer.rounds[:3]) and longer.rounds[3].judge_calls > 0
