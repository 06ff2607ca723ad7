"""The farm loop end to end on the tiny synthetic policy: real engine, real SQLite store, resumable stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pasture.judges.judge import ProgrammaticJudge
from pasture.store import Store
from pasture.train.core import OptimSettings
from pasture.train.farm import FarmConfig, run_farm
from pasture.train.sft import train_sft
from pasture.train.synthetic import MAX_RESPONSE_TOKENS, demonstrations, make_prompts, oracle_preference, task_tokenizer
from pasture.train.tiny import tiny_llama


@pytest.mark.slow
def test_farm_loop_runs_stores_and_resumes(tmp_path: Path) -> None:
    tok = task_tokenizer()
    prompts = make_prompts(400, seed=1)
    sft, _ = train_sft(
        tiny_llama(tok),
        tok,
        prompts,
        demonstrations(prompts, seed=2),
        optim=OptimSettings(lr=3e-3, batch_size=64, steps=60),
    )
    judge = ProgrammaticJudge(oracle_preference, name="oracle")
    cfg = FarmConfig(method="dpo", steps=30, lr=1e-3, batch_size=32, max_new_tokens=MAX_RESPONSE_TOKENS)
    train_prompts, eval_prompts = make_prompts(300, seed=11), make_prompts(60, seed=12)
    store = tmp_path / "farm.db"
    first = run_farm(sft, tok, train_prompts, eval_prompts, judge, store, tmp_path / "work", cfg)
    assert first.n_pairs > 100 and first.n_failed_labels == 0
    assert 0.1 < first.label_flips / first.n_pairs < 0.4  # p = 0.25 flips
    assert first.stats.steps == 30 and first.row.win_rate_vs_start > 50
    assert first.row.kl_to_reference is not None and first.row.kl_to_reference > 0
    with Store(store) as s:
        n_judgments = s.count_judgments()
    assert n_judgments >= first.n_pairs + len(eval_prompts) - 5  # identical pairs are not judged
    again = run_farm(sft, tok, train_prompts, eval_prompts, judge, store, tmp_path / "work", cfg)
    assert again.row == first.row and again.stats.history == first.stats.history  # resumed, not retrained
    with Store(store) as s:
        assert s.count_judgments() == n_judgments  # nothing judged twice
    row = json.loads((tmp_path / "work" / "dpo" / "row.json").read_text())
    assert row["win_rate_vs_start"] == first.row.win_rate_vs_start
