"""Survey-style prediction on a synthetic survey with known latent beliefs: each split's AUC against its best.

Full size, five seeds, run outside CI (a few minutes on one CPU thread); writes the tables to
``experiments/survey_synthetic.md`` beside this script. The CI smoke test runs the same code on one seed at smoke
size (tests/analysis/test_survey_synthetic.py). Definitions of every number: docs/trust.md
("Survey-style prediction").

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 python experiments/survey_synthetic.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from pasture.analysis.survey_model import SurveyModelSettings
from pasture.analysis.survey_synthetic import SyntheticSurveyConfig, summarize_comparison, synthetic_comparison

SMOKE = SyntheticSurveyConfig(n_respondents=60, n_questions=20, n_times=4)


def _markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join([frame.index.name or "", *cols]) + " |", "|" + "---|" * (len(cols) + 1)]
    for idx, *values in frame.itertuples(name=None):  # per cell, so integer columns stay integers
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in values]
        lines.append("| " + " | ".join([str(idx), *cells]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--smoke", action="store_true", help="smoke size (figures mean nothing)")
    parser.add_argument(
        "--cross-section", action="store_true", help="new respondents at each time (like the GSS) instead of a panel"
    )
    parser.add_argument("--output", type=Path, default=Path(__file__).with_suffix(".md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = SMOKE if args.smoke else SyntheticSurveyConfig()
    if args.cross_section:
        config = dataclasses.replace(config, panel=False)
    settings = SurveyModelSettings()
    began, cpu0 = time.perf_counter(), time.process_time()
    per_seed = synthetic_comparison(args.seeds, config=config, settings=settings)
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu0
    summary = summarize_comparison(per_seed)
    model = per_seed[per_seed["predictor"] == "survey model"].pivot(
        index="seed", columns="split", values=["auc", "best_auc"]
    )
    gap = model["best_auc"] - model["auc"]
    holds = gap["retrodiction"] < gap["unasked"]
    cols = [
        "seed",
        "split",
        "predictor",
        "n",
        "auc",
        "auc_low",
        "auc_high",
        "best_auc",
        "n_cells",
        "rho",
        "rho_spearman",
    ]
    detail = per_seed[cols].set_index("seed")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text = (
        "# Survey-style prediction on a synthetic survey with known beliefs\n\n"
        f"Written by `experiments/survey_synthetic.py` (seeds {args.seeds}, {'smoke' if args.smoke else 'full'} "
        f"size; {wall:.0f} s wall, {cpu:.0f} s CPU on one thread, peak RSS {peak_mb:.0f} MB).\n\n"
        f"Survey: `{asdict(config)}`.\n\nModel: `{asdict(settings)}` (seed replaced by each run's seed). "
        "Held-out share 0.2 in every split.\n\n"
        "auc: the survey model's individual AUC on the held-out votes; best_auc: the expected AUC of ranking those "
        "votes by their true probability (the ceiling); gap = best_auc - auc; share_of_best = (auc - 0.5) / "
        "(best_auc - 0.5); marginal_auc: the per-question marginal (absent for unasked questions: NaN); oracle_auc: "
        "the realized AUC of the true probabilities on the drawn votes; rho: Pearson correlation over held-out "
        "(question, time) cells of the mean prediction and the mean vote. mean and sd (sample, ddof 1) over seeds. "
        "Definitions: docs/trust.md, 'Survey-style prediction'.\n\n"
        "## Summary over seeds\n\n" + _markdown(summary.T.rename_axis("statistic")) + "\n\n"
        f"Retrodiction's gap to its best is smaller than unasked's in {int(holds.sum())} of {len(holds)} seeds "
        f"(gaps per seed: retrodiction {', '.join(f'{g:.3f}' for g in gap['retrodiction'])}; unasked "
        f"{', '.join(f'{g:.3f}' for g in gap['unasked'])}).\n\n"
        "## Per seed\n\n" + _markdown(detail) + "\n"
    )
    args.output.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
