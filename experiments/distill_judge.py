"""Full run of the distilled judge on the shared official annotations (docs/judges.md "Trained judges").

What it measures, in one run, on the 10 models of ``../shared/alpacaeval/results`` whose outputs the
official ``weighted_alpaca_eval_gpt4_turbo`` annotations hold:

1. held-out agreement with the teacher (splits by instruction and by model) of the ``style`` and
   ``style_words`` heads, the length-only head and the rule "longer wins" (``pasture.distill``);
2. the SmolLM2 prompt judge (``smollm2-logprob``) on a seeded sample of pairs, next to the by-model
   held-out predictions of the heads on the same pairs;
3. ``analyze_judge`` of a head fitted without one model (claude-2), after judging that model's pairs in
   both shown orders through ``pasture.annotate`` (position bias, length bias, agreement).

Writes ``experiments/distill_judge.md``. Run: ``PYTHONPATH=src python experiments/distill_judge.py``
(about 6 minutes on 2 CPU cores; ``--smollm2-pairs 0`` skips part 2).
"""

from __future__ import annotations

import argparse
import glob
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from pasture.analysis.judge_analysis import analyze_judge, labels_from_judgments
from pasture.annotate import annotate
from pasture.annotate.pairs import PairToJudge
from pasture.distill import TIE, agreement, distill_judge, fit_head, teacher_pairs
from pasture.io import read_annotations
from pasture.judges import get_judge
from pasture.judges.trained import DistilledJudge, FeatureCache
from pasture.records import Judgment
from pasture.store import Store

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "alpacaeval" / "results"
TEACHER = "weighted_alpaca_eval_gpt4_turbo"
HELD_OUT_MODEL = "claude-2"
# AlpacaEval's judges_leaderboard.csv, row weighted_alpaca_eval_gpt4_turbo (its human-annotated set, not
# these pairs): 'Variance' 23.65 = 100 - the judge's leave-one-out agreement with itself; 'Human agreement' 65.73
TEACHER_SELF_AGREEMENT = 100 - 23.652705035108028
TEACHER_HUMAN_AGREEMENT = 65.73198824263118


def _pairs(frame: pd.DataFrame) -> list[PairToJudge]:
    return [
        PairToJudge(r.instruction, r.output_1, r.generator_1, r.output_2, r.generator_2)
        for r in frame.itertuples(index=False)
    ]


def _md(frame: pd.DataFrame, digits: int = 3) -> str:
    return str(frame.round(digits).to_markdown())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smollm2-pairs", type=int, default=100)
    ap.add_argument("--feature-sets", nargs="+", default=["style", "style_words"], choices=["style", "style_words"])
    ap.add_argument("--skip-analyze", action="store_true", help="Leave out part 3 (analyze_judge).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE / "distill_judge.md")
    args = ap.parse_args()
    files = sorted(glob.glob(str(SHARED / "*" / TEACHER / "annotations.json.gz")))
    judgments = [j for f in files for j in read_annotations(f)]
    lines = [
        "# Distilled judge: full run",
        "",
        f"Teacher: `{TEACHER}` (official annotations of {len(files)} models in ../shared/alpacaeval/results; "
        f"{len(judgments)} judgments). Produced by `experiments/distill_judge.py` (seed {args.seed}; feature sets "
        f"{', '.join(args.feature_sets)}; SmolLM2 pairs {args.smollm2_pairs}; analyze part "
        f"{'skipped' if args.skip_analyze else 'run'}).",
        "",
    ]
    results = {}
    for feature_set in args.feature_sets:
        t0 = time.perf_counter()
        results[feature_set] = r = distill_judge(judgments, feature_set=feature_set, seed=args.seed)
        lines += [
            f"## Held-out agreement, head `{feature_set}` ({time.perf_counter() - t0:.0f} s)",
            "",
            f"{r.n_judgments} judgments, {r.n_failed} failed; {len(r.predictions)} distinct pairs.",
            "",
            _md(r.table),
            "",
        ]
    r = results["style"]
    lines += ["## By model, per held-out model (head `style` vs length-only)", ""]
    wide = r.per_model.pivot(index="model", columns="predictor", values="winner_agreement")
    lines += [_md(wide, 1), "", ""]
    lines += ["## Does the head beat the length-only head on held-out models?", ""]
    lines += [
        "Per held-out model: winner agreement of the head minus that of the length-only head on the same "
        "pairs (both by-model held-out); mean over the 10 held-out models with a 95% t-interval over models. "
        "Beats = the mean is above 0 and the interval excludes 0.",
        "",
    ]
    verdicts = {}
    for feature_set, res in results.items():
        pm = res.per_model.pivot(index="model", columns="predictor", values="winner_agreement")
        d = (pm[feature_set] - pm["length"]).to_numpy()
        half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
        verdicts[feature_set] = {
            "models": len(d),
            "mean difference": d.mean(),
            "low": d.mean() - half,
            "high": d.mean() + half,
            "models where the head is ahead": int((d > 0).sum()),
            "beats": bool(d.mean() - half > 0),
        }
    lines += [_md(pd.DataFrame(verdicts).T, 2), ""]
    lines += [
        "## The teacher's own consistency (where known)",
        "",
        f"AlpacaEval's judges leaderboard gives `{TEACHER}` a leave-one-out self-agreement of "
        f"{TEACHER_SELF_AGREEMENT:.1f} and a human agreement of {TEACHER_HUMAN_AGREEMENT:.1f} on its own "
        "human-annotated set (not these pairs); these pairs hold one judgment each, so no self-consistency "
        "is measurable here.",
        "",
    ]

    if args.smollm2_pairs > 0:
        preds = results["style_words"].predictions.join(results["style"].predictions[["by_model:style"]])
        sample = preds.sample(n=args.smollm2_pairs, random_state=args.seed)
        teacher_frame = teacher_pairs(judgments).pairs.set_index(["instruction", "output_1", "output_2"])
        full = teacher_frame.loc[list(zip(sample.instruction, sample.output_1, sample.output_2, strict=True))]
        smol = get_judge("smollm2-logprob")
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.sqlite") as store:
            report = annotate(store, smol, _pairs(full.reset_index()), position="alpaca_eval", progress=False)
            got = labels_from_judgments(store.get_judgments(judge_digest=smol.fingerprint.digest))
        elapsed = time.perf_counter() - t0
        got = got.groupby(["instruction", "output_1", "output_2"], sort=False)["preference"].mean()
        keyed = sample.set_index(["instruction", "output_1", "output_2"])
        smol_pref = got.reindex(keyed.index).to_numpy()
        failed = int(np.isnan(smol_pref).sum())
        rows = {}
        teacher = keyed["teacher"].to_numpy()
        for name, col in (("head style (by model)", "by_model:style"),
                          ("head style_words (by model)", "by_model:style_words"),
                          ("length-only head (by model)", "by_model:length"),
                          ("longer wins", "by_model:longer_wins")):  # fmt: skip
            rows[name] = vars(agreement(keyed[col].to_numpy(), teacher))
        # a judgment that failed counts as a tie (half a winner agreement), never dropped from the denominator
        rows["smollm2-logprob"] = vars(agreement(np.where(np.isnan(smol_pref), TIE, smol_pref), teacher))
        lines += [
            f"## SmolLM2 prompt judge on {len(sample)} sampled pairs (seed {args.seed})",
            "",
            f"`smollm2-logprob` judged them in {elapsed:.0f} s ({report.n_new + report.n_cached} ok, "
            f"{report.n_parse_error} unparsable, {report.n_error} failed; {failed} pairs without a verdict, "
            "counted as ties). Heads: their by-model held-out predictions on the same pairs.",
            "",
            _md(pd.DataFrame(rows).T),
            "",
        ]

    if not args.skip_analyze:
        lines += _analyze(judgments)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def _analyze(judgments: list[Judgment]) -> list[str]:
    """Part 3: analyze-judge on a head that never saw HELD_OUT_MODEL, judged through the annotation engine."""
    lines: list[str] = []
    teacher = teacher_pairs(judgments)
    train = teacher.pairs[teacher.pairs.generator_2 != HELD_OUT_MODEL]
    test = teacher.pairs[teacher.pairs.generator_2 == HELD_OUT_MODEL]
    head = fit_head(train, FeatureCache("style"), teacher_name=teacher.teacher_name,
                    teacher_digest=teacher.teacher_digest)  # fmt: skip
    judge = DistilledJudge(head, name=f"distilled-style-without-{HELD_OUT_MODEL}")
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.sqlite") as store:
        annotate(store, judge, _pairs(test), position="both", progress=False)
        mine = store.get_judgments(judge_digest=judge.fingerprint.digest)
    gold = [j for j in judgments if j.generator_2 == HELD_OUT_MODEL]
    analysis = analyze_judge(mine, gold, judge_name=judge.name, gold_name=TEACHER)
    lines += [
        f"## analyze-judge: head `style` fitted without {HELD_OUT_MODEL}, on {HELD_OUT_MODEL}'s pairs (both orders)",
        "",
        f"Judge fingerprint `{judge.fingerprint.digest[:12]}`; {len(mine)} judgments, {analysis.n_pairs} pairs.",
        "",
        _md(analysis.table.T),
        "",
    ]
    for note in analysis.notes:
        lines.append(f"- note: {note}")
    return lines


if __name__ == "__main__":
    main()
