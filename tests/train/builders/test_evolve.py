"""The evolve builder on the real driver and store: direct samples plus a filtered refinement chain, the pairs
(x, better ≻ worse) and (refine(x, worse), better ≻ worse), and the exposure-matched baseline (the refine prompts
as SFT demonstrations in the same budget). The oracle is the round judge, so the pool and the filter can be
recomputed exactly from the stored samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pasture.errors import InputError
from pasture.store import Store
from pasture.train.builders import EvolveSettings
from pasture.train.builders.evolve import refinable
from pasture.train.loop import FixedJudge, LoopConfig, run_loop
from pasture.train.loop_synthetic import oracle_judge
from pasture.train.registry import DPOSettings, TrainSettings
from pasture.train.synthetic import extended_oracle_score, make_prompts, refine_prompt

TRAIN = make_prompts(12, seed=61)
EVAL = make_prompts(6, seed=62)


def _config(**kw: object) -> LoopConfig:
    return LoopConfig(
        builder="evolve",
        builder_settings=EvolveSettings(**kw),  # type: ignore[arg-type]
        settings=DPOSettings(beta=0.1),
        train=TrainSettings(steps=4, lr=1e-3, batch_size=4, seed=0),
        rounds=1,
        max_new_tokens=10,
    )


def _stored(db: Path, label: str) -> dict[str, list[str]]:
    """The stored samples of ``label`` (one run per store: its generator is the one ending in ``/label``)."""
    out: dict[str, list[str]] = {}
    with Store(db) as s:
        for d, _, _ in s.eval_sets():
            for g in (g for g in s.generators(d) if g.endswith(f"/{label}")):
                for o in sorted(s.get_outputs(d, g), key=lambda o: o.sample_index):
                    out.setdefault(o.instruction, []).append(o.output)
    return out


def test_pairs_are_best_and_worst_of_the_samples_and_the_filtered_chain(tmp_path: Path, writer_start) -> None:  # type: ignore[no-untyped-def]
    model, tok = writer_start
    db = tmp_path / "s.db"
    res = run_loop(
        model, tok, TRAIN, EVAL, FixedJudge(oracle_judge()), oracle_judge(), db, tmp_path / "w", _config(n=3, chain=1)
    )
    direct = _stored(db, "policy")
    chain = _stored(db, "chain1")
    expected = []
    for x in TRAIN:
        pool = list(direct[x])
        y0 = direct[x][0]
        r = refinable(x, y0)
        if r is not None:
            (y1,) = chain[r]  # the chain step answered the refine prompt of the first sample
            if extended_oracle_score(x, y1) > extended_oracle_score(x, y0):  # the filter
                pool.append(y1)
        scores = [extended_oracle_score(x, y) for y in pool]
        b, w = pool[scores.index(max(scores))], pool[scores.index(min(scores))]
        if max(scores) > min(scores) and b != w:
            expected.append([x, b, w])
            if refinable(x, w) is not None:
                expected.append([refine_prompt(x, w), b, w])
    assert chain, "no chain step was sampled"
    data = json.loads(next(iter((tmp_path / "w").glob("rounds/r0-*/data.json"))).read_text())
    assert data["pairs"] == expected and data["aux_prompts"] == []
    assert any(p[0] != q for p in expected for q in TRAIN)  # refine pairs are among them
    row = res.rounds[0]
    assert row.n_train_examples == len(expected) and row.judge_gap is not None and row.judge_gap > 0
    assert row.sigmoid_weight is not None and 0 < row.sigmoid_weight < 1


def test_the_sft_baseline_sees_the_same_refine_prompts_as_demonstrations_in_the_same_budget(
    tmp_path: Path,
    writer_start,  # type: ignore[no-untyped-def]
) -> None:
    model, tok = writer_start
    db = tmp_path / "s.db"
    dpo = run_loop(
        model, tok, TRAIN, EVAL, FixedJudge(oracle_judge()), oracle_judge(), db, tmp_path / "a", _config(n=3, chain=1)
    )
    sft = run_loop(
        model,
        tok,
        TRAIN,
        EVAL,
        FixedJudge(oracle_judge()),
        oracle_judge(),
        db,
        tmp_path / "b",
        _config(n=3, chain=1, refine_objective="sft"),
    )
    a = json.loads(next(iter((tmp_path / "a").glob("rounds/r0-*/data.json"))).read_text())
    b = json.loads(next(iter((tmp_path / "b").glob("rounds/r0-*/data.json"))).read_text())
    refine_pairs = [p for p in a["pairs"] if p[0] not in TRAIN]
    assert b["pairs"] == [p for p in a["pairs"] if p[0] in TRAIN]  # the same samples: the same direct pairs
    assert b["aux_prompts"] == [p[0] for p in refine_pairs] and b["responses"] == []
    stats = json.loads(next(iter((tmp_path / "b").glob("rounds/r0-*/stats.json"))).read_text())
    assert stats["method"] == "dpo+sft" and stats["steps"] == 4  # the round's steps, split between the two
    assert dpo.rounds[0].n_train_examples == sft.rounds[0].n_train_examples


def test_bad_evolve_settings_are_one_line_errors(tmp_path: Path, writer_start) -> None:  # type: ignore[no-untyped-def]
    model, tok = writer_start
    for kw, msg in (({"n": 1}, "n=1"), ({"chain": -1}, "chain=-1")):
        with pytest.raises(InputError, match=msg):
            run_loop(
                model,
                tok,
                TRAIN,
                EVAL,
                FixedJudge(oracle_judge()),
                oracle_judge(),
                tmp_path / "s.db",
                tmp_path / "w",
                _config(**kw),
            )
