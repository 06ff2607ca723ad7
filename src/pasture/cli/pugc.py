"""``pasture pugc``: preference pairs from documents with the document as the judge's reference, then DPO (a thin
layer over pasture.train.pugc)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pasture.cli.train import settings_options
from pasture.train.registry import DPOSettings, PUGCSettings, TrainSettings, settings_from


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
@click.option(
    "--judge-base-url",
    "judge_base_url",
    default=None,
    help="Override the judge's server URL (e.g. a local llama.cpp server); as in the other commands, --base-url "
    "would be --model's.",
)
@click.option(
    "--digit-grade", is_flag=True, help="Grade with one digit 1-9 read from token probabilities (small models)."
)
@click.option("--model", default="smollm2", show_default=True, help="The policy: 'smollm2' or a checkpoint directory.")
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("pasture.db"),
              show_default=True, help="The store every step is cached in (resumable).")  # fmt: skip
@settings_options(PUGCSettings, exclude=("seed",))  # --seed is the training settings' (one seed for both)
@click.option("--pairs-out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the best/worst pairs (TRL-format JSONL).")  # fmt: skip
@click.option("--train-out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Train DPO on the pairs into this directory (pasture train dpo's method and options).")  # fmt: skip
@settings_options(DPOSettings)
@settings_options(TrainSettings)
def command(
    documents: tuple[Path, ...],
    column: str,
    judge: str,
    judge_base_url: str | None,
    digit_grade: bool,
    model: str,
    store_path: Path,
    pairs_out: Path,
    train_out: Path | None,
    **values: Any,
) -> None:
    """Documents -> questions (filtered: does the document answer it?) -> policy samples -> grades against the
    document -> best/worst pairs -> optionally DPO (docs/train.md, "PUGC")."""
    from pasture.store import Store
    from pasture.train.models import load_policy
    from pasture.train.pugc import PUGCJudges, pugc_pairs, pugc_train, read_documents

    docs = read_documents(list(documents), column=column)
    judges = (
        PUGCJudges.from_judge(judge, digit_grade=digit_grade, base_url=judge_base_url)
        if judge_base_url
        else PUGCJudges.from_judge(judge, digit_grade=digit_grade)
    )
    policy, tok = load_policy(model)
    settings = settings_from(PUGCSettings, values)  # its seed: --seed
    with Store(store_path) as store:
        result = pugc_pairs(store, docs, judges, policy, tok, settings)
    result.write_pairs(pairs_out)
    for step in ("questions", "filter", "grades"):
        c = result.counts[step]
        click.echo(f"{step}: {c['asked']} judgments, {c['cached']} from the store, {c['failed']} failed")
    click.echo(
        f"{len(docs)} documents -> {result.counts['questions_written']} questions, {result.counts['questions_kept']} "
        f"kept -> {len(result.pairs)} pairs -> {pairs_out}"
    )
    if train_out is not None:
        train = settings_from(TrainSettings, values)
        stats = pugc_train(pairs_out, train_out, model=model, settings=settings_from(DPOSettings, values), train=train)
        click.echo(f"DPO: {stats.steps} steps, final loss {stats.history[-1]:.4f} -> {train_out}")
