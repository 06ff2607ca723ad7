"""Runs INSIDE the peer environment (AlpacaEval 0.6.6): its official LC on given inputs, as JSON.

Usage: peer_python _peer_lc.py PREFERENCES_CSV INPUT_DIR OUT_JSON [--models a,b] [--repeat N]

INPUT_DIR holds ``df_gamed.csv`` and ``instruction_difficulty.csv`` in AlpacaEval's layout; the hub download
inside AlpacaEval is redirected to them, so both implementations see identical inputs. Each model's rows are
given in its file order (AlpacaEval's positional lookup sees them as they are). Outputs are stand-in strings
of the recorded lengths: AlpacaEval's LC reads only their lengths.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
from alpaca_eval.metrics import glm_winrate


def main() -> None:
    prefs_path, input_dir, out_path = sys.argv[1:4]
    opts = dict(zip(sys.argv[4::2], sys.argv[5::2], strict=True))
    files = {"df_gamed.csv": str(Path(input_dir) / "df_gamed.csv")}
    files["instruction_difficulty.csv"] = str(Path(input_dir) / "instruction_difficulty.csv")
    glm_winrate.hf_hub_download = lambda repo_id, filename, **kw: files[filename]
    prefs = pd.read_csv(prefs_path).sort_values(["model", "index"], kind="mergesort")
    models = opts["--models"].split(",") if "--models" in opts else sorted(prefs["model"].unique())
    repeat = int(opts.get("--repeat", "1"))
    frames = {}
    for model in models:
        rows = prefs[prefs["model"] == model]
        frames[model] = pd.DataFrame(
            {
                "instruction": rows["ref_pos"].astype(str).to_numpy(),
                "output_1": ["x" * n for n in rows["len_1"]],
                "output_2": ["x" * n for n in rows["len_2"]],
                "generator_1": "gpt4_1106_preview",
                "generator_2": model,
                "annotator": "weighted_alpaca_eval_gpt4_turbo",
                "preference": rows["preference"].to_numpy(),
            }
        )
    out = {}
    warnings.simplefilter("ignore")
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        for model, frame in frames.items():
            m = glm_winrate.get_length_controlled_winrate(
                frame.copy(), save_weights_dir=None, is_warn_extreme_changes=False
            )
            out[model] = {k: float(v) for k, v in m.items() if isinstance(v, int | float)}
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    Path(out_path).write_text(
        json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "repeat": repeat, "models": out}, indent=1)
    )


if __name__ == "__main__":
    main()
