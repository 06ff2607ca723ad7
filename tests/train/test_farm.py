"""The farm loop end to end on the tiny synthetic policy: real engine, real SQLite store, resumable stages, and
every stage keyed by the settings that produced it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pasture.judges.judge import ProgrammaticJudge
from pasture.records import EvalSet, Instruction
from pasture.store import Store
from pasture.train.core import OptimSettings
from pasture.train.farm import FarmConfig, run_farm
from pasture.train.registry import DPOSettings, TrainSettings
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
    cfg = FarmConfig(
        method="dpo", train=TrainSettings(steps=30, lr=1e-3, batch_size=32), max_new_tokens=MAX_RESPONSE_TOKENS
    )
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
    assert _same(again.row, first.row) and again.stats.history == first.stats.history  # resumed, not retrained
    with Store(store) as s:
        assert s.count_judgments() == n_judgments  # nothing judged twice
    row = json.loads((tmp_path / "work" / "dpo" / "row.json").read_text())
    assert row["win_rate_vs_start"] == first.row.win_rate_vs_start and row["run_identity"] == first.run_identity


def test_a_changed_setting_never_reuses_stale_samples_or_policies(tmp_path: Path) -> None:
    tok = task_tokenizer()
    prompts = make_prompts(200, seed=1)
    sft, _ = train_sft(
        tiny_llama(tok), tok, prompts, demonstrations(prompts, seed=2), optim=OptimSettings(lr=3e-3, steps=15)
    )
    judge = ProgrammaticJudge(oracle_preference, name="oracle")
    train_prompts, eval_prompts = make_prompts(48, seed=11), make_prompts(8, seed=12)
    train_digest = EvalSet(
        name="farm-train", instructions=tuple(Instruction(instruction=p) for p in train_prompts)
    ).digest
    store, work = tmp_path / "farm.db", tmp_path / "work"
    cfg = FarmConfig(
        method="dpo", train=TrainSettings(steps=4, lr=1e-3, batch_size=8), max_new_tokens=MAX_RESPONSE_TOKENS
    )

    def run(c: FarmConfig):  # type: ignore[no-untyped-def]
        result = run_farm(sft, tok, train_prompts, eval_prompts, judge, store, work, c)
        with Store(store) as s:
            return result, s.count_judgments(), sorted(s.generators(train_digest))

    first, n1, gens1 = run(cfg)
    assert len(gens1) == 2 and all(g.startswith("farm/start-") for g in gens1)

    # another β: the same start samples and labels (they do not depend on β), a new training run
    other_beta, n2, gens2 = run(dataclasses.replace(cfg, settings=DPOSettings(beta=0.5)))
    assert gens2 == gens1 and n2 - n1 <= len(eval_prompts)  # only the new policy's evaluation was judged
    assert other_beta.run_identity != first.run_identity and other_beta.generator != first.generator
    assert other_beta.stats.history != first.stats.history  # trained again, not the stored stats
    assert len(list((work / "policies").iterdir())) == 2

    # another seed: new start samples, new labels, new policy
    other_seed, n3, gens3 = run(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=1)))
    assert len(gens3) == 4 and set(gens1) < set(gens3) and n3 > n2 + len(eval_prompts)
    assert other_seed.run_identity not in (first.run_identity, other_beta.run_identity)

    # the first configuration again: everything reused, nothing judged or trained anew
    again, n4, _ = run(cfg)
    assert again.stats.history == first.stats.history and _same(again.row, first.row) and n4 == n3
    assert len(list((work / "policies").iterdir())) == 3


def test_another_flip_rate_reuses_the_samples_and_the_judgments_and_trains_anew(tmp_path: Path) -> None:
    """The judge's verdicts depend on the samples and the judge, not on flip_p (the flips are applied after): a
    changed flip rate pays for no training label again, and trains a new policy on the re-flipped labels."""
    tok = task_tokenizer()
    prompts = make_prompts(200, seed=1)
    sft, _ = train_sft(
        tiny_llama(tok), tok, prompts, demonstrations(prompts, seed=2), optim=OptimSettings(lr=3e-3, steps=15)
    )
    judge = ProgrammaticJudge(oracle_preference, name="oracle")
    train_prompts, eval_prompts = make_prompts(48, seed=11), make_prompts(8, seed=12)
    store, work = tmp_path / "farm.db", tmp_path / "work"
    cfg = FarmConfig(
        method="dpo", train=TrainSettings(steps=4, lr=1e-3, batch_size=8), max_new_tokens=MAX_RESPONSE_TOKENS
    )
    noisy = run_farm(sft, tok, train_prompts, eval_prompts, judge, store, work, cfg)
    with Store(store) as s:
        n1 = s.count_judgments()
    clean = run_farm(sft, tok, train_prompts, eval_prompts, judge, store, work, dataclasses.replace(cfg, flip_p=0.0))
    with Store(store) as s:
        assert s.count_judgments() - n1 <= len(eval_prompts)  # only the new policy's evaluation was judged
    assert clean.label_flips == 0 and noisy.label_flips > 0 and clean.n_pairs == noisy.n_pairs
    assert clean.run_identity != noisy.run_identity and len(list((work / "policies").iterdir())) == 2


def _same(a: object, b: object) -> bool:
    """Rows equal field by field, NaN equal to NaN (an LC that was not identified is NaN in both runs)."""
    from dataclasses import asdict

    import pandas as pd

    return bool(pd.Series(asdict(a)).equals(pd.Series(asdict(b))))  # type: ignore[call-overload]
