"""``pasture simulate``: a simulated preference dataset from model outputs and an annotator pool."""

from __future__ import annotations

from pathlib import Path

import click

from pasture.annotate import EngineSettings
from pasture.cli.common import print_frame, wide_option, write_frame
from pasture.cli.options import JudgeOptions, ModelOptions, engine_options, judge_options, model_options
from pasture.errors import InputError
from pasture.evalsets import resolve_eval_set
from pasture.generate import MODEL_SPEC_HELP
from pasture.io import read_model_outputs
from pasture.simulate._engine import SIMULATOR_ENGINE
from pasture.simulate.datasets import FORMATS
from pasture.simulate.labels import cross_annotate
from pasture.simulate.measure import gold_for_pairs, pool_report, read_gold
from pasture.simulate.personas import PERSONAS
from pasture.simulate.pool import DEFAULT_FLIP_P
from pasture.simulate.pool_files import load_pool, persona_pool
from pasture.simulate.simulation import sample_policy_outputs, simulate_preferences, write_simulation
from pasture.store import Store


@click.command("simulate")
@wide_option
@click.argument("outputs", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--instructions",
    default=None,
    help="Instead of OUTPUTS: an eval set ('demo', a file, hf:OWNER/NAME) to sample outputs for from --model.",
)
@model_options(help=f"With --instructions, the policy sampled: {MODEL_SPEC_HELP}.")
@click.option("--samples", type=int, default=2, show_default=True, help="Policy samples per instruction.")
@click.option("--temperature", type=float, default=0.7, show_default=True, help="Policy sampling temperature.")
@click.option("--max-tokens", type=int, default=256, show_default=True, help="Policy output length cap.")
@click.option("--limit", type=int, default=None, help="With --instructions: only the first N instructions.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Folder for the datasets.")
@click.option("--pool", "pool_path", type=click.Path(path_type=Path), default=None, help="Pool TOML file.")
@judge_options(help="Without --pool: the model judge read with each --persona (built-in name or judge TOML).")
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
@engine_options(SIMULATOR_ENGINE)
@click.option("--measure", is_flag=True, help="Also have every member label every pair and print the pool report.")
@click.option(
    "--gold",
    "gold_path",
    type=click.Path(path_type=Path),
    default=None,
    help="With --measure: pairwise file (instruction, output_1, output_2, preference) of gold labels.",
)
def command(
    outputs: tuple[Path, ...],
    instructions: str | None,
    model: ModelOptions,
    samples: int,
    temperature: float,
    max_tokens: int,
    limit: int | None,
    out_dir: Path,
    pool_path: Path | None,
    judge: JudgeOptions,
    personas: tuple[str, ...],
    p: float | None,
    seed: int | None,
    pairs_per_instruction: int,
    formats: tuple[str, ...],
    store_path: Path,
    engine: EngineSettings,
    measure: bool,
    gold_path: Path | None,
    wide: bool,
) -> None:
    """Label pairs of outputs with an annotator pool and write TRL / HF / AlpacaFarm preference datasets.

    The outputs are OUTPUTS (model outputs files; several generators or samples per instruction), or
    --samples outputs per instruction of --instructions sampled from --model (stored and resumable).
    The --judge-* options (e.g. --judge-base-url of a llama.cpp server) apply to every model judge of the pool.
    """
    if bool(outputs) == bool(instructions):
        raise click.UsageError("give OUTPUTS files or --instructions with --model, not both and not neither")
    if instructions and not model.spec:
        raise click.UsageError("--instructions needs --model (the policy to sample)")
    if not instructions and (model.spec or model.base_url or model.provider_args):
        raise click.UsageError(
            "--model, --base-url and --provider-arg are the policy sampled for --instructions; "
            "the pool's judges take --judge-base-url, --judge-model and --judge-arg"
        )
    if gold_path is not None and not measure:
        raise click.UsageError("--gold needs --measure")
    gold_labels = read_gold(gold_path) if gold_path is not None else None  # bad input fails before any call
    overrides = judge.overrides()
    if pool_path is not None:
        if personas:
            raise click.UsageError("--persona builds a pool; give it or --pool, not both")
        pool = load_pool(pool_path, p=p, seed=seed, **overrides)
    else:
        pool = persona_pool(
            judge.name,
            personas or tuple(PERSONAS),
            p=DEFAULT_FLIP_P if p is None else p,
            seed=0 if seed is None else seed,
            **overrides,
        )
    with Store(store_path) as store:
        if instructions:
            assert model.spec is not None
            eval_set = resolve_eval_set(instructions, limit=limit)
            sampled = sample_policy_outputs(
                store,
                eval_set,
                model.provider(),
                generator=model.spec,
                samples=samples,
                temperature=temperature,
                max_tokens=max_tokens,
                seed=pool.seed,
                concurrency=engine.concurrency,
                progress=True,
            )
            rows = sampled.outputs
            click.echo(
                f"policy {model.spec}: {len(rows)} outputs for {len(eval_set)} instructions "
                f"({sampled.n_failed} generations failed: rerun to retry them)"
            )
        else:
            rows = [o for path in outputs for o in read_model_outputs(path)]
        if not rows:
            raise InputError("no outputs to pair")
        sim = simulate_preferences(
            rows, pool, store, pairs_per_instruction=pairs_per_instruction, settings=engine, progress=True
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
            cross = cross_annotate(sim.sample.pairs, pool, store, settings=engine, progress=True)
            gold = None
            if gold_labels is not None:
                gold = gold_for_pairs(sim.sample.pairs, gold_labels)
                click.echo(f"gold labels for {len(gold)} of {len(sim.sample.pairs)} pairs")
            report = pool_report(cross.labels, pool, gold)
            print_frame(report, title=f"pool {pool.name} (p={pool.p:g})", digits=3, wide=wide)
            write_frame(report, out_dir / "pool_report.csv")
            click.echo(f"wrote pool report: {out_dir / 'pool_report.csv'}")
