"""A Self-J checkpoint as a pasture judge: trained here on the synthetic task (a tiny Llama, seconds), saved, then
asked through the real transformers provider, the annotation engine and a real SQLite store: single-response
grades (protocol expected_digit), pairwise verdicts (single_score), best-of-n and ``pasture analyze-judge``."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from pasture.annotate import annotate
from pasture.annotate.pairs import PairToJudge
from pasture.annotate.responses import ResponseToJudge, annotate_responses
from pasture.cli import main
from pasture.errors import InputError, JudgeError
from pasture.judges import LLMJudge, ProgrammaticJudge, get_judge, get_response_judge
from pasture.judges.base import Completion
from pasture.judges.parsers import ExpectedDigitParser, ParseFailure
from pasture.judges.protocols import score_preference
from pasture.judges.self_j import is_self_j_checkpoint, load_self_j_judge, render
from pasture.store import Store
from pasture.train.best_of_n import BestOfN, judge_scorer
from pasture.train.core import OptimSettings, save_checkpoint
from pasture.train.registry import SelfJSettings
from pasture.train.self_j import expected_digits, label_examples, student_text, train_self_j
from pasture.train.synthetic import (
    demonstrations,
    extended_tokenizer,
    gold_reference,
    make_prompts,
    oracle_preference,
)
from pasture.train.tiny import tiny_llama


def test_expected_digit_parser_reads_only_single_digit_tokens() -> None:
    parser = ExpectedDigitParser()
    half = math.log(0.5)
    assert parser.parse(Completion("0", top_logprobs=({"0": half, "9": half, " 7": 0.0, "a": -0.1},))) == 4.5
    # digits missing from the alternatives count as 0; the rest is renormalised
    assert parser.parse(Completion("3", top_logprobs=({"3": math.log(0.2), "x": math.log(0.8)},))) == 3.0
    with pytest.raises(ParseFailure, match="no digit"):
        parser.parse(Completion(" 7", top_logprobs=({" 7": 0.0, "10": -1.0},)))
    with pytest.raises(ParseFailure, match="no logprobs"):
        parser.parse(Completion("7"))


@pytest.fixture(scope="module")
def self_j_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Self-J judge on the synthetic task: 40 steps on labelled mediocre demonstrations (seconds)."""
    torch.set_num_threads(1)
    tok = extended_tokenizer()
    model = tiny_llama(tok, seed=0)
    prompts = make_prompts(64, seed=11)
    responses = demonstrations(prompts, seed=12)
    refs = [gold_reference(p) for p in prompts]
    examples = label_examples(model, tok, prompts, responses, refs, fmt="synthetic")
    settings = SelfJSettings(prompt_format="synthetic", similarity="char_overlap")
    trained, stats = train_self_j(model, tok, examples, settings=settings, optim=OptimSettings(lr=3e-3, steps=40))
    return save_checkpoint(tmp_path_factory.mktemp("self_j") / "judge", trained, tok, stats)


@pytest.mark.slow
def test_a_saved_self_j_checkpoint_is_a_single_response_judge_with_the_in_memory_grades(
    self_j_checkpoint: Path, tmp_path: Path
) -> None:
    assert is_self_j_checkpoint(self_j_checkpoint) and not is_self_j_checkpoint(tmp_path)
    judge = get_response_judge(self_j_checkpoint, name="sj")
    assert isinstance(judge, LLMJudge) and judge.fingerprint.protocol == "expected_digit"
    assert judge.fingerprint.parser == "expected_digit" and judge.fingerprint.weights_digest
    prompts = make_prompts(6, seed=21)
    outputs = demonstrations(prompts, seed=22)
    items = [ResponseToJudge(p, o, "demo") for p, o in zip(prompts, outputs, strict=True)]
    with Store(tmp_path / "s.sqlite") as store:
        report = annotate_responses(store, judge, items, progress=False)
        again = annotate_responses(store, judge, items, progress=False)
    assert report.n_new == 6 and again.n_cached == 6 and again.calls == 0
    got = {(j.instruction, j.output): j.score for j in report.judgments}
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(self_j_checkpoint)
    model = AutoModelForCausalLM.from_pretrained(self_j_checkpoint)
    want = expected_digits(model, tok, [student_text("synthetic", p, o) for p, o in zip(prompts, outputs, strict=True)])
    for p, o, w in zip(prompts, outputs, want, strict=True):
        assert got[(p, o)] == pytest.approx(w, abs=2e-3)  # the judge sees the trainer's exact tokens
        assert 0.0 <= got[(p, o)] <= 9.0
    assert render("self_j_synthetic_student_v1", instruction="12+a=", output="00") == "12+a=00#"


@pytest.mark.slow
def test_best_of_n_with_the_self_j_judge_picks_its_highest_grade(self_j_checkpoint: Path, tmp_path: Path) -> None:
    judge = get_response_judge(self_j_checkpoint)
    prompts = make_prompts(3, seed=31)
    cands = [demonstrations([p] * 4, seed=32 + i) for i, p in enumerate(prompts)]
    with Store(tmp_path / "s.sqlite") as store:
        score = judge_scorer(store, judge)
        flat = score([p for p in prompts for _ in range(4)], [c for row in cands for c in row])
    assert all(math.isfinite(s) for s in flat)
    bon = BestOfN(tuple(prompts), tuple(tuple(c) for c in cands),
                  tuple(tuple(flat[4 * i : 4 * i + 4]) for i in range(3)), 0)  # fmt: skip
    for i, picked in enumerate(bon.select(4)):
        assert flat[4 * i + cands[i].index(picked)] == max(flat[4 * i : 4 * i + 4])


@pytest.mark.slow
def test_pairwise_self_j_judge_and_analyze_judge(self_j_checkpoint: Path, tmp_path: Path) -> None:
    judge = get_judge(self_j_checkpoint, name="self-j-tiny")
    assert isinstance(judge, LLMJudge) and judge.fingerprint.protocol == "single_score"
    prompts = make_prompts(12, seed=41)
    a, b = demonstrations(prompts, seed=42), demonstrations(prompts, seed=43)
    pairs = [PairToJudge(p, x, "ref", y, "model") for p, x, y in zip(prompts, a, b, strict=True) if x != y]
    oracle = ProgrammaticJudge(oracle_preference, name="oracle")
    store_path = tmp_path / "s.sqlite"
    with Store(store_path) as store:
        report = annotate(store, judge, pairs, position="both", progress=False)
        annotate(store, oracle, pairs, progress=False)
        graded = annotate_responses(
            store, load_self_j_judge(self_j_checkpoint, kind="response"),
            [ResponseToJudge(p.instruction, o, "x") for p in pairs for o in (p.output_1, p.output_2)], progress=False,
        )  # fmt: skip
    assert report.n_error == 0 and report.n_parse_error == 0
    grade = {(j.instruction, j.output): j.score for j in graded.judgments}
    for j in report.judgments:  # each output graded alone; the higher grade wins, in either shown order
        g1, g2 = grade[(j.instruction, j.output_1)], grade[(j.instruction, j.output_2)]
        assert j.preference == score_preference(g1, g2)
    result = CliRunner().invoke(
        main, ["analyze-judge", "--store", str(store_path), "--judge", "self-j-tiny", "--gold-judge", "oracle"]
    )
    assert result.exit_code == 0, result.output
    assert "Gold agreement" in result.output and "prefer longer" in result.output


@pytest.mark.slow
def test_self_j_checkpoint_errors(self_j_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(JudgeError, match="takes no override but name and device"):
        get_judge(self_j_checkpoint, template="x")
    with pytest.raises(InputError, match="not a Self-J checkpoint"):
        load_self_j_judge(tmp_path)
