"""``pasture pugc``: preference pairs from documents with the document as the judge's reference, then DPO (a thin
layer over pasture.train.pugc)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("pugc")
@click.option(
    "--documents",
    "documents",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    required=True,
    help="A text file (.txt/.md: one document) or a table (JSONL, JSON, CSV, Parquet: one per row). Repeatable.",
)
@click.option("--column", default="text", show_default=True, help="The documents' column in a table.")
@click.option("--judge", required=True, help="Judge (built-in name or TOML) whose provider writes, filters and grades.")
@click.option("--base-url", default=None, help="Override the judge's server URL (e.g. a local llama.cpp server).")
@click.option(
    "--digit-grade", is_flag=True, help="Grade with one digit 1-9 read from token probabilities (small models)."
)
@click.option("--policy", default="smollm2", show_default=True, help="'smollm2' or a checkpoint directory.")
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("pasture.db"),
              show_default=True, help="The store every step is cached in (resumable).")  # fmt: skip
@click.option("--questions-per-document", type=int, default=3, show_default=True)
@click.option("--samples", type=int, default=4, show_default=True, help="Policy samples per kept question.")
@click.option("--max-new-tokens", type=int, default=128, show_default=True)
@click.option("--temperature", type=float, default=1.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--pairs-out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the best/worst pairs (TRL-format JSONL).")  # fmt: skip
@click.option("--train-out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Train DPO on the pairs into this directory (pasture train dpo's method).")  # fmt: skip
@click.option("--steps", type=int, default=10, show_default=True, help="DPO optimiser steps (with --train-out).")
@click.option("--lr", type=float, default=1e-5, show_default=True, help="DPO learning rate (with --train-out).")
@click.option("--beta", type=float, default=0.1, show_default=True, help="DPO β (with --train-out).")
@click.option("--batch-size", type=int, default=4, show_default=True, help="DPO pairs per step (with --train-out).")
def command(
    documents: tuple[Path, ...],
    column: str,
    judge: str,
    base_url: str | None,
    digit_grade: bool,
    policy: str,
    store_path: Path,
    questions_per_document: int,
    samples: int,
    max_new_tokens: int,
    temperature: float,
    seed: int,
    pairs_out: Path,
    train_out: Path | None,
    steps: int,
    lr: float,
    beta: float,
    batch_size: int,
) -> None:
    """Documents -> questions (filtered: does the document answer it?) -> policy samples -> grades against the
    document -> best/worst pairs -> optionally DPO (docs/train.md, "PUGC")."""
    from pasture.store import Store
    from pasture.train.models import load_policy
    from pasture.train.pugc import PUGCJudges, PUGCSettings, pugc_pairs, pugc_train, read_documents

    docs = read_documents(list(documents), column=column)
    judges = (
        PUGCJudges.from_judge(judge, digit_grade=digit_grade, base_url=base_url)
        if base_url
        else PUGCJudges.from_judge(judge, digit_grade=digit_grade)
    )
    model, tok = load_policy(policy)
    settings = PUGCSettings(questions_per_document, samples, max_new_tokens, temperature, seed)
    with Store(store_path) as store:
        result = pugc_pairs(store, docs, judges, model, tok, settings)
    result.write_pairs(pairs_out)
    for step in ("questions", "filter", "grades"):
        c = result.counts[step]
        click.echo(f"{step}: {c['asked']} judgments, {c['cached']} from the store, {c['failed']} failed")
    click.echo(
        f"{len(docs)} documents -> {result.counts['questions_written']} questions, {result.counts['questions_kept']} "
        f"kept -> {len(result.pairs)} pairs -> {pairs_out}"
    )
    if train_out is not None:
        stats = pugc_train(pairs_out, train_out, model=policy, beta=beta, steps=steps, lr=lr, batch_size=batch_size,
                           seed=seed)  # fmt: skip
        click.echo(f"DPO: {stats.steps} steps, final loss {stats.history[-1]:.4f} -> {train_out}")
