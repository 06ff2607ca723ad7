"""Two rounds of temporal self-rewarding on SmolLM2 as policy and its own judge (by prompt, in process), killed with
SIGKILL in round 2 and resumed: the rerun reuses every stored sample, judgment and finished checkpoint and computes
only what is missing.

A 135M self-judge shows only the plumbing: its scores, pairs and win rates are not asserted, only the contracts
(what is stored is reused untouched and counted; every judgment the rerun computes is one new stored row; the stages
timed). Sizes are the smallest that run every stage: three training instructions, N = 2 samples from each of M0,
M_k and the temporary model, one evaluation instruction, 12 new tokens, one DPO step per model."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.model]

TRAIN = ["Give one prime number.", "What is the capital of France?", "Name a fruit."]
EVAL = ["Name a planet."]

SCRIPT = """
import sys
import torch
torch.set_num_threads(1)
from pasture.train.builders.prompt_self_judge import PromptSelfJudge
from pasture.train.loop import run_loop
from pasture.train.models import load_policy
db, work, here, model = sys.argv[1:5]
sys.path.insert(0, here)
from test_loop_smollm2 import EVAL, TRAIN, config
start, tok = load_policy(model)
evaluator = PromptSelfJudge().for_policy(start, tok)
run_loop(start, tok, TRAIN, EVAL, PromptSelfJudge(), evaluator, db, work, config())
"""


def config():  # type: ignore[no-untyped-def]
    from pasture.train.builders import TemporalSelfRewardingSettings
    from pasture.train.loop import LoopConfig
    from pasture.train.registry import TrainSettings

    return LoopConfig(
        builder="temporal_self_rewarding",
        builder_settings=TemporalSelfRewardingSettings(n=2),
        method="dpo",  # β = 0.1, the paper's
        train=TrainSettings(steps=1, batch_size=2, lr=1e-5),
        rounds=2,
        max_new_tokens=12,
        temperature=0.7,
    )


def _rows(db: Path, sql: str) -> dict[tuple[object, ...], tuple[object, ...]]:
    with sqlite3.connect(db, timeout=10) as conn:
        return {tuple(r[:-1]): (r[-1],) for r in conn.execute(sql)}


def _stored(
    db: Path,
) -> tuple[dict[tuple[object, ...], tuple[object, ...]], dict[tuple[object, ...], tuple[object, ...]]]:
    """(samples, judgments) in the store: (generator, instruction, sample index) → text; key → created_at."""
    outputs = _rows(db, "SELECT generator, instruction, sample_index, output FROM outputs")
    judgments = _rows(db, "SELECT key, created_at FROM response_judgments")
    return outputs, judgments


def _finished(work: Path) -> dict[Path, int]:
    """Finished checkpoints (``stats.json`` written) → its modification time."""
    return {p.parent: p.stat().st_mtime_ns for p in work.glob("rounds/**/stats.json")}


def test_two_rounds_of_temporal_self_rewarding_on_smollm2_survive_a_kill(
    smollm2_policy_dir: Path, tmp_path: Path
) -> None:
    from pasture.train.builders.prompt_self_judge import PromptSelfJudge
    from pasture.train.loop import run_loop
    from pasture.train.models import load_policy

    t0 = time.perf_counter()
    db, work = tmp_path / "s.db", tmp_path / "work"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [str(db), str(work), str(Path(__file__).parent), str(smollm2_policy_dir)]
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    # kill in round 2 while its temporary next model trains (its identity is written first): no judgment in flight
    deadline = time.monotonic() + 900
    try:
        while not list(work.glob("rounds/r1-*/future/run.json")) and proc.poll() is None:
            assert time.monotonic() < deadline, "round 2 did not start within 15 minutes"
            time.sleep(0.05)
        assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    killed_after = time.perf_counter() - t0
    samples, judgments = _stored(db)
    finished = _finished(work)
    (r0,) = work.glob("rounds/r0-*")
    assert (r0 / "round.json").is_file() and {r0, r0 / "future"} <= set(finished)  # round 1 complete
    assert not (set(finished) - {r0, r0 / "future"})  # round 2 trained nothing yet
    assert any("/m1-" in str(g) for g, _, _ in samples)  # round 2 had sampled M_1 and judged
    stored_row = json.loads((r0 / "round.json").read_text())

    start, tok = load_policy(smollm2_policy_dir)
    source, eval_source = PromptSelfJudge(), PromptSelfJudge()
    evaluator = eval_source.for_policy(start, tok)
    t = time.perf_counter()
    result = run_loop(start, tok, TRAIN, EVAL, source, evaluator, db, work, config())
    resumed_s = time.perf_counter() - t

    samples_after, judgments_after = _stored(db)
    finished_after = _finished(work)
    assert all(samples_after[k] == v for k, v in samples.items())  # stored samples reused untouched
    assert all(judgments_after[k] == v for k, v in judgments.items())  # stored judgments never recomputed
    computed = source.calls + eval_source.calls
    assert computed == len(judgments_after) - len(judgments) > 0  # every judgment computed is one new row
    assert all(finished_after[p] == m for p, m in finished.items())  # finished checkpoints not retrained
    (r1,) = work.glob("rounds/r1-*")
    assert set(finished_after) == {r0, r0 / "future", r1, r1 / "future"}
    one, two = result.rounds
    assert asdict(one) == stored_row  # round 1 read back, not redone
    assert result.final_checkpoint == r1 and two.run_identity != one.run_identity
    for row in result.rounds:
        assert row.n_train_examples >= 1 and row.n_train_examples + row.n_skipped == len(TRAIN)
        assert 0 <= row.win_rate_vs_start <= 100 and row.n_failed_judgments == 0 and row.n_failed_eval == 0
        assert row.sigmoid_weight is not None and 0 < row.sigmoid_weight < 1
        assert {"sample_judge_build", "sample", "judge", "train_temporary", "train", "evaluate"} <= set(
            row.stage_seconds
        )
    print(
        f"\nsmollm2 temporal self-rewarding: killed after {killed_after:.1f} s in round 2 ({len(samples)} samples, "
        f"{len(judgments)} judgments, {len(finished)} checkpoints stored); resumed run {resumed_s:.1f} s reused them "
        f"and computed {len(samples_after) - len(samples)} samples, {computed} judgments, "
        f"{len(finished_after) - len(finished)} checkpoints; test {time.perf_counter() - t0:.1f} s"
    )
    for row in result.rounds:
        print(
            f"round {row.round}: {row.n_train_examples} pairs, judge gap {row.judge_gap}, σ(−βh) "
            f"{row.sigmoid_weight:.3f}, win rate vs start {row.win_rate_vs_start:.0f}%, stages "
            f"{ {k: round(v, 2) for k, v in row.stage_seconds.items()} }"
        )
