"""Budget-aware evaluation replayed on the shared AlpacaEval annotations: no judge calls.

For every pair of board models in ``preferences_58_models.csv.gz`` whose full win rates differ by at least
``--min-gap`` points, the stored verdicts answer in a seeded random order of their common instructions (drawn
without replacement); the run stops when the paired difference's confidence sequence excludes 0
(:func:`pasture.metrics.sequential.run_to_decision`). The truth is the full-run sign. Also: the calls each
model needs for a ±2.5-point 95% interval of its own win rate. A call is one judgment: a decision uses two per
instruction (one per model), a width run one.

    python benchmarks/sequential_replay.py [--shared ../shared] [--out benchmarks/sequential_replay.md]
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pasture.metrics.sequential import run_to_decision, run_to_width, seeded_order


def pair_seed(a: str, b: str, base: int) -> int:
    """A seed per model pair, stable across processes (never Python's hash())."""
    return int.from_bytes(hashlib.sha256(f"{base}\x00{a}\x00{b}".encode()).digest()[:8], "little")


def load(shared: Path) -> pd.DataFrame:
    df = pd.read_csv(shared / "alpacaeval" / "preferences_58_models.csv.gz")
    board = pd.read_csv(shared / "alpacaeval" / "leaderboards" / "alpaca_eval_2_leaderboard.csv", index_col=0)
    df = df[df["model"].isin(board.index)]  # the 57 board models (text_davinci_003 is not on the board)
    df["x"] = pd.to_numeric(df["preference"], errors="coerce") - 1.0
    df = df.dropna(subset=["x"]).drop_duplicates(["model", "ref_pos"])
    return df.pivot(index="ref_pos", columns="model", values="x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    parser.add_argument("--min-gap", type=float, default=3.0)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--half-width", type=float, default=2.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    table = load(args.shared)
    models = sorted(table.columns)
    rows = []
    for ia, a in enumerate(models):
        for b in models[ia + 1 :]:
            both = table[[a, b]].dropna()
            xa, xb = both[a].to_numpy(), both[b].to_numpy()
            gap = (xa.mean() - xb.mean()) * 100
            if abs(gap) < args.min_gap:
                continue
            order = seeded_order(len(both), pair_seed(a, b, args.seed))
            res = run_to_decision(xa[order], xb[order], len(both), alpha=args.alpha)
            rows.append(
                {
                    "a": a,
                    "b": b,
                    "gap": gap,
                    "n": len(both),
                    "used": res.fraction_used,
                    "decision": res.decision,
                    "wrong": res.decision != 0 and res.decision != np.sign(gap),
                }
            )
    pairs = pd.DataFrame(rows)
    width_rows = []
    for m in models:
        x = table[m].dropna().to_numpy()
        order = seeded_order(len(x), pair_seed(m, "", args.seed))
        res = run_to_width(x[order], len(x), half_width=args.half_width, alpha=args.alpha)
        truth = x.mean() * 100
        width_rows.append({"model": m, "used": res.fraction_used, "covered": res.low <= truth <= res.high})
    widths = pd.DataFrame(width_rows)
    wall = time.perf_counter() - started
    bins = pd.cut(pairs["gap"].abs(), [args.min_gap, 5, 10, 20, 100], right=False)
    by_gap = pairs.groupby(bins, observed=True).agg(
        pairs=("used", "size"), mean_fraction=("used", "mean"), errors=("wrong", "sum")
    )
    n_wrong = int(pairs["wrong"].sum())
    lines = [
        "# Budget-aware evaluation replayed on the shared AlpacaEval 2 annotations",
        "",
        f"`python benchmarks/sequential_replay.py` (alpha = {args.alpha}, min gap = {args.min_gap} points, "
        f"seed = {args.seed}); {len(models)} models, {wall:.1f} s wall.",
        "",
        "## Decisions (A vs B, paired, same instructions)",
        "",
        f"- pairs with |full-run gap| >= {args.min_gap} points: {len(pairs)}",
        f"- decided before the eval set ran out: {int((pairs['used'] < 1).sum())}; undecided at the end: "
        f"{int((pairs['decision'] == 0).sum())}",
        f"- wrong sign: {n_wrong} ({n_wrong / len(pairs):.4f}; guarantee <= {args.alpha / 2:.3f} per decision)",
        f"- mean fraction of calls used: {pairs['used'].mean():.3f} (calls saved: {1 - pairs['used'].mean():.1%})",
        f"- median fraction: {pairs['used'].median():.3f}",
        "",
        "| abs gap (points) | pairs | mean fraction of calls | wrong sign |",
        "|---|---|---|---|",
        *[f"| {idx} | {int(r.pairs)} | {r.mean_fraction:.3f} | {int(r.errors)} |" for idx, r in by_gap.iterrows()],
        "",
        f"## One model's win rate to +/-{args.half_width} points ({1 - args.alpha:.0%} confidence sequence)",
        "",
        f"- mean fraction of calls used: {widths['used'].mean():.3f} (min {widths['used'].min():.3f}, "
        f"max {widths['used'].max():.3f}); interval covers the full-run value for {int(widths['covered'].sum())} "
        f"of {len(widths)} models",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
