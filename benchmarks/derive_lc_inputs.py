"""Derive pasture's shipped AlpacaEval 2 LC inputs ONCE from public data, and measure how far off they are.

What it writes (package data, numbers only, instructions keyed by the SHA-256 of their text):

- ``src/pasture/data/alpacaeval2_lc_inputs.csv``: per eval-set instruction, in official order, the estimated
  difficulty and the character lengths of the reference's and the two gamed baselines' outputs;
- ``src/pasture/data/alpacaeval2_lc_inputs.json``: provenance, method, the gamed baselines' published GLM
  coefficients, and the measured error below.

How the difficulty is estimated (``estimate_difficulty(..., fix_published_slopes=True)``): one joint
logistic fit over the 57 non-reference models of ``../shared/alpacaeval/preferences_58_models.csv.gz``,
``logit P(m wins on i) = a_m t_mi + c_m + d_i`` with each model's length slope ``a_m`` held at its
published coefficient (free for a model without one), ridge 1/2 sum d_i^2; then the affine map onto the
published scale that maximises the likelihood of those models' rows under their published coefficients.
The board's LC column is never an input.

How it is checked:

- alone: every one of the 56 board models (reference excluded) is scored on ITS rows only, in its file's order,
  through ``prepare_lc_inputs`` (the path ``pasture score`` takes), and compared with the board's LC; with the
  default difficulty lookup by text, and with ``difficulty_lookup="position"`` (AlpacaEval's board lookup) for
  the files with rows off their eval-set position (for the others both lookups give the same number);
- leave-one-model-out (LOMO): for each of those models the difficulty is re-derived WITHOUT its rows and its
  published coefficients, the gamed rows rebuilt with it, and the model scored alone with that vector: the
  error a genuinely new model can expect.

Run: .venv/bin/python benchmarks/derive_lc_inputs.py [--check-only]   (--check-only: measure, write nothing
under src/). Writes benchmarks/out/lc_alone.csv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import ALPACAEVAL, OUT, REFERENCE, REPO, board, eval_set_texts, shared_pairs
from pasture.metrics.difficulty import estimate_difficulty
from pasture.metrics.gamed import GAMED_BASELINES, read_glm_weights, rebuild_gamed_rows
from pasture.metrics.lc import DifficultyLookup, LCInputs, LCResult, length_controlled_winrate
from pasture.metrics.lc_inputs import output_lengths, prepare_lc_inputs
from pasture.metrics.lc_shipped import SHIPPED_CSV, SHIPPED_JSON, instruction_digest, load_shipped

DATA = REPO / "src" / "pasture" / "data"
SOURCE = "tatsu-lab/alpaca_eval at commit cd543a149df89434d8a54582c0151c0b945c3d20 (Aug 2025)"
WEIGHTS = ALPACAEVAL / "leaderboards" / "lc_glm_weights_baseline_gpt4_1106_preview.csv"


def derive(pairs: pd.DataFrame, texts: list[str], weights: pd.DataFrame) -> tuple[pd.Series, dict[str, float]]:
    """The difficulty vector (by text, eval-set order) from ``pairs`` and the calibration's numbers."""
    est = estimate_difficulty(pairs, instructions=texts, coefficients=weights, fix_published_slopes=True)
    assert est.difficulty is not None
    return est.difficulty, {"scale": est.scale, "shift": est.shift, "n_models": est.n_models}


def lengths_by_text(texts: list[str]) -> dict[str, pd.Series]:
    out = {"reference": output_lengths(ALPACAEVAL / "results" / REFERENCE / "model_outputs.json.gz").loc[texts]}
    for g in GAMED_BASELINES:
        out[g] = output_lengths(ALPACAEVAL / "results" / g / "model_outputs.json.gz").loc[texts]
    return out


def write_data(d: pd.Series, lengths: dict[str, pd.Series], weights: pd.DataFrame, meta: dict) -> None:
    texts = list(d.index)
    table = pd.DataFrame(
        {
            "instruction_sha256": [instruction_digest(s) for s in texts],
            "position": np.arange(len(texts)),
            "instruction_difficulty": d.to_numpy(float),
            "len_reference": lengths["reference"].to_numpy(int),
            **{f"len_{g}": lengths[g].to_numpy(int) for g in GAMED_BASELINES},
        }
    )
    header = [
        "# pasture's fixed LC inputs for the AlpacaEval 2 eval set (805 instructions, reference gpt4_1106_preview).",
        "# Numbers only; instructions keyed by SHA-256 of their UTF-8 text. Derived by benchmarks/derive_lc_inputs.py",
        f"# from the public annotations of {meta['n_models']} models ({SOURCE}); provenance and measured error:",
        f"# {SHIPPED_JSON} and docs/metrics.md ('Shipped inputs').",
    ]
    body = table.to_csv(index=False, float_format="%.12g", lineterminator="\n")
    (DATA / SHIPPED_CSV).write_text("\n".join(header) + "\n" + body, encoding="utf-8")
    (DATA / SHIPPED_JSON).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def alone(pairs: pd.DataFrame, model: str, lookup: DifficultyLookup = "text") -> LCResult:
    """The model scored on its rows only (in its file's order), with the shipped inputs and the given lookup."""
    rows = pairs[pairs["generator_2"] == model]
    inputs = prepare_lc_inputs(rows, difficulty_lookup=lookup)
    assert (inputs.difficulty_source, inputs.gamed_source) == ("shipped", "shipped"), inputs.describe()
    return length_controlled_winrate(rows, inputs, generator=model)


def lomo(
    pairs: pd.DataFrame, texts: list[str], weights: pd.DataFrame, lengths: dict[str, pd.Series], model: str
) -> float:
    rest = pairs[pairs["generator_2"] != model]
    d, _ = derive(rest, texts, weights.drop(index=model, errors="ignore"))
    gamed = rebuild_gamed_rows(lengths["reference"], {g: lengths[g] for g in GAMED_BASELINES}, weights, d)
    inputs = LCInputs(difficulty=d, gamed=gamed, difficulty_source="estimated", gamed_source="rebuilt")
    rows = pairs[pairs["generator_2"] == model]
    return length_controlled_winrate(rows, inputs, generator=model).length_controlled_winrate


def summary(errors: pd.Series) -> dict[str, float | str]:
    a = errors.abs()
    return {
        "median": round(float(a.median()), 3),
        "mean": round(float(a.mean()), 3),
        "max": round(float(a.max()), 3),
        "worst": str(a.idxmax()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check-only", action="store_true", help="measure the shipped data; write nothing under src/")
    parser.add_argument("--no-lomo", action="store_true", help="skip the leave-one-model-out refits (~4 min)")
    args = parser.parse_args()
    texts = eval_set_texts()
    pairs = shared_pairs(texts)
    weights = read_glm_weights(WEIGHTS)
    lengths = lengths_by_text(texts)
    official = board()
    models = sorted((set(pairs["generator_2"]) & set(official.index)) - {REFERENCE})
    if not args.check_only:
        d, calib = derive(pairs, texts, weights)
        meta = {
            "what": "fixed instruction difficulty and gamed-baseline inputs of AlpacaEval 2's length-controlled win rate",
            "eval_set": "AlpacaEval 2 (alpaca_eval_gpt4_baseline.json, 805 instructions), official order",
            "eval_set_sha256": hashlib.sha256("".join(instruction_digest(s) for s in texts).encode()).hexdigest(),
            "reference": REFERENCE,
            "judge": "weighted_alpaca_eval_gpt4_turbo",
            "source": SOURCE,
            "inputs": [
                "preferences_58_models.csv.gz (judge verdicts and output lengths of 58 models)",
                "lc_glm_weights_baseline_gpt4_1106_preview.csv (published per-model GLM coefficients)",
                "results/gpt4_1106_preview{,_verbose,_concise}/model_outputs.json (output lengths only)",
            ],
            "method": "joint logistic fit logit P = a_m tanh((len_1 - len_2)/sd_m) + c_m + d_i over the models, a_m held "
            "at the published slope, ridge 1/2 sum d_i^2, then d = scale * raw + shift maximising the likelihood under "
            "the published coefficients (pasture.metrics.difficulty.estimate_difficulty, fix_published_slopes=True)",
            "scale": round(calib["scale"], 6),
            "shift": round(calib["shift"], 6),
            "n_models": calib["n_models"],
            "gamed_coefficients": {
                g: {k: float(weights.loc[g, k]) for k in ("length", "difficulty", "model")} for g in GAMED_BASELINES
            },
            "board_lc_used": False,
        }
        write_data(d, lengths, weights, {**meta, "summary": "pending"})
        load_shipped.cache_clear()
    table = pd.DataFrame(index=pd.Index(models, name="model"))
    table["board_lc"] = official.loc[models, "length_controlled_winrate"]
    by_text = {m: alone(pairs, m) for m in models}
    # rows off position: the positional lookup differs, so refit; else it gives the very same number
    by_position = {m: alone(pairs, m, "position") if r.n_off_position else r for m, r in by_text.items()}
    table["alone_lc"] = [by_text[m].length_controlled_winrate for m in models]
    table["alone_diff"] = table["alone_lc"] - table["board_lc"]
    complete = pairs.groupby("generator_2")["ref_pos"].apply(
        lambda s: len(s) == len(texts) and bool((s.to_numpy() == np.arange(len(texts))).all())
    )
    table["complete_file"] = complete.loc[models].to_numpy()
    table["n_off_position"] = [by_text[m].n_off_position for m in models]
    table["alone_position_lc"] = [by_position[m].length_controlled_winrate for m in models]
    table["alone_position_diff"] = table["alone_position_lc"] - table["board_lc"]
    if not args.no_lomo:
        table["lomo_lc"] = [lomo(pairs, texts, weights, lengths, m) for m in models]
        table["lomo_diff"] = table["lomo_lc"] - table["board_lc"]
    OUT.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT / "lc_alone.csv", float_format="%.4f")
    pd.set_option("display.width", 200)
    print(table.reindex(table["alone_diff"].abs().sort_values(ascending=False).index).head(15).round(3).to_string())
    figures = {
        "alone": summary(table["alone_diff"]),
        "alone_complete_files": summary(table.loc[table["complete_file"], "alone_diff"]),
        "incomplete_files_text": summary(table.loc[~table["complete_file"], "alone_diff"]),
        "alone_position": summary(table["alone_position_diff"]),
        "incomplete_files_positional": summary(table.loc[~table["complete_file"], "alone_position_diff"]),
    }
    if "lomo_diff" in table:
        figures["lomo"] = summary(table["lomo_diff"])
    print(json.dumps(figures, indent=1))
    if not args.check_only:
        meta_path = DATA / SHIPPED_JSON
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta["measured_error_vs_board"] = {"models": len(models), **figures}
        a = figures["alone"]
        text = (
            f"pasture's fixed AlpacaEval 2 difficulty, estimated from {meta['n_models']} models' public annotations; "
            f"alone-scored |LC - board| median {a['median']}, max {a['max']} over {len(models)} models"
        )
        if "lomo" in figures:
            text += f" (leave-one-model-out: median {figures['lomo']['median']}, max {figures['lomo']['max']})"
        meta["summary"] = text
        meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
