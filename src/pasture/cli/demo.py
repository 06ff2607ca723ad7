"""``pasture demo``: the whole pipeline offline with SmolLM2 (the README's first command)."""

from __future__ import annotations

from pathlib import Path

import click

from pasture.cli.evaluate import build_judge, judge_options
from pasture.cli.leaderboard import show_board
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
@judge_options
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def command(
    workdir: Path,
    n: int,
    max_tokens: int,
    n_threads: int | None,
    judge_name: str,
    judge_template: Path | None,
    judge_base_url: str | None,
    judge_model: str | None,
    judge_args: tuple[str, ...],
    no_progress: bool,
) -> None:
    """Generate, judge, rank and report offline with SmolLM2-135M-Instruct; no API key, no network.

    \b
    Runs on N instructions of the embedded demo set (stratified by category), three settings of SmolLM2
    (greedy, outputs capped at --max-tokens): smollm2-concise (the reference), smollm2-default and
    smollm2-verbose (system prompts in pasture.demo.SETTINGS), judged by SmolLM2 itself (smollm2-logprob).
    A 135M judge is for trying the tool: it picks the answer shown first almost every time.
    For real numbers change one option, e.g. --judge gpt-4o-mini-logprob (needs OPENAI_API_KEY).
    """
    judge = None
    if judge_name != DEMO_JUDGE or judge_base_url or judge_model or judge_args or judge_template:
        judge = build_judge(judge_name, judge_template, judge_base_url, judge_model, judge_args)
    click.echo(
        f"pasture demo: {n} instructions of the embedded demo set, SmolLM2-135M-Instruct (llama.cpp, in process), "
        f"greedy, max {max_tokens} tokens; models {', '.join(s for s in SETTINGS if s != REFERENCE)} "
        f"vs reference {REFERENCE}; judge {judge.name if judge else DEMO_JUDGE}"
    )
    result = run_demo(workdir, n=n, max_tokens=max_tokens, n_threads=n_threads, judge=judge, progress=not no_progress)
    for g in result.generations:
        click.echo(g.summary())
    click.echo(result.evaluation.annotation.summary())
    board = result.evaluation.board
    show_board(board.frame, board.title(), board.notes)
    if judge is None:
        click.echo(f"\nNOTE: {JUDGE_CAVEAT}\n{STRONG_JUDGE_HINT}\n")
    click.echo(f"store:  {result.store_path}")
    click.echo(f"report: {result.report.html}")
    click.echo(f"demo finished in {result.wall_s:.0f} s")
