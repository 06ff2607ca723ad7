"""Each protocol's request and its preference by slot, with replies replayed by a local OpenAI-format server.

The live model is exercised in test_judges_server.py; here the replies are fixed so that the mapping from
reply to preference (shown order -> slots, two grades -> preference, grade vs anchor) is pinned exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from pasture.errors import JudgeError
from pasture.judges import (
    JudgeRequest,
    ResponseProtocol,
    ResponseReading,
    ResponseRequest,
    get_judge,
    get_protocol,
    protocol_names,
    register_protocol,
)
from pasture.judges.protocols import _REGISTRY
from replay_server import ReplayServer, Scripted


def reply(text: str, prompt_tokens: int = 100, completion_tokens: int = 20) -> Scripted:
    return Scripted.json(
        200,
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": 0},
        },
    )


def run(name: str, script: list[Scripted], request: JudgeRequest):
    with ReplayServer(script) as server:
        v = asyncio.run(get_judge(name, base_url=server.url + "/v1").judge(request))
        return v, server.requests


@pytest.mark.parametrize(("shown_first", "expected"), [(1, 1.25), (2, 1.75)])
def test_graded_maps_shown_order_to_slots(shown_first, expected):
    v, reqs = run("gpt-4o-mini-graded", [reply("A is right. [[A>B]]")], JudgeRequest("q", "REF", "MOD", shown_first))
    assert v.status == "ok" and v.preference == expected
    user = reqs[0][2]["messages"][1]["content"]
    first, second = ("REF", "MOD") if shown_first == 1 else ("MOD", "REF")
    assert f"Answer A:\n{first}" in user and f"Answer B:\n{second}" in user
    assert reqs[0][2]["temperature"] == 0 and reqs[0][2]["max_tokens"] == 512


@pytest.mark.parametrize(
    ("grades", "expected"),
    [(("[[3]]", "[[8]]"), 2.0), (("[[8]]", "[[3]]"), 1.0), (("Score: 6", "6/10"), 1.5)],
)
@pytest.mark.parametrize("shown_first", [1, 2])
def test_single_score_two_calls_and_sign_rule(grades, expected, shown_first):
    # the judge grades the output shown first first: script the replies in that order
    by_slot = dict(zip(("REF", "MOD"), grades, strict=True))
    order = ["REF", "MOD"] if shown_first == 1 else ["MOD", "REF"]
    script = [reply(f"Fine. {by_slot[o]}") for o in order]
    v, reqs = run("gpt-4o-mini-score", script, JudgeRequest("q", "REF", "MOD", shown_first))
    assert len(reqs) == 2
    graded = [r[2]["messages"][1]["content"].split("Answer:\n")[1].split("\n")[0] for r in reqs]
    assert graded == order
    assert v.status == "ok" and v.preference == expected
    assert v.prompt_tokens == 200 and v.completion_tokens == 40


def test_single_score_one_unparsable_grade_is_a_parse_error():
    v, _ = run("gpt-4o-mini-score", [reply("[[7]]"), reply("I cannot grade this.")], JudgeRequest("q", "R", "M", 1))
    assert v.status == "parse_error" and v.preference is None and "output_2" in v.error
    assert '"I cannot grade this."' in v.raw_completion


@pytest.mark.parametrize(("text", "expected"), [("[[9]]", 2.0), ("[[5]]", 1.5), ("[[2]]", 1.0)])
def test_reference_score_against_anchor(text, expected):
    v, reqs = run("gpt-4o-mini-reference", [reply(text)], JudgeRequest("q", "REF", "MOD", shown_first=2))
    user = reqs[0][2]["messages"][1]["content"]
    assert "Reference answer:\nREF" in user and "Answer to grade:\nMOD" in user
    assert v.preference == expected


def test_dry_run_estimates_and_prices():
    j = get_judge("gpt-4o-mini-graded")
    prompt, completion = j.estimate_tokens(JudgeRequest("x" * 400, "y" * 400, "z" * 400, 1))
    assert 300 < prompt < 600 and completion == 512
    assert j.price_per_token() == pytest.approx((0.15e-6, 0.60e-6))
    assert get_judge("gpt-4o-mini-graded", base_url="http://127.0.0.1:1/v1").price_per_token() is None
    assert get_judge("gpt-4o-mini-score").estimate_tokens(JudgeRequest("q", "a", "b", 1))[1] == 1024


# ---------- the protocol registry and single-response protocols ----------


def test_registry_knows_every_builtin_protocol_and_refuses_unknown_ones():
    assert protocol_names("pairwise") == ["pairwise_graded", "pairwise_logprob", "reference_score", "single_score"]
    assert protocol_names("response") == [
        "critique", "expected_digit", "item_list", "preference_explanation", "reference_grade", "response_score",
        "rule_check", "yes_no",
    ]  # fmt: skip
    with pytest.raises(
        JudgeError, match="unknown protocol 'telepathy'; known: critique, expected_digit, item_list, pairwise_graded"
    ):
        get_protocol("telepathy")
    with pytest.raises(JudgeError, match="already registered"):
        register_protocol(type(get_protocol("critique")))
    for name in ("smollm2-critique-server", "gpt-4o-mini-critique", "gpt-4o-mini-response-score"):
        assert get_judge(name).kind == "response"
    assert get_judge("gpt-4o-mini-graded").kind == "pairwise"


def test_a_template_with_placeholders_the_protocol_does_not_fill_is_refused(tmp_path):
    t = tmp_path / "t.txt"
    t.write_text("Q {instruction}\nA {output}\nRef {reference}", encoding="utf-8")
    with pytest.raises(JudgeError, match=r"\{reference\} that protocol critique does not fill"):
        get_judge("gpt-4o-mini-critique", template=str(t))


@pytest.mark.parametrize(
    ("text", "verdict"),
    [("It says 5; the sum is 4.\nVerdict: bad", "bad"), ("Nothing is wrong.\nVerdict: good", "good")],
)
def test_critique_asks_about_one_answer_and_keeps_the_reply(text, verdict):
    with ReplayServer([reply(text)]) as server:
        judge = get_judge("gpt-4o-mini-critique", base_url=server.url + "/v1")
        v = asyncio.run(judge.judge_response(ResponseRequest("What is 2+2?", "5")))
        user = server.requests[0][2]["messages"][1]["content"]
    assert "Request:\nWhat is 2+2?" in user and "Answer:\n5" in user and "Verdict: good" in user
    assert (v.status, v.verdict, v.score, v.raw_completion) == ("ok", verdict, None, text)
    assert v.critique == text.rsplit("\n", 1)[0]
    assert v.prompt_tokens == 100 and v.completion_tokens == 20
    with pytest.raises(JudgeError, match="judges one response at a time"):
        asyncio.run(judge.judge(JudgeRequest("q", "a", "b", 1)))


def test_response_score_and_its_parse_error():
    with ReplayServer([reply("Good but short. [[7]]"), reply("I refuse.")]) as server:
        judge = get_judge("gpt-4o-mini-response-score", base_url=server.url + "/v1")
        ok = asyncio.run(judge.judge_response(ResponseRequest("q", "an answer")))
        bad = asyncio.run(judge.judge_response(ResponseRequest("q", "an answer")))
    assert (ok.status, ok.score, ok.verdict) == ("ok", 7.0, None)
    assert (bad.status, bad.score, bad.raw_completion) == ("parse_error", None, "I refuse.")
    assert "no score" in (bad.error or "")


def test_adding_a_protocol_is_one_class(tmp_path):
    """A new single-response protocol (a 0-9 grade read from the LAST digit line) works end to end."""

    @register_protocol
    class DigitGrade(ResponseProtocol):
        name = "test_digit_grade"
        fields = ("instruction", "output")
        default_parser: ClassVar[Mapping[str, Any]] = {"kind": "score", "low": 0, "high": 9}

        def reading(self, parser, completions, request):
            return ResponseReading(score=float(parser.parse(completions[0])))

    try:
        t = tmp_path / "digit.txt"
        t.write_text("Grade 0-9 as [[N]].\n{instruction}\n{output}", encoding="utf-8")
        spec = tmp_path / "digit.toml"
        spec.write_text(
            f'protocol = "test_digit_grade"\ntemplate = "{t.name}"\n[provider]\nname = "openai"\nmodel = "m"\n'
            "[decoding]\ntemperature = 0\n",
            encoding="utf-8",
        )
        with ReplayServer([reply("[[0]]")]) as server:
            judge = get_judge(str(spec), base_url=server.url + "/v1")
            v = asyncio.run(judge.judge_response(ResponseRequest("q", "a")))
        assert judge.fingerprint.protocol == "test_digit_grade" and judge.fingerprint.parser == "score_0_9"
        assert (v.status, v.score) == ("ok", 0.0)
    finally:
        _REGISTRY.pop("test_digit_grade")
