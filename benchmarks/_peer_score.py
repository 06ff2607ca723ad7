"""Runs INSIDE the peer environment (AlpacaEval 0.6.6): its LC and win-rate metrics on annotation files.

Usage: peer_python _peer_score.py INPUT_DIR OUT_JSON FILE...

Each file is read with AlpacaEval's own loader and scored by ``get_length_controlled_winrate`` (which computes
its win-rate columns too), the way its leaderboard code does per model. INPUT_DIR holds ``df_gamed.csv`` and
``instruction_difficulty.csv`` in AlpacaEval's hub layout; its hub download is redirected to them, so both
tools use identical LC inputs.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from alpaca_eval.metrics import glm_winrate
from alpaca_eval.utils import load_or_convert_to_dataframe


def main() -> None:
    input_dir, out_path, *files = sys.argv[1:]
    local = {name: str(Path(input_dir) / name) for name in ("df_gamed.csv", "instruction_difficulty.csv")}
    glm_winrate.hf_hub_download = lambda repo_id, filename, **kw: local[filename]
    warnings.simplefilter("ignore")
    out = {}
    for path in files:
        frame = load_or_convert_to_dataframe(path)
        metrics = glm_winrate.get_length_controlled_winrate(frame, save_weights_dir=None, is_warn_extreme_changes=False)
        out[str(frame["generator_2"].iloc[0])] = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
    Path(out_path).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
