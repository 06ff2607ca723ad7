"""A pool of real local judges (SmolLM2 behind llama.cpp's server, read with two personas) end to end:
labels through the annotation engine, a kill in the middle, a resumed rerun that asks only what is
missing, and policy sampling from instructions. Kept tiny: 10 pairs, 2 personas, one-token verdicts."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pasture.annotate import EngineSettings
from pasture.cli import main
from pasture.io import write_model_outputs
from pasture.simulate.pool_files import persona_pool
from pasture.simulate.simulation import simulate_preferences, write_simulation
from pasture.simulate.synthetic import arithmetic_outputs
from pasture.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.model]

N_PAIRS = 6
PERSONAS = ("concise", "thorough")

SCRIPT = """
import sys
from pasture.annotate import EngineSettings
from pasture.io import read_model_outputs
from pasture.simulate.pool_files import persona_pool
from pasture.simulate.simulation import simulate_preferences
from pasture.store import Store
outputs, db, url = sys.argv[1:4]
pool = persona_pool("smollm2-logprob-server", ("concise", "thorough"), p=0.25, seed=4, base_url=url)
with Store(db) as store:
    simulate_preferences(read_model_outputs(outputs), pool, store, settings=EngineSettings(concurrency=1, claim_ttl_s=3))
"""


def _stored(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM judgments WHERE status='ok'").fetchone()[0])
        except sqlite3.OperationalError:  # tables not created yet
            return 0


def test_local_persona_pool_survives_a_kill_and_resumes(llama_server, tmp_path: Path) -> None:
    outputs = arithmetic_outputs(N_PAIRS, seed=12)
    outputs_path = write_model_outputs(outputs, tmp_path / "outputs.json")
    db = tmp_path / "s.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(outputs_path), str(db), llama_server.base_url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while _stored(db) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    before = _stored(db)
    assert 2 <= before < N_PAIRS

    pool = persona_pool("smollm2-logprob-server", PERSONAS, p=0.25, seed=4, base_url=llama_server.base_url)
    with Store(db) as store:
        resumed = simulate_preferences(outputs, pool, store, settings=EngineSettings(concurrency=1, claim_ttl_s=3))
        run = resumed.run
        assert len(run.labels) == N_PAIRS
        # only the questions the killed run had not answered are asked (plus a parse retry, if any)
        missing = N_PAIRS - before
        assert missing <= run.n_calls <= 2 * missing, (before, run.n_calls)
        assert {lab.annotator for lab in run.labels} <= set(PERSONAS)
        for lab in run.labels:
            assert lab.annotator == pool.members[pool.assign(lab.example_key)].name
            assert lab.shown_first == pool.shown_first(lab.example_key, lab.annotator)
            if lab.status == "ok":
                assert lab.preference == pytest.approx(
                    3 - lab.clean_preference if lab.flipped else lab.clean_preference
                )
        a = write_simulation(resumed, tmp_path / "a")

        # a third run is answered by the store; its files are byte-identical
        again = simulate_preferences(outputs, pool, store, settings=EngineSettings(concurrency=1, claim_ttl_s=3))
        assert again.run.n_calls <= 2 * again.run.n_failed  # only failed verdicts are asked again
        if again.run.n_failed == 0:
            assert again.run.labels == run.labels
            b = write_simulation(again, tmp_path / "b")
            for name in ("labels", "trl", "trl_chat", "alpaca_farm", "manifest"):
                assert a[name].read_bytes() == b[name].read_bytes(), name
    manifest = json.loads(a["manifest"].read_text())
    assert manifest["n_labels_ok"] + manifest["n_labels_failed"] == N_PAIRS
    assert manifest["pool"]["members"][0]["judge_digest"] != manifest["pool"]["members"][1]["judge_digest"]


def test_simulate_from_instructions_and_a_local_policy(llama_server, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [
        "simulate", "--instructions", "demo", "--limit", "2",
        "--model", "openai:SmolLM2-135M-Instruct", "--base-url", llama_server.base_url,
        "--samples", "2", "--max-tokens", "16", "--temperature", "1.0",
        "--judge", "smollm2-logprob-server", "--judge-base-url", llama_server.base_url, "--persona", "balanced",
        "--out", str(out), "--store", str(tmp_path / "s.db"), "--format", "trl",
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "policy openai:SmolLM2-135M-Instruct: 4 outputs for 2 instructions" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n_instructions"] == 2
    assert manifest["n_pairs"] + manifest["n_instructions_skipped"] == 2
    rows = [json.loads(line) for line in (out / "trl.jsonl").read_text().splitlines()]
    assert len(rows) == manifest["datasets"]["trl"]["n_rows"]
    for row in rows:
        assert set(row) == {"prompt", "chosen", "rejected"} and row["chosen"] != row["rejected"]
    # rerun: outputs and verdicts come from the store
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert " 0 judge calls" in again.output or manifest["n_labels_failed"] > 0
