"""``pasture analyze-judge``: a judge's judgments against gold preferences (docs/trust.md)."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd
from rich.markup import escape

from pasture.analysis.judge_analysis import analyze_judge, jury_members, labels_from_judgments, read_gold_labels
from pasture.cli.common import print_frame, wide_option, write_frame
from pasture.errors import InputError
from pasture.io import read_annotations
from pasture.records import Judgment
from pasture.store import Store


def _from_store(path: Path, name_or_digest: str) -> list[Judgment]:
    with Store(path) as store:
        return store.get_judgments(judge_digest=store.judge_digest(name_or_digest))


def _jury_table(path: Path, name_or_digest: str) -> pd.DataFrame | None:
    """Per-member bias and agreement (``jury_members``) when the judge is a stored jury; None otherwise."""
    with Store(path) as store:
        digest = store.judge_digest(name_or_digest)
        found = store.get_judge(digest)
        if found is None or found[1].provider != "jury":
            return None
        names = dict(store.judges())
        members = {
            names.get(d, d[:12]): labels_from_judgments(store.get_judgments(judge_digest=d))
            for d in found[1].decoding["members"]
        }
        return jury_members(members, labels_from_judgments(store.get_judgments(judge_digest=digest)))


def _reference_board(path: Path, column: str) -> dict[str, float]:
    frame = pd.read_csv(path, index_col=0)
    if column not in frame.columns:
        raise InputError(f"no column {column!r} (columns: {', '.join(map(str, frame.columns))})", path=path)
    return frame[column].dropna().astype(float).to_dict()


@click.command("analyze-judge")
@wide_option
@click.option("--store", "store_path", type=click.Path(path_type=Path), default=None, help="Store with judgments.")
@click.option("--judge", "judge", default=None, help="The judge to analyse: stored name or digest prefix.")
@click.option(
    "--annotations",
    "annotation_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Or: the judge's judgments as AlpacaEval annotation files.",
)
@click.option("--gold-judge", default=None, help="Gold: another stored judge (name or digest prefix).")
@click.option(
    "--gold-annotations",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Gold: a reference judge's AlpacaEval annotation files (e.g. the official ones).",
)
@click.option(
    "--gold-labels",
    type=click.Path(path_type=Path),
    default=None,
    help="Gold: human labels (instruction, output_1, output_2, preference; one row per label).",
)
@click.option("--family", multiple=True, help="A generator of the judge's own model family (repeatable).")
@click.option(
    "--reference-board", type=click.Path(path_type=Path), default=None, help="Leaderboard CSV to rank-correlate with."
)
@click.option("--reference-column", default="win_rate", show_default=True, help="Score column of --reference-board.")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None, help="Also write (.csv, .json, .md).")
def command(
    store_path: Path | None,
    judge: str | None,
    annotation_files: tuple[Path, ...],
    gold_judge: str | None,
    gold_annotations: tuple[Path, ...],
    gold_labels: Path | None,
    family: tuple[str, ...],
    reference_board: Path | None,
    reference_column: str,
    output: Path | None,
    wide: bool,
) -> None:
    """Agreement, kappa, position/length bias, variance, cost and rank correlation of a judge against gold.

    Columns needing data you did not give (e.g. both-order judgments for the flip rate) are left out and
    the reason is printed. When --judge is a jury (``pasture.judges.jury``), a second table gives each
    member's position and length bias and its agreement with the jury and the other members.
    """
    if bool(judge) == bool(annotation_files):
        raise click.UsageError("give the judge as --judge (with --store) or --annotations, not both")
    if sum(map(bool, (gold_judge, gold_annotations, gold_labels))) != 1:
        raise click.UsageError("give exactly one gold: --gold-judge, --gold-annotations or --gold-labels")
    if (judge or gold_judge) and store_path is None:
        raise click.UsageError("--judge and --gold-judge need --store")
    if store_path is not None and not store_path.exists():
        raise InputError("no such store", path=store_path)
    gold: list[Judgment] | pd.DataFrame
    judgments = (
        _from_store(store_path, judge)
        if judge and store_path is not None
        else [j for f in annotation_files for j in read_annotations(f)]
    )
    judge_name = judgments[0].judge_name if judgments else "judge"
    if gold_judge and store_path is not None:
        gold = _from_store(store_path, gold_judge)
        gold_name = gold[0].judge_name if gold else gold_judge
    elif gold_annotations:
        gold = [j for f in gold_annotations for j in read_annotations(f)]
        gold_name = gold[0].judge_name if gold else "gold"
    else:
        gold = read_gold_labels(gold_labels)  # type: ignore[arg-type]
        gold_name = "humans"
    if not judgments:
        raise InputError("the judge has no judgments")
    board = _reference_board(reference_board, reference_column) if reference_board is not None else None
    result = analyze_judge(
        labels_from_judgments(judgments),
        gold if isinstance(gold, pd.DataFrame) else labels_from_judgments(gold),
        gold_kind="human" if gold_labels is not None else "judge",
        judge_name=judge_name,
        gold_name=gold_name if gold_name != judge_name else f"{gold_name} (gold)",
        family_generators=family,
        reference_leaderboard=board,
    )
    shown = result.table.T
    shown.index = [escape(str(i)) for i in shown.index]  # column names contain [...], not rich markup
    print_frame(shown, title=f"pasture analyze-judge ({result.n_pairs} pairs)", digits=3, wide=wide)
    for note in result.notes:
        click.echo(f"note: {note}")
    members = _jury_table(store_path, judge) if judge and store_path is not None else None
    if members is not None:
        members.index = [escape(str(i)) for i in members.index]
        print_frame(members, title="jury members: bias and agreement", digits=3, wide=wide)
    if output is not None:
        write_frame(result.table, output)
        click.echo(f"wrote {output}")
