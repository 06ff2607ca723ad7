"""``pasture demo``: the whole pipeline offline with SmolLM2 (the README's first command)."""

from __future__ import annotations

from pathlib import Path

import click

from pasture.cli.common import wide_option
from pasture.cli.leaderboard import show_board
from pasture.cli.options import JudgeOptions, judge_options
from pasture.demo import (
    DEMO_JUDGE,
    DEMO_MAX_TOKENS,
    DEMO_N,
    JUDGE_CAVEAT,
    REFERENCE,
    SETTINGS,
    STRONG_JUDGE_HINT,
    run_demo,
)


@click.command("demo")
@wide_option
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=Path("pasture-demo"),
    show_default=True,
    help="Folder for the demo's store, report and figures (a rerun reuses them).",
)
@click.option("-n", "--instructions", "n", type=int, default=DEMO_N, show_default=True, help="Instructions used.")
@click.option("--max-tokens", type=int, default=DEMO_MAX_TOKENS, show_default=True, help="Token cap per output.")
@click.option("--threads", "n_threads", type=int, default=None, help="CPU threads for llama.cpp.")
@judge_options(default=DEMO_JUDGE)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def command(
    workdir: Path,
    n: int,
    max_tokens: int,
    n_threads: int | None,
    judge: JudgeOptions,
    no_progress: bool,
    wide: bool,
) -> None:
    """Generate, judge, rank and report offline with SmolLM2-135M-Instruct; no API key, no network.

    \b
    Runs on N instructions of the embedded demo set (stratified by category), three settings of SmolLM2
    (greedy, outputs capped at --max-tokens): smollm2-concise (the reference), smollm2-default and
    smollm2-verbose (system prompts in pasture.demo.SETTINGS), judged by SmolLM2 itself (smollm2-logprob).
    A 135M judge is for trying the tool: it picks the answer shown first almost every time.
    For real numbers change one option, e.g. --judge gpt-4o-mini-logprob (needs OPENAI_API_KEY).
    """
    built = None if judge == JudgeOptions(DEMO_JUDGE) else judge.build()
    click.echo(
        f"pasture demo: {n} instructions of the embedded demo set, SmolLM2-135M-Instruct (llama.cpp, in process), "
        f"greedy, max {max_tokens} tokens; models {', '.join(s for s in SETTINGS if s != REFERENCE)} "
        f"vs reference {REFERENCE}; judge {built.name if built else DEMO_JUDGE}"
    )
    result = run_demo(workdir, n=n, max_tokens=max_tokens, n_threads=n_threads, judge=built, progress=not no_progress)
    for g in result.generations:
        click.echo(g.summary())
    click.echo(result.evaluation.annotation.summary())
    board = result.evaluation.board
    show_board(board.frame, board.title(), board.notes, wide=wide)
    if built is None:
        click.echo(f"\nNOTE: {JUDGE_CAVEAT}\n{STRONG_JUDGE_HINT}\n")
    click.echo(f"store:  {result.store_path}")
    click.echo(f"report: {result.report.html}")
    click.echo(f"demo finished in {result.wall_s:.0f} s")
