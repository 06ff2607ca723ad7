"""``pasture score``: leaderboard numbers (win rate, LC, bootstrap intervals) from annotation files or the store."""

from __future__ import annotations

from pathlib import Path

import click

from pasture.cli.common import generator_name_hint, print_frame, results_folder, wide_option, write_frame
from pasture.errors import InputError
from pasture.io import read_annotations
from pasture.scoring import score_files, score_store
from pasture.store import Store


def _gamed_outputs(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--gamed-outputs expects NAME=PATH, got {value!r}")
        out[name] = path
    return out


@click.command("score")
@click.argument("annotations", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--store",
    "store_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Score the judgments in this store instead of files.",
)
@click.option("--judge", "judge_digest", default=None, help="With --store: only this judge's digest.")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the table; format from the suffix (.csv, .json, .md).",
)
@wide_option
@click.option("--no-lc", is_flag=True, help="Only the win-rate columns (no LC, no intervals).")
@click.option(
    "--difficulty",
    default=None,
    help="Instruction difficulty: a CSV (instruction,instruction_difficulty, or AlpacaEval's positional "
    "file with --eval-set) or 'hub'. Default: estimated by a joint fit over the models scored.",
)
@click.option(
    "--gamed",
    default=None,
    help="AlpacaEval's df_gamed.csv (path or 'hub'; needs --eval-set): official gamed-baseline rows.",
)
@click.option("--eval-set", default=None, help="Eval set in official order (path or 'hub') for positional files.")
@click.option(
    "--glm-weights",
    type=click.Path(path_type=Path),
    default=None,
    help="Published per-model LC coefficients (lc_glm_weights_*.csv): calibrate the estimated "
    "difficulty and rebuild the gamed baselines.",
)
@click.option(
    "--gamed-outputs",
    multiple=True,
    metavar="NAME=PATH",
    help="A gamed baseline's model_outputs file (repeat for each); rebuilt with --glm-weights.",
)
@click.option("--no-estimate-difficulty", is_flag=True, help="Never estimate difficulty (length-only GLM).")
@click.option(
    "--min-models",
    type=int,
    default=5,
    show_default=True,
    help="Fewest models to estimate difficulty from; below it LC is the length-only GLM.",
)
@click.option(
    "--bootstrap",
    "bootstrap_resamples",
    type=int,
    default=1000,
    show_default=True,
    help="Paired bootstrap resamples for the intervals (0 = no intervals).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@click.option("--level", type=float, default=0.95, show_default=True, help="Coverage of the intervals.")
def command(
    annotations: tuple[Path, ...],
    store_path: Path | None,
    judge_digest: str | None,
    output: Path | None,
    wide: bool,
    no_lc: bool,
    difficulty: str | None,
    gamed: str | None,
    eval_set: str | None,
    glm_weights: Path | None,
    gamed_outputs: tuple[str, ...],
    no_estimate_difficulty: bool,
    min_models: int,
    bootstrap_resamples: int,
    seed: int,
    level: float,
) -> None:
    """Compute win rates, LC and bootstrap intervals (AlpacaEval 2 columns) from ANNOTATIONS files or a store.

    Failed or unparsable judgments are shown in n_failed and never counted as losses. The line under the
    table says which LC inputs were used (official, estimated or rebuilt, or the length-only fallback).
    """
    if bool(annotations) == bool(store_path):
        raise click.UsageError("give annotation files or --store, not both and not neither")
    options = dict(
        lc=not no_lc,
        difficulty=difficulty,
        gamed=gamed,
        eval_set=eval_set,
        glm_weights=glm_weights,
        gamed_outputs=_gamed_outputs(gamed_outputs),
        estimate_difficulty=not no_estimate_difficulty,
        min_models=min_models,
        bootstrap_resamples=0 if no_lc else bootstrap_resamples,
        seed=seed,
        level=level,
    )
    if store_path is not None:
        with Store(store_path) as store:
            frame = score_store(store, judge_digest=judge_digest, **options)
    else:
        frame = score_files(annotations, **options)
    print_frame(frame, title="pasture score", wide=wide)
    for path in annotations:
        folder = results_folder(path)
        if folder is not None and folder not in frame.index:  # read again only the files that need a note
            names = {j.generator_2 for j in read_annotations(path)}
            hint = generator_name_hint(path, names, f"its row is {sorted(names)[0]!r}")
            if hint:
                click.echo(hint)
    for key in ("lc_inputs", "bootstrap"):
        if key in frame.attrs:
            click.echo(f"{key.replace('_', ' ')}: {frame.attrs[key]}")
    if output is not None:
        write_frame(frame, output)
        click.echo(f"wrote {output}")
