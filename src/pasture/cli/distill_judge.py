"""``pasture distill-judge``: a local judge fitted on one judge's stored verdicts (docs/judges.md)."""

from __future__ import annotations

from pathlib import Path

import click

from pasture.cli.common import print_frame, write_frame
from pasture.distill import DEFAULT_L2, distill_judge, sample_pairs
from pasture.errors import InputError
from pasture.io import read_annotations
from pasture.judges.trained import FEATURE_SETS, DistilledJudge
from pasture.records import Judgment
from pasture.store import Store


def _stored(path: Path, name_or_digest: str) -> list[Judgment]:
    if not path.exists():
        raise InputError("no such store", path=path)
    with Store(path) as store:
        matches = [d for d, n in store.judges() if n == name_or_digest or d.startswith(name_or_digest)]
        if len(matches) != 1:
            known = ", ".join(f"{n} ({d[:12]})" for d, n in store.judges()) or "none"
            raise InputError(f"{len(matches)} judges match {name_or_digest!r}; stored judges: {known}", path=path)
        return store.get_judgments(judge_digest=matches[0])


@click.command("distill-judge")
@click.option("--store", "store_path", type=click.Path(path_type=Path), default=None, help="Store with judgments.")
@click.option("--judge", "judge", default=None, help="The teacher: stored judge name or digest prefix.")
@click.option(
    "--annotations",
    "annotation_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Or: the teacher's judgments as AlpacaEval annotation files (repeatable).",
)
@click.option(
    "--feature-set",
    type=click.Choice(FEATURE_SETS),
    default="style",
    show_default=True,
    help="The head's features (docs/judges.md); the length-only head is evaluated beside it.",
)
@click.option("--l2", type=float, default=DEFAULT_L2, show_default=True, help="Ridge penalty of the head.")
@click.option("--folds", type=int, default=5, show_default=True, help="Instruction folds of the by-instruction split.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the folds and of --max-pairs.")
@click.option("--max-pairs", type=int, default=None, help="Use at most this many judgments (drawn with --seed).")
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), required=True,
    help="Folder for head.json (the judge), heldout.csv, per_model.csv and predictions.csv.",
)  # fmt: skip
def command(
    store_path: Path | None,
    judge: str | None,
    annotation_files: tuple[Path, ...],
    feature_set: str,
    l2: float,
    folds: int,
    seed: int,
    max_pairs: int | None,
    out_dir: Path,
) -> None:
    """Fit a Bradley–Terry head on a teacher judge's verdicts; report held-out agreement by instruction and
    by model next to the length-only predictor; save the judge as OUT/head.json (usable as --judge)."""
    if bool(judge) == bool(annotation_files):
        raise click.UsageError("give the teacher as --judge (with --store) or --annotations, not both")
    if judge and store_path is None:
        raise click.UsageError("--judge needs --store")
    judgments = (
        _stored(store_path, judge)
        if judge and store_path is not None
        else [j for f in annotation_files for j in read_annotations(f)]
    )
    if max_pairs is not None:
        judgments = sample_pairs(judgments, max_pairs, seed)
    result = distill_judge(judgments, feature_set=feature_set, l2=l2, folds=folds, seed=seed)  # type: ignore[arg-type]
    head_path = result.head.save(out_dir / "head.json")
    write_frame(result.table.reset_index(), out_dir / "heldout.csv")
    if len(result.per_model):
        write_frame(result.per_model, out_dir / "per_model.csv")
    result.predictions.drop(columns=["output_1", "output_2"]).to_csv(out_dir / "predictions.csv", index=False)
    print_frame(
        result.table.reset_index(),
        title=f"held-out agreement with {result.head.teacher_name} ({result.n_judgments} judgments, "
        f"{result.n_failed} failed and left out)",
        digits=3,
    )
    built = DistilledJudge(result.head)
    click.echo(f"wrote {head_path} (judge fingerprint {built.fingerprint.digest[:12]}; use it as --judge {head_path})")
