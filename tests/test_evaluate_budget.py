"""Budget-aware evaluation: the rule runs on the prefix of the seeded order, buys fewer than N judgments, gives
what the pure stopping rules give on that order, retries failures instead of skipping them, and resumes free."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pasture.annotate import EngineSettings
from pasture.cli import main
from pasture.errors import InputError
from pasture.evalsets import alpaca_eval_reference, alpaca_eval_set
from pasture.evaluate import BudgetRule, evaluate_budgeted
from pasture.io import read_model_outputs
from pasture.judges import ProgrammaticJudge, longer_output_wins
from pasture.metrics.sequential import run_to_decision, run_to_width, seeded_order
from pasture.records import EvalSet, ModelOutput
from pasture.store import Store

REF = "results/gpt4_1106_preview/model_outputs.json.gz"


@pytest.fixture(scope="module")
def data(alpacaeval: Path) -> tuple[EvalSet, list[ModelOutput], dict[str, list[ModelOutput]]]:
    ref_file = alpacaeval / REF
    models = {
        m: read_model_outputs(alpacaeval / "results" / m / "model_outputs.json.gz") for m in ("alpaca-7b", "claude-2")
    }
    return alpaca_eval_set(ref_file), alpaca_eval_reference(ref_file), models


def _x(eval_set: EvalSet, reference: list[ModelOutput], outputs: list[ModelOutput], seed: int) -> np.ndarray:
    """preference - 1 of the length judge, per instruction in the seeded order, computed without the engine."""
    ref = {o.instruction: o.output for o in reference}
    out = {o.instruction: o.output for o in outputs}
    texts = eval_set.texts()
    return np.array(
        [longer_output_wins(t, ref[t], out[t]) - 1 for t in (texts[i] for i in seeded_order(len(texts), seed))]
    )


def test_target_ci_stops_on_the_prefix_with_fewer_calls_and_resumes_free(data, tmp_path: Path) -> None:
    eval_set, reference, models = data
    judge = ProgrammaticJudge(longer_output_wins)
    rule = BudgetRule(target_ci=10.0, seed=3, chunk=40)
    with Store(tmp_path / "s.db") as store:
        run = evaluate_budgeted(
            store, eval_set=eval_set, model_outputs=models["claude-2"], reference_outputs=reference,
            judge=judge, rule=rule, progress=False,
        )  # fmt: skip
        expected = run_to_width(_x(eval_set, reference, models["claude-2"], 3), 805, half_width=10.0)
        assert expected.stopped and run.sequential == expected
        assert run.sequential.n_used < 805
        assert run.n_judged == math.ceil(expected.n_used / 40) * 40 < 805
        assert run.calls == run.n_judged == store.count_judgments()  # one call per judgment, none past the round
        assert run.calls_saved == 805 - run.n_judged and run.n_failed == 0
        row = run.evaluation.board.frame.loc["claude-2"]
        assert row.n_used == expected.n_used and row.calls_saved == run.calls_saved
        assert row.n_total == run.n_judged
        stored = next(r for r in store.runs() if r.id == run.evaluation.run_ids["claude-2"])
        assert stored.manifest.inputs["budget_seed"] == "3" and stored.result["budget_n_used"] == expected.n_used
        again = evaluate_budgeted(
            store, eval_set=eval_set, model_outputs=models["claude-2"], reference_outputs=reference,
            judge=judge, rule=rule, progress=False,
        )  # fmt: skip
        assert again.calls == 0 and again.sequential == run.sequential and again.n_judged == run.n_judged
        other_seed = evaluate_budgeted(
            store, eval_set=eval_set, model_outputs=models["claude-2"], reference_outputs=reference,
            judge=judge, rule=BudgetRule(target_ci=10.0, seed=4, chunk=40), progress=False,
        )  # fmt: skip
        assert other_seed.sequential == run_to_width(_x(eval_set, reference, models["claude-2"], 4), 805, half_width=10)


def test_decide_against_a_model_judged_along_and_then_one_in_the_store(data, tmp_path: Path) -> None:
    eval_set, reference, models = data
    judge = ProgrammaticJudge(longer_output_wins)
    rule = BudgetRule(decide_against="alpaca-7b", seed=5, chunk=24)
    x_a = _x(eval_set, reference, models["claude-2"], 5)
    x_b = _x(eval_set, reference, models["alpaca-7b"], 5)
    with Store(tmp_path / "s.db") as store:
        run = evaluate_budgeted(
            store, eval_set=eval_set, model_outputs=models["claude-2"], reference_outputs=reference, judge=judge,
            rule=rule, against_outputs=models["alpaca-7b"], progress=False,
        )  # fmt: skip
        expected = run_to_decision(x_a, x_b, 805)
        assert expected.stopped and run.sequential == expected
        assert run.sequential.decision == np.sign(x_a.mean() - x_b.mean()) != 0  # agrees with the full run
        assert run.calls == 2 * run.n_judged < 2 * 805
        assert set(run.evaluation.run_ids) == {"claude-2", "alpaca-7b"}
        # the same decision with alpaca-7b read from the store: its judgments are all cached, claude-2's too
        again = evaluate_budgeted(
            store, eval_set=eval_set, model_outputs=models["claude-2"], reference_outputs=reference, judge=judge,
            rule=rule, progress=False,
        )  # fmt: skip
        assert again.calls == 0 and again.sequential == expected


def test_a_failed_judgment_ends_the_prefix_until_a_later_round_retries_it(data, tmp_path: Path) -> None:
    eval_set, reference, models = data
    texts = eval_set.texts()
    flaky = texts[int(seeded_order(len(texts), 3)[12])]  # the 13th instruction of the order fails once
    failures = {"left": 1}

    def flaky_longer(instruction: str, output_1: str, output_2: str) -> float | None:
        if instruction == flaky and failures["left"]:
            failures["left"] -= 1
            return None  # a parse error: stored, counted, retried by the next round
        return longer_output_wins(instruction, output_1, output_2)

    judge = ProgrammaticJudge(flaky_longer, version="flaky-longer-1")
    with Store(tmp_path / "s.db") as store:
        run = evaluate_budgeted(
            store, eval_set=eval_set, model_outputs=models["claude-2"], reference_outputs=reference, judge=judge,
            rule=BudgetRule(target_ci=10.0, seed=3, chunk=40), settings=EngineSettings(parse_retries=0),
            progress=False,
        )  # fmt: skip
    assert run.sequential == run_to_width(_x(eval_set, reference, models["claude-2"], 3), 805, half_width=10.0)
    assert run.calls == run.n_judged + 1 and run.n_failed == 0 and run.rounds >= 2


def test_a_judgment_that_keeps_failing_stops_the_rule_short_of_it(data, tmp_path: Path) -> None:
    eval_set, reference, models = data
    small = EvalSet(name="first-60", instructions=eval_set.instructions[:60])
    keep = set(small.texts())
    texts = small.texts()
    broken = texts[int(seeded_order(60, 0)[4])]

    def broken_longer(instruction: str, output_1: str, output_2: str) -> float | None:
        return None if instruction == broken else longer_output_wins(instruction, output_1, output_2)

    with Store(tmp_path / "s.db") as store:
        run = evaluate_budgeted(
            store, eval_set=small,
            model_outputs=[o for o in models["claude-2"] if o.instruction in keep],
            reference_outputs=[o for o in reference if o.instruction in keep],
            judge=ProgrammaticJudge(broken_longer, version="broken-1"),
            rule=BudgetRule(target_ci=1.0, chunk=20), settings=EngineSettings(parse_retries=0), progress=False,
        )  # fmt: skip
    assert run.sequential is not None and not run.sequential.stopped
    assert run.sequential.n_used == 4 and run.n_failed == 1 and run.n_judged == 60  # counted, not skipped
    assert run.evaluation.board.frame.loc["claude-2"].n_failed == 1


def test_budget_rule_errors_name_the_setting(data, tmp_path: Path) -> None:
    eval_set, reference, models = data
    with pytest.raises(InputError, match="exactly one"):
        BudgetRule().validate()
    with pytest.raises(InputError, match="target_ci"):
        BudgetRule(target_ci=0).validate()
    renamed = [o.model_copy(update={"generator": reference[0].generator}) for o in models["claude-2"]]
    with Store(tmp_path / "s.db") as store, pytest.raises(InputError, match="both the reference and a model"):
        evaluate_budgeted(
            store, eval_set=eval_set, model_outputs=renamed, reference_outputs=reference,
            judge=ProgrammaticJudge(longer_output_wins), rule=BudgetRule(target_ci=5), progress=False,
        )  # fmt: skip
    with Store(tmp_path / "s.db") as store, pytest.raises(InputError, match="no outputs of 'nobody'"):
        evaluate_budgeted(
            store, eval_set=eval_set, model_outputs=models["claude-2"], reference_outputs=reference,
            judge=ProgrammaticJudge(longer_output_wins), rule=BudgetRule(decide_against="nobody"), progress=False,
        )  # fmt: skip


def test_cli_target_ci_shows_the_calls_saved(alpacaeval: Path, tmp_path: Path) -> None:
    args = [
        "evaluate", str(alpacaeval / "results/claude-2/model_outputs.json.gz"),
        "--eval-set", "alpaca_eval", "--alpaca-eval-file", str(alpacaeval / REF),
        "--judge", "longer-wins", "--target-ci", "10", "--order-seed", "3",
        "--store", str(tmp_path / "s.db"), "--no-progress", "--report", str(tmp_path / "report"),
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "budget rule target_ci=10 (order seed 3" in result.output and "645 judgments saved" in result.output
    html = Path(result.output.split("report: ")[1].split()[0]).read_text()
    assert "calls saved" in html and "n used (budget)" in html
