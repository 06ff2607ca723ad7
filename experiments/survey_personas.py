"""A held-out persona predicted from the rest of pasture's persona pool: SmolLM2-135M read with four personas.

Real text: AlpacaEval instructions whose two outputs (gpt4_1106_preview's concise and alpaca-7b's, from
``../shared``) are both short, one pair per instruction. Every persona labels every pair (cross-annotation, p = 0,
the in-process llama.cpp judge ``smollm2-logprob``, cached in a store), then each persona in turn is held out:
half of its votes hidden and predicted by the survey model and by the per-question marginal. Writes
``experiments/survey_personas.md``. Definitions: docs/trust.md, section 6.

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 python experiments/survey_personas.py --pairs 60 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import pandas as pd
import torch

from pasture.analysis.survey_pool import held_out_annotator, held_out_table, pool_votes
from pasture.annotate import EngineSettings
from pasture.io import read_model_outputs
from pasture.simulate.labels import cross_annotate, sample_pairs
from pasture.simulate.personas import PERSONAS
from pasture.simulate.pool_files import persona_pool
from pasture.store import Store

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "alpacaeval" / "results"
GENERATORS = ("gpt4_1106_preview_concise", "alpaca-7b")


def _markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join([str(frame.index.name or ""), *cols]) + " |", "|" + "---|" * (len(cols) + 1)]
    for idx, *values in frame.itertuples(name=None):  # per cell, so integer columns stay integers
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in values]
        lines.append("| " + " | ".join([str(idx), *cells]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--max-chars", type=int, default=600, help="Keep instructions whose outputs are this short.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--store", type=Path, default=Path("/tmp/survey_personas.db"))
    parser.add_argument("--output", type=Path, default=Path(__file__).with_suffix(".md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    by_gen = {g: read_model_outputs(SHARED / g / "model_outputs.json.gz") for g in GENERATORS}
    first = {o.instruction: o for o in by_gen[GENERATORS[0]]}
    second = {o.instruction: o for o in by_gen[GENERATORS[1]]}
    chosen = [
        i
        for i in first
        if i in second and len(first[i].output) <= args.max_chars and len(second[i].output) <= args.max_chars
    ][: args.pairs]
    outputs = [first[i] for i in chosen] + [second[i] for i in chosen]
    pairs = sample_pairs(outputs, seed=0).pairs
    pool = persona_pool("smollm2-logprob", tuple(PERSONAS), p=0.0, seed=0)
    began, cpu0 = time.perf_counter(), time.process_time()
    with Store(args.store) as store:
        run = cross_annotate(pairs, pool, store, settings=EngineSettings(concurrency=1))
        judgments = store.get_judgments()
    label_wall, label_cpu = time.perf_counter() - began, time.process_time() - cpu0
    votes = pool_votes(judgments)
    wide = votes.votes.pivot(index="question", columns="respondent", values="vote")
    agreement = pd.DataFrame(
        {a: {b: float((wide[a] == wide[b]).mean()) for b in wide.columns} for a in wide.columns}
    ).rename_axis("persona")
    began2, cpu1 = time.perf_counter(), time.process_time()
    tables = []
    for seed in args.seeds:
        results = [held_out_annotator(votes, name, fraction=0.5, seed=seed) for name in sorted(wide.columns)]
        tables.append(held_out_table(results).assign(seed=seed))
    fit_wall, fit_cpu = time.perf_counter() - began2, time.process_time() - cpu1
    per_seed = pd.concat(tables)
    summary = per_seed.groupby(level="annotator")[["model_auc", "marginal_auc", "share_yes"]].agg(["mean", "std"])
    summary.columns = [f"{c}_{s if s == 'mean' else 'sd'}" for c, s in summary.columns]
    summary["model_minus_marginal_mean"] = (per_seed["model_auc"] - per_seed["marginal_auc"]).groupby(level=0).mean()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text = (
        "# A held-out persona predicted from the rest of the persona pool\n\n"
        f"Written by `experiments/survey_personas.py` ({len(pairs)} pairs of {', '.join(GENERATORS)} outputs of "
        f"at most {args.max_chars} characters, AlpacaEval instructions from ../shared; pool: SmolLM2-135M "
        f"(`smollm2-logprob`, in-process llama.cpp) read with personas {', '.join(PERSONAS)}, p = 0; "
        f"{run.n_calls} judge calls in this run ({label_wall:.0f} s wall, {label_cpu:.0f} s CPU; cached calls cost "
        f"nothing); prediction {fit_wall:.0f} s wall, {fit_cpu:.0f} s CPU on one thread; peak RSS {peak_mb:.0f} MB; "
        f"seeds {args.seeds}).\n\n"
        f"Votes: {len(votes.votes)} ({votes.n_ties} ties, {votes.n_failed} failed judgments left out). Vote 1 = the "
        "persona prefers the pair's canonical output A (the smaller text). Half of each held-out persona's votes are "
        "hidden and predicted from all other votes; AUC = individual AUC on the hidden votes (docs/trust.md, "
        "section 6); mean and sd (ddof 1) over seeds (each seed redraws the hidden half and the model's weights).\n\n"
        "## Agreement between personas (share of pairs with the same vote)\n\n"
        + _markdown(agreement)
        + "\n\n## Held-out persona: survey model vs per-question marginal\n\n"
        + _markdown(summary)
        + "\n\n## Per seed\n\n"
        + _markdown(per_seed)
        + "\n"
    )
    args.output.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
