"""evaluate: official annotations reused with no judge call; only new models judged; one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from pasture.annotate import EngineSettings
from pasture.cli import main
from pasture.errors import InputError
from pasture.evalsets import alpaca_eval_reference, alpaca_eval_set
from pasture.evaluate import check_outputs, evaluate, load_reference_outputs
from pasture.io import read_annotations, read_model_outputs
from pasture.leaderboard import leaderboard, resolve_key
from pasture.local_models import free_port
from pasture.records import EvalSet, Instruction, ModelOutput
from pasture.store import Store
from pasture.transfer import import_annotations

OFFICIAL = "weighted_alpaca_eval_gpt4_turbo"


def _models(alpacaeval: Path) -> list[str]:
    return sorted(p.parent.parent.name for p in alpacaeval.glob(f"results/*/{OFFICIAL}/annotations.json.gz"))


def _max_shift(alpacaeval: Path, models: list[str]) -> dict[str, float]:
    """Per model: how far (in win-rate points) its score may move because a verdict came from another file.

    AlpacaEval judged some identical (instruction, reference, output) pairs once per model, sometimes with
    slightly different soft verdicts. A judgment key has no generator in it, so the store keeps one verdict per
    key: the first imported (files are imported in this order). A model's shift is therefore bounded by
    100 * sum |first verdict - its own verdict| / n; it is 0 for models whose verdicts are all their own.
    """
    first: dict[str, float | None] = {}
    own: dict[str, list[tuple[str, float | None]]] = {}
    for m in models:
        judgments = read_annotations(alpacaeval / "results" / m / OFFICIAL / "annotations.json.gz")
        own[m] = [(j.key, j.preference) for j in judgments]
        for j in judgments:
            first.setdefault(j.key, j.preference)
    return {m: 100 * sum(abs((first[k] or 0) - (p or 0)) for k, p in rows) / len(rows) for m, rows in own.items()}


def _closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there: any judge call would fail


@pytest.mark.slow
def test_evaluate_reuses_imported_official_annotations_without_a_judge_call(alpacaeval: Path, tmp_path: Path) -> None:
    from pasture.judges import get_judge

    models = _models(alpacaeval)
    assert len(models) >= 10
    ref_file = alpacaeval / "results/gpt4_1106_preview/model_outputs.json.gz"
    with Store(tmp_path / "s.db") as store:
        import_annotations(store, [alpacaeval / "results" / m / OFFICIAL / "annotations.json.gz" for m in models])
        n_before = store.count_judgments()
        judge = get_judge(
            OFFICIAL, template=str(alpacaeval / "judge_config/alpaca_eval_clf.txt"), base_url=_closed_port_url()
        )
        outputs: list[ModelOutput] = []
        names: dict[str, str] = {}
        for m in models:
            rows = read_model_outputs(alpacaeval / "results" / m / "model_outputs.json.gz")
            names[rows[0].generator] = m  # NullModel's file names its generator 'example'
            outputs += rows
        result = evaluate(
            store,
            eval_set=alpaca_eval_set(ref_file),
            model_outputs=outputs,
            reference_outputs=alpaca_eval_reference(ref_file),
            judge=judge,
            settings=EngineSettings(max_retries=0),
            progress=False,
        )
        assert result.annotation.calls == 0 and result.annotation.n_new == 0
        assert result.annotation.n_cached == result.annotation.n_judgments
        assert store.count_judgments() == n_before
    official = pd.read_csv(alpacaeval / "leaderboards/alpaca_eval_2_leaderboard.csv", index_col=0)
    frame = result.board.frame
    shift = _max_shift(alpacaeval, models)
    assert sum(v == 0 for v in shift.values()) >= 6
    for generator, row in frame.iterrows():
        name = names[str(generator)]
        ref = official.loc[name]
        assert row.n_total == ref.n_total == 805 and row.n_failed == 0
        assert (row.n_wins, row.n_wins_base, row.n_draws) == (ref.n_wins, ref.n_wins_base, ref.n_draws), name
        tolerance = 1e-6 + shift[name]  # exact (1e-6) where every verdict is the model's own
        assert abs(row.win_rate - ref.win_rate) <= tolerance, (name, row.win_rate, ref.win_rate, shift[name])
        assert shift[name] < 5e-3
        assert abs(row.standard_error - ref.standard_error) <= 1e-6 + 10 * shift[name]
        assert row.avg_length == ref.avg_length


@pytest.mark.slow
def test_cli_evaluate_on_shared_outputs_makes_no_judge_call(alpacaeval: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    runner = CliRunner()
    models = ["alpaca-7b", "claude-2"]
    files = [str(alpacaeval / "results" / m / OFFICIAL / "annotations.json.gz") for m in models]
    assert runner.invoke(main, ["import", *files, "--store", str(store)]).exit_code == 0
    args = [
        "evaluate",
        *(str(alpacaeval / "results" / m / "model_outputs.json.gz") for m in models),
        "--eval-set", "alpaca_eval",
        "--alpaca-eval-file", str(alpacaeval / "results/gpt4_1106_preview/model_outputs.json.gz"),
        "--judge", OFFICIAL,
        "--judge-template", str(alpacaeval / "judge_config/alpaca_eval_clf.txt"),
        "--judge-base-url", _closed_port_url(),
        "--max-retries", "0",
        "--store", str(store),
        "--no-progress",
    ]  # fmt: skip
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "\n0 calls" in result.output and " cached, 0 new" in result.output
    out = runner.invoke(main, ["leaderboard", "--store", str(store), "-o", str(tmp_path / "board.csv")])
    assert out.exit_code == 0, out.output
    board = pd.read_csv(tmp_path / "board.csv", index_col=0)
    assert board.loc["claude-2", "win_rate"] == pytest.approx(17.188240356708075, abs=1e-9)
    assert board.loc["alpaca-7b", "win_rate"] == pytest.approx(2.591450540223603, abs=1e-5)


TINY = EvalSet(
    name="tiny",
    instructions=(
        Instruction(instruction="Name a fruit.", dataset="a"),
        Instruction(instruction="Say hi.", dataset="b"),
        Instruction(instruction="2+2?", dataset="b"),
    ),
)
REF = [
    ModelOutput(instruction=t, output=o, generator="ref")
    for t, o in zip(TINY.texts(), ["Apple.", "Hi.", "4"], strict=False)
]


def _outs(generator: str, texts: list[str]) -> list[ModelOutput]:
    return [
        ModelOutput(instruction=t, output=o, generator=generator) for t, o in zip(TINY.texts(), texts, strict=False)
    ]


@pytest.mark.slow
@pytest.mark.model
def test_evaluate_judges_only_what_is_new(tmp_path: Path, llama_server: Any, check_board: Any) -> None:
    from pasture.judges import get_judge

    judge = get_judge("smollm2-logprob-server", base_url=llama_server.base_url)
    a = _outs("model-a", ["Banana.", "Hello!", "4."])
    b = _outs("model-b", ["A pear.", "Hey.", "Four."])
    with Store(tmp_path / "s.db") as store:
        first = evaluate(store, eval_set=TINY, model_outputs=a, reference_outputs=REF, judge=judge, progress=False)
        assert first.annotation.calls >= 3 and first.annotation.n_new == 3
        second = evaluate(store, eval_set=TINY, model_outputs=b, reference_outputs=REF, judge=judge, progress=False)
        assert second.annotation.n_new == 3 and second.annotation.n_cached == 0
        again = evaluate(store, eval_set=TINY, model_outputs=a, reference_outputs=REF, judge=judge, progress=False)
        assert again.annotation.calls == 0 and again.annotation.n_cached == 3
        board = leaderboard(store, resolve_key(store))
    check_board(board.frame, board.judgments, {"model-a": 3, "model-b": 3})
    assert len(board.judgments) == 6 and {j.judge_name for j in board.judgments} == {"smollm2-logprob-server"}
    assert board.manifests["model-a"]["inputs"]["reference_generator"] == "ref"


def test_outputs_must_match_the_eval_set() -> None:
    with pytest.raises(InputError, match=r"eval-set mismatch: 1 of 1 model outputs answer instructions"):
        check_outputs(TINY, [ModelOutput(instruction="other", output="x", generator="g")], role="model")
    with pytest.raises(InputError, match=r"eval-set mismatch: model 'g' has no output for 2 of 3"):
        check_outputs(TINY, _outs("g", ["x"]), role="model")


def test_reference_and_model_names_must_differ(tmp_path: Path) -> None:
    from pasture.judges import get_judge

    judge = get_judge("longer-wins")
    with Store(tmp_path / "s.db") as store, pytest.raises(InputError, match="both the reference and a model"):
        evaluate(store, eval_set=TINY, model_outputs=_outs("ref", ["a", "b", "c"]), reference_outputs=REF, judge=judge)


def test_programmatic_judge_end_to_end_with_report(tmp_path: Path, check_board: Any) -> None:
    """The whole CLI path with a judge that needs no model: files in, board and report out."""
    from pasture.io import write_model_outputs

    write_model_outputs(REF, tmp_path / "ref.json")
    write_model_outputs(_outs("long", ["A ripe banana.", "Hello there!", "It is 4."]), tmp_path / "long.json")
    write_model_outputs(_outs("short", ["Fig", "Yo", "4"]), tmp_path / "short.json")
    import json

    (tmp_path / "tiny.jsonl").write_text("".join(json.dumps(i.model_dump()) + "\n" for i in TINY.instructions))
    common = ["--eval-set", str(tmp_path / "tiny.jsonl"), "--reference", str(tmp_path / "ref.json"),
              "--judge", "longer-wins", "--store", str(tmp_path / "s.db"), "--no-progress"]  # fmt: skip
    runner = CliRunner()
    r = runner.invoke(main, ["evaluate", str(tmp_path / "long.json"), *common])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["evaluate", str(tmp_path / "short.json"), *common, "--report", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    with Store(tmp_path / "s.db") as store:
        board = leaderboard(store, resolve_key(store))
    frame = board.frame
    check_board(frame, board.judgments, {"long": 3, "short": 3})
    # longer-wins: 'long' is longer than the reference on all 3; 'short' on none ("4" vs "4" is a tie)
    assert frame.loc["long", "win_rate"] == pytest.approx(100.0)
    assert frame.loc["short", "win_rate"] == pytest.approx(100 * 0.5 / 3)
    assert (tmp_path / "r.html").is_file()


def test_reference_outputs_from_each_source(alpacaeval: Path, tmp_path: Path) -> None:
    """One place picks a board's reference (evaluate and gamed-baselines): the store, a file, or the official one."""
    from pasture.io import write_model_outputs

    two = EvalSet(name="two", instructions=TINY.instructions[:2])
    write_model_outputs(REF, tmp_path / "ref.json")
    with Store(tmp_path / "s.db") as store:
        # a file made for the whole set serves a subset when checked against the whole set, and is cut to it
        got = load_reference_outputs(store, two, reference_path=tmp_path / "ref.json", file_eval_set=TINY)
        assert got == REF[:2]
        with pytest.raises(InputError, match="instruction not in eval set 'two'"):
            load_reference_outputs(store, two, reference_path=tmp_path / "ref.json")
        # the store: the generator's outputs on this eval set, or a one-line error naming the store
        with pytest.raises(InputError, match=r"no outputs of 'ref' on eval set 'two' in .*s\.db"):
            load_reference_outputs(store, two, reference_generator="ref")
        store.put_outputs(two.digest, REF[:2])
        assert [(o.instruction, o.output) for o in load_reference_outputs(store, two, reference_generator="ref")] == [
            (o.instruction, o.output) for o in REF[:2]
        ]
        # AlpacaEval 2's reference, cut to the instructions of the eval set asked for
        official = alpaca_eval_reference(alpacaeval / "results/gpt4_1106_preview/model_outputs.json.gz")
        first = EvalSet(name="first", instructions=tuple(Instruction(instruction=o.instruction) for o in official[:5]))
        got = load_reference_outputs(
            store, first, official=True, alpaca_eval_file=alpacaeval / "results/gpt4_1106_preview/model_outputs.json.gz"
        )
        assert got == official[:5]
        with pytest.raises(InputError, match="not both"):
            load_reference_outputs(store, two, reference_generator="ref", reference_path=tmp_path / "ref.json")
        with pytest.raises(InputError, match="give the reference outputs"):
            load_reference_outputs(store, two)
