"""The gaming audit's thresholds on data they were not set on (docs/trust.md §4).

Tuning set: the 10 models with texts and official annotations in ../shared/alpacaeval/results/. Validation:
the 57-model board (verdicts and lengths of preferences_58_models.csv.gz, the reference's own rows left out,
official LC as headline; the text checks run where results/ has the model's texts) and the 40 community
models' real outputs (community_outputs/, against the reference's outputs on the same instructions; no
verdicts there, so text and length checks only). For each check: the largest (for the short-length side,
the smallest) value among honest models against the gamed ones', per set, and which models are flagged.

Run: ``PYTHONPATH=src python benchmarks/audit_validation.py`` (about 3 minutes on one core); writes
benchmarks/audit_validation.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from _data import REFERENCE, board, eval_set_texts, require_shared, shared_pairs
from pasture.analysis.gaming import CheckThresholds, audit
from pasture.io import read_annotations, read_model_outputs
from pasture.metrics.pairs import pair_table

GAMED = ("NullModel", "gpt4_gamed")
OUT = Path(__file__).with_suffix(".md")
ANNOTATIONS = "weighted_alpaca_eval_gpt4_turbo/annotations.json.gz"


def tuning_pairs(root: Path) -> pd.DataFrame:
    """The 10 annotated shared models' pairs, generator_2 named after the results folder (NullModel's file
    calls it 'example')."""
    judgments = []
    for path in sorted((root / "results").glob(f"*/{ANNOTATIONS}")):
        name = path.parts[-3]
        judgments += [j.model_copy(update={"generator_2": name}) for j in read_annotations(path)]
    return pair_table(judgments)


def community_pairs(root: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """The community models' outputs against the reference's output on the same instruction (no verdicts)."""
    reference = {
        o.instruction: o.output for o in read_model_outputs(root / "results" / REFERENCE / "model_outputs.json.gz")
    }
    frames, unmatched = [], {}
    for path in sorted((root / "community_outputs").glob("*.json.gz")):
        name = path.name.removesuffix(".json.gz")
        outs = read_model_outputs(path)
        rows = [(o.instruction, reference[o.instruction], o.output) for o in outs if o.instruction in reference]
        unmatched[name] = len(outs) - len(rows)
        frame = pd.DataFrame(rows, columns=["instruction", "output_1", "output_2"])
        frames.append(frame.assign(generator_1=REFERENCE, generator_2=name, preference=np.nan))
    return pd.concat(frames, ignore_index=True), unmatched


MEASURES = {  # measurement -> (check, side): side 'max' = flagged when high, 'min' = flagged when low
    "modal_share": ("constant_output", "max"),
    "block_share": ("repeated_block", "max"),
    "length_ratio (short)": ("extreme_length", "min"),
    "length_ratio (long)": ("extreme_length", "max"),
    "injection_share": ("judge_injection", "max"),
    "note_share": ("recurring_note", "max"),
    "recurring_share": ("(information)", "max"),
    "headline_lift": ("(information)", "max"),
}


def summary(name: str, result: pd.DataFrame) -> list[dict[str, object]]:
    honest = result.drop(index=[g for g in GAMED if g in result.index])
    rows = []
    for measure, (check, side) in MEASURES.items():
        col = measure.split(" ")[0]
        values = honest[col].dropna()
        if values.empty:
            continue
        worst = values.idxmin() if side == "min" else values.idxmax()
        gamed = ", ".join(f"{g} {result.loc[g, col]:.4g}" for g in GAMED if g in result.index)
        rows.append(
            {
                "set": name,
                "measurement": measure,
                "check": check,
                "honest models": len(values),
                "most extreme honest": f"{values[worst]:.4g} ({worst})",
                "gamed": gamed or "–",
            }
        )
    return rows


def main() -> None:
    root = require_shared()
    t = CheckThresholds()
    official = board()
    lc = official["length_controlled_winrate"].dropna().to_dict()

    tuning = audit(tuning_pairs(root), headline=lc, headline_name="LC")
    lengths = shared_pairs(eval_set_texts())
    lengths = lengths[lengths["generator_2"] != REFERENCE]
    board57 = audit(lengths, headline=lc, headline_name="LC")
    # texts where results/ has them: the union of both audits' flags
    for model in tuning.index.intersection(board57.index):
        board57.at[model, "flags"] = sorted(set(board57.at[model, "flags"]) | set(tuning.at[model, "flags"]))
    pairs, unmatched = community_pairs(root)
    community = audit(pairs)

    def flagged(result: pd.DataFrame) -> str:
        hits = result[result["flags"].map(len) > 0]
        return "; ".join(f"{m} ({', '.join(f)})" for m, f in hits["flags"].items()) or "none"

    lines = [
        "# Gaming audit: thresholds on the tuning set and on the validation sets",
        "",
        "Generated by `benchmarks/audit_validation.py` (docs/trust.md §4). Thresholds: "
        f"constant_output {t.constant_share:g}, repeated_block {t.block_share:g}, extreme_length "
        f"< {t.short_length_ratio:g} or > {t.long_length_ratio:g}, judge_injection {t.injection_share:g}, "
        f"recurring_note {t.note_share:g}.",
        "",
        "## Flagged models",
        "",
        "| set | models | flagged |",
        "|---|---|---|",
        f"| tuning (10 models with texts) | {len(tuning)} | {flagged(tuning)} |",
        f"| 57-model board (lengths + verdicts; texts for the 10) | {len(board57)} | {flagged(board57)} |",
        f"| 40 community models (texts + lengths) | {len(community)} | {flagged(community)} |",
        "",
        "## Per measurement: most extreme honest model against the gamed ones",
        "",
    ]
    table = pd.DataFrame(
        summary("tuning", tuning) + summary("57-model board", board57) + summary("community", community)
    )
    lines += [table.to_markdown(index=False), "", "## Community models", ""]
    cols = ["flags", "modal_share", "block_share", "length_ratio", "injection_share", "recurring_share", "note_share"]
    shown = community[cols].assign(flags=community["flags"].map(", ".join), unmatched=pd.Series(unmatched))
    lines += [shown.to_markdown(floatfmt=".4f"), ""]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines[:16]))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    sys.exit(main())
