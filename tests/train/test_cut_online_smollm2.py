"""One online CUT round on SmolLM2 with the SmolLM2 critic behind a real llama.cpp server (sample, critique, train,
generate, evaluate), killed with SIGKILL mid-critique and resumed: the rerun asks only the missing critiques.

A 135M critic only shows the plumbing: its verdicts are not asserted, only the contracts (every judgment counted,
stored once, the stages timed)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.model]

TRAIN = ["Name a colour.", "Say hello in French.", "Give one prime number.", "Name a fruit.", "Name an animal."]
EVAL = ["Name a planet.", "Name a tree."]

SCRIPT = """
import sys
from pasture.judges import get_response_judge
from pasture.train.cut_online import run_cut_online
from pasture.train.models import load_policy
sys.path.insert(0, sys.argv[4])
from test_cut_online_smollm2 import EVAL, TRAIN, config
db, work, url, _, cache = sys.argv[1:6]
policy, tok = load_policy("smollm2", cache_dir=cache)
judge = get_response_judge("smollm2-critique-server", base_url=url)
run_cut_online(policy, tok, TRAIN, EVAL, judge, db, work, config())
"""


def config():  # type: ignore[no-untyped-def]
    from pasture.annotate.engine import EngineSettings
    from pasture.train.cut_online import CUTOnlineConfig
    from pasture.train.registry import CUTSettings, TrainSettings

    return CUTOnlineConfig(
        settings=CUTSettings(online_preset=True, good_ratio=None),  # a 135M critic may call every sample good
        train=TrainSettings(steps=1, batch_size=2, lr=1e-5),
        rounds=1,
        max_new_tokens=12,
        engine=EngineSettings(concurrency=1, claim_ttl_s=3),
    )


def _stored(db: Path) -> int:
    """Critiques of the training samples stored with status ok (their generators are ``cut-online/round0-…``)."""
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            sql = "SELECT COUNT(*) FROM response_judgments WHERE status='ok' AND generator LIKE 'cut-online/round0-%'"
            return int(conn.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:  # tables not created yet
            return 0


def test_one_smollm2_round_survives_a_kill_and_resumes(llama_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pasture.judges import get_response_judge
    from pasture.store import Store
    from pasture.train.cut_online import run_cut_online
    from pasture.train.models import load_policy

    db, work, cache = tmp_path / "s.db", tmp_path / "work", tmp_path / "model"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [str(db), str(work), llama_server.base_url, str(Path(__file__).parent), str(cache)]
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    deadline = time.monotonic() + 1800  # de-quantising SmolLM2 takes minutes on a busy CPU
    # the start's evaluation samples are judged first, then the training samples: kill mid-critique
    try:
        while _stored(db) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "no critique stored within 30 minutes"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    before = _stored(db)
    assert 2 <= before < len(TRAIN)
    assert not (work / "rounds").exists() or not any((work / "rounds").glob("*/stats.json"))  # not trained yet

    policy, tok = load_policy(cache)  # the plain checkpoint the killed run saved
    judge = get_response_judge("smollm2-critique-server", base_url=llama_server.base_url)
    result = run_cut_online(policy, tok, TRAIN, EVAL, judge, db, work, config())
    (r,) = result.rounds
    missing = len(TRAIN) - before
    assert missing <= r.judge_calls <= 2 * missing + 2, (before, r.judge_calls)  # only the missing (+ parse retries)
    assert r.n_good + r.n_bad + r.n_failed == len(TRAIN) == r.n_samples
    assert r.stats.steps == 1 and 0 <= r.good_rate <= 100 and 0 <= result.start_good_rate <= 100
    assert set(r.seconds) == {"sample", "critique", "train", "generate", "evaluate"}
    with Store(db) as s:
        n = s.count_response_judgments()
    assert len(TRAIN) <= n <= len(TRAIN) + 2 * len(EVAL)

    again = run_cut_online(policy, tok, TRAIN, EVAL, judge, db, work, config())
    assert again.rounds[0].judge_calls <= 2 * again.rounds[0].n_failed  # only failed critiques are asked again
    assert again.rounds[0].stats.history == r.stats.history  # the stored round, not retrained
    print(
        "smollm2 round:",
        {k: round(v, 2) for k, v in r.seconds.items()},
        f"good {r.n_good} bad {r.n_bad} failed {r.n_failed}; eval good rate {r.good_rate:.0f}% "
        f"(start {result.start_good_rate:.0f}%); killed after {before} judgments, rerun made {r.judge_calls} calls",
    )


def test_cut_online_command_on_a_tiny_policy_with_the_smollm2_critic(llama_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import json

    from click.testing import CliRunner

    from pasture.cli import main
    from pasture.train.synthetic import extended_tokenizer, make_prompts
    from pasture.train.tiny import tiny_llama

    tok = extended_tokenizer()
    ckpt = tmp_path / "tiny"
    tiny_llama(tok).save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    train, ev = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    train.write_text("".join(json.dumps({"instruction": p}) + "\n" for p in make_prompts(3, seed=1)))
    ev.write_text(json.dumps({"instruction": make_prompts(1, seed=2)[0]}) + "\n")
    args = [
        "methods", "cut-online", "--model", str(ckpt), "--judge", "smollm2-critique-server",
        "--judge-base-url", llama_server.base_url, "--prompts", str(train), "--eval-prompts", str(ev),
        "--store", str(tmp_path / "s.db"), "--workdir", str(tmp_path / "w"), "--rounds", "1", "--steps", "1",
        "--batch-size", "2", "--max-new-tokens", "6", "--good-ratio", "none",
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "w" / "result.json").read_text())
    (r,) = record["rounds"]
    assert r["n_samples"] == 3 and r["n_good"] + r["n_bad"] + r["n_failed"] == 3
    run = json.loads(next((tmp_path / "w" / "rounds").glob("0-*/run.json")).read_text())
    assert run["identity"]["settings"]["online_preset"] is True and run["identity"]["settings"]["lam"] == 1.1
