"""``pasture rules extract``: a rule set with provenance from labelled pairs (a thin layer over pasture.train.rules)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("rules")
def command() -> None:
    """AutoRule's rules: extract a reviewable rule set from preference pairs (docs/train.md, "AutoRule")."""


@command.command("extract")
@click.option(
    "--pairs",
    "pairs_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="JSONL of preference pairs with prompt/chosen/rejected (TRL format).",
)
@click.option(
    "--reasoner",
    default="synthetic",
    show_default=True,
    help="Who explains the pairs: 'synthetic' = the programmatic predicate reasoner of the synthetic task; otherwise "
    "a judge (built-in name or TOML) whose provider explains, extracts and merges (pasture.train.rules_llm).",
)
@click.option("--base-url", default=None, help="With a judge reasoner: override its server URL.")
@click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("pasture.db"),
    show_default=True,
    help="With a judge reasoner: the store its calls are cached in (a rerun resumes).",
)
@click.option("-k", "k", type=int, default=5, show_default=True, help="Keep at most this many rules.")
@click.option(
    "--min-precision",
    type=float,
    default=0.5,
    show_default=True,
    help="Synthetic reasoner: keep a rule when the Wilson lower bound of support/(support+against) exceeds this.",
)
@click.option("--max-pairs", type=int, default=None, help="Use only the first N pairs.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the rule file (JSON).",
)
def extract(
    pairs_path: Path,
    reasoner: str,
    base_url: str | None,
    store_path: Path,
    k: int,
    min_precision: float,
    max_pairs: int | None,
    output: Path,
) -> None:
    """Explain each pair, merge the explanations into at most K rules, write them with their provenance."""
    from pasture.train.rules import extract_rules_from_file

    if reasoner == "synthetic":
        rules = extract_rules_from_file(pairs_path, k=k, min_precision=min_precision, max_pairs=max_pairs)
    else:
        from pasture.store import Store
        from pasture.train.models import read_preference_pairs
        from pasture.train.rules import LabelledPair
        from pasture.train.rules_llm import LLMReasoner, extract_rules_llm

        pairs = [LabelledPair(p.prompt, p.chosen, p.rejected) for p in read_preference_pairs(pairs_path)[:max_pairs]]
        llm = LLMReasoner.from_judge(reasoner, base_url=base_url) if base_url else LLMReasoner.from_judge(reasoner)
        with Store(store_path) as store:
            result = extract_rules_llm(store, llm, pairs, k=k, source=str(pairs_path))
        for step, c in result.steps.items():
            click.echo(f"{step}: {c.asked} judgments, {c.cached} from the store, {c.failed} failed")
        rules = result.rules
    rules.write(output)
    for r in rules.rules:
        click.echo(f"{r.id}\t{r.support}/{r.against}\t{r.statement}")
    click.echo(f"{len(rules.rules)} rules from {len(rules.pair_keys)} pairs ({rules.reasoner}) -> {output}")
