"""`pasture gamed-baselines` on the demo eval set with the bundled SmolLM2 (in process): both variants are
generated and judged against the reference, stored for LC, and a rerun makes no call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pasture.cli import main
from pasture.evalsets import demo_eval_set
from pasture.evaluate import evaluate
from pasture.gamed_baselines import (
    CONCISE_PROMPT,
    GAMED_ROW_COLUMNS,
    GAMED_RUN_KIND,
    VERBOSE_PROMPT,
    gamed_rows,
    make_gamed_baselines,
)
from pasture.judges import get_judge
from pasture.leaderboard import BoardKey, boards, leaderboard
from pasture.providers.base import ChatRequest, Completion
from pasture.records import EvalSet, Instruction, ModelOutput
from pasture.store import Store, outputs_digest

LIMIT = 3
SAMPLING = ["--max-tokens", "16", "--temperature", "0", "--no-progress"]


@pytest.mark.slow
def test_gamed_baselines_are_made_judged_stored_and_cached(smollm2_gguf: Path, tmp_path: Path) -> None:
    store_path = tmp_path / "s.db"
    runner = CliRunner()
    common = ["--model", "smollm2", "--eval-set", "demo", "--limit", str(LIMIT), "--store", str(store_path)]
    made = runner.invoke(main, ["generate", *common, "--name", "smol-ref", *SAMPLING])
    assert made.exit_code == 0, made.output
    args = ["gamed-baselines", *common, "--reference-generator", "smol-ref", "--judge", "smollm2-logprob", *SAMPLING]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert f"{2 * LIMIT} outputs generated now" in first.output

    eval_set = demo_eval_set(LIMIT)
    with Store(store_path) as store:
        es = eval_set.digest
        for name in ("smol-ref_verbose", "smol-ref_concise"):
            outs = store.get_outputs(es, name)
            assert sorted(o.instruction for o in outs) == sorted(eval_set.texts())
        runs = store.runs(kinds=[GAMED_RUN_KIND])
        assert sorted(r.generator for r in runs) == ["smol-ref_concise", "smol-ref_verbose"]
        (judge_digest,) = {r.judge_digest for r in runs}
        reference = store.get_outputs(es, "smol-ref")
        key = BoardKey(es, outputs_digest(reference), judge_digest)
        rows = gamed_rows(store, key)
        # gamed variants are on the board's record for LC, not members of the board
        assert boards(store).empty
        n_judgments = store.count_judgments()
    assert list(rows.columns) == GAMED_ROW_COLUMNS
    assert sorted(rows["model"].unique()) == ["smol-ref_concise", "smol-ref_verbose"]
    # every (variant, instruction) has a row unless its verdict failed (failed ones are not LC rows)
    assert rows.groupby("model").size().le(LIMIT).all() and len(rows) >= 1
    assert rows["preference"].between(1, 2).all()
    ref_len = {o.instruction: len(o.output) for o in reference}
    assert all(ref_len[i] == n for i, n in zip(rows["instruction"], rows["len_1"], strict=True))

    again = runner.invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "0 outputs generated now, 0 judged now (0 judge calls" in again.output
    with Store(store_path) as store:
        assert store.count_judgments() == n_judgments


def test_gamed_baselines_refuse_a_system_prompt(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["gamed-baselines", "--model", "smollm2", "--reference-generator", "r", "--system-prompt", "x",
         "--store", str(tmp_path / "s.db")],
    )  # fmt: skip
    assert result.exit_code == 2 and "set their own system prompts" in result.output


def test_a_whole_reference_file_serves_limit_as_in_evaluate(tmp_path: Path) -> None:
    # The reference file answers all of the demo set; --limit 2 keeps two instructions. The file must be
    # checked against the whole set and cut (as `pasture evaluate` does), not refused row by row. The run then
    # stops at the next step, the model (a missing GGUF), which shows the reference was accepted.
    ref = tmp_path / "ref.json"
    rows = [{"instruction": t, "output": "a reference answer", "generator": "ref"} for t in demo_eval_set().texts()]
    ref.write_text(json.dumps(rows), encoding="utf-8")
    args = ["gamed-baselines", "--model", str(tmp_path / "missing.gguf"), "--eval-set", "demo", "--limit", "2",
            "--reference", str(ref), "--store", str(tmp_path / "s.db"), "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert "not in eval set" not in result.output and "GGUF file not found" in result.output, result.output


class _Styled:
    """A deterministic model for the wiring test: its answer's length follows the system prompt it is given
    (verbose -> long, concise -> short), as a prompted reference's does."""

    name = "styled"
    model = "styled-v1"

    def identity(self) -> dict[str, object]:
        return {"model": self.model, "weights_digest": None}

    async def complete(self, request: ChatRequest) -> Completion:
        system = next((m["content"] for m in request.messages if m["role"] == "system"), "")
        question = request.messages[-1]["content"]
        words = 120 if system == VERBOSE_PROMPT else 3 if system == CONCISE_PROMPT else 30
        return Completion(text=" ".join([question.split()[0]] * words))


def test_the_boards_judged_gamed_rows_enter_its_lc_fit(tmp_path: Path) -> None:
    """After `gamed-baselines`, the board's LC uses those judged rows (not none, not shipped), and says so."""
    instructions = [f"Question {i}: name {i} things about topic {i % 5}." for i in range(24)]
    eval_set = EvalSet(name="tiny", instructions=tuple(Instruction(instruction=t) for t in instructions))
    reference = [
        ModelOutput(instruction=t, output="x " * (20 + 3 * i), generator="ref") for i, t in enumerate(instructions)
    ]
    model = [
        ModelOutput(instruction=t, output="y " * (10 + 7 * (i % 6)), generator="m") for i, t in enumerate(instructions)
    ]
    judge = get_judge("longer-wins")
    with Store(tmp_path / "s.db") as store:
        evaluate(
            store, eval_set=eval_set, model_outputs=model, reference_outputs=reference, judge=judge, progress=False
        )
        key = BoardKey(eval_set.digest, outputs_digest(reference), judge.fingerprint.digest)
        before = leaderboard(store, key, bootstrap_resamples=0)
        assert any("gamed baselines=none" in n for n in before.notes), before.notes
        made = make_gamed_baselines(
            store, eval_set=eval_set, reference_outputs=reference, provider=_Styled(), judge=judge, progress=False
        )
        assert made.annotation.ok
        rows = gamed_rows(store, key)
        after = leaderboard(store, key, bootstrap_resamples=0)
    # verbose variants are longer than the reference, so the longer-output judge prefers them; concise ones lose
    assert set(rows["model"]) == {"ref_verbose", "ref_concise"} and len(rows) == 2 * len(instructions)
    assert (rows.loc[rows["model"] == "ref_verbose", "preference"] == 2.0).all()
    assert (rows.loc[rows["model"] == "ref_concise", "preference"] == 1.0).all()
    assert any("gamed baselines=judged" in n for n in after.notes), after.notes
    assert list(after.frame.index) == ["m"]  # the variants inform the fit; they are not board members
