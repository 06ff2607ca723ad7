"""The iterative driver: stored, keyed, resumable rounds; the builders' contracts; the DPO weight diagnostic.

A tiny randomly initialised Llama on the extended synthetic task stands in for the policy (the driver's contracts do
not depend on its quality); the oracle is the judge, as a programmatic single-response judge on the real store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import PreTrainedTokenizerFast

from pasture.errors import InputError
from pasture.judges.base import ResponseReading
from pasture.judges.judge import ProgrammaticResponseJudge
from pasture.store import Store
from pasture.train.builders import (
    EvolveSettings,
    ISheepSettings,
    SelfRewardingSettings,
    TemporalSelfRewardingSettings,
)
from pasture.train.core import PreferencePair, token_logprobs
from pasture.train.loop import FixedJudge, LoopConfig, mean_sigmoid_weight, run_loop
from pasture.train.loop_synthetic import oracle_judge
from pasture.train.registry import DPOSettings, SFTSettings, TrainSettings
from pasture.train.reward import pair_batch
from pasture.train.synthetic import extended_oracle_score, extended_tokenizer, make_prompts
from pasture.train.tiny import tiny_llama

TRAIN = make_prompts(12, seed=41)
EVAL = make_prompts(8, seed=42)


def _config(**kw: object) -> LoopConfig:
    base = LoopConfig(
        builder="self_rewarding",
        builder_settings=SelfRewardingSettings(n=3),
        settings=DPOSettings(beta=0.1),
        train=TrainSettings(steps=2, lr=1e-3, batch_size=4, seed=0),
        rounds=2,
        max_new_tokens=10,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def _start() -> tuple[torch.nn.Module, PreTrainedTokenizerFast]:
    tok = extended_tokenizer()
    return tiny_llama(tok, hidden_size=32, intermediate_size=64, seed=0).eval(), tok


def _counts(db: Path) -> tuple[int, int]:
    with Store(db) as s:
        outputs = sum(len(s.get_outputs(d)) for d in _digests(s))
        return outputs, s.count_response_judgments()


def _digests(s: Store) -> list[str]:
    return [digest for digest, _, _ in s.eval_sets()]


def _stats_mtimes(work: Path) -> dict[str, float]:
    return {str(p.relative_to(work)): p.stat().st_mtime_ns for p in sorted(work.glob("rounds/*/stats.json"))}


def _start_samples(db: Path) -> dict[tuple[str, str, int], str]:
    """Every stored sample of the starting policy M0 on the training prompts: (generator, prompt, index) → text."""
    with Store(db) as s:
        return {
            (o.generator, o.instruction, o.sample_index): o.output
            for d, name, _ in s.eval_sets()
            if name == "loop-train"
            for o in s.get_outputs(d)
            if o.generator.startswith("loop/start-")
        }


def _trained_sample_sets(db: Path) -> set[str]:
    """The generators of samples of trained policies (M_1, M_2, …) on the training prompts."""
    with Store(db) as s:
        return {g for d, name, _ in s.eval_sets() if name == "loop-train" for g in s.generators(d) if "/m" in g}


def _figures(rows: tuple) -> list[tuple]:  # type: ignore[type-arg]
    return [
        (r.run_identity, r.win_rate_vs_start, r.eval_score, r.judge_gap, r.kl_to_reference, r.n_train_examples)
        for r in rows
    ]


def test_a_changed_setting_never_reuses_a_rounds_stored_data(tmp_path: Path) -> None:
    model, tok = _start()
    db, work = tmp_path / "s.db", tmp_path / "w"
    judge = FixedJudge(oracle_judge())
    first = run_loop(model, tok, TRAIN, EVAL, judge, oracle_judge(), db, work, _config())
    counts, mtimes = _counts(db), _stats_mtimes(work)
    assert len(mtimes) == 2 and counts[0] > 0 and counts[1] > 0
    m0_samples = _start_samples(db)
    assert m0_samples and {g.rsplit("/", 1)[1] for g, _, _ in m0_samples} == {"policy"}  # round 0 samples M0

    again = run_loop(model, tok, TRAIN, EVAL, judge, oracle_judge(), db, work, _config())
    assert _figures(again.rounds) == _figures(first.rounds)
    assert _counts(db) == counts and _stats_mtimes(work) == mtimes  # nothing sampled, judged or trained again

    other_judge = FixedJudge(
        ProgrammaticResponseJudge(
            lambda r: ResponseReading(score=extended_oracle_score(r.instruction, r.output)), name="o2", version="other"
        )
    )
    seen = {r.run_identity for r in first.rounds}
    for cfg, jd, m0_reused in (
        (_config(settings=DPOSettings(beta=0.2)), judge, True),
        (_config(builder_settings=SelfRewardingSettings(n=4)), judge, False),
        (_config(), other_judge, True),
    ):
        before, m0_before, trained_before = _counts(db), _start_samples(db), _trained_sample_sets(db)
        res = run_loop(model, tok, TRAIN, EVAL, jd, oracle_judge(), db, work, cfg)
        ids = {r.run_identity for r in res.rounds}
        assert not ids & seen, "a changed setting reused a stored round"
        seen |= ids
        after = _counts(db)
        assert after[0] > before[0]  # fresh samples of every retrained policy (round 1 on, and the evaluation)
        assert any(g.startswith("loop/m1-") for g in _trained_sample_sets(db) - trained_before)  # M_1 sampled anew
        assert len(_stats_mtimes(work)) == len(seen)  # one new checkpoint per new round
        assert {k: v for k, v in _stats_mtimes(work).items() if k in mtimes} == mtimes  # old ones untouched
        # round 0's samples of M0 depend on neither β nor the judge: reused, and exactly what a fresh run draws;
        # N changes them (new sample sets, the old ones untouched)
        assert (_start_samples(db) == m0_before) is m0_reused and _start_samples(db).items() >= m0_before.items()
        fresh_db = tmp_path / f"fresh-{len(seen)}.db"
        run_loop(model, tok, TRAIN, EVAL, jd, oracle_judge(), fresh_db, tmp_path / f"fresh-{len(seen)}", cfg)
        assert _start_samples(fresh_db) and _start_samples(fresh_db).items() <= _start_samples(db).items()
    assert _counts(db)[1] > counts[1]  # the other judge's judgments were asked for, not read from the oracle's


@pytest.mark.parametrize(
    ("builder", "method", "base", "changed"),
    [
        (
            "i_sheep",
            "sft",
            ISheepSettings(threshold=0.1),
            [ISheepSettings(threshold=0.2), ISheepSettings(threshold=0.1, schedule="continued")],
        ),
        (
            "evolve",
            "dpo",
            EvolveSettings(n=2, chain=1),
            [EvolveSettings(n=2, chain=2), EvolveSettings(n=2, chain=1, refine_objective="sft")],
        ),
    ],
)
def test_a_changed_setting_of_the_new_builders_never_reuses_a_rounds_stored_data(
    tmp_path: Path,
    writer_start: tuple[torch.nn.Module, PreTrainedTokenizerFast],
    builder: str,
    method: str,
    base: object,
    changed: list[object],
) -> None:
    """Threshold C, schedule, chain length and the refine objective each key the round: fresh samples, judgments
    and checkpoints, the old ones untouched; the same settings redo nothing."""
    model, tok = writer_start
    db, work = tmp_path / "s.db", tmp_path / "w"
    judge = FixedJudge(oracle_judge())
    settings = DPOSettings(beta=0.1) if method == "dpo" else SFTSettings()

    def cfg(bs: object) -> LoopConfig:
        return _config(builder=builder, builder_settings=bs, method=method, settings=settings, rounds=1)

    first = run_loop(model, tok, TRAIN, EVAL, judge, oracle_judge(), db, work, cfg(base))
    counts, mtimes = _counts(db), _stats_mtimes(work)
    again = run_loop(model, tok, TRAIN, EVAL, judge, oracle_judge(), db, work, cfg(base))
    assert _figures(again.rounds) == _figures(first.rounds)
    assert _counts(db) == counts and _stats_mtimes(work) == mtimes
    seen = {r.run_identity for r in first.rounds}
    for bs in changed:
        before = _counts(db)
        res = run_loop(model, tok, TRAIN, EVAL, judge, oracle_judge(), db, work, cfg(bs))
        ids = {r.run_identity for r in res.rounds}
        assert not ids & seen, f"{bs} reused a stored round"
        seen |= ids
        after = _counts(db)
        assert after[0] > before[0]  # fresh samples under the new round (a fixed judge's verdicts are keyed by text)
        assert len(_stats_mtimes(work)) == len(seen)
        assert {k: v for k, v in _stats_mtimes(work).items() if k in mtimes} == mtimes


_KILLED = """
import sys, torch
torch.set_num_threads(1)
from pathlib import Path
from pasture.train.loop import FixedJudge, run_loop
from pasture.train.loop_synthetic import oracle_judge
sys.path.insert(0, {tests!r})
from test_loop import EVAL, TRAIN, _config, _start
model, tok = _start()
run_loop(model, tok, TRAIN, EVAL, FixedJudge(oracle_judge()), oracle_judge(), Path({db!r}), Path({work!r}),
         _config(rounds=3))
"""


@pytest.mark.slow
def test_a_sigkilled_loop_resumes_where_it_stopped(tmp_path: Path) -> None:
    model, tok = _start()
    db, work = tmp_path / "s.db", tmp_path / "w"
    script = _KILLED.format(tests=str(Path(__file__).parent), db=str(db), work=str(work))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.monotonic() + 240
    while not list(work.glob("rounds/r0-*/round.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = list(work.glob("rounds/r0-*/round.json"))
    assert done_before, "the first round never completed before the deadline"
    mtime = done_before[0].stat().st_mtime_ns
    resumed = run_loop(model, tok, TRAIN, EVAL, FixedJudge(oracle_judge()), oracle_judge(), db, work, _config(rounds=3))
    assert done_before[0].stat().st_mtime_ns == mtime  # round 0 was not redone
    fresh = run_loop(
        model,
        tok,
        TRAIN,
        EVAL,
        FixedJudge(oracle_judge()),
        oracle_judge(),
        tmp_path / "f.db",
        tmp_path / "f",
        _config(rounds=3),
    )
    assert _figures(resumed.rounds) == _figures(fresh.rounds)  # the same machine: an interrupted run ends the same


def test_the_builders_pick_best_and_worst_by_the_judge(tmp_path: Path) -> None:
    model, tok = _start()
    db, work = tmp_path / "s.db", tmp_path / "w"
    cfg = _config(builder="temporal_self_rewarding", builder_settings=TemporalSelfRewardingSettings(n=3), rounds=1)
    res = run_loop(model, tok, TRAIN, EVAL, FixedJudge(oracle_judge()), oracle_judge(), db, work, cfg)
    with Store(db) as s:  # one run per store: each label's samples are under the generator ending in /label
        by: dict[tuple[str, str], list[str]] = {}
        for o in (o for d in _digests(s) for o in s.get_outputs(d)):
            label = o.generator.rsplit("/", 1)[1]
            if label in ("start", "policy", "future"):
                by.setdefault((label, o.instruction), []).append(o.output)
    row = json.loads((res.final_checkpoint / "round.json").read_text())
    assert row["n_train_examples"] + row["n_skipped"] == len(TRAIN)
    # the pairs as trained: rejected = the worst of M0's samples, chosen = the best of the temporary model's
    assert all(len(by[("start", p)]) == 3 and len(by[("future", p)]) == 3 for p in TRAIN)
    gaps = []
    for p in TRAIN:
        worst = min(extended_oracle_score(p, y) for y in by[("start", p)])
        best = max(extended_oracle_score(p, y) for y in by[("future", p)])
        if best > worst:
            gaps.append(best - worst)
    assert len(gaps) == row["n_train_examples"]
    assert row["judge_gap"] == pytest.approx(sum(gaps) / len(gaps))  # the oracle judged: judge gap = anchored gap
    assert row["chosen_rejected_gap"] == pytest.approx(row["judge_gap"])
    parts = row["stage_seconds"]  # the builder's time split into its stored helpers' stages
    assert {"sample", "judge", "train_temporary"} <= set(parts) and all(v >= 0 for v in parts.values())
    assert parts["sample"] + parts["judge"] + parts["train_temporary"] <= parts["sample_judge_build"]


def test_mean_sigmoid_weight_matches_a_hand_computation() -> None:
    model, tok = _start()
    other = tiny_llama(tok, hidden_size=32, intermediate_size=64, seed=1).eval()
    pairs = [PreferencePair("123+a=", "000", "123"), PreferencePair("4567+b=", "1111", "4567")]
    assert mean_sigmoid_weight(model, model, tok, pairs, 0.1) == pytest.approx(0.5)
    batch = pair_batch(tok, pairs, max_prompt_tokens=256, max_response_tokens=256)
    with torch.no_grad():
        lp = token_logprobs(other, batch).sum(1) - token_logprobs(model, batch).sum(1)
    h = [float(lp[0] - lp[2]), float(lp[1] - lp[3])]
    expected = sum(1 / (1 + torch.exp(torch.tensor(0.3 * x)).item()) for x in h) / 2
    assert mean_sigmoid_weight(other, model, tok, pairs, 0.3) == pytest.approx(expected, rel=1e-5)


def test_a_builder_and_method_that_do_not_fit_are_one_line_errors(tmp_path: Path) -> None:
    model, tok = _start()
    with pytest.raises(InputError, match="produces pairs; method sft reads demonstrations"):
        run_loop(
            model,
            tok,
            TRAIN,
            EVAL,
            FixedJudge(oracle_judge()),
            oracle_judge(),
            tmp_path / "s.db",
            tmp_path / "w",
            _config(method="sft", settings=None),
        )
    with pytest.raises(InputError, match="unknown builder"):
        run_loop(
            model,
            tok,
            TRAIN,
            EVAL,
            FixedJudge(oracle_judge()),
            oracle_judge(),
            tmp_path / "s.db",
            tmp_path / "w",
            _config(builder="nope"),
        )
