"""LC pinned on real data: AlpacaEval 0.6.6's own numbers on identical inputs, and the official board."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pasture.errors import InputError
from pasture.metrics.difficulty import estimate_difficulty, read_difficulty_file
from pasture.metrics.gamed import read_glm_weights, read_official_gamed, write_official_gamed
from pasture.metrics.lc import LCInputs, LCResult, length_controlled_winrate
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
    rows = shared_pairs[shared_pairs["generator_2"] == model].sort_values("index")
    # relabel row k as eval-set instruction k: what AlpacaEval's positional lookup does
    positional = rows.assign(instruction=[shared_texts[k] for k in range(len(rows))])
    again = length_controlled_winrate(positional, shared_inputs, generator=model)
    assert again.length_controlled_winrate == pytest.approx(PEER_LC[model], abs=1e-6)
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
