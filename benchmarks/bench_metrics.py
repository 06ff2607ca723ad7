"""Speed of pasture's metrics against AlpacaEval 0.6.6 on the same input: the 57 board models of ../shared.

Times are CPU seconds of the process doing the work (time.process_time), so that other jobs on a shared
machine do not distort the ratios. Three timings from one run, all on identical inputs (pasture's estimated difficulty and rebuilt gamed rows,
written in AlpacaEval's hub layout for the peer):

1. all leaderboard metrics incl. LC for the 57 models: pasture (``win_rates`` + ``length_controlled_winrate``)
   versus AlpacaEval's ``get_length_controlled_winrate`` (which computes its win-rate columns too);
2. the paired bootstrap (1,000 resamples, win rate and LC, all 57 models): pasture's vectorised refit versus
   a plain per-resample liblinear refit at the same fixed C (measured on a few resamples, per resample);
   AlpacaEval has no bootstrap, and one with its code would cost one full CV fit per resample (shown too);
3. the one-off input preparation (difficulty joint fit + gamed rebuild), which AlpacaEval downloads instead.

Run: .venv/bin/python benchmarks/bench_metrics.py  (PASTURE_PEER_VENV=/path/to/venv to reuse a peer venv)
Writes benchmarks/out/bench_metrics.csv.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import ALPACAEVAL, OUT, REFERENCE, board, eval_set_texts, shared_lc_inputs, shared_pairs
from lc_exactness import run_peer, write_peer_inputs
from pasture.metrics.bootstrap import bootstrap_lc, bootstrap_win_rate, resample_counts
from pasture.metrics.lc import build_design, fit_l1_logistic, length_controlled_winrate
from pasture.metrics.winrate import win_rates

RESAMPLES = 1000
NAIVE_RESAMPLES = 10
NAIVE_MODELS = ("claude-2", "alpaca-7b", "vicuna-7b")


def main() -> None:
    texts = eval_set_texts()
    all_pairs = shared_pairs(texts)
    models = sorted(set(all_pairs["generator_2"]) & set(board().index))
    pairs = all_pairs[all_pairs["generator_2"].isin(models)]
    t0 = time.process_time()
    inputs = shared_lc_inputs(all_pairs, texts)
    t_inputs = time.process_time() - t0

    t0 = time.process_time()
    wr = win_rates(pairs)
    fits = {
        gen: length_controlled_winrate(rows, inputs, generator=str(gen), is_reference=gen == REFERENCE)
        for gen, rows in pairs.groupby("generator_2", sort=True)
    }
    t_metrics = time.process_time() - t0
    assert len(wr) == len(fits) == 57

    order = pd.Index(texts)
    t0 = time.process_time()
    counts = resample_counts(len(order), RESAMPLES, seed=0)
    for gen, rows in pairs.groupby("generator_2", sort=True):
        bootstrap_win_rate(rows, counts, order)
        bootstrap_lc(rows, inputs, fits[str(gen)], counts, order)
    t_boot = time.process_time() - t0

    t0 = time.process_time()
    for model in NAIVE_MODELS:
        rows = pairs[pairs["generator_2"] == model]
        design = build_design(rows, inputs)
        k_fit = counts[:NAIVE_RESAMPLES][:, order.get_indexer(pd.Index(design.fit_instructions))]
        for b in range(NAIVE_RESAMPLES):
            w = design.w.copy()
            w[design.n_gamed :] *= k_fit[b]
            fit_l1_logistic(design.X, design.p, w, fits[model].C)
    t_naive_per = (time.process_time() - t0) / (len(NAIVE_MODELS) * NAIVE_RESAMPLES)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_peer_inputs(inputs, texts, folder)
        prefs = pd.read_csv(ALPACAEVAL / "preferences_58_models.csv.gz")
        prefs[prefs["model"].isin(models)].to_csv(folder / "prefs.csv", index=False)
        peer = run_peer(folder / "prefs.csv", folder, folder / "peer.json")
    t_peer = float(peer["cpu_seconds"])
    agree = max(
        abs(peer["models"][m]["length_controlled_winrate"] - fits[m].length_controlled_winrate)
        for m in models
        if m
        not in {
            "alpaca-7b_concise",
            "alpaca-7b_verbose",
            "gpt35_turbo_instruct",
            "minotaur-13b",
            "phi-2",
            "text_davinci_001",
        }
    )
    per_model_peer = t_peer / len(models)
    model_resamples = RESAMPLES * len(models)
    rows_out = [
        ("all metrics incl. LC, 57 models", t_metrics, t_peer, "AlpacaEval 0.6.6 get_length_controlled_winrate"),
        (
            "bootstrap 1000x (WR + LC), 57 models",
            t_boot,
            t_naive_per * model_resamples,
            "per-resample liblinear refit at fixed C (measured on 30 refits, x 57,000)",
        ),
        (
            "bootstrap 1000x (WR + LC), 57 models",
            t_boot,
            per_model_peer * model_resamples,
            "AlpacaEval's LC called once per resample (its per-model time in this run, x 57,000)",
        ),
        ("input preparation (difficulty + gamed)", t_inputs, float("nan"), "AlpacaEval downloads these instead"),
    ]
    table = pd.DataFrame(rows_out, columns=["task", "pasture_s", "other_s", "other"])
    table["speedup"] = table["other_s"] / table["pasture_s"]
    OUT.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT / "bench_metrics.csv", index=False, float_format="%.4f")
    pd.set_option("display.width", 220)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nLC agreement on complete ordered models in this run: max |diff| = {agree:.2e}")
    print(
        f"bootstrap per model-resample: pasture {t_boot / model_resamples * 1e3:.3f} ms, "
        f"liblinear refit {t_naive_per * 1e3:.3f} ms, AlpacaEval LC call {per_model_peer * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
