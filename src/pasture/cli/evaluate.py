"""``pasture evaluate``: model outputs + a reference + a judge → judgments → a leaderboard entry."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click

from pasture.annotate import POSITIONS, EngineSettings, Position
from pasture.cli.common import generator_name_hint, results_folder, wide_option
from pasture.cli.generate import eval_set_options, load_eval_set_option, sampling_options, settings_from_options
from pasture.cli.leaderboard import show_board
from pasture.cli.options import (
    JudgeOptions,
    ModelOptions,
    ReferenceOptions,
    engine_options,
    generator_option,
    judge_options,
    model_options,
    reference_options,
)
from pasture.errors import InputError
from pasture.evalsets import ALPACA_EVAL
from pasture.evaluate import BudgetRule, evaluate, evaluate_budgeted
from pasture.generate import MODEL_SPEC_HELP, generate
from pasture.io import read_model_outputs
from pasture.records import EvalSet, ModelOutput
from pasture.store import Store


@click.command("evaluate")
@wide_option
@click.argument("model_outputs", nargs=-1, type=click.Path(path_type=Path))
@model_options(help="Generate the outputs first: " + MODEL_SPEC_HELP + ".")
@generator_option(help="Generator name (with --model: required; with one file: overrides).")
@eval_set_options
@reference_options
@judge_options()
@click.option(
    "--position",
    type=click.Choice(POSITIONS),
    default="alpaca_eval",
    show_default=True,
    help="Which output the judge sees first; 'both' judges both orders and averages.",
)
@engine_options()
@click.option(
    "--target-ci",
    type=float,
    default=None,
    help="Budget-aware: judge in a seeded random order and stop once the win rate's confidence sequence is "
    "at most ± this many points (one model).",
)
@click.option(
    "--decide-against",
    default=None,
    metavar="MODEL",
    help="Budget-aware: stop once the model's paired difference with MODEL (in the store, same reference and "
    "judge; its missing judgments are bought in the same order) is decided.",
)
@click.option(
    "--order-seed", type=int, default=0, show_default=True, help="Seed of the budget-aware judging order (manifest)."
)
@click.option(
    "--alpha", type=float, default=0.05, show_default=True, help="Budget-aware: the rule's error rate at any stop."
)
@sampling_options
@click.option(
    "--store",
    "store_path",
    type=click.Path(path_type=Path),
    default=Path("pasture.db"),
    show_default=True,
    help="SQLite store for outputs, judgments and leaderboard runs.",
)
@click.option(
    "--report", "report_path", type=click.Path(path_type=Path), default=None, help="Also write the HTML report."
)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def command(
    model_outputs: tuple[Path, ...],
    model: ModelOptions,
    generator: str | None,
    eval_set_spec: str,
    limit: int | None,
    instruction_field: str,
    alpaca_eval_file: Path | None,
    reference: ReferenceOptions,
    judge: JudgeOptions,
    position: str,
    engine: EngineSettings,
    target_ci: float | None,
    decide_against: str | None,
    order_seed: int,
    alpha: float,
    system_prompt: str | None,
    system_prompt_file: Path | None,
    max_tokens: int,
    temperature: float,
    top_p: float,
    seed: int,
    samples: int,
    stop: tuple[str, ...],
    gen_concurrency: int,
    store_path: Path,
    report_path: Path | None,
    no_progress: bool,
    wide: bool,
) -> None:
    """Judge MODEL_OUTPUTS (model_outputs.json files) or --model's outputs against a reference; update the board.

    Judgments already in the store (from earlier runs or `pasture import`) are reused, never bought again:
    re-running with one new model judges only that model. Failed judgments are counted in n_failed and
    retried by the next run.

    \b
    Examples:
      pasture evaluate results/my-model/model_outputs.json --eval-set alpaca_eval \\
          --judge weighted_alpaca_eval_gpt4_turbo --judge-template alpaca_eval_clf.txt
      pasture evaluate --model smollm2 --generator smol --eval-set demo --limit 30 --reference-generator smol-ref
      pasture evaluate outputs.json --eval-set my_set.jsonl --reference ref.json --judge gpt-4o-mini-graded
      pasture evaluate new.json --eval-set alpaca_eval --target-ci 2.5 --order-seed 1
      pasture evaluate new.json --eval-set alpaca_eval --decide-against old-checkpoint
    """
    if bool(model_outputs) == bool(model.spec):
        raise click.UsageError("give model output files or --model, not both and not neither")
    eval_set = load_eval_set_option(eval_set_spec, limit, instruction_field, alpaca_eval_file)

    def whole_set() -> EvalSet:
        """Files answer the whole eval set: with --limit they are checked against it, then cut to the kept part."""
        if limit is None:
            return eval_set
        return load_eval_set_option(eval_set_spec, None, instruction_field, alpaca_eval_file)

    judge_ = judge.build()
    with Store(store_path) as store:
        outputs: list[ModelOutput] = []
        if model.spec is not None:
            if not generator:
                raise click.UsageError("--model needs --generator (the generator name on the leaderboard)")
            settings = settings_from_options(
                system_prompt, system_prompt_file, max_tokens, temperature, top_p, seed, samples, stop
            )
            provider = model.provider()
            gen = generate(
                store, eval_set, provider, generator=generator, settings=settings,
                concurrency=gen_concurrency, progress=not no_progress, ray=engine.ray, ray_workers=engine.ray_workers,
            )  # fmt: skip
            click.echo(gen.summary())
            if not gen.ok:
                raise InputError(f"{gen.n_failed} generations failed (first: {gen.errors[0]}); rerun to retry them")
            outputs = list(gen.outputs)
        else:
            if generator is not None and len(model_outputs) > 1:
                raise click.UsageError("--generator renames one file's generator; give one file")
            full_set = whole_set()
            for path in model_outputs:
                rows = _limited(read_model_outputs(path, eval_set=full_set, generator=generator), eval_set, limit, path)
                hint = generator_name_hint(
                    path, {o.generator for o in rows}, f"pass --generator {results_folder(path)} to use the folder's"
                )
                if hint and generator is None:
                    click.echo(hint)
                outputs += rows
        ref_outputs = reference.outputs(
            store, eval_set, official=eval_set_spec == ALPACA_EVAL, alpaca_eval_file=alpaca_eval_file,
            file_eval_set=whole_set() if reference.path is not None else None,
        )  # fmt: skip
        if reference.path is not None and limit is not None:
            click.echo(f"--limit {limit}: using {len(ref_outputs)} reference outputs of {reference.path}")
        if target_ci is not None or decide_against is not None:
            budgeted = evaluate_budgeted(
                store,
                eval_set=eval_set,
                model_outputs=outputs,
                reference_outputs=ref_outputs,
                judge=judge_,
                rule=BudgetRule(target_ci=target_ci, decide_against=decide_against, seed=order_seed, alpha=alpha),
                position=cast(Position, position),
                settings=engine,
                progress=not no_progress,
                inputs={"files": ", ".join(map(str, model_outputs))} if model_outputs else None,
            )
            click.echo(budgeted.summary())
            result = budgeted.evaluation
        else:
            result = evaluate(
                store,
                eval_set=eval_set,
                model_outputs=outputs,
                reference_outputs=ref_outputs,
                judge=judge_,
                position=cast(Position, position),
                settings=engine,
                progress=not no_progress,
                inputs={"files": ", ".join(map(str, model_outputs))} if model_outputs else None,
            )
            click.echo(result.annotation.summary())
        board = result.board
        show_board(board.frame, board.title(), board.notes, wide=wide)
        if report_path is not None:
            from pasture.cli.report import speculative_sections
            from pasture.report import write_report

            files = write_report(
                board.frame, board.judgments, report_path, title=board.title(),
                manifest={"board": board.key.__dict__, "runs": board.manifests},
                sections=speculative_sections(store, board.key.eval_set_digest),
            )  # fmt: skip
            click.echo(f"report: {files.html}")


def _limited(rows: list[ModelOutput], eval_set: EvalSet, limit: int | None, path: Path) -> list[ModelOutput]:
    """With --limit: the rows of a file (checked against the whole eval set) that answer the kept instructions."""
    if limit is None:
        return rows
    keep = set(eval_set.texts())
    kept = [o for o in rows if o.instruction in keep]
    click.echo(f"--limit {limit}: using {len(kept)} of the {len(rows)} outputs in {path}")
    return kept
