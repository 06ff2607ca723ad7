"""``pasture report``: the self-contained HTML report (and PNG figures) of one leaderboard."""

from __future__ import annotations

from pathlib import Path

import click

from pasture.cli.leaderboard import board_options, open_store
from pasture.generate import SPECULATIVE_COLUMNS, speculative_measures
from pasture.leaderboard import leaderboard, resolve_key
from pasture.report import ReportSection, write_report
from pasture.store import Store
from pasture.train.table import collect_rows, methods_section, retention_section


def speculative_sections(store: Store, eval_set_digest: str) -> list[ReportSection]:
    """The report's speculative-decoding table for an eval set: one section, or none when no generator on it
    decoded speculatively (:func:`pasture.generate.speculative_measures`)."""
    measures = speculative_measures(store, eval_set_digest)
    if not len(measures):
        return []
    note = (
        "The newest speculative generation of each generator on this eval set: target forward passes per "
        "generated token, share of draft tokens accepted, mean candidate length, discarded draft tokens per token, "
        "tokens per second and its ratio to plain decoding of the first instruction (docs/generate.md)."
    )
    return [ReportSection("Speculative decoding", measures, note=note, column_labels=SPECULATIVE_COLUMNS)]


@click.command("report")
@board_options
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=Path("pasture-report.html"),
    show_default=True,
    help="The HTML file to write.",
)
@click.option(
    "--png-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for the PNG figures (default: <output stem>_figures next to the HTML).",
)
@click.option("--title", default=None, help="Report title (default: eval set, reference and judge).")
@click.option(
    "--methods",
    "methods_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Add the training-methods comparison table of this `pasture train` output folder (as `pasture methods report`).",
)
def command(
    store_path: Path,
    eval_set: str | None,
    reference: str | None,
    judge: str | None,
    output: Path,
    png_dir: Path | None,
    title: str | None,
    methods_dir: Path | None,
) -> None:
    """Write one HTML file that opens offline: leaderboard, figures and a per-instruction browser.

    Every model- or user-written text is escaped; the same figures are written as PNG for papers. With
    --methods, the comparison table of trained methods is a section after the leaderboard.
    """
    sections: list[ReportSection] = []
    if methods_dir is not None:  # read first: a bad folder fails before anything is written
        methods = collect_rows(methods_dir)
        sections.append(methods_section(methods))
        retained = retention_section(methods)
        sections += [retained] if retained is not None else []
    with open_store(store_path) as store:
        key = resolve_key(store, eval_set=eval_set, reference=reference, judge=judge)
        board = leaderboard(store, key)
        sections += speculative_sections(store, key.eval_set_digest)
    notes = sorted({n for m in board.manifests.values() for n in m.get("notes", [])}) + list(board.notes)
    files = write_report(
        board.frame,
        board.judgments,
        output,
        title=title or board.title(),
        manifest={"board": board.key.__dict__, "runs": board.manifests},
        notes=notes,
        png_dir=png_dir,
        sections=sections,
    )
    click.echo(f"report: {files.html}")
    click.echo(f"figures: {', '.join(str(p) for p in files.pngs)}")
