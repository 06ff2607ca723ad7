"""One online CUT round on SmolLM2 with the SmolLM2 critic behind a real llama.cpp server (sample, critique, train,
generate, evaluate), killed with SIGKILL mid-critique and resumed: the rerun asks only the missing critiques, and a
third run retrains nothing.

A 135M critic only shows the plumbing: its verdicts and critiques are not asserted, only the contracts (every
sample counted good, bad or failed; judgments stored before the kill reused untouched; the stages timed). Sizes are
the smallest that still exercise every stage: four training instructions (so the kill lands between the first and
the last critique), one evaluation instruction, 12 new tokens, one CUT step."""

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

TRAIN = ["Give one prime number.", "What is the capital of France?", "Name a fruit.", "Name a colour."]
EVAL = ["Name a planet."]

SCRIPT = """
import sys
import torch
torch.set_num_threads(1)
from pasture.judges import get_response_judge
from pasture.train.cut_online import run_cut_online
from pasture.train.models import load_policy
db, work, url, here, model = sys.argv[1:6]
sys.path.insert(0, here)
from test_cut_online_smollm2 import EVAL, TRAIN, config
policy, tok = load_policy(model)
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
        temperature=0.7,  # sensible short answers, which the 135M critic more often ends with a verdict line
        # no parse retries: the server decodes greedily, so asking again gets the same unparsable reply;
        # the killed run's claims expire after 2 s
        engine=EngineSettings(concurrency=1, parse_retries=0, claim_ttl_s=2),
    )


def _train_judgments(db: Path) -> dict[str, tuple[str, str]]:
    """Stored judgments of the round's training samples (generators ``cut-online/round0-…``): key → (status,
    created_at). Empty before the tables exist."""
    if not db.exists():
        return {}
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            sql = "SELECT key, status, created_at FROM response_judgments WHERE generator LIKE 'cut-online/round0-%'"
            return {k: (s, c) for k, s, c in conn.execute(sql)}
        except sqlite3.OperationalError:  # tables not created yet
            return {}


def test_one_smollm2_round_survives_a_kill_and_resumes(llama_server, smollm2_policy_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pasture.judges import get_response_judge
    from pasture.store import Store
    from pasture.train.cut_online import run_cut_online
    from pasture.train.models import load_policy

    t0 = time.perf_counter()
    db, work = tmp_path / "s.db", tmp_path / "work"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [str(db), str(work), llama_server.base_url, str(Path(__file__).parent), str(smollm2_policy_dir)]
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    deadline = time.monotonic() + 600
    # the start's evaluation sample is judged first, then the training samples: kill once one of those is stored
    try:
        while not _train_judgments(db) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "no critique stored within 10 minutes"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    killed_after = time.perf_counter() - t0
    before = _train_judgments(db)
    ok_before = {k: v for k, v in before.items() if v[0] == "ok"}
    assert 1 <= len(before) < len(TRAIN)
    assert not list(work.glob("rounds/*/stats.json"))  # killed before training

    policy, tok = load_policy(smollm2_policy_dir)
    judge = get_response_judge("smollm2-critique-server", base_url=llama_server.base_url)
    t = time.perf_counter()
    result = run_cut_online(policy, tok, TRAIN, EVAL, judge, db, work, config())
    resumed_s = time.perf_counter() - t
    (r,) = result.rounds
    missing = len(TRAIN) - len(ok_before)  # parse failures stored before the kill are asked again (engine contract)
    retries = 1 + config().engine.parse_retries
    assert missing <= r.judge_calls <= retries * missing, (len(ok_before), r.judge_calls)
    after = _train_judgments(db)
    assert len(after) == len(TRAIN)
    assert all(after[k] == v for k, v in ok_before.items())  # stored critiques reused untouched, never re-asked
    assert r.n_good + r.n_bad + r.n_failed == len(TRAIN) == r.n_samples
    assert r.stats.steps == 1 and 0 <= r.good_rate <= 100 and 0 <= result.start_good_rate <= 100
    assert r.n_failed_eval in (0, 1) and set(r.seconds) == {"sample", "critique", "train", "generate", "evaluate"}
    with Store(db) as s:
        n = s.count_response_judgments()  # training samples, start and round eval (one key if their texts agree)
    assert len(TRAIN) + len(EVAL) <= n <= len(TRAIN) + 2 * len(EVAL)

    (stats_file,) = work.glob("rounds/*/stats.json")
    mtime = stats_file.stat().st_mtime_ns
    t = time.perf_counter()
    again = run_cut_online(policy, tok, TRAIN, EVAL, judge, db, work, config())
    again_s = time.perf_counter() - t
    (a,) = again.rounds
    assert a.judge_calls <= retries * a.n_failed  # only failed critiques are asked again
    assert a.stats.history == r.stats.history and stats_file.stat().st_mtime_ns == mtime  # not retrained
    print(
        f"\nsmollm2 online CUT round: killed after {killed_after:.1f} s with {len(before)} of {len(TRAIN)} critiques "
        f"stored ({len(ok_before)} ok); resumed run {resumed_s:.1f} s, stages "
        f"{ {k: round(v, 2) for k, v in r.seconds.items()} }, {r.judge_calls} critique calls; "
        f"good {r.n_good} bad {r.n_bad} failed {r.n_failed}; eval good rate {r.good_rate:.0f}% "
        f"(start {result.start_good_rate:.0f}%); third run {again_s:.1f} s with {a.judge_calls} calls, "
        f"test {time.perf_counter() - t0:.1f} s"
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
    settings = run["identity"]["settings"]
    assert settings["online_preset"] is True and settings["lam"] == 1.1 and settings["good_ratio"] is None
