"""A pool's judgments as a survey, and a held-out annotator predicted, through a real store and the CLI."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from pasture.analysis.survey_model import SurveyModelSettings
from pasture.analysis.survey_pool import held_out_annotator, held_out_split, pool_votes
from pasture.cli import main
from pasture.errors import InputError
from pasture.judges import ProgrammaticJudge
from pasture.records import Judgment
from pasture.simulate.labels import cross_annotate, sample_pairs
from pasture.simulate.pool import PoolMember, make_pool
from pasture.simulate.synthetic import arithmetic_oracle, arithmetic_outputs
from pasture.store import Store

FAST = SurveyModelSettings(epochs=80, lr=0.05)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: the machine is shared, and tiny models only lose time to threading."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def prefers_longer(instruction: str, output_1: str, output_2: str) -> float:
    return 1.5 if len(output_1) == len(output_2) else (2.0 if len(output_2) > len(output_1) else 1.0)


def prefers_shorter(instruction: str, output_1: str, output_2: str) -> float:
    return 3.0 - prefers_longer(instruction, output_1, output_2)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real store holding a cross-annotation by four members: the oracle, a second copy of it (another
    fingerprint), a length lover and a length hater."""
    pairs = sample_pairs(arithmetic_outputs(120, seed=2), seed=0).pairs
    members = [
        PoolMember(judge=ProgrammaticJudge(arithmetic_oracle, name="oracle")),
        PoolMember(judge=ProgrammaticJudge(arithmetic_oracle, name="oracle_copy", version="copy")),
        PoolMember(judge=ProgrammaticJudge(prefers_longer, name="longer")),
        PoolMember(judge=ProgrammaticJudge(prefers_shorter, name="shorter")),
    ]
    path = tmp_path_factory.mktemp("pool") / "pool.db"
    with Store(path) as store:
        cross_annotate(pairs, make_pool(members, p=0.0, seed=0), store)
    return path


def _judgment(output_1: str, output_2: str, preference: float, name: str = "j") -> Judgment:
    return Judgment(
        judge_digest="d" * 64,
        judge_name=name,
        instruction="Say hi",
        output_1=output_1,
        generator_1="g1",
        output_2=output_2,
        generator_2="g2",
        shown_first=1,
        preference=preference,
    )


def test_pool_votes_use_one_canonical_side_per_pair() -> None:
    # the same verdict ("hello" wins) given in both slot orders is one question and the same vote
    pool = pool_votes(
        [
            _judgment("hello", "hi", 1.0, "a"),
            _judgment("hi", "hello", 2.0, "b"),
            _judgment("hello", "hi", 1.5, "c"),  # a tie: left out
            _judgment("hello", "hi", 1.2, "d").model_copy(update={"status": "error", "preference": None}),
        ]
    )
    assert pool.votes["question"].nunique() == 1 and pool.n_ties == 1 and pool.n_failed == 1
    assert dict(zip(pool.votes["respondent"], pool.votes["vote"], strict=True)) == {"a": 1, "b": 1}
    (text,) = pool.texts.values()
    assert text == "say hi a_hello b_hi"  # A = the smaller text; each side's words marked


def test_pool_votes_from_the_store(store_path: Path) -> None:
    with Store(store_path) as store:
        pool = pool_votes(store.get_judgments())
    assert sorted(pool.votes["respondent"].unique()) == ["longer", "oracle", "oracle_copy", "shorter"]
    # the two oracle copies vote alike; the length lover and hater vote oppositely on every pair
    wide = pool.votes.pivot(index="question", columns="respondent", values="vote")
    assert (wide["oracle"] == wide["oracle_copy"]).all()
    both = wide[["longer", "shorter"]].dropna()
    assert len(both) > 50 and (both["longer"] != both["shorter"]).all()


def test_held_out_split_never_leaks_and_keeps_the_marginal(store_path: Path) -> None:
    with Store(store_path) as store:
        pool = pool_votes(store.get_judgments())
    split = held_out_split(pool.votes, "longer", fraction=0.5, seed=3)
    assert set(split.test["respondent"]) == {"longer"}
    test_keys = set(zip(split.test["respondent"], split.test["question"], strict=True))
    assert not test_keys & set(zip(split.train["respondent"], split.train["question"], strict=True))
    assert set(split.test["question"]) <= set(split.train["question"])  # others voted on every hidden pair
    with pytest.raises(InputError, match="no votes by annotator 'nobody'"):
        held_out_split(pool.votes, "nobody")


def test_held_out_copy_is_predicted_by_the_marginal(store_path: Path) -> None:
    with Store(store_path) as store:
        pool = pool_votes(store.get_judgments())
    result = held_out_annotator(pool, "oracle_copy", fraction=0.5, seed=0, settings=FAST)
    assert result.n_respondents == 4 and result.model.n == round(0.5 * result.n_votes)
    # on a hidden pair the others are the oracle (same vote) plus the length lover and hater (one vote each
    # way): the marginal is higher exactly when the copy votes 1, so it ranks the copy's votes perfectly
    assert result.marginal.auc == pytest.approx(1.0)
    assert 0.0 <= result.model.auc <= 1.0 and result.model.auc_low <= result.model.auc <= result.model.auc_high


def test_analyze_pool_command(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "held_out.csv"
    args = ["analyze-pool", "--store", str(store_path), "--held-out", "oracle_copy", "--held-out", "longer"]
    res = CliRunner().invoke(main, [*args, "--model-epochs", "60", "--seed", "1", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "4 annotators" in res.output and "held-out annotator" in res.output
    table = pd.read_csv(out, index_col=0)
    assert list(table.index) == ["oracle_copy", "longer"]
    assert {"model_auc", "model_auc_low", "marginal_auc", "n_hidden"} <= set(table.columns)
    assert table.loc["oracle_copy", "marginal_auc"] == pytest.approx(1.0)
    # --judge reads only the named members; an annotator outside them is an error that lists who is there
    two = ["analyze-pool", "--store", str(store_path), "--judge", "oracle", "--judge", "shorter"]
    res = CliRunner().invoke(main, [*two, "--model-epochs", "30"])
    assert res.exit_code == 0 and "2 annotators" in res.output, res.output
    res = CliRunner().invoke(main, [*two, "--held-out", "longer"])
    assert res.exit_code == 2 and "no votes by annotator 'longer'; annotators: oracle, shorter" in res.output
    res = CliRunner().invoke(main, ["analyze-pool", "--store", str(store_path), "--model-dim", "0"])
    assert res.exit_code == 2 and "--model-dim" in res.output
    res = CliRunner().invoke(main, ["analyze-pool"])
    assert res.exit_code == 2 and "--store" in res.output
