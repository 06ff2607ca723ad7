"""AutoRule's and PUGC's single-response protocols: parsers on hand-written replies, templates and fingerprints,
and real calls to SmolLM2 behind a llama.cpp server, cached in the store (docs/judges.md, "rule_check")."""

from __future__ import annotations

import pytest

from pasture.annotate import annotate_responses
from pasture.annotate.responses import ResponseToJudge
from pasture.errors import JudgeError
from pasture.judges import Completion, ParseFailure, get_judge, get_response_judge
from pasture.judges.base import ResponseRequest
from pasture.judges.method_protocols import (
    FreeTextParser,
    ItemListParser,
    QuestionListParser,
    RuleListParser,
    ScoreLogprobParser,
    YesNoParser,
    list_items,
    question_items,
)
from pasture.store import Store


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("[[yes]] It is short.", "yes"),
        ("It follows it.\nAnswer: **No**", "no"),
        ("Yes, the answer is polite.", "yes"),
        ("no.", "no"),
        ("[[no]] at first, but then: Answer: yes", "yes"),  # the last marked verdict wins
        ("The document does not contain the answer to the question.", "no"),
        ('The document contains the answer to the question "How?"', "yes"),
        ("The answer doesn't follow the rule. It contains a list.", "no"),  # the first sentence decides
        ("It fails to address the request.", "no"),
    ],
)
def test_yes_no_parser_reads_the_last_marked_verdict_or_a_leading_word(text, verdict):
    assert YesNoParser().parse(Completion(text=text)).verdict == verdict


@pytest.mark.parametrize("text", ["", "The answer is fine.", "Maybe; it depends.", "I cannot say yesterday."])
def test_yes_no_parser_refuses_a_reply_without_a_verdict(text):
    with pytest.raises(ParseFailure, match="no yes/no verdict"):
        YesNoParser().parse(Completion(text=text))


def test_list_items_reads_markers_and_keeps_repeats_once():
    text = (
        "Rules:\n- The answer is short.\n* the answer is  SHORT\n2. The answer cites a source.\n(3) Be kind\nplain line"
    )
    assert list_items(text) == ["The answer is short.", "The answer cites a source.", "Be kind"]
    reading = ItemListParser().parse(Completion(text=text))
    assert reading.verdict == "yes" and reading.critique == "The answer is short.\nThe answer cites a source.\nBe kind"
    with pytest.raises(ParseFailure, match="no list item"):
        ItemListParser().parse(Completion(text="The answer should be short."))
    with pytest.raises(ParseFailure, match="empty reply"):
        FreeTextParser().parse(Completion(text="  \n"))


def test_rules_are_list_items_or_else_sentences_starting_the_answer():
    reply = "Here are rules. The answer is short and clear. the answer cites a source! It is nice. The answer is."
    assert RuleListParser().parse(Completion(text=reply)).critique == (
        "The answer is short and clear.\nThe answer cites a source!"
    )
    assert RuleListParser().parse(Completion(text="- Be brief.\nThe answer is long.")).critique == "Be brief."
    with pytest.raises(ParseFailure, match="no rule"):
        RuleListParser().parse(Completion(text="Short answers win."))


def test_digit_grade_is_the_probability_weighted_mean_digit():
    import math

    alts = {"7": math.log(0.5), " 9": math.log(0.25), "The": math.log(0.2), "10": math.log(0.05)}
    assert ScoreLogprobParser().parse(Completion(text="7", top_logprobs=(alts,))) == pytest.approx((3.5 + 2.25) / 0.75)
    with pytest.raises(ParseFailure, match="no digit"):
        ScoreLogprobParser().parse(Completion(text="The", top_logprobs=({"The": 0.0},)))
    with pytest.raises(ParseFailure, match="no logprobs"):
        ScoreLogprobParser().parse(Completion(text="7"))


def test_question_items_are_sentences_ending_with_a_question_mark_with_or_without_markers():
    reply = "Question 1: What is a contour line?\n\nIt joins points. **Q2:** How steep is it here? Why?\n- what is x?"
    assert question_items(reply) == ["What is a contour line?", "How steep is it here?"]  # short or lower-case: not
    assert (
        QuestionListParser().parse(Completion(text="- How often do I feed it?")).critique == "How often do I feed it?"
    )
    with pytest.raises(ParseFailure, match="no question"):
        QuestionListParser().parse(Completion(text="The document is about bread."))


def test_protocols_fill_their_fields_and_refuse_a_missing_subject():
    judge = get_response_judge("smollm2-rule-check-server")
    assert judge.reads == frozenset({"subject"})
    (msgs,) = judge.messages(ResponseRequest(instruction="Say hi", output="Hello!", subject="The answer is brief."))
    assert "The answer is brief." in msgs[-1]["content"] and "Hello!" in msgs[-1]["content"]
    with pytest.raises(JudgeError, match="needs a subject"):
        judge.messages(ResponseRequest(instruction="Say hi", output="Hello!"))
    grade = get_response_judge("smollm2-reference-grade-server")
    assert grade.reads == frozenset({"reference"})
    # the same provider under another protocol/template is another judge: another fingerprint
    other = get_judge("smollm2-rule-check-server", protocol="yes_no", template="document_answers_v1")
    assert other.fingerprint.digest != judge.fingerprint.digest


@pytest.mark.model
@pytest.mark.slow
def test_rule_check_by_smollm2_behind_a_real_server_is_stored_and_reused(llama_server, tmp_path):
    judge = get_response_judge("smollm2-rule-check-server", base_url=llama_server.base_url)
    items = [
        ResponseToJudge(instruction="Name a colour.", output=o, generator="g", subject=rule)
        for o in ("Blue.",)
        for rule in ("The answer is one word.", "The answer is polite.")
    ]
    with Store(tmp_path / "s.db") as store:
        first = annotate_responses(store, judge, items, progress=False)
        assert first.n_judgments == 2 and first.n_cached == 0
        for j in first.judgments:
            assert j.status in ("ok", "parse_error")
            assert (j.verdict in ("yes", "no")) == (j.status == "ok")
            assert j.subject in ("The answer is one word.", "The answer is polite.")
            assert j.raw_completion
        again = annotate_responses(store, judge, items, progress=False)
        ok = sum(j.status == "ok" for j in first.judgments)
        assert again.n_cached >= ok and store.count_response_judgments() == 2
