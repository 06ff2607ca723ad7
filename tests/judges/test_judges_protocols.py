"""Each protocol's request and its preference by slot, with replies replayed by a local OpenAI-format server.

The live model is exercised in test_judges_server.py; here the replies are fixed so that the mapping from
reply to preference (shown order -> slots, two grades -> preference, grade vs anchor) is pinned exactly.
"""

from __future__ import annotations

import asyncio

import pytest

from pasture.judges import JudgeRequest, get_judge
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
