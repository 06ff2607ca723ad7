"""``pasture translate``: an instruction dataset in another language, as Alpaca rows and a pasture eval set."""

from __future__ import annotations

from pathlib import Path

import click

from pasture.cli.options import ModelOptions, model_options
from pasture.errors import InputError
from pasture.generate import MODEL_SPEC_HELP
from pasture.translate import (
    TRANSLATABLE_FIELDS,
    TranslationCache,
    TranslationSettings,
    load_source_rows,
    translate_rows,
    write_alpaca,
    write_eval_set,
)


@click.command("translate")
@click.argument("source")
@model_options(required=True, help="The translating model: " + MODEL_SPEC_HELP + ".")
@click.option("--to", "target_language", required=True, help="Target language name, as the prompt says it.")
@click.option("--from", "source_language", default="English", show_default=True, help="Source language name.")
@click.option(
    "--fields",
    default=",".join(TRANSLATABLE_FIELDS),
    show_default=True,
    help="Comma-separated fields to translate (others are copied).",
)
@click.option("--limit", type=int, default=None, help="Translate this many rows (demo: stratified by category).")
@click.option("--alpaca-eval-file", type=click.Path(path_type=Path), default=None, help="Local AlpacaEval eval set.")
@click.option("--max-tokens", type=int, default=256, show_default=True, help="Cap on tokens per translated line.")
@click.option("--temperature", type=float, default=0.0, show_default=True, help="First attempt's temperature.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the first attempt (attempt a: seed + a).")
@click.option("--max-attempts", type=int, default=3, show_default=True, help="Calls per line before it fails.")
@click.option("--no-back-translation", is_flag=True, help="Skip the back-translation agreement check.")
@click.option("--concurrency", type=int, default=1, show_default=True, help="Calls in flight.")
@click.option(
    "--cache",
    "cache_path",
    type=click.Path(path_type=Path),
    default=Path("translations.db"),
    show_default=True,
    help="SQLite cache of line translations (read to resume).",
)
@click.option("--alpaca", "alpaca_path", type=click.Path(path_type=Path), default=None, help="Write Alpaca rows here.")
@click.option(
    "--eval-set-out",
    "eval_set_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the translated eval set (and reference outputs, where the source has them) here.",
)
def command(
    source: str,
    model: ModelOptions,
    target_language: str,
    source_language: str,
    fields: str,
    limit: int | None,
    alpaca_eval_file: Path | None,
    max_tokens: int,
    temperature: float,
    seed: int,
    max_attempts: int,
    no_back_translation: bool,
    concurrency: int,
    cache_path: Path,
    alpaca_path: Path | None,
    eval_set_path: Path | None,
) -> None:
    """Translate SOURCE ('demo', 'alpaca_eval', or an Alpaca/eval-set file) into --to.

    Code blocks, inline code, URLs and placeholders are masked and restored; markdown structure and line
    breaks are kept line by line. A reply that loses a mask is retried and, after --max-attempts, counted
    as a failed row (never written). Translations are cached: a rerun calls only what is missing.

    \b
    Examples:
      pasture translate demo --model smollm2 --to Galician --limit 5 --eval-set-out demo_gl.json
      pasture translate alpaca_eval --alpaca-eval-file ref.json.gz --model openai:gpt-4o-mini --to Galician \\
          --alpaca alpaca_gl.json --eval-set-out alpaca_eval_gl.json
    """
    if alpaca_path is None and eval_set_path is None:
        raise InputError("nothing would be written: give --alpaca and/or --eval-set-out", param="eval_set_path")
    settings = TranslationSettings(
        source_language=source_language,
        target_language=target_language,
        fields=tuple(f.strip() for f in fields.split(",") if f.strip()),
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        max_attempts=max_attempts,
        back_translate=not no_back_translation,
    )
    settings.validate()
    rows = load_source_rows(source, limit=limit, alpaca_eval_path=alpaca_eval_file)
    provider = model.provider()
    with TranslationCache(cache_path) as cache:
        report = translate_rows(rows, provider, cache, settings, concurrency=concurrency)
    click.echo(report.summary())
    for row, reason in report.failed[:10]:
        click.echo(f"  failed: row {row.source_id} ({row.instruction[:40]!r}): {reason}", err=True)
    if alpaca_path is not None:
        click.echo(f"wrote {write_alpaca(alpaca_path, report.rows)}")
    if eval_set_path is not None:
        click.echo(f"wrote {write_eval_set(eval_set_path, report.rows, language=target_language)}")
    if not report.ok:
        raise SystemExit(1)
