"""``pasture simulate``: a simulated preference dataset from model outputs and an annotator pool."""

from __future__ import annotations

from pathlib import Path

import click

from pasture.cli.common import print_frame, write_frame
from pasture.errors import InputError
from pasture.io import read_annotations, read_model_outputs
from pasture.simulate.datasets import FORMATS
from pasture.simulate.labels import cross_annotate
from pasture.simulate.measure import gold_for_pairs, pool_report
from pasture.simulate.personas import PERSONAS
from pasture.simulate.pool import DEFAULT_FLIP_P
from pasture.simulate.pool_files import load_pool, persona_pool
from pasture.simulate.simulation import simulate_preferences, write_simulation
from pasture.store import Store


@click.command("simulate")
@click.argument("outputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Folder for the datasets.")
@click.option("--pool", "pool_path", type=click.Path(path_type=Path), default=None, help="Pool TOML file.")
@click.option(
    "--judge",
    default="smollm2-logprob",
    show_default=True,
    help="Without --pool: the model judge read with each --persona (built-in name or judge TOML).",
)
@click.option(
    "--persona",
    "personas",
    multiple=True,
    type=click.Choice(sorted(PERSONAS)),
    help="Without --pool: personas of the pool (repeatable; default all).",
)
@click.option("--p", "p", type=float, default=None, help=f"Label-flip probability (default: pool's, {DEFAULT_FLIP_P}).")
@click.option("--seed", type=int, default=None, help="Seed of pairs, assignment, order and flips (default: pool's).")
@click.option("--pairs-per-instruction", type=int, default=1, show_default=True)
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(FORMATS),
    help="Dataset formats to write (repeatable; default all).",
)
@click.option("--store", "store_path", type=click.Path(path_type=Path), default=Path("pasture.db"), show_default=True)
@click.option("--base-url", default=None, help="Server URL for every model judge of the pool (e.g. llama.cpp).")
@click.option("--concurrency", type=int, default=1, show_default=True, help="Judge calls in flight.")
@click.option("--measure", is_flag=True, help="Also have every member label every pair and print the pool report.")
@click.option(
    "--gold",
    "gold_path",
    type=click.Path(path_type=Path),
    default=None,
    help="With --measure: annotations file (AlpacaEval format) whose preferences are the gold labels.",
)
def command(
    outputs: tuple[Path, ...],
    out_dir: Path,
    pool_path: Path | None,
    judge: str,
    personas: tuple[str, ...],
    p: float | None,
    seed: int | None,
    pairs_per_instruction: int,
    formats: tuple[str, ...],
    store_path: Path,
    base_url: str | None,
    concurrency: int,
    measure: bool,
    gold_path: Path | None,
) -> None:
    """Label pairs of OUTPUTS (model outputs files; several generators or samples per instruction) with
    an annotator pool and write TRL / HF / AlpacaFarm preference datasets to --out.

    Generation from a policy is not part of this command yet: produce outputs first, then simulate.
    """
    if gold_path is not None and not measure:
        raise click.UsageError("--gold needs --measure")
    overrides = {"base_url": base_url} if base_url else {}
    if pool_path is not None:
        if personas:
            raise click.UsageError("--persona builds a pool; give it or --pool, not both")
        pool = load_pool(pool_path, p=p, seed=seed, **overrides)
    else:
        pool = persona_pool(
            judge,
            personas or tuple(PERSONAS),
            p=DEFAULT_FLIP_P if p is None else p,
            seed=0 if seed is None else seed,
            **overrides,
        )
    rows = [o for path in outputs for o in read_model_outputs(path)]
    if not rows:
        raise InputError("the outputs files hold no rows")
    with Store(store_path) as store:
        sim = simulate_preferences(
            rows, pool, store, pairs_per_instruction=pairs_per_instruction, concurrency=concurrency
        )
        paths = write_simulation(sim, out_dir, formats=formats or FORMATS)  # type: ignore[arg-type]
        run = sim.run
        click.echo(
            f"pool {pool.name}: {len(pool.members)} members, p={pool.p:g}, seed={pool.seed}; "
            f"{len(sim.sample.pairs)} pairs from {sim.sample.n_instructions} instructions "
            f"({len(sim.sample.skipped_instructions)} without two distinct outputs); "
            f"{run.n_ok} labels ok, {run.n_failed} failed, {run.n_flipped} flipped; {run.n_calls} judge calls"
        )
        for name, path in paths.items():
            click.echo(f"wrote {name}: {path}")
        if measure:
            cross = cross_annotate(sim.sample.pairs, pool, store, concurrency=concurrency)
            gold = None
            if gold_path is not None:
                gold = gold_for_pairs(sim.sample.pairs, read_annotations(gold_path))
                click.echo(f"gold labels for {len(gold)} of {len(sim.sample.pairs)} pairs")
            report = pool_report(cross.labels, pool, gold)
            print_frame(report, title=f"pool {pool.name} (p={pool.p:g})", digits=3)
            write_frame(report, out_dir / "pool_report.csv")
            click.echo(f"wrote pool report: {out_dir / 'pool_report.csv'}")
