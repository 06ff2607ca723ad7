"""The farm builder on the driver: a pairwise judge labels two own samples per prompt, verdicts flipped with
probability p; a judge of the wrong kind is a one-line error. The real engine and SQLite store, the exact oracle of
the extended synthetic task as the pairwise judge, a tiny randomly initialised policy (its quality does not matter)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from transformers import PreTrainedTokenizerFast

from pasture.cli import main
from pasture.errors import InputError
from pasture.train.builders import FarmSettings, SelfRewardingSettings
from pasture.train.loop import FixedJudge, LoopConfig, run_loop
from pasture.train.loop_synthetic import oracle_judge, oracle_pair_judge
from pasture.train.registry import DPOSettings, TrainSettings
from pasture.train.synthetic import extended_oracle_score, extended_tokenizer, make_prompts
from pasture.train.tiny import tiny_llama

TRAIN = make_prompts(16, seed=51)
EVAL = make_prompts(10, seed=52)


def _start() -> tuple[torch.nn.Module, PreTrainedTokenizerFast]:
    tok = extended_tokenizer()
    return tiny_llama(tok, hidden_size=32, intermediate_size=64, seed=0).eval(), tok


def _config(flip_p: float) -> LoopConfig:
    return LoopConfig(
        builder="farm",
        builder_settings=FarmSettings(flip_p=flip_p),
        settings=DPOSettings(beta=0.1),
        train=TrainSettings(steps=2, lr=1e-3, batch_size=4, seed=0),
        rounds=1,
        name="farm",
        max_new_tokens=10,
    )


@pytest.mark.parametrize("flip_p", [0.0, 1.0])
def test_pairs_follow_the_judge_and_flip_with_probability_p(tmp_path: Path, flip_p: float) -> None:
    model, tok = _start()
    judge = oracle_pair_judge()
    res = run_loop(
        model, tok, TRAIN, EVAL, FixedJudge(judge), judge, tmp_path / "s.db", tmp_path / "w", _config(flip_p)
    )
    labels = json.loads((res.final_checkpoint / "labels.json").read_text())
    pairs = json.loads((res.final_checkpoint / "data.json").read_text())["pairs"]
    assert pairs and labels["n_pairs"] == len(pairs) == res.rounds[0].n_train_examples
    assert labels["label_flips"] == (len(pairs) if flip_p == 1.0 else 0)
    for x, chosen, rejected in pairs:  # p = 0: the oracle's preference; p = 1: every verdict reversed
        better = extended_oracle_score(x, chosen) > extended_oracle_score(x, rejected)
        assert better is (flip_p == 0.0)
    total = labels["n_pairs"] + labels["n_ties"] + labels["n_failed_labels"] + labels["n_identical"]
    assert total == len(TRAIN) and res.rounds[0].n_skipped == len(TRAIN) - len(pairs)
    row = res.rounds[0]  # the pairwise evaluator: win rate and LC against the start, no pointwise score
    assert 0.0 <= row.win_rate_vs_start <= 100.0 and row.lc_vs_start is not None and math.isnan(row.eval_score)
    assert row.n_failed_eval == 0 and not math.isnan(row.kl_to_reference)


def test_a_judge_of_the_wrong_kind_is_a_one_line_error(tmp_path: Path) -> None:
    model, tok = _start()
    with pytest.raises(InputError, match="builder farm compares two responses"):
        run_loop(
            model,
            tok,
            TRAIN,
            EVAL,
            FixedJudge(oracle_judge()),
            oracle_judge(),
            tmp_path / "a.db",
            tmp_path / "a",
            _config(0.25),
        )
    with pytest.raises(InputError, match="builder self_rewarding scores single responses"):
        cfg = replace(_config(0.25), builder="self_rewarding", builder_settings=SelfRewardingSettings(n=2))
        run_loop(
            model,
            tok,
            TRAIN,
            EVAL,
            FixedJudge(oracle_pair_judge()),
            oracle_judge(),
            tmp_path / "b.db",
            tmp_path / "b",
            cfg,
        )
    with pytest.raises(InputError, match=r"flip_p=1\.5"):
        run_loop(
            model,
            tok,
            TRAIN,
            EVAL,
            FixedJudge(oracle_pair_judge()),
            oracle_pair_judge(),
            tmp_path / "c.db",
            tmp_path / "c",
            _config(1.5),
        )


@pytest.mark.slow
def test_pasture_loop_runs_the_farm_recipe_into_the_methods_table(tmp_path: Path) -> None:
    args = ["loop", "--smoke", "--builder", "farm", "--builder-setting", "flip_p=0.1", "--rounds", "1"]
    res = CliRunner().invoke(
        main, [*args, "--steps", "2", "--lr", "1e-3", "--batch-size", "8", "--workdir", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    row = json.loads((tmp_path / "farm-r0" / "row.json").read_text())
    assert row["builder"] == "farm" and row["n_train_examples"] > 0 and row["lc_vs_start"] is not None
    rep = CliRunner().invoke(main, ["methods", "report", str(tmp_path), "--output", str(tmp_path / "t.csv")])
    assert rep.exit_code == 0, rep.output
    assert "farm r0" in (tmp_path / "t.csv").read_text()
