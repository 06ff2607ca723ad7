"""`pasture score` end to end against AlpacaEval 0.6.6's LC on the same 57 annotation files, in one run.

Both sides are whole processes reading the same files from disk (``benchmarks/_score_files.py`` builds one
AlpacaEval ``annotations.json`` per board model of ../shared) and computing every model's win-rate columns and
LC with identical LC inputs (pasture's shipped difficulty and gamed rows, written in AlpacaEval's hub layout for
the peer, whose hub download is redirected to them):

- ``pasture score FILES --bootstrap 0`` versus ``_peer_score.py`` (AlpacaEval's loader +
  ``get_length_controlled_winrate`` per file);
- ``pasture score FILES`` with its default 1,000-resample paired bootstrap (win rate and LC refit for every
  model): its extra time over the run without bootstrap is the bootstrap's cost; its peak RSS is the whole
  process's.

The machine is shared, so the commands run interleaved, ROUNDS times each, and the table reports medians of
wall and CPU (user + sys) seconds and their ratios; /usr/bin/time gives CPU and peak RSS. LC agreement with the
peer is checked on the 52 complete, ordered files (AlpacaEval looks difficulty up by row position).

Run: .venv/bin/python benchmarks/bench_metrics.py   (PASTURE_PEER_VENV=/path/to/venv reuses a peer venv)
Writes benchmarks/out/bench_metrics.csv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import OUT, REPO
from _score_files import build_annotation_files
from lc_exactness import peer_python
from pasture.metrics.gamed import write_official_gamed
from pasture.metrics.lc_shipped import load_shipped

HERE = Path(__file__).resolve().parent
ROUNDS = int(os.environ.get("PASTURE_BENCH_ROUNDS", "3"))


def write_peer_inputs(folder: Path) -> None:
    """pasture's shipped LC inputs in AlpacaEval's hub layout (positional over the eval set)."""
    shipped = load_shipped()
    write_official_gamed(shipped.gamed_rows(), list(shipped.table.index), folder / "df_gamed.csv")
    pd.DataFrame({"instruction_difficulty": shipped.difficulty.to_numpy()}).to_csv(
        folder / "instruction_difficulty.csv", float_format="%.17g"
    )


def timed(cmd: list[str], folder: Path) -> dict[str, float]:
    """Wall, CPU (user + sys) seconds and peak RSS (MB) of one command, by /usr/bin/time."""
    stats = folder / "time.txt"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    subprocess.run(
        ["/usr/bin/time", "-f", "%e %U %S %M", "-o", str(stats), *cmd], check=True, env=env, stdout=subprocess.DEVNULL
    )
    wall, user, sys_, rss_kb = stats.read_text().split()[-4:]
    return {"wall_s": float(wall), "cpu_s": float(user) + float(sys_), "peak_rss_mb": float(rss_kb) / 1024}


def main() -> None:
    files = [str(p) for p in build_annotation_files()]
    peer = peer_python()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_peer_inputs(folder)
        pasture = [sys.executable, "-m", "pasture", "score", *files]
        commands = {
            "pasture score --bootstrap 0": [*pasture, "--bootstrap", "0", "-o", str(folder / "p.csv")],
            "AlpacaEval 0.6.6 LC": [peer, str(HERE / "_peer_score.py"), str(folder), str(folder / "peer.json"), *files],
            "pasture score (1,000-resample bootstrap)": [*pasture, "-o", str(folder / "pb.csv")],
        }
        runs = []
        for r in range(ROUNDS):
            for name, cmd in commands.items():
                runs.append({"round": r, "task": name, **timed(cmd, folder)})
        ours = pd.read_csv(folder / "p.csv", index_col=0)
        theirs = json.loads((folder / "peer.json").read_text())
    runs_frame = pd.DataFrame(runs)
    table = runs_frame.groupby("task", sort=False)[["wall_s", "cpu_s", "peak_rss_mb"]].median()
    peer_row = table.loc["AlpacaEval 0.6.6 LC"]
    table["wall_ratio_vs_peer"] = table["wall_s"] / peer_row["wall_s"]
    table["cpu_ratio_vs_peer"] = table["cpu_s"] / peer_row["cpu_s"]
    boot = table.loc["pasture score (1,000-resample bootstrap)"] - table.loc["pasture score --bootstrap 0"]
    prefs_complete = _complete_models()
    diffs = [
        abs(float(ours.loc[m, "length_controlled_winrate"]) - theirs[m]["length_controlled_winrate"])
        for m in ours.index
        if m in prefs_complete and m in theirs
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    runs_frame.to_csv(OUT / "bench_metrics_runs.csv", index=False)
    table.to_csv(OUT / "bench_metrics.csv", float_format="%.3f")
    pd.set_option("display.width", 200)
    print(f"{len(files)} annotation files, {ROUNDS} interleaved rounds, medians:")
    print(table.round(3).to_string())
    print(
        f"bootstrap (1,000 resamples, WR + LC refit, {len(files)} models): +{boot['wall_s']:.1f} s wall, "
        f"+{boot['cpu_s']:.1f} s CPU; peak RSS of that process {table.iloc[2]['peak_rss_mb']:.0f} MB"
    )
    print(f"LC agreement with AlpacaEval on {len(diffs)} complete ordered files: max |diff| = {max(diffs):.2e}")


def _complete_models() -> set[str]:
    from _data import ALPACAEVAL

    prefs = pd.read_csv(ALPACAEVAL / "preferences_58_models.csv.gz").sort_values(["model", "index"])
    return {
        str(m)
        for m, g in prefs.groupby("model")
        if len(g) == 805 and bool((g["ref_pos"].to_numpy() == np.arange(805)).all())
    }


if __name__ == "__main__":
    main()
