"""pasture synthesize: the eval-set dedup (exact, near, and a distinct look-alike), its threshold validated on
AlpacaEval (not the data it was chosen on), the pipeline's filter with a scripted generator and a programmatic
judge on a real store, and an end-to-end run with the bundled model."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pasture.annotate import EngineSettings
from pasture.cli import main
from pasture.evalsets import demo_eval_set
from pasture.generate import GenerationSettings
from pasture.io import read_model_outputs
from pasture.judges import ProgrammaticResponseJudge
from pasture.judges.base import ChatRequest, Completion, ResponseReading, ResponseRequest
from pasture.metrics.textsim import shingle_jaccard
from pasture.store import Store
from pasture.synthesize import (
    NEAR_DUPLICATE_THRESHOLD,
    EvalIndex,
    SynthesisSettings,
    clean_instruction,
    read_personas,
    synthesize,
    write_jsonl,
)

QUIET = EngineSettings(concurrency=1)
PERSONAS = (
    "a hydrologist who models groundwater recharge in karst aquifers",
    "a pharmacist who reviews drug interactions for elderly patients",
    "a structural engineer who inspects timber bridges",
)


def test_dedup_catches_exact_and_near_and_lets_a_look_alike_through() -> None:
    demo = demo_eval_set()
    index = EvalIndex(demo.texts())
    source = "Explain the difference between weather and climate."
    assert source in demo.texts()
    exact = index.match("  explain the DIFFERENCE between weather and climate ")
    near_text = "Please explain the difference between weather and the climate"
    near = index.match(near_text)
    look_alike = "Explain the difference between a hurricane and a typhoon."
    assert exact is not None and exact.reason == "exact" and exact.match == source
    assert near is not None and near.reason == "near" and near.match == source
    assert near.similarity == pytest.approx(shingle_jaccard(source, near_text)) and near.similarity < 1
    assert index.match(look_alike) is None
    # the look-alike is not a stranger to the source: it shares the template, below the threshold
    assert 0.2 < shingle_jaccard(look_alike, source) < NEAR_DUPLICATE_THRESHOLD


def _perturb(text: str, rng: random.Random) -> str:
    words = text.split()
    edits = [
        lambda w: ["Please", w[0].lower(), *w[1:]],
        lambda w: [*w[:-1], w[-1].rstrip(".?!")],
        lambda w: [*w[: len(w) // 2], "the", *w[len(w) // 2 :]],
        lambda w: [x[:-1] if i == len(w) // 2 and len(x) > 1 else x for i, x in enumerate(w)],
    ]
    return " ".join(rng.choice(edits)(words))


def test_threshold_holds_on_alpacaeval(alpacaeval: Path) -> None:
    """The threshold was chosen on the demo set; here it meets AlpacaEval's 805 instructions for the first time."""
    texts = [o.instruction for o in read_model_outputs(alpacaeval / "results/gpt4_1106_preview/model_outputs.json.gz")]
    indexed, held_out = texts[:400], texts[400:]
    index = EvalIndex(indexed)
    rng = random.Random(0)
    caught = sum(index.match(_perturb(t, rng)) is not None for t in indexed)
    false_hits = [t for t in held_out if index.match(t) is not None]
    assert caught / len(indexed) >= 0.98  # a light edit of an eval instruction is caught
    assert len(false_hits) / len(held_out) <= 0.05  # distinct instructions pass (templated families aside)


def test_clean_instruction_and_personas(tmp_path: Path) -> None:
    assert clean_instruction('Question: "How does karst recharge differ?"') == "How does karst recharge differ?"
    assert clean_instruction("  **Task:** Size a beam.") == "Size a beam."
    assert clean_instruction("  ") == ""
    path = tmp_path / "p.txt"
    path.write_text("a\n\nb\na\n")
    with pytest.raises(Exception, match="persona repeated"):
        read_personas(path)


QUESTIONS = {
    "a hydrologist": [
        "How fast does recharge reach a karst conduit after a storm?",
        "Which tracer suits a cave spring?",
    ],
    "a pharmacist": ["", "Why does grapefruit juice raise some statin levels?"],
    "a structural engineer": ["How is rot detected inside an oak girder?", "What load factor applies to a footbridge?"],
}


class ScriptedGenerator:
    """A provider-like generator: instruction prompts get a persona-specific question (one persona's copies an
    eval instruction); response prompts get an answer whose length grows with the seed."""

    name = "scripted"
    model = "scripted-v1"

    def __init__(self) -> None:
        self.calls = 0

    def identity(self) -> dict[str, Any]:
        return {"model": self.model}

    async def complete(self, request: ChatRequest) -> Completion:
        self.calls += 1
        prompt = request.messages[-1]["content"]
        seed = int(request.decoding["seed"])
        if prompt.startswith("You are "):
            persona = prompt.split("\n", 1)[0][len("You are ") : -1]
            if "pharmacist" in persona and seed == 0:
                return Completion(text="Question: Explain the difference between weather and climate.")
            return Completion(text=f'"{QUESTIONS[persona.split(" who ")[0]][seed]}"')
        return Completion(text="Because" + " reasons" * (1 + 3 * seed))


def length_score(request: ResponseRequest) -> ResponseReading:
    return ResponseReading(score=min(10.0, len(request.output.split()) / 2))


def test_pipeline_filters_dedups_and_writes_trl_files(tmp_path: Path) -> None:
    judge = ProgrammaticResponseJudge(length_score, name="length-score")
    settings = SynthesisSettings(
        name="t",
        instructions_per_persona=2,
        responses_per_instruction=2,
        instruction_generation=GenerationSettings(max_tokens=32, temperature=0.9),
        response_generation=GenerationSettings(max_tokens=32, temperature=0.9),
        min_score=3.0,
        min_gap=1.0,
    )
    with Store(tmp_path / "s.db") as store:
        report = synthesize(store, PERSONAS, ScriptedGenerator(), judge, eval_sets=[demo_eval_set()],
                            settings=settings, engine=QUIET, progress=False)  # fmt: skip
        rerun_generator = ScriptedGenerator()
        again = synthesize(store, PERSONAS, rerun_generator, judge, eval_sets=[demo_eval_set()],
                           settings=settings, engine=QUIET, progress=False)  # fmt: skip
    assert report.n_asked == 6 and report.n_empty == 0 and report.n_generation_failed == 0
    assert [(m.reason, m.match) for _, m in report.dropped] == [
        ("exact", "Explain the difference between weather and climate.")
    ]
    assert report.n_kept_instructions == 5 and report.n_responses == 10 and report.n_judged_ok == 10
    # responses: seed 0 "Because reasons" (2 words: score 1), seed 1 (5 words: score 2.5)... sample k uses seed k
    assert all(r["score"] >= 3.0 for r in report.sft) and report.n_below_min_score == 5 and not report.sft
    assert len(report.preference) == 5
    for row in report.preference:
        assert row["score_chosen"] - row["score_rejected"] >= 1.0
        assert row["prompt"][0]["role"] == "user" and row["chosen"][0]["role"] == "assistant"
        assert row["prompt"][0]["content"] not in demo_eval_set().texts()
    assert again.preference == report.preference and rerun_generator.calls == 0  # from the store: no new call
    lower = SynthesisSettings(**{**settings.__dict__, "min_score": 2.5})
    with Store(tmp_path / "s.db") as store:
        relaxed = synthesize(store, PERSONAS, ScriptedGenerator(), judge, eval_sets=[demo_eval_set()],
                             settings=lower, engine=QUIET, progress=False)  # fmt: skip
    assert len(relaxed.sft) == 5 and all(r["messages"][1]["content"].count("reasons") == 4 for r in relaxed.sft)
    path = write_jsonl(tmp_path / "sft.jsonl", relaxed.sft)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [m["role"] for m in rows[0]["messages"]] == ["user", "assistant"]


@pytest.mark.slow
def test_synthesize_with_smollm2_end_to_end(smollm2_gguf: Path, tmp_path: Path) -> None:
    """3 team-written personas, the bundled model as generator and as a response_score judge; tiny sizes."""
    personas = tmp_path / "personas.txt"
    personas.write_text("\n".join(PERSONAS) + "\n")
    judge_toml = tmp_path / "judge.toml"
    judge_toml.write_text(
        'name = "smollm2-response-score"\nprotocol = "response_score"\ntemplate = "single_score_v1"\n'
        "[decoding]\nmax_tokens = 24\ntemperature = 0\n"
        f'[provider]\nname = "llama_cpp"\nmodel = "SmolLM2-135M-Instruct"\nmodel_path = "{smollm2_gguf}"\n'
    )
    out = tmp_path / "out"
    args = ["synthesize", str(personas), "--model", "smollm2", "--judge", str(judge_toml), "--out", str(out),
            "--instructions-per-persona", "1", "--responses", "2", "--instruction-max-tokens", "16",
            "--response-max-tokens", "16", "--min-score", "1", "--min-gap", "0", "--store", str(tmp_path / "s.db"),
            "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (0, 1), result.output
    assert "3 personas → 3 instructions asked" in result.output, result.output
    sft = [json.loads(x) for x in (out / "sft.jsonl").read_text().splitlines()]
    pref = [json.loads(x) for x in (out / "preference.jsonl").read_text().splitlines()]
    demo = set(demo_eval_set().texts())
    for row in sft:
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"] and row["persona"] in PERSONAS
        assert row["messages"][0]["content"] not in demo
    for row in pref:
        assert set(row) >= {"prompt", "chosen", "rejected"} and row["score_chosen"] >= row["score_rejected"]
    rerun = CliRunner().invoke(main, args)  # everything is in the store: same files
    assert rerun.exit_code == result.exit_code
    assert [json.loads(x) for x in (out / "sft.jsonl").read_text().splitlines()] == sft


@pytest.mark.parametrize("name", ["synthesize", "translate"])
def test_help_documents_every_option(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0
    command = main.get_command(None, name)  # type: ignore[arg-type]
    assert command is not None and command.help and len(command.help) > 60
    for param in command.params:
        if param.param_type_name == "option" and param.name != "help":
            assert param.help, f"{name} --{param.name} has no help text"  # type: ignore[attr-defined]
            assert param.opts[0] in result.output


def test_synthesize_bad_personas_file_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["synthesize", str(tmp_path / "none.txt"), "--model", "smollm2", "--judge", "longer-wins",
               "--out", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 2 and "personas file not found" in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1
