"""``pasture score``: leaderboard numbers from annotation files or the store."""

from __future__ import annotations

from pathlib import Path

import click

from pasture.cli.common import print_frame, write_frame
from pasture.scoring import score_files, score_store
from pasture.store import Store


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
def command(
    annotations: tuple[Path, ...], store_path: Path | None, judge_digest: str | None, output: Path | None
) -> None:
    """Compute win rates (AlpacaEval 2 columns) from ANNOTATIONS files or a store.

    Failed or unparsable judgments are shown in n_failed and never counted as losses.
    """
    if bool(annotations) == bool(store_path):
        raise click.UsageError("give annotation files or --store, not both and not neither")
    if store_path is not None:
        with Store(store_path) as store:
            frame = score_store(store, judge_digest=judge_digest)
    else:
        frame = score_files(annotations)
    print_frame(frame, title="pasture score")
    if output is not None:
        write_frame(frame, output)
        click.echo(f"wrote {output}")
