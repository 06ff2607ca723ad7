"""The SmolLM2 prompt judge beside the distilled judge, on a fixed sample of held-out pairs (issue 13).

Why a script of its own: ``experiments/distill_judge.py`` was run with ``--smollm2-pairs 0`` (its SmolLM2 part
judges in a temporary store, so an interrupted run starts over). This one judges a fixed, seeded sample of the
official judge's pairs with ``smollm2-logprob`` (SmolLM2-135M-Instruct in process, one CPU thread, context 8192
so long AlpacaEval outputs fit) into a store under ``out/`` that it resumes from, and compares, on exactly those
pairs, the held-out predictions of the ``style`` head and of the length-only head under both splits (by
instruction, by model), the rule "longer wins" and SmolLM2, each against the official judge.

Every sampled pair is held out in both splits: the splits are cross-fits (every pair is predicted by a head that
never saw its instruction, resp. its model), so one sample serves both. Intervals: 95 % percentile bootstrap over
the sampled pairs (2000 resamples, seeded), and the paired bootstrap of SmolLM2 minus each other predictor.

Writes ``experiments/distill_judge_smollm2.md``. Each pair takes SmolLM2 several seconds on one thread (tens on a loaded
machine); ``--report-only`` writes the table from what the store holds. Run::

    OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 10 python experiments/distill_judge_smollm2.py
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pasture.analysis.judge_analysis import labels_from_judgments
from pasture.annotate import annotate
from pasture.annotate.engine import EngineSettings
from pasture.annotate.pairs import PairToJudge
from pasture.distill import TIE, agreement, distill_judge, teacher_pairs
from pasture.io import read_annotations
from pasture.judges import get_judge
from pasture.store import Store

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "alpacaeval" / "results"
TEACHER = "weighted_alpaca_eval_gpt4_turbo"
PREDICTORS = (
    ("style head, held out by instruction", "by_instruction:style"),
    ("length-only head, held out by instruction", "by_instruction:length"),
    ("style head, held out by model", "by_model:style"),
    ("length-only head, held out by model", "by_model:length"),
    ("longer wins", "by_model:longer_wins"),
)


def winner_hits(predicted: np.ndarray, teacher: np.ndarray) -> np.ndarray:
    """Per pair the teacher did not tie: 1 when the predicted winner is the teacher's, ½ for a predicted tie."""
    decided = teacher != TIE
    p, t = predicted[decided], teacher[decided]
    return np.where(p == TIE, 0.5, ((p > TIE) == (t > TIE)).astype(float))


def bootstrap_interval(values: np.ndarray, rng: np.random.Generator, n_boot: int = 2000) -> tuple[float, float]:
    """95 % percentile bootstrap interval of 100 × the mean of ``values``."""
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = 100.0 * values[idx].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=120, help="Pairs in the fixed sample.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store", type=Path, default=ROOT / "out" / "distill_judge_smollm2.sqlite")
    ap.add_argument("--out", type=Path, default=HERE / "distill_judge_smollm2.md")
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="Judge nothing; report on the longest prefix of the sample whose pairs the store already holds "
        "(a seeded sample of that size: pandas draws a sample of k as the first k of a larger one).",
    )
    args = ap.parse_args()
    t_start, cpu_start = time.perf_counter(), time.process_time()
    files = sorted(glob.glob(str(SHARED / "*" / TEACHER / "annotations.json.gz")))
    judgments = [j for f in files for j in read_annotations(f)]
    result = distill_judge(judgments, feature_set="style", seed=args.seed)
    preds = result.predictions
    sample = preds.sample(n=args.pairs, random_state=args.seed)
    teacher_frame = teacher_pairs(judgments).pairs.set_index(["instruction", "output_1", "output_2"])
    full = teacher_frame.loc[list(zip(sample.instruction, sample.output_1, sample.output_2, strict=True))]
    pairs = [
        PairToJudge(r.instruction, r.output_1, r.generator_1, r.output_2, r.generator_2)
        for r in full.reset_index().itertuples(index=False)
    ]
    smol = get_judge("smollm2-logprob", n_ctx=8192, n_threads=1)
    args.store.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with Store(args.store) as store:
        if args.report_only:
            report = None
        else:
            report = annotate(
                store, smol, pairs, position="alpaca_eval", progress=False, settings=EngineSettings(concurrency=1)
            )
        got = labels_from_judgments(store.get_judgments(judge_digest=smol.fingerprint.digest))
    judge_s = time.perf_counter() - t0
    got = got.groupby(["instruction", "output_1", "output_2"], sort=False)["preference"].mean()
    keyed = sample.set_index(["instruction", "output_1", "output_2"])
    smol_pref = got.reindex(keyed.index).to_numpy()
    if args.report_only:
        k = int(np.argmax(np.isnan(smol_pref))) if np.isnan(smol_pref).any() else len(smol_pref)
        if k == 0:
            raise SystemExit("the store holds no verdict for the first sampled pair; run without --report-only")
        sample, keyed, smol_pref = sample.iloc[:k], keyed.iloc[:k], smol_pref[:k]
        args.pairs = k
    failed = int(np.isnan(smol_pref).sum())
    teacher = keyed["teacher"].to_numpy()
    columns = {name: keyed[col].to_numpy() for name, col in PREDICTORS}
    # a pair without a SmolLM2 verdict counts as a tie (half a winner agreement), never dropped
    columns["SmolLM2 prompt judge (smollm2-logprob)"] = np.where(np.isnan(smol_pref), TIE, smol_pref)
    rng = np.random.default_rng(args.seed)
    rows = {}
    smol_hits = winner_hits(columns["SmolLM2 prompt judge (smollm2-logprob)"], teacher)
    for name, pred in columns.items():
        a = agreement(pred, teacher)
        hits = winner_hits(pred, teacher)
        low, high = bootstrap_interval(hits, rng)
        row = {"n_pairs": a.n_pairs, "winner_agreement": a.winner_agreement, "low": low, "high": high,
               "agreement": a.agreement, "auc": a.auc}  # fmt: skip
        if not name.startswith("SmolLM2"):
            d_low, d_high = bootstrap_interval(smol_hits - hits, rng)
            row["SmolLM2 minus this"] = 100.0 * float((smol_hits - hits).mean())
            row["difference low"], row["difference high"] = d_low, d_high
        rows[name] = row
    table = pd.DataFrame(rows).T
    first = float(np.mean(columns["SmolLM2 prompt judge (smollm2-logprob)"] < TIE))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    lines = [
        "# The SmolLM2 prompt judge beside the distilled judge (held-out pairs)",
        "",
        f"Teacher: `{TEACHER}` ({len(judgments)} official judgments of {len(files)} models, {len(preds)} distinct "
        f"pairs). A fixed sample of {args.pairs} pairs (seed {args.seed}) was judged by `smollm2-logprob` "
        f"(fingerprint `{smol.fingerprint.digest[:12]}`, in process, n_ctx 8192, one thread, shown order as "
        f"AlpacaEval's) into `{args.store.relative_to(ROOT) if args.store.is_relative_to(ROOT) else args.store}`: "
        + (
            f"{report.n_new} new, {report.n_cached} cached, {report.n_parse_error} unparsable, {report.n_error} "
            "failed; "
            if report is not None
            else "reported from the store only (the run judged nothing); "
        )
        + f"{failed} pairs without a verdict, counted as ties. Judging took {judge_s:.0f} s of this run.",
        "",
        "Heads: their held-out predictions from `pasture.distill.distill_judge` (feature set `style`, 5 folds by "
        "instruction; leave-one-model-out by model) on the same pairs. Every sampled pair is held out in both "
        "splits (the splits are cross-fits). Winner agreement: share of the pairs the teacher did not tie where "
        "the predicted winner is the teacher's (a predicted tie counts half); [low, high]: 95 % percentile "
        "bootstrap over pairs (2000 resamples); the difference columns are the paired bootstrap of SmolLM2 minus "
        "the row's predictor.",
        "",
        str(table.round(2).to_markdown()),
        "",
        f"SmolLM2 picks the reference slot on {100 * first:.1f} % of these pairs (preference below 1.5).",
        "",
        f"Run: wall {time.perf_counter() - t_start:.0f} s, CPU {time.process_time() - cpu_start:.0f} s "
        f"(user {usage.ru_utime:.0f} s, system {usage.ru_stime:.0f} s), OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}.",
    ]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
