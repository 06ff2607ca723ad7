"""``pasture methods report DIR``: the comparison table of trained methods (a thin layer over pasture.train.table)."""

from __future__ import annotations

from pathlib import Path

import click

from pasture.cli.common import print_frame, write_frame


@click.group("methods")
def command() -> None:
    """Compare learning methods trained with `pasture train`."""


@command.command("report")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the table: .csv, .json, .md, or .html (a standalone page).",
)
def report(directory: Path, output: Path | None) -> None:
    """Win rate and LC against the start policy and a reference, reward score, KL, length, tokens, wall time."""
    from pasture.train.table import collect_rows, table_html

    frame = collect_rows(directory)
    print_frame(frame, title="pasture methods report")
    if output is not None:
        if output.suffix.lower() == ".html":
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(table_html(frame), encoding="utf-8")
        else:
            write_frame(frame, output)
        click.echo(f"wrote {output}")
