"""LC pinned on real data: AlpacaEval 0.6.6's own numbers on identical inputs, and the official board."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pasture.errors import InputError
from pasture.metrics.difficulty import estimate_difficulty, read_difficulty_file
from pasture.metrics.gamed import read_glm_weights, read_official_gamed, write_official_gamed
from pasture.metrics.lc import LCInputs, LCResult, build_design, length_controlled_winrate
from pasture.metrics.lc_inputs import prepare_lc_inputs

# AlpacaEval 0.6.6's get_length_controlled_winrate on each model's rows in file order, fed pasture's
# estimated difficulty and rebuilt gamed rows (benchmarks/lc_exactness.py wrote these; the peer is not
# needed to check them). For the six incomplete files AlpacaEval's positional lookup misaligns difficulty.
PEER_LC = {
    "FuseChat-Gemma-2-9B-Instruct": 69.9908383338,
    "FuseChat-Llama-3.1-8B-Instruct": 65.408542112,
    "FuseChat-Llama-3.2-1B-Instruct": 24.6555482563,
    "FuseChat-Llama-3.2-3B-Instruct": 53.8066675378,
    "FuseChat-Qwen-2.5-7B-Instruct": 63.315497746,
    "Mixtral-8x7B-Instruct-v0.1_concise": 25.1712064007,
    "NullModel": 87.0798932734,
    "OpenHermes-2.5-Mistral-7B": 17.3262408528,
    "Qwen-14B-Chat": 13.0690982299,
    "alpaca-7b": 5.8216105816,
    "alpaca-7b_concise": 4.6319425785,
    "alpaca-7b_verbose": 7.120281934,
    "alpaca-farm-ppo-human": 6.7149307226,
    "alpaca-farm-ppo-sim-gpt4-20k": 7.0972401738,
    "baize-v2-13b": 7.0668765714,
    "chatglm2-6b": 4.6169029905,
    "claude": 29.8794311117,
    "claude-2": 30.9806952467,
    "claude-2.1": 27.6072581728,
    "claude-2.1_concise": 19.4598763796,
    "claude-instant-1.2": 27.6288115254,
    "falcon-40b-instruct": 5.8937630432,
    "falcon-7b-instruct": 3.9436505923,
    "gemma-2b-it": 5.6463027021,
    "gemma-7b-it": 10.7365269178,
    "gpt-3.5-turbo-0301": 19.1918184113,
    "gpt-3.5-turbo-1106": 20.9521390019,
    "gpt-3.5-turbo-1106_concise": 15.9886298166,
    "gpt-3.5-turbo-1106_verbose": 24.4696849256,
    "gpt35_turbo_instruct": 18.3623582665,
    "gpt4_0613_concise": 23.3200798871,
    "gpt4_1106_preview": 50.0,
    "gpt4_gamed": 14.1172651036,
    "humpback-llama2-70b": 17.4344438979,
    "jina-chat": 17.0994066914,
    "minichat-3b": 5.8596188331,
    "minotaur-13b": 11.9619972608,
    "nous-hermes-13b": 10.1085112311,
    "oasst-rlhf-llama-33b": 8.2486588331,
    "oasst-sft-llama-33b": 10.0914163286,
    "oasst-sft-pythia-12b": 3.4480046294,
    "openbuddy-falcon-40b-v9": 9.4884963968,
    "openbuddy-llama-30b-v7.1": 10.584004526,
    "openbuddy-llama2-13b-v11.1": 9.6289935701,
    "openbuddy-llama2-70b-v10.1": 13.0408924317,
    "phi-2": 4.5329464467,
    "phi-2-sft": 6.0057701386,
    "pythia-12b-mix-sft": 4.2474497509,
    "text_davinci_001": 9.4274280506,
    "text_davinci_003": 4.4292069433,
    "ultralm-13b": 7.4905361279,
    "vicuna-13b": 9.5772440889,
    "vicuna-13b-v1.5": 11.1195201256,
    "vicuna-13b-v1.5-togetherai": 12.1570461194,
    "vicuna-7b": 6.6041342081,
    "vicuna-7b-v1.3": 7.6238755281,
    "vicuna-7b-v1.5": 7.8850162341,
    "wizardlm-13b": 10.4351878201,
}

INCOMPLETE = {
    "alpaca-7b_concise",
    "alpaca-7b_verbose",
    "gpt35_turbo_instruct",
    "minotaur-13b",
    "phi-2",
    "text_davinci_001",
}


@pytest.mark.slow  # builds the session's 58-model LC fixture (~10 s)
def test_equals_alpacaeval_on_complete_ordered_models(
    shared_lc: dict[str, LCResult], shared_pairs: pd.DataFrame, shared_texts: list[str]
) -> None:
    complete = 0
    for model, rows in shared_pairs.groupby("generator_2"):
        ordered = len(rows) == len(shared_texts) and bool((rows["ref_pos"].to_numpy() == np.arange(805)).all())
        assert ordered == (model not in INCOMPLETE), model
        if ordered:
            assert shared_lc[model].length_controlled_winrate == pytest.approx(PEER_LC[model], abs=1e-6), model
            complete += 1
    assert complete == 52


@pytest.mark.parametrize("model", sorted(INCOMPLETE))
def test_incomplete_files_differ_only_by_alpacaevals_positional_lookup(
    model: str,
    shared_lc: dict[str, LCResult],
    shared_pairs: pd.DataFrame,
    shared_inputs: LCInputs,
    shared_texts: list[str],
) -> None:
    """pasture's positional lookup (row k of the file gets eval-set instruction k's difficulty) gives
    AlpacaEval 0.6.6's own number on the six incomplete files; the lookup by text does not."""
    rows = shared_pairs[shared_pairs["generator_2"] == model].sort_values("index")
    assert (
        shared_inputs.eval_set_difficulty is not None and list(shared_inputs.eval_set_difficulty.index) == shared_texts
    )
    by_position = replace(shared_inputs, difficulty_lookup="position")
    again = length_controlled_winrate(rows, by_position, generator=model)
    assert again.length_controlled_winrate == pytest.approx(PEER_LC[model], abs=1e-6)
    assert again.difficulty_lookup == "position" and again.n_off_position == shared_lc[model].n_off_position > 0
    assert shared_lc[model].length_controlled_winrate != pytest.approx(PEER_LC[model], abs=1e-3)


def test_close_to_the_board_from_shared_inputs_only(
    shared_lc: dict[str, LCResult], official_board: pd.DataFrame
) -> None:
    diffs = pd.Series(
        {
            m: r.length_controlled_winrate - official_board.loc[m, "length_controlled_winrate"]
            for m, r in shared_lc.items()
            if m in official_board.index
        }
    )
    assert len(diffs) == 57
    assert diffs.abs().median() <= 0.5
    assert diffs.abs().mean() <= 1.0
    assert diffs.abs().max() <= 3.5
    assert all(r.difficulty_source == "estimated" and r.gamed_source == "rebuilt" for r in shared_lc.values())


def test_shuffled_rows_give_identical_lc(shared_pairs: pd.DataFrame, shared_inputs: LCInputs) -> None:
    rows = shared_pairs[shared_pairs["generator_2"] == "claude-2"]
    first = length_controlled_winrate(rows, shared_inputs, generator="claude-2")
    shuffled = rows.sample(frac=1.0, random_state=7)
    second = length_controlled_winrate(shuffled, shared_inputs, generator="claude-2")
    assert second.length_controlled_winrate == first.length_controlled_winrate
    assert (second.coef_length, second.C) == (first.coef_length, first.C)


def test_too_few_models_falls_back_to_length_only_and_says_so(shared_pairs: pd.DataFrame) -> None:
    few = shared_pairs[shared_pairs["generator_2"].isin(["claude-2", "alpaca-7b", "vicuna-7b"])]
    inputs = prepare_lc_inputs(few, shipped=False)
    assert inputs.difficulty is None
    assert any("3 model(s) < 5 needed" in n and "length-only" in n for n in inputs.notes)
    result = length_controlled_winrate(few[few["generator_2"] == "claude-2"], inputs, generator="claude-2")
    assert result.method == "length_only"
    assert result.coef_difficulty == 0.0
    assert any("length-only GLM" in n for n in result.notes)
    assert "length_only" in inputs.describe()
    assert 0 < result.length_controlled_winrate < 100


def test_no_inputs_at_all_is_the_length_only_glm_with_a_note(shared_pairs: pd.DataFrame) -> None:
    result = length_controlled_winrate(shared_pairs[shared_pairs["generator_2"] == "alpaca-7b"])
    assert result.method == "length_only" and result.difficulty_source == "none"
    assert result.notes


def test_reference_against_itself_is_50(shared_lc: dict[str, LCResult]) -> None:
    ref = shared_lc["gpt4_1106_preview"]
    assert ref.method == "reference" and ref.length_controlled_winrate == 50.0


def test_missing_difficulty_is_an_error_not_a_guess(shared_pairs: pd.DataFrame, shared_inputs: LCInputs) -> None:
    assert shared_inputs.difficulty is not None
    partial = LCInputs(difficulty=shared_inputs.difficulty.iloc[:800], difficulty_source="user")
    with pytest.raises(InputError, match="5 instruction\\(s\\) have no difficulty"):
        length_controlled_winrate(shared_pairs[shared_pairs["generator_2"] == "claude-2"], partial)


def test_official_file_layout_round_trips(
    tmp_path: Path,
    shared_pairs: pd.DataFrame,
    shared_inputs: LCInputs,
    shared_texts: list[str],
    shared_lc: dict[str, LCResult],
) -> None:
    """Rows written in AlpacaEval's df_gamed.csv layout and read back as the 'official' file give the same LC."""
    assert shared_inputs.gamed is not None
    path = write_official_gamed(shared_inputs.gamed, shared_texts, tmp_path / "df_gamed.csv")
    inputs = prepare_lc_inputs(shared_pairs, gamed=path, eval_set=shared_texts, shipped=False)
    assert (inputs.difficulty_source, inputs.gamed_source) == ("official", "official")
    gamed, difficulty = read_official_gamed(path, shared_texts)
    assert len(gamed) == 2 * 805 and set(gamed["model"]) == {"gpt4_1106_preview_verbose", "gpt4_1106_preview_concise"}
    assert np.allclose(difficulty.loc[shared_texts].to_numpy(), shared_inputs.difficulty.loc[shared_texts].to_numpy())
    rows = shared_pairs[shared_pairs["generator_2"] == "vicuna-7b"]
    again = length_controlled_winrate(rows, inputs, generator="vicuna-7b")
    assert again.length_controlled_winrate == pytest.approx(shared_lc["vicuna-7b"].length_controlled_winrate, abs=1e-9)
    assert again.difficulty_source == "official"
    # with both official files, LC uses df_gamed.csv's difficulty column, as AlpacaEval does, and says so
    other = tmp_path / "instruction_difficulty.csv"
    pd.DataFrame({"instruction_difficulty": np.linspace(-1, 1, 805)}).to_csv(other)
    both = prepare_lc_inputs(shared_pairs, gamed=path, difficulty=other, eval_set=shared_texts, shipped=False)
    assert both.difficulty is not None and both.difficulty.equals(inputs.difficulty)
    assert any("difficulty file not used for LC" in n for n in both.notes)


def test_positional_difficulty_file_needs_the_eval_set(tmp_path: Path, shared_texts: list[str]) -> None:
    path = tmp_path / "instruction_difficulty.csv"
    pd.DataFrame({"instruction_difficulty": np.linspace(-1, 1, 805)}).to_csv(path)
    with pytest.raises(InputError, match="pass the eval set"):
        read_difficulty_file(path)
    series = read_difficulty_file(path, shared_texts)
    assert series.loc[shared_texts[-1]] == pytest.approx(1.0)
    with pytest.raises(InputError, match="805 rows, the eval set 3"):
        read_difficulty_file(path, shared_texts[:3])


@pytest.mark.slow
def test_difficulty_estimate_is_calibrated_to_published_coefficients(
    alpacaeval: Path, shared_pairs: pd.DataFrame, shared_texts: list[str]
) -> None:
    weights = read_glm_weights(alpacaeval / "leaderboards" / "lc_glm_weights_baseline_gpt4_1106_preview.csv")
    est = estimate_difficulty(shared_pairs, instructions=shared_texts, coefficients=weights)
    assert est.n_models == 57 and len(est.calibrated_on) == 56
    assert est.difficulty is not None and list(est.difficulty.index) == shared_texts
    assert 1.2 < est.scale < 1.6  # the published difficulty term spreads wider than the raw joint-fit effect


def test_a_model_without_parsed_verdicts_gets_nan_and_a_reason() -> None:
    rows = pd.DataFrame(
        {"instruction": ["a", "b", "c"], "len_1": [10, 20, 30], "len_2": [5, 25, 40], "preference": [np.nan] * 3}
    )
    result = length_controlled_winrate(rows, generator="broken")
    assert result.method == "not_fit" and np.isnan(result.length_controlled_winrate)
    assert any("no parsed preference" in n for n in result.notes)
    flat = rows.assign(len_2=rows["len_1"] - 3, preference=[1.2, 1.8, 1.5])
    assert "does not vary" in length_controlled_winrate(flat).notes[-1]


def test_too_few_instructions_is_a_stated_nan_not_a_crash() -> None:
    import pandas as pd

    from pasture.metrics.lc import length_controlled_winrate

    rows = pd.DataFrame(
        {
            "instruction": ["a", "b", "c"],
            "len_1": [10, 30, 50],
            "len_2": [20, 25, 90],
            "preference": [1.2, 1.7, 1.4],
        }
    )
    res = length_controlled_winrate(rows, generator="tiny")
    assert res.method == "not_fit"
    assert res.length_controlled_winrate != res.length_controlled_winrate  # NaN
    assert "only 3 instructions with a parsed verdict" in res.notes[-1]


# --- difficulty lookup by text vs by row position, on a small eval set built here -------------------------------

TOY = [f"question {k:02d}" for k in range(40)]


def _toy_inputs(lookup: str = "text", n: int = len(TOY)) -> LCInputs:
    """A user difficulty vector over TOY (eval-set order), strongly varying so that a misaligned row shows."""
    d = pd.Series(np.linspace(-2.0, 2.0, len(TOY))[np.random.default_rng(3).permutation(len(TOY))], index=TOY)
    return LCInputs(difficulty=d, difficulty_source="user", eval_set_difficulty=d.iloc[:n], difficulty_lookup=lookup)  # type: ignore[arg-type]


def _toy_file(instructions: list[str]) -> pd.DataFrame:
    """One model's rows in file order; its verdicts follow its instructions' difficulty (harder = loses)."""
    d = _toy_inputs().difficulty
    assert d is not None
    rng = np.random.default_rng(11)
    diff = d.loc[instructions].to_numpy()
    len_2 = rng.integers(200, 1400, len(instructions))
    p = 1 / (1 + np.exp(1.5 * diff - 0.3 + 0.4 * rng.normal(size=len(instructions))))
    return pd.DataFrame(
        {"instruction": instructions, "len_1": 800, "len_2": len_2, "preference": 1 + p, "output_2": "x"}
    )


def test_position_lookup_gives_row_k_the_difficulty_of_eval_set_instruction_k() -> None:
    """A file missing the eval set's first instruction: by position row k (instruction k + 1) gets instruction
    k's difficulty, as AlpacaEval's board does; by text it gets its own. A lookup by text fails this test."""
    rows = _toy_file(TOY[1:])
    d = _toy_inputs().difficulty
    assert d is not None
    by_text, by_position = _toy_inputs("text"), _toy_inputs("position")
    design_t, design_p = build_design(rows, by_text), build_design(rows, by_position)
    assert np.array_equal(design_t.X_test[:, 1], d.iloc[1:].to_numpy())
    assert np.array_equal(design_p.X_test[:, 1], d.iloc[:39].to_numpy())
    assert list(design_p.test_instructions) == TOY[1:]  # the file's order, its own texts (for the bootstrap)
    res_t = length_controlled_winrate(rows, by_text, generator="m", C=10.0)
    res_p = length_controlled_winrate(rows, by_position, generator="m", C=10.0)
    assert res_t.n_off_position == res_p.n_off_position == 39
    # the verdicts follow each instruction's own difficulty: by text the fit finds that, misaligned it cannot
    assert res_t.coef_difficulty < -1.0 and abs(res_p.coef_difficulty) < abs(res_t.coef_difficulty) / 2
    assert res_p.length_controlled_winrate != res_t.length_controlled_winrate
    # the definition: by position equals by text on the file relabelled row k -> instruction k
    relabelled = length_controlled_winrate(rows.assign(instruction=TOY[:39]), by_text, generator="m", C=10.0)
    assert res_p.length_controlled_winrate == relabelled.length_controlled_winrate
    assert (res_t.difficulty_lookup, res_p.difficulty_lookup) == ("text", "position")
    no_gamed = "without gamed-baseline rows; "  # the toy has no gamed baselines, and the note says so first
    assert res_t.note == no_gamed + (
        "AlpacaEval's board differs (39 rows off position; pasture score FILE --difficulty-lookup position reproduces it)"
    )
    assert res_p.note == no_gamed + "difficulty by row position as AlpacaEval's board: 39 rows misaligned"
    assert "difficulty lookup=position" in by_position.describe() and "lookup" not in by_text.describe()


def test_only_the_position_lookup_depends_on_the_files_order() -> None:
    in_order = _toy_file(TOY)
    swapped = in_order.iloc[[1, 0, *range(2, len(TOY))]]
    results = {
        (lookup, name): length_controlled_winrate(rows, _toy_inputs(lookup), generator="m", C=10.0)
        for lookup in ("text", "position")
        for name, rows in (("in order", in_order), ("swapped", swapped))
    }
    lc = {k: r.length_controlled_winrate for k, r in results.items()}
    # a complete file in eval-set order: both lookups identical, nothing to note
    assert lc["text", "in order"] == lc["position", "in order"] == lc["text", "swapped"]
    assert results["text", "in order"].note == results["position", "in order"].note == "without gamed-baseline rows"
    assert results["text", "in order"].n_off_position == 0
    # two rows swapped: by position they trade difficulties, by text nothing changes
    assert lc["position", "swapped"] != lc["position", "in order"]
    assert results["text", "swapped"].n_off_position == 2 and "2 rows off position" in results["text", "swapped"].note


def test_position_lookup_refuses_what_it_cannot_look_up() -> None:
    with pytest.raises(InputError, match="needs eval_set_difficulty"):
        LCInputs(difficulty=_toy_inputs().difficulty, difficulty_lookup="position")
    with pytest.raises(InputError, match="unknown difficulty lookup 'row'"):
        LCInputs(difficulty_lookup="row")  # type: ignore[arg-type]
    # more rows than eval-set instructions: row 30 has no instruction 30
    with pytest.raises(InputError, match=r"'m' has 40 rows but the eval set 30 instructions.*at most 30 rows"):
        length_controlled_winrate(_toy_file(TOY), _toy_inputs("position", n=30), generator="m", C=10.0)
    # a position with no difficulty is an error, never a zero
    inputs = _toy_inputs("position")
    assert inputs.eval_set_difficulty is not None
    holed = replace(inputs, eval_set_difficulty=inputs.eval_set_difficulty.where(np.arange(40) != 5))
    with pytest.raises(InputError, match=r"eval-set instruction 5 \(row 5 of 'm'\) has no difficulty"):
        length_controlled_winrate(_toy_file(TOY), holed, generator="m", C=10.0)


def test_prepare_lc_inputs_needs_the_eval_sets_order_for_the_position_lookup() -> None:
    """On a custom eval set the order comes only from ``eval_set``; without it the lookup is refused."""
    rows = _toy_file(TOY[1:]).assign(generator_1="ref", generator_2="m")
    d = _toy_inputs().difficulty
    assert d is not None
    with pytest.raises(InputError, match=r"needs the eval set's order.*--eval-set"):
        prepare_lc_inputs(rows, difficulty=d, difficulty_lookup="position")
    inputs = prepare_lc_inputs(rows, difficulty=d.iloc[::-1], eval_set=TOY, difficulty_lookup="position")
    assert inputs.eval_set_difficulty is not None
    assert list(inputs.eval_set_difficulty.index) == TOY  # the eval set's order, not the vector's
    assert np.array_equal(inputs.eval_set_difficulty.to_numpy(), d.to_numpy())
    # by text the order is used only to count the rows off position
    assert prepare_lc_inputs(rows, difficulty=d, eval_set=TOY).difficulty_lookup == "text"
    with pytest.raises(InputError, match="needs a difficulty vector"):
        prepare_lc_inputs(rows, eval_set=TOY, estimate=False, difficulty_lookup="position")
