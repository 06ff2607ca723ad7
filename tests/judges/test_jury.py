"""Juries: accuracy of programmatic juries with known error rates (independent and correlated) against the
exact expectation; members cached by their own keys and the jury verdict derived from them; TOML juries;
per-member bias in analyze-judge; a jury of three SmolLM2 personas end to end."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pasture.analysis.judge_analysis import jury_members, labels_from_judgments
from pasture.annotate import EngineSettings, PairToJudge
from pasture.annotate.jury import annotate_jury
from pasture.cli import main
from pasture.errors import JudgeError
from pasture.evalsets import alpaca_eval_reference, alpaca_eval_set
from pasture.evaluate import evaluate
from pasture.io import read_model_outputs
from pasture.judges import JudgeRequest, ProgrammaticJudge, get_judge, longer_output_wins, shorter_output_wins
from pasture.judges.jury import JuryJudge, aggregate
from pasture.records import EvalSet, Instruction
from pasture.store import Store

N = 4000
Z = 3.29  # two-sided 99.9% normal quantile: the binomial interval the realized accuracy must fall in


def _u(*parts: object) -> float:
    """A uniform in [0, 1) fixed by ``parts`` (independent across different parts)."""
    return int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:13], 16) / 16**13


def _truth(i: int) -> float:
    return 2.0 if i % 2 == 0 else 1.0


def _member(k: int, wrong: object, *, soft: float = 0.5) -> ProgrammaticJudge:
    """Member ``k``: right with confidence ``soft`` on item i unless ``wrong(k, i)``; then the other way."""

    def fn(instruction: str, output_1: str, output_2: str) -> float:
        i = int(instruction.split()[1])
        sign = 1.0 if _truth(i) == 2.0 else -1.0
        if wrong(k, i):  # type: ignore[operator]
            sign = -sign
        return 1.5 + sign * soft

    return ProgrammaticJudge(fn, name=f"member-{k}", version=f"test-member-{k}-{id(wrong)}-{soft}")


def _accuracy(judge: object, n: int = N) -> float:
    async def run() -> list[float]:
        requests = [JudgeRequest(f"item {i}", "r", "m", shown_first=1) for i in range(n)]
        return [v.preference for v in await asyncio.gather(*(judge.judge(r) for r in requests))]  # type: ignore[attr-defined]

    prefs = asyncio.run(run())
    return float(np.mean([(p > 1.5) == (_truth(i) == 2.0) for i, p in enumerate(prefs)]))


def _majority_of_three(e: tuple[float, float, float]) -> float:
    """P(at most one of three independent members is wrong)."""
    a, b, c = e
    return (1 - a) * (1 - b) * (1 - c) + a * (1 - b) * (1 - c) + (1 - a) * b * (1 - c) + (1 - a) * (1 - b) * c


def _within(observed: float, expected: float, n: int = N) -> None:
    half = Z * math.sqrt(expected * (1 - expected) / n)
    assert abs(observed - expected) <= half, (observed, expected, half)


def test_majority_jury_of_independent_members_matches_its_exact_accuracy() -> None:
    rates = (0.2, 0.3, 0.25)

    def wrong(k: int, i: int) -> bool:
        return _u("indep", k, i) < rates[k]

    members = [_member(k, wrong) for k in range(3)]
    for k, m in enumerate(members):
        _within(_accuracy(m), 1 - rates[k])
    expected = _majority_of_three(rates)  # 0.845: better than the best member (0.8)
    _within(_accuracy(JuryJudge(members, aggregation="majority")), expected)
    assert expected > 1 - min(rates)


def test_correlated_members_gain_less_and_match_the_exact_mixture() -> None:
    hard, q_hard, q_easy = 0.3, 0.6, 0.1  # members err together more often on the same hard items

    def wrong(k: int, i: int) -> bool:
        return _u("corr", k, i) < (q_hard if _u("hard", i) < hard else q_easy)

    members = [_member(k, wrong) for k in range(3)]
    member_error = hard * q_hard + (1 - hard) * q_easy  # 0.25 for each member
    for m in members:
        _within(_accuracy(m), 1 - member_error)
    expected = hard * _majority_of_three((q_hard,) * 3) + (1 - hard) * _majority_of_three((q_easy,) * 3)
    _within(_accuracy(JuryJudge(members)), expected)
    assert expected < _majority_of_three((member_error,) * 3)  # correlation costs the jury accuracy


def test_weighted_and_mean_follow_the_heavy_member_exactly() -> None:
    rates = (0.2, 0.4, 0.4)

    def wrong(k: int, i: int) -> bool:
        return _u("weighted", k, i) < rates[k]

    members = [_member(k, wrong) for k in range(3)]
    heavy = _accuracy(members[0], 1000)
    assert _accuracy(JuryJudge(members, aggregation="weighted", weights=[3, 1, 1]), 1000) == heavy
    soft = [_member(0, wrong, soft=0.5), _member(1, wrong, soft=0.2), _member(2, wrong, soft=0.2)]
    assert _accuracy(JuryJudge(soft, aggregation="mean"), 1000) == heavy  # 0.5 outweighs 0.2 + 0.2
    assert aggregate([2.0, 1.0, 1.5], [1, 1, 1], "majority") == 1.5  # one vote each way, one abstains
    assert aggregate([1.9, 1.4], [1, 3], "mean") == pytest.approx((1.9 + 3 * 1.4) / 4)


def test_fingerprint_is_built_from_members_and_aggregation() -> None:
    a, b = ProgrammaticJudge(longer_output_wins), ProgrammaticJudge(shorter_output_wins)
    jury = JuryJudge([a, b])
    assert jury.fingerprint.decoding["members"] == [a.fingerprint.digest, b.fingerprint.digest]
    others = [JuryJudge([b, a]), JuryJudge([a, b], aggregation="mean"), JuryJudge([a, b], weights=[2, 1])]
    assert len({jury.fingerprint.digest, *(o.fingerprint.digest for o in others)}) == 4
    with pytest.raises(JudgeError, match="same fingerprint"):
        JuryJudge([a, ProgrammaticJudge(longer_output_wins)])
    with pytest.raises(JudgeError, match="at least two"):
        JuryJudge([a])


def _pairs(n: int) -> list[PairToJudge]:
    return [
        PairToJudge(
            instruction=f"item {i}", output_1="x" * (i % 7), generator_1="ref", output_2="y" * (i % 5), generator_2="m"
        )
        for i in range(n)
    ]


def test_members_cached_by_their_own_keys_and_the_jury_derived_from_them(tmp_path: Path) -> None:
    rates = (0.2, 0.3, 0.25)

    def wrong(k: int, i: int) -> bool:
        return _u("engine", k, i) < rates[k]

    members = [_member(k, wrong) for k in range(3)]
    pairs = _pairs(40)
    with Store(tmp_path / "s.db") as store:
        report, by_member = annotate_jury(store, JuryJudge(members), pairs, position="both", progress=False)
        assert report.n_judgments == report.n_new == 80 and report.calls == 3 * 80 and report.ok
        for m in members:
            stored = {j.key: j for j in store.get_judgments(judge_digest=m.fingerprint.digest)}
            assert len(stored) == 80 and by_member[m.name].n_new == 80
        for j in report.judgments:
            member_prefs = json.loads(j.raw_completion or "")
            assert j.preference == aggregate(list(member_prefs.values()), [1, 1, 1], "majority")
            assert j.attempts == 0
        # another aggregation of the same members: a new judge, no new call
        again, _ = annotate_jury(store, JuryJudge(members, aggregation="mean"), pairs, position="both", progress=False)
        assert again.calls == 0 and again.n_new == 80
        rerun, _ = annotate_jury(store, JuryJudge(members), pairs, position="both", progress=False)
        assert rerun.calls == 0 and rerun.n_cached == 80


def test_a_failed_member_fails_the_jury_judgment_and_is_retried(tmp_path: Path) -> None:
    left = {"n": 1}

    def flaky(instruction: str, output_1: str, output_2: str) -> float | None:
        if instruction == "item 3" and left["n"]:
            left["n"] -= 1
            return None
        return longer_output_wins(instruction, output_1, output_2)

    jury = JuryJudge([ProgrammaticJudge(flaky, version="flaky-1"), ProgrammaticJudge(shorter_output_wins)])
    settings = EngineSettings(parse_retries=0)
    with Store(tmp_path / "s.db") as store:
        first, _ = annotate_jury(store, jury, _pairs(10), settings=settings, progress=False)
        assert first.n_parse_error == 1 and first.n_failed == 1 and not first.ok
        assert "flaky" in (first.failed[0].error or "")
        second, _ = annotate_jury(store, jury, _pairs(10), settings=settings, progress=False)
        assert second.ok and second.calls == 1 and second.n_cached == 9 and second.n_new == 1


def test_a_toml_jury_names_its_members(tmp_path: Path) -> None:
    (tmp_path / "short.toml").write_text(
        'name = "short"\n[provider]\nname = "python"\nfunction = "pasture.judges.judge:shorter_output_wins"\n'
    )
    (tmp_path / "jury.toml").write_text(
        'name = "my-jury"\n[provider]\nname = "jury"\nmembers = ["longer-wins", "short.toml"]\n'
        'aggregation = "weighted"\nweights = [2.0, 1.0]\n'
    )
    jury = get_judge(tmp_path / "jury.toml")
    assert isinstance(jury, JuryJudge) and jury.name == "my-jury" and [m.name for m in jury.members] == [
        "longer-wins", "short"
    ]  # fmt: skip
    (tmp_path / "bad.toml").write_text('[provider]\nname = "jury"\nmembers = ["longer-wins"]\nvotes = 3\n')
    with pytest.raises(JudgeError, match="unknown argument"):
        get_judge(tmp_path / "bad.toml")


def test_evaluate_with_a_jury_and_analyze_judge_shows_each_member(tmp_path: Path) -> None:
    es = EvalSet(name="toy", instructions=[Instruction(instruction=f"item {i}") for i in range(40)])
    from pasture.records import ModelOutput

    ref = [ModelOutput(instruction=f"item {i}", output="r" * (10 + 9 * (i % 9)), generator="ref") for i in range(40)]
    mod = [ModelOutput(instruction=f"item {i}", output="m" * (5 + 11 * (i % 13)), generator="m") for i in range(40)]

    def first_shown_bias(instruction: str, output_1: str, output_2: str) -> float:
        return 1.0  # always the reference: shown first half the time in both orders

    jury = JuryJudge(
        [ProgrammaticJudge(longer_output_wins), ProgrammaticJudge(shorter_output_wins),
         ProgrammaticJudge(first_shown_bias, version="ref-always-1")],
        name="toy-jury",
    )  # fmt: skip
    db = tmp_path / "s.db"
    with Store(db) as store:
        result = evaluate(store, eval_set=es, model_outputs=mod, reference_outputs=ref, judge=jury,
                          position="both", progress=False)  # fmt: skip
        assert result.annotation.n_judgments == 80 and result.annotation.calls == 240
        assert result.board.frame.loc["m"].n_total == 40
        table = jury_members(
            {
                m.name: labels_from_judgments(store.get_judgments(judge_digest=m.fingerprint.digest))
                for m in jury.members
            },
            labels_from_judgments(store.get_judgments(judge_digest=jury.fingerprint.digest)),
        )
    # longer and shorter cancel out wherever lengths differ, so the always-the-reference member decides the jury
    longer, shorter, ref_always = (m.name for m in jury.members)
    assert table.loc[longer, "Proba. prefer longer"] == 1.0 and table.loc[shorter, "Proba. prefer longer"] == 0.0
    assert table.loc[ref_always, "P(first wins)"] == 0.5 and table.loc[ref_always, "Flip rate"] == 0.0
    assert table.loc[ref_always, "Agreement with jury"] == 100.0 == table.loc["jury", "Agreement with jury"]
    assert table.loc[longer, "Agreement with jury"] < 100.0 and list(table["n"]) == [80.0] * 4
    out = CliRunner().invoke(
        main,
        [
            "analyze-judge",
            "--store",
            str(db),
            "--judge",
            "toy-jury",
            "--gold-judge",
            "pasture.judges.judge.longer_output_wins",
            "--wide",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "jury members" in out.output and "shorter_output_wins" in out.output


@pytest.mark.slow
def test_a_jury_of_three_smollm2_personas_end_to_end(llama_server, alpacaeval: Path, tmp_path: Path) -> None:
    personas = {
        "strict": "You are an exacting examiner. Mark down any factual slip or ignored instruction.",
        "friendly": "You are a patient tutor who values answers a beginner could follow.",
        "terse": "You are a busy engineer who prefers the answer that gets to the point.",
    }
    members = []
    for name, system in personas.items():
        path = tmp_path / f"{name}.txt"
        path.write_text(
            f"<|im_start|>system\n{system} Reply with one letter only.\n<|im_end|>\n<|im_start|>user\n"
            "Request:\n{instruction}\n\nAnswer A:\n{output_1}\n\nAnswer B:\n{output_2}\n\n"
            "Which answer is better? Reply with the single letter A or B.\n<|im_end|>\n"
        )
        members.append(get_judge("smollm2-logprob-server", base_url=llama_server.base_url, template=str(path),
                                 name=f"smol-{name}"))  # fmt: skip
    jury = JuryJudge(members, aggregation="mean", name="smol-jury")
    ref_file = alpacaeval / "results/gpt4_1106_preview/model_outputs.json.gz"
    full = alpaca_eval_set(ref_file)
    all_ref = {o.instruction: o for o in alpaca_eval_reference(ref_file)}
    all_mod = {o.instruction: o for o in read_model_outputs(alpacaeval / "results/alpaca-7b/model_outputs.json.gz")}
    size = {t: len(t) + len(all_ref[t].output) + len(all_mod[t].output) for t in full.texts()}
    shortest = sorted(full.texts(), key=lambda t: size[t])[:6]  # a handful of short pairs: quick on a small CPU
    es = EvalSet(name="six", instructions=[i for i in full.instructions if i.instruction in shortest])
    ref = [all_ref[t] for t in es.texts()]
    mod = [all_mod[t] for t in es.texts()]
    db = tmp_path / "s.db"
    with Store(db) as store:
        result = evaluate(store, eval_set=es, model_outputs=mod, reference_outputs=ref, judge=jury, position="both",
                          settings=EngineSettings(concurrency=2), progress=False)  # fmt: skip
        report = result.annotation
        assert report.n_judgments == 12 and report.calls >= 36
        for m in members:
            assert len(store.get_judgments(judge_digest=m.fingerprint.digest)) == 12
        for j in report.judgments:
            if j.status == "ok":
                prefs = list(json.loads(j.raw_completion or "").values())
                assert j.preference == pytest.approx(float(np.mean(prefs)))
        member_failed = sum(
            j.status != "ok" for m in members for j in store.get_judgments(judge_digest=m.fingerprint.digest)
        )
        again = evaluate(store, eval_set=es, model_outputs=mod, reference_outputs=ref, judge=jury, position="both",
                         progress=False)  # fmt: skip
        assert (again.annotation.calls == 0) == (member_failed == 0)  # only failed member judgments are asked again
    out = CliRunner().invoke(
        main, ["analyze-judge", "--store", str(db), "--judge", "smol-jury", "--gold-judge", "smol-strict", "--wide"]
    )
    assert out.exit_code == 0, out.output
    assert "jury members" in out.output and all(f"smol-{p}" in out.output for p in personas)
