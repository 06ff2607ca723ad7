"""Agreement and variance of a pool of local judges, per persona (the figures for docs/simulate.md).

The pool: SmolLM2-135M-Instruct behind llama.cpp's server, read with each of pasture's personas, plus the
programmatic ``longer-wins`` judge as a yardstick (AlpacaEval's judges table lists "longest" at 62%
agreement with humans). Every member labels every pair (cross-annotation); each member sees its own
random output order.

Pairs: the N shortest (instruction + both outputs, in characters) of AlpacaEval 2's alpaca-7b vs
gpt4_1106_preview comparisons in ../shared, so that a 135M model on 2 CPU cores can read them quickly.
Gold: the official judge's (weighted_alpaca_eval_gpt4_turbo) soft preference for the same pair, mirrored
when the slots are swapped. It is an LLM judge, not a human: "gold agreement" here is agreement with
GPT-4 Turbo, whose own agreement with humans is 65.7%.

Usage: .venv/bin/python benchmarks/simulate_pool_agreement.py [--n 40] [--store PATH]
Writes benchmarks/out/simulate_pool.md and prints it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from pasture.errors import InputError
from pasture.io import read_annotations
from pasture.judges import get_judge
from pasture.local_models import LlamaServer
from pasture.simulate import (
    AnnotatorPool,
    OutputPair,
    PoolMember,
    compare_pools,
    cross_annotate,
    flip_p_for_agreement,
    gold_for_pairs,
    noise_sweep,
    pool_report,
    renoise,
)
from pasture.simulate.personas import PERSONAS
from pasture.simulate.pool_files import persona_pool
from pasture.store import Store

REPO = Path(__file__).resolve().parents[1]
ANNOTATIONS = REPO.parent / "shared" / "alpacaeval" / "results" / "alpaca-7b" / "weighted_alpaca_eval_gpt4_turbo"
OUT = REPO / "benchmarks" / "out"


def _markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    cols = [frame.index.name or "", *map(str, frame.columns)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, *row in frame.itertuples(name=None):
        vals = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join([str(idx), *vals]) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="pairs (shortest first)")
    ap.add_argument("--store", type=Path, default=OUT / "simulate_pool.db", help="cache of verdicts")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    path = ANNOTATIONS / "annotations.json.gz"
    if not path.is_file():
        raise SystemExit(f"../shared not found ({path}): this benchmark needs AlpacaEval's data")
    judgments = read_annotations(path)
    ok = [j for j in judgments if j.status == "ok"]
    ok.sort(key=lambda j: (len(j.instruction) + len(j.output_1) + len(j.output_2), j.instruction))
    chosen = ok[: args.n]
    pairs = [
        OutputPair(
            instruction=j.instruction,
            output_1=j.output_1,
            generator_1=j.generator_1,
            output_2=j.output_2,
            generator_2=j.generator_2,
            dataset=j.dataset,
        )
        for j in chosen
    ]
    gold = gold_for_pairs(pairs, chosen, strict=True)
    OUT.mkdir(parents=True, exist_ok=True)
    with LlamaServer() as server, Store(args.store) as store:
        personas = persona_pool(
            "smollm2-logprob-server", tuple(PERSONAS), p=0.0, seed=args.seed, base_url=server.base_url
        )
        longer = PoolMember(judge=get_judge("longer-wins"), name="longer-wins")
        with_length = AnnotatorPool(members=(*personas.members, longer), p=0.0, seed=args.seed, name="personas+length")
        started = time.perf_counter()
        run = cross_annotate(pairs, with_length, store, progress=True)
        wall = time.perf_counter() - started
        persona_labels = [lab for lab in run.labels if lab.annotator in PERSONAS]
        clean = pool_report(run.labels, with_length, gold)
        personas_clean = pool_report(persona_labels, personas, gold)
        noisy_pool = personas.with_options(p=0.25)
        personas_noisy = pool_report(renoise(persona_labels, noisy_pool), noisy_pool, gold)
        sweep = noise_sweep(persona_labels, personas, [0.0, 0.1, 0.25, 0.4], gold)
        by_name = {m.name: m for m in with_length.members}
        makeups = {
            "concise + thorough": ("concise", "thorough"),
            "balanced + strict": ("balanced", "strict"),
            "4 personas": tuple(PERSONAS),
            "4 personas + longer-wins": (*PERSONAS, "longer-wins"),
        }
        makeup = compare_pools(
            run.labels,
            {
                f"{label}, p={p:g}": AnnotatorPool(
                    members=tuple(by_name[n] for n in names), p=p, seed=args.seed, name=label
                )
                for label, names in makeups.items()
                for p in (0.0, 0.25)
            },
            gold,
        )
    iaa = personas_clean.loc["pool", "inter_annotator_agreement"]
    try:
        p66 = f"{flip_p_for_agreement(iaa, 0.66):.3f}"
    except InputError as exc:
        p66 = f"not reachable ({exc})"
    shown = ["n_labels", "n_failed", "gold_agreement", "gold_agreement_se", "inter_annotator_agreement", "variance"]
    shown += ["prefers_longer"]
    text = "\n".join(
        [
            f"# Pool of local judges: {len(pairs)} AlpacaEval pairs (alpaca-7b vs gpt4_1106_preview, shortest)",
            "",
            f"{run.n_calls} judge calls this run ({wall:.0f} s); gold = official GPT-4 Turbo judge's preference.",
            "",
            "## Every member, clean labels (p = 0); the pool row includes longer-wins",
            "",
            _markdown(clean[shown]),
            "## Persona pool (SmolLM2 x 4 personas), clean (p = 0)",
            "",
            _markdown(personas_clean[shown]),
            "## Persona pool with AlpacaFarm's noise (p = 0.25)",
            "",
            _markdown(personas_noisy[[*shown, "flip_rate"]]),
            "## Noise sweep of the persona pool (same clean labels, seed 0)",
            "",
            _markdown(sweep[["gold_agreement", "inter_annotator_agreement", "variance", "flip_rate"]]),
            f"p that brings the persona pool's inter-annotator agreement to 0.66 (human level): {p66}",
            "",
            "## Pool make-up (same clean labels, re-noised)",
            "",
            _markdown(makeup[["gold_agreement", "inter_annotator_agreement", "variance", "prefers_longer"]]),
            "",
        ]
    )
    (OUT / "simulate_pool.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
