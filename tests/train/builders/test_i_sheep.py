"""The i_sheep builder on the real driver and store: self-written instructions, self-rated, kept at score ≥ C, and
the three SFT schedules (which model each round trains from, on which data). The oracle is the round judge here, so
the kept set can be checked exactly; a small policy that learned the instruction-writing mode writes them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from pasture.errors import InputError
from pasture.store import Store
from pasture.train.builders import ISheepSettings
from pasture.train.core import TrainingData
from pasture.train.loop import FixedJudge, LoopConfig, run_loop
from pasture.train.loop_synthetic import oracle_judge
from pasture.train.registry import SFTSettings, TrainSettings, get_method
from pasture.train.synthetic import extended_oracle_score, make_prompts, written_instruction
from pasture.train.tiny import tiny_llama

SEEDS = make_prompts(12, seed=51)
EVAL = make_prompts(6, seed=52)


def _config(rounds: int = 2, **kw: object) -> LoopConfig:
    return LoopConfig(
        builder="i_sheep",
        builder_settings=ISheepSettings(**kw),  # type: ignore[arg-type]
        method="sft",
        settings=SFTSettings(),
        train=TrainSettings(steps=2, lr=1e-3, batch_size=4, seed=0),
        rounds=rounds,
        max_new_tokens=10,
    )


def _round_dirs(work: Path) -> list[Path]:
    return sorted(work.glob("rounds/r*-*"), key=lambda d: d.name)


def _data(d: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((d / "data.json").read_text())


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.allclose(sa[k], sb[k], atol=1e-6) for k in sa)


def _retrained(init: torch.nn.Module, tok, data: dict, cfg: LoopConfig, k: int) -> torch.nn.Module:  # type: ignore[no-untyped-def,type-arg]
    fit = get_method("sft").trainer_function()
    td = TrainingData(prompts=data["prompts"], responses=data["responses"])
    return fit(copy.deepcopy(init), tok, td, SFTSettings(), cfg.round_train(k))[0]


def test_kept_data_are_the_new_well_formed_instructions_rated_at_least_c(tmp_path: Path, writer_start) -> None:  # type: ignore[no-untyped-def]
    model, tok = writer_start
    c = 0.2
    cfg = _config(rounds=1, threshold=c)
    res = run_loop(
        model, tok, SEEDS, EVAL, FixedJudge(oracle_judge()), oracle_judge(), tmp_path / "s.db", tmp_path / "w", cfg
    )
    r0 = _round_dirs(tmp_path / "w")[0]
    assert res.rounds[0].round == 0
    with Store(tmp_path / "s.db") as s:  # one run per store: each label's generator is the one ending in /label
        outs = [o for d, _, _ in s.eval_sets() for o in s.get_outputs(d)]
        written = [o.output for o in outs if o.generator.endswith("/instructions")]
        answers = {o.instruction: o.output for o in outs if o.generator.endswith("/responses")}
    assert len(written) == 2 * len(SEEDS)  # oversample × seed tasks
    new = {x for t in written if (x := written_instruction(t)) is not None and x not in SEEDS}
    assert new and set(answers) == new  # every new well-formed instruction was answered once, nothing else
    expected = {(x, answers[x]) for x in new if extended_oracle_score(x, answers[x]) >= c}
    data = _data(r0)
    assert set(zip(data["prompts"], data["responses"], strict=True)) == expected and len(data["prompts"]) == len(
        expected
    )
    assert res.rounds[0].n_train_examples == len(expected) and res.rounds[0].n_skipped == len(new) - len(expected)
    assert res.rounds[0].sigmoid_weight is None and res.rounds[0].chosen_rejected_gap is None  # SFT data, no pairs
    with pytest.raises(InputError, match="produced no training data"):
        run_loop(
            model,
            tok,
            SEEDS,
            EVAL,
            FixedJudge(oracle_judge()),
            oracle_judge(),
            tmp_path / "s.db",
            tmp_path / "x",
            _config(rounds=1, threshold=1.5),  # nothing scores above 1
        )


@pytest.mark.parametrize("schedule", ["base_on_latest", "continued", "cumulative"])
def test_each_schedule_trains_from_its_model_on_its_data(tmp_path: Path, writer_start, schedule: str) -> None:  # type: ignore[no-untyped-def]
    model, tok = writer_start
    cfg = _config(threshold=0.1, schedule=schedule)
    res = run_loop(
        model, tok, SEEDS, EVAL, FixedJudge(oracle_judge()), oracle_judge(), tmp_path / "s.db", tmp_path / "w", cfg
    )
    r0, r1 = _round_dirs(tmp_path / "w")
    d0, d1 = _data(r0), _data(r1)
    m0 = AutoModelForCausalLM.from_pretrained(r0).eval()
    m1 = AutoModelForCausalLM.from_pretrained(r1).eval()
    assert _same_weights(m0, _retrained(model, tok, d0, cfg, 0))  # round 0 always starts from M0
    init = m0 if schedule == "continued" else model
    assert _same_weights(m1, _retrained(init, tok, d1, cfg, 1))
    assert not _same_weights(m1, _retrained(m0 if init is model else model, tok, d1, cfg, 1))
    if schedule == "cumulative":  # D_0 ∪ D_1: round 1 trains on round 0's data followed by its own
        n0 = len(d0["prompts"])
        assert d1["prompts"][:n0] == d0["prompts"] and d1["responses"][:n0] == d0["responses"]
        assert res.rounds[1].n_train_examples == len(d1["prompts"]) > n0
    else:
        assert res.rounds[1].n_train_examples == len(d1["prompts"])


def test_a_policy_that_cannot_write_instructions_is_a_one_line_error(tmp_path: Path) -> None:
    from pasture.train.synthetic import extended_tokenizer

    tok = extended_tokenizer()
    blank = tiny_llama(tok, hidden_size=32, intermediate_size=64, seed=3).eval()
    with pytest.raises(InputError, match="wrote no well-formed new instruction"):
        run_loop(
            blank,
            tok,
            SEEDS[:3],
            EVAL,
            FixedJudge(oracle_judge()),
            oracle_judge(),
            tmp_path / "s.db",
            tmp_path / "w",
            _config(),
        )
    with pytest.raises(InputError, match="oversample=0"):
        run_loop(
            blank,
            tok,
            SEEDS[:3],
            EVAL,
            FixedJudge(oracle_judge()),
            oracle_judge(),
            tmp_path / "s.db",
            tmp_path / "w",
            _config(oversample=0),
        )


def test_a_cumulative_loop_extended_by_a_round_reads_the_stored_round_back(tmp_path: Path, writer_start) -> None:  # type: ignore[no-untyped-def]
    model, tok = writer_start
    db, work = tmp_path / "s.db", tmp_path / "w"
    judge = FixedJudge(oracle_judge())
    one = run_loop(
        model,
        tok,
        SEEDS,
        EVAL,
        judge,
        oracle_judge(),
        db,
        work,
        _config(rounds=1, threshold=0.1, schedule="cumulative"),
    )
    r0 = _round_dirs(work)[0]
    mtime = (r0 / "stats.json").stat().st_mtime_ns
    two = run_loop(
        model,
        tok,
        SEEDS,
        EVAL,
        judge,
        oracle_judge(),
        db,
        work,
        _config(rounds=2, threshold=0.1, schedule="cumulative"),
    )
    assert two.rounds[0] == one.rounds[0] and (r0 / "stats.json").stat().st_mtime_ns == mtime  # round 0 not redone
    d0, d1 = _data(r0), _data(_round_dirs(work)[1])
    assert d1["prompts"][: len(d0["prompts"])] == d0["prompts"]  # the resumed round 0's data, read from disk
