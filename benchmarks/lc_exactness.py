"""LC exactness: pasture versus AlpacaEval 0.6.6 on identical inputs, for the 58 shared models.

Both implementations get the same difficulty vector and the same gamed-baseline rows (pasture's estimate and
rebuild from ../shared, written in AlpacaEval's hub layout and fed to it by redirecting its download).
Expected: |LC difference| <= 1e-6 on every model whose rows are complete and in eval-set order; on the
others AlpacaEval looks difficulty up by row POSITION, so after a missing row every later row gets the next
instruction's difficulty, while pasture aligns by instruction text. The script shows that explanation is
the whole story by also running pasture on rows re-aligned the positional way (difficulty of position k on
row k): that must match AlpacaEval to 1e-6 too.

Run: .venv/bin/python benchmarks/lc_exactness.py   (PASTURE_PEER_VENV=/path/to/venv to reuse a peer venv)
Writes benchmarks/out/lc_exactness.csv and prints the table.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import ALPACAEVAL, OUT, REFERENCE, board, eval_set_texts, shared_lc_inputs, shared_pairs
from pasture.metrics.correlation import rank_correlation, read_arena_elo
from pasture.metrics.gamed import read_glm_weights, write_official_gamed
from pasture.metrics.lc import LCInputs, length_controlled_winrate
from pasture.metrics.winrate import win_rates

HERE = Path(__file__).resolve().parent


def peer_python() -> str:
    return subprocess.run(
        ["bash", str(HERE / "peer_env.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()


def run_peer(pairs_csv: Path, inputs_dir: Path, out: Path, extra: list[str] | None = None) -> dict:
    subprocess.run(
        [peer_python(), str(HERE / "_peer_lc.py"), str(pairs_csv), str(inputs_dir), str(out), *(extra or [])],
        check=True,
    )
    return json.loads(out.read_text())


def write_peer_inputs(inputs: LCInputs, texts: list[str], folder: Path) -> None:
    assert inputs.gamed is not None and inputs.difficulty is not None
    write_official_gamed(inputs.gamed, texts, folder / "df_gamed.csv")
    pd.DataFrame({"instruction_difficulty": inputs.difficulty.loc[texts].to_numpy()}).to_csv(
        folder / "instruction_difficulty.csv", float_format="%.17g"
    )


def positional_inputs(inputs: LCInputs, texts: list[str], rows: pd.DataFrame) -> tuple[pd.DataFrame, LCInputs]:
    """Rows relabelled the way AlpacaEval sees them: row k answers eval-set instruction k."""
    assert inputs.difficulty is not None
    relabelled = rows.copy()
    relabelled["instruction"] = [texts[k] for k in range(len(rows))]
    return relabelled, inputs


def main() -> None:
    texts = eval_set_texts()
    pairs = shared_pairs(texts)
    inputs = shared_lc_inputs(pairs, texts)
    print(inputs.describe())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_peer_inputs(inputs, texts, folder)
        prefs_csv = folder / "prefs.csv"
        pd.read_csv(OUT.parents[1].parent / "shared/alpacaeval/preferences_58_models.csv.gz").to_csv(
            prefs_csv, index=False
        )
        peer = run_peer(prefs_csv, folder, folder / "peer.json")["models"]
    rows_out = []
    for model, rows in pairs.groupby("generator_2", sort=True):
        rows = rows.sort_values("index", kind="mergesort")
        complete = len(rows) == len(texts) and bool((rows["ref_pos"].to_numpy() == np.arange(len(texts))).all())
        is_ref = model == REFERENCE
        ours = length_controlled_winrate(rows, inputs, generator=str(model), is_reference=is_ref)
        positional, _ = positional_inputs(inputs, texts, rows)
        ours_pos = length_controlled_winrate(positional, inputs, generator=str(model), is_reference=is_ref)
        theirs = peer[model]["length_controlled_winrate"]
        rows_out.append(
            {
                "model": model,
                "n_rows": len(rows),
                "complete_ordered": complete,
                "pasture_lc": ours.length_controlled_winrate,
                "peer_lc": theirs,
                "abs_diff": abs(ours.length_controlled_winrate - theirs),
                "pasture_positional_lc": ours_pos.length_controlled_winrate,
                "abs_diff_positional": abs(ours_pos.length_controlled_winrate - theirs),
                "pasture_coef_length": ours.coef_length,
                "pasture_lc_se": ours.lc_standard_error,
                "peer_lc_se": peer[model]["lc_standard_error"],
            }
        )
    table = pd.DataFrame(rows_out).set_index("model")
    OUT.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT / "lc_exactness.csv", float_format="%.10f")
    pd.set_option("display.width", 200)
    print(table.round(8).to_string())
    good = table[table["complete_ordered"]]
    bad = table[~table["complete_ordered"]]
    print(
        f"\ncomplete, ordered models: {len(good)}; max |LC pasture - LC peer| = {good['abs_diff'].max():.2e}; "
        f"max |lc_se diff| = {(good['pasture_lc_se'] - good['peer_lc_se']).abs().max():.2e}"
    )
    print(
        f"incomplete/reordered models: {len(bad)}; |diff| by text alignment: "
        f"{', '.join(f'{m} {v:.3f}' for m, v in bad['abs_diff'].items())}"
    )
    print(
        f"  the same models re-aligned positionally (AlpacaEval's lookup): max |diff| = {bad['abs_diff_positional'].max():.2e}"
    )

    against_board(table, pairs)


def against_board(table: pd.DataFrame, pairs: pd.DataFrame) -> None:
    """LC from shared inputs only versus the board's LC column (the answer key), and Arena correlation."""
    official = board()
    published = read_glm_weights(ALPACAEVAL / "leaderboards" / "lc_glm_weights_baseline_gpt4_1106_preview.csv")
    on_board = table[table.index.isin(official.index)].copy()
    on_board["board_lc"] = official.loc[on_board.index, "length_controlled_winrate"]
    on_board["diff"] = on_board["pasture_lc"] - on_board["board_lc"]
    on_board["diff_if_positional"] = on_board["pasture_positional_lc"] - on_board["board_lc"]
    on_board["published_coef_length"] = published.loc[on_board.index, "length"]
    on_board.to_csv(OUT / "lc_board.csv", float_format="%.6f")
    movers = on_board.reindex(on_board["diff"].abs().sort_values(ascending=False).index).head(12)
    cols = [
        "complete_ordered",
        "pasture_lc",
        "board_lc",
        "diff",
        "diff_if_positional",
        "pasture_coef_length",
        "published_coef_length",
    ]
    print("\nLC from shared inputs only vs the board (57 models), largest moves first:")
    print(movers[cols].round(3).to_string())
    d = on_board["diff"].abs()
    print(f"|LC - board|: mean {d.mean():.3f}, median {d.median():.3f}, worst {d.max():.3f} ({d.idxmax()})")
    elo = read_arena_elo(ALPACAEVAL / "leaderboards" / "benchmarks_with_arena_elo.csv", "feb")
    wr = pd.Series({r.generator: r.win_rate for r in win_rates(pairs)})
    for name, scores in (("LC (pasture)", on_board["pasture_lc"]), ("raw win rate", wr[on_board.index])):
        r = rank_correlation(scores, elo, metric=name, reference_name="arena_elo_feb")
        print(f"Spearman with Arena Elo (Feb 2024), {name}: {r.spearman:.4f} (Kendall {r.kendall:.4f}, n = {r.n})")


if __name__ == "__main__":
    main()
