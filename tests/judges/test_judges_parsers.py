"""Parsers over real-looking replies: the verdict in SHOWN order, failures as ParseFailure (never a default)."""

from __future__ import annotations

import math

import pytest

from pasture.judges import (
    Completion,
    CritiqueParser,
    GradedVerdictParser,
    LabelLogprobParser,
    ParseFailure,
    ScoreParser,
)
from pasture.judges.judge import slot_preference


def c(text: str = "", top: tuple[dict[str, float], ...] = ()) -> Completion:
    return Completion(text, top)


# ---------- logprob ----------


def test_official_mM_rule_matches_alpacaeval_formula():
    # AlpacaEval: preference = 2 - P(m) / (P(m) + P(M)); the values are from a real raw_completion's shape
    top = ({"M": -0.017597131, "m": -4.048847, "Both": -14.908222, "The": -15.705097},)
    p = LabelLogprobParser("m", "M").parse(c("M", top))
    pm, pM = math.exp(-4.048847), math.exp(-0.017597131)
    assert p == pytest.approx(2 - pm / (pm + pM))
    assert LabelLogprobParser("m", "M").name == "logprob_mM"


def test_logprob_one_label_missing_counts_as_zero_and_both_missing_fails():
    assert LabelLogprobParser("m", "M").parse(c("m", ({"m": -0.1, "The": -3.0},))) == 1.0
    assert LabelLogprobParser("m", "M").parse(c("M", ({"M": -0.1},))) == 2.0
    with pytest.raises(ParseFailure, match="neither"):
        LabelLogprobParser("m", "M").parse(c("The", ({"The": -0.1, "Both": -2.0},)))
    with pytest.raises(ParseFailure, match="no logprobs"):
        LabelLogprobParser("A", "B").parse(c("A"))


def test_strict_is_case_and_space_exact_and_loose_sums_space_variants():
    top = ({" A": math.log(0.3), "A": math.log(0.1), " B": math.log(0.2), "b": math.log(0.3)},)
    assert LabelLogprobParser("A", "B").parse(c("", top)) == 1.0  # only "A" matches exactly
    loose = LabelLogprobParser("A", "B", loose=True)
    assert loose.name == "logprob_AB_loose"
    assert loose.parse(c("", top)) == pytest.approx(1 + 0.2 / 0.6)  # A: 0.3+0.1, B: 0.2 ('b' is not B)


def test_only_the_first_position_counts():
    top = ({"A": -0.1, "B": -3.0}, {"B": -0.01})
    assert LabelLogprobParser("A", "B").parse(c("A\nB", top)) < 1.1


# ---------- graded ----------

GRADED_REPLIES = [
    ("Assistant A is more accurate.\n\nMy final verdict is: [[A>>B]]", 1.0),
    ("Both are fine but B is a bit clearer. [[B>A]]", 1.75),
    ("**Final verdict:** **[[A=B]]**", 1.5),
    ("Verdict: [A>B]", 1.25),
    ("final verdict: b>>a", 2.0),
    ("Final Verdict: `B >> A`", 2.0),
    ("I'd say A ≫ B.", 1.0),
    ("Answer B is worse: B<A", 1.25),
    ("Rating: A << B", 2.0),
    ("At first glance A>B, but B handles the edge case correctly.\n\n[[B>>A]]", 2.0),
    ("[[A>B]] ... on reflection the verdict stands: [[A>B]]", 1.25),
    ("Tie. [[A==B]]", 1.5),
    ("Verdict: **A > B**\n", 1.25),
]


@pytest.mark.parametrize(("text", "expected"), GRADED_REPLIES)
def test_graded_verdicts_last_one_wins(text, expected):
    assert GradedVerdictParser().parse(c(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Both answers are good.",
        "I prefer the first answer.",
        "DATA>B is a filename",  # A glued to other letters is not a verdict
        "A>A",
        "Compare A and B carefully.",
        "The answer is 4>3.",
    ],
)
def test_graded_unparsable_fails(text):
    with pytest.raises(ParseFailure):
        GradedVerdictParser().parse(c(text))


# ---------- scores ----------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is correct and concise. Rating: [[9]]", 9.0),
        ("Score: 7", 7.0),
        ("Overall I would give this 6/10.", 6.0),
        ("Grade: **8**", 8.0),
        ("It misses step 2 ([[3]]). After rereading: [[4]]", 4.0),
        ("[[ 10 ]]", 10.0),
        ("[[7.5]]", 7.5),
    ],
)
def test_scores(text, expected):
    assert ScoreParser().parse(c(text)) == expected


@pytest.mark.parametrize("text", ["", "Good answer.", "[[11]]", "Rating: [[0]]", "Score: 42"])
def test_scores_unparsable_or_out_of_range_fail(text):
    with pytest.raises(ParseFailure):
        ScoreParser().parse(c(text))


def test_slot_mapping_is_a_mirror():
    assert slot_preference(1.25, 1) == 1.25
    assert slot_preference(1.25, 2) == 1.75
    assert slot_preference(1.5, 2) == 1.5


# ---------- critique ----------


@pytest.mark.parametrize(
    ("text", "verdict", "critique"),
    [
        ("The sum is wrong: 2+2 is not 5.\nVerdict: bad", "bad", "The sum is wrong: 2+2 is not 5."),
        ("Nothing is wrong.\n\n**Verdict:** Good", "good", "Nothing is wrong."),
        ("It ignores the second question.\nVERDICT - [bad]", "bad", "It ignores the second question."),
        ("Clear and correct. [[good]]", "good", "Clear and correct."),
        ("Fine answer. Verdict is good.", "good", "Fine answer."),
        # the last verdict wins; text after it is kept in the critique
        ("Verdict: good at first sight, but the date is wrong.\nVerdict: bad\n", "bad",
         "Verdict: good at first sight, but the date is wrong."),
        ("### Critique\nToo long.\n### Verdict: `bad`\nThat is all.", "bad", "Critique\nToo long.\nThat is all."),
    ],
)  # fmt: skip
def test_critique_reads_the_last_verdict_and_keeps_the_rest(text, verdict, critique):
    reading = CritiqueParser().parse(c(text))
    assert (reading.verdict, reading.critique, reading.score) == (verdict, critique, None)


@pytest.mark.parametrize(
    "text",
    ["", "The answer is wrong.", "Verdict: maybe", "Verdict: bad", "**Verdict:** good", "goodness, bad luck"],
)
def test_critique_without_verdict_or_without_text_fails(text):
    with pytest.raises(ParseFailure):
        CritiqueParser().parse(c(text))
