"""``pasture demo``: the whole pipeline offline with SmolLM2 (the README's first command)."""

from __future__ import annotations

from pathlib import Path

import click

from pasture.cli.common import print_frame
from pasture.demo import DEMO_MAX_TOKENS, DEMO_N, JUDGE_CAVEAT, REFERENCE, SETTINGS, STRONG_JUDGE_HINT, run_demo

SHOWN = ["length_controlled_winrate", "win_rate", "win_rate_ci_low", "win_rate_ci_high", "standard_error", "avg_length",
         "n_total", "n_failed", "gaming_flags"]  # fmt: skip


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
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def command(workdir: Path, n: int, max_tokens: int, n_threads: int | None, no_progress: bool) -> None:
    """Generate, judge, rank and report offline with SmolLM2-135M-Instruct; no API key, no network.

    \b
    Runs on N instructions of the embedded demo set (stratified by category), three settings of SmolLM2
    (greedy, outputs capped at --max-tokens): smollm2-concise (the reference), smollm2-default and
    smollm2-verbose (system prompts in pasture.demo.SETTINGS), judged by SmolLM2 itself (smollm2-logprob).
    A 135M judge is for trying the tool: it picks the answer shown first almost every time.
    """
    click.echo(
        f"pasture demo: {n} instructions of the embedded demo set, SmolLM2-135M-Instruct (llama.cpp, in process), "
        f"greedy, max {max_tokens} tokens; models {', '.join(s for s in SETTINGS if s != REFERENCE)} "
        f"vs reference {REFERENCE}; judge smollm2-logprob"
    )
    result = run_demo(workdir, n=n, max_tokens=max_tokens, n_threads=n_threads, progress=not no_progress)
    for g in result.generations:
        click.echo(g.summary())
    click.echo(result.evaluation.annotation.summary())
    board = result.evaluation.board
    print_frame(board.frame[[c for c in SHOWN if c in board.frame.columns]], title=board.title())
    click.echo(f"\nNOTE: {JUDGE_CAVEAT}\n{STRONG_JUDGE_HINT}\n")
    click.echo(f"store:  {result.store_path}")
    click.echo(f"report: {result.report.html}")
    click.echo(f"demo finished in {result.wall_s:.0f} s")
