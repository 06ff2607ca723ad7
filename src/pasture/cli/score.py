"""``pasture score``: leaderboard numbers (win rate, LC, bootstrap intervals) from annotation files or the store."""

from __future__ import annotations

from pathlib import Path

import click

from pasture.cli.common import generator_name_hint, print_frame, results_folder, wide_option, write_frame
from pasture.errors import InputError
from pasture.io import read_annotations
from pasture.metrics.lc import DIFFICULTY_LOOKUPS
from pasture.metrics.lc_inputs import ALPACA_EVAL_DIR_ENV
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
@click.option(
    "--judge", default=None, help="With --store: only this judge (name or digest prefix); needed when it holds several."
)
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
    "file with --eval-set) or 'hub'. Default: on AlpacaEval 2's eval set pasture's fixed vector, else "
    "estimated by a joint fit over the models scored.",
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
@click.option(
    "--alpaca-eval-dir",
    type=click.Path(path_type=Path),
    default=None,
    envvar=ALPACA_EVAL_DIR_ENV,
    help="A folder laid out like AlpacaEval's (df_gamed.csv / instruction_difficulty.csv, or "
    "results/<gamed baseline>/model_outputs.json): official LC inputs. Env: " + ALPACA_EVAL_DIR_ENV + ".",
)
@click.option(
    "--no-shipped-lc-inputs",
    is_flag=True,
    help="On AlpacaEval 2's eval set, do not use pasture's fixed difficulty and gamed rows "
    "(LC then depends on the models scored together).",
)
@click.option("--no-estimate-difficulty", is_flag=True, help="Never estimate difficulty (length-only GLM).")
@click.option(
    "--difficulty-lookup",
    type=click.Choice(DIFFICULTY_LOOKUPS),
    default="text",
    show_default=True,
    help="How a row finds its difficulty: 'text' (its instruction's; correct) or 'position' (row k of a "
    "file gets eval-set instruction k's, as AlpacaEval's board does: reproduces the board for files with "
    "missing or reordered rows). Files only.",
)
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
    judge: str | None,
    output: Path | None,
    wide: bool,
    no_lc: bool,
    difficulty: str | None,
    gamed: str | None,
    eval_set: str | None,
    glm_weights: Path | None,
    gamed_outputs: tuple[str, ...],
    alpaca_eval_dir: Path | None,
    no_shipped_lc_inputs: bool,
    no_estimate_difficulty: bool,
    difficulty_lookup: str,
    min_models: int,
    bootstrap_resamples: int,
    seed: int,
    level: float,
) -> None:
    """Compute win rates, LC and bootstrap intervals (AlpacaEval 2 columns) from ANNOTATIONS files or a store.

    Files of any annotator and reference are read (draws written 0 or 1.5; missing verdicts are failed rows);
    a store's models are counted through their outputs, so a verdict shared by two models counts for both.

    Failed or unparsable judgments are shown in n_failed and never counted as losses. The line under the
    table says which LC inputs were used (official, shipped, estimated or rebuilt, or the length-only
    fallback), and each row's lc_note says when its LC lacks the gamed rows or a difficulty term, and when
    AlpacaEval's board, which looks difficulty up by row position, would differ (--difficulty-lookup position
    reproduces it).
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
        alpaca_eval_dir=alpaca_eval_dir,
        shipped_inputs=not no_shipped_lc_inputs,
        estimate_difficulty=not no_estimate_difficulty,
        difficulty_lookup=difficulty_lookup,
        min_models=min_models,
        bootstrap_resamples=0 if no_lc else bootstrap_resamples,
        seed=seed,
        level=level,
    )
    if store_path is not None:
        with Store(store_path) as store:
            frame = score_store(store, judge=judge, **options)
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
