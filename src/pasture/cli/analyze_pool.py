"""``pasture analyze-pool``: how well the rest of a pool predicts each held-out annotator (docs/trust.md).

A thin layer over :func:`pasture.analysis.survey_pool.pool_votes` and
:func:`pasture.analysis.survey_pool.held_out_annotator`; the survey model's hyperparameters are one option
group built from :class:`~pasture.analysis.survey_model.SurveyModelSettings`.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pasture.analysis.survey import SurveyModelSettings
from pasture.analysis.survey_pool import held_out_annotator, held_out_table, pool_votes
from pasture.cli.common import print_frame, wide_option, write_frame
from pasture.cli.options import Decorator, _apply, _collapse, _plain_type, field_docs
from pasture.errors import InputError
from pasture.io import read_annotations
from pasture.records import Judgment
from pasture.store import Store


def survey_model_options(fn: Callable[..., Any]) -> Any:
    """One ``--model-<field>`` option per :class:`SurveyModelSettings` field except ``seed`` (the command's
    ``--seed`` seeds the model too); the command receives ``survey_model: SurveyModelSettings``."""
    base = SurveyModelSettings()
    hints = typing.get_type_hints(SurveyModelSettings)
    docs = field_docs(SurveyModelSettings)
    fields = [f for f in dataclasses.fields(SurveyModelSettings) if f.name != "seed"]
    options: list[Decorator] = []
    for f in fields:
        options.append(
            click.option(
                "--model-" + f.name.replace("_", "-"),
                f.name,
                type=_plain_type(hints[f.name]),
                default=getattr(base, f.name),
                show_default=True,
                help=docs[f.name],
            )
        )

    def build(**values: Any) -> SurveyModelSettings:
        settings = SurveyModelSettings(**values)
        settings.validate()
        return settings

    return _apply(_collapse(fn, tuple(f.name for f in fields), "survey_model", build), options)


def _judgments(store_path: Path | None, judges: tuple[str, ...], files: tuple[Path, ...]) -> list[Judgment]:
    out: list[Judgment] = []
    if store_path is not None:
        if not store_path.exists():
            raise InputError("no such store file; give the store the pool's judgments are in", path=store_path)
        with Store(store_path) as store:
            if judges:
                for name in judges:
                    out += store.get_judgments(judge_digest=store.judge_digest(name))
            else:
                out += store.get_judgments()
    for path in files:
        out += read_annotations(path)
    return out


@click.command("analyze-pool")
@wide_option
@click.option("--store", "store_path", type=click.Path(path_type=Path), default=None, help="Store with judgments.")
@click.option(
    "--judge",
    "judges",
    multiple=True,
    help="With --store: a pool member to read (stored judge name or digest prefix; repeatable; default: all).",
)
@click.option(
    "--annotations",
    "annotation_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Also: AlpacaEval annotation files, one annotator each (repeatable).",
)
@click.option(
    "--held-out",
    "held_out",
    multiple=True,
    help="Annotator to hold out (repeatable; default: each annotator in turn).",
)
@click.option("--fraction", type=float, default=0.5, show_default=True, help="Share of the annotator's votes hidden.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the hidden share and the model.")
@survey_model_options
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None, help="Write the table (CSV/JSON/MD).")
def command(
    store_path: Path | None,
    judges: tuple[str, ...],
    annotation_files: tuple[Path, ...],
    held_out: tuple[str, ...],
    fraction: float,
    seed: int,
    survey_model: SurveyModelSettings,
    output: Path | None,
    wide: bool,
) -> None:
    """Predict each held-out annotator's votes from the rest of the pool: survey model vs per-question marginal.

    Every annotator (pool member, persona, imported judge) is a survey respondent and every judged pair a
    question; a share of one annotator's votes is hidden and predicted from all other votes. The table shows
    the individual AUC of each predictor with its 95% interval (definitions: docs/trust.md).
    """
    if store_path is None and not annotation_files:
        raise click.UsageError("give --store (the pool's judgments) and/or --annotations files")
    if judges and store_path is None:
        raise click.UsageError("--judge selects judges of --store; give --store")
    pool = pool_votes(_judgments(store_path, judges, annotation_files))
    if pool.votes.empty:
        raise InputError("no usable votes: no judgment with a preference other than a tie")
    annotators = list(held_out) or sorted(pool.votes["respondent"].unique())
    results = [
        held_out_annotator(pool, name, fraction=fraction, seed=seed, settings=survey_model) for name in annotators
    ]
    table = held_out_table(results)
    click.echo(
        f"{pool.votes['respondent'].nunique()} annotators, {pool.votes['question'].nunique()} pairs, "
        f"{len(pool.votes)} votes ({pool.n_ties} ties and {pool.n_failed} failed judgments left out); "
        f"hiding {fraction:g} of each held-out annotator's votes, seed {seed}"
    )
    print_frame(table, title="held-out annotator: individual AUC (95% interval)", digits=3, wide=wide)
    if output is not None:
        write_frame(table, output)
        click.echo(f"wrote {output}")
