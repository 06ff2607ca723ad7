"""AlpacaEval 2's LC inputs shipped with pasture: a fixed instruction difficulty and the gamed baselines.

Why: the official LC of one model needs two things that are not the model's own rows, a per-instruction
difficulty and the judged rows of two gamed baselines, and AlpacaEval publishes both only on the Hugging Face
hub. Without them a model scored alone got a length-only GLM with no regulariser, up to 28 points off the
board. So pasture ships, for the AlpacaEval 2 eval set, a difficulty vector derived ONCE from the public
annotations (``benchmarks/derive_lc_inputs.py``) and the numbers needed to rebuild the gamed rows (the
lengths of the reference's and the gamed baselines' outputs, the gamed baselines' published coefficients).
Nothing third-party is copied: instructions are keyed by the SHA-256 of their text, and only numbers are
stored. Provenance and measured error are in the sidecar JSON and docs/metrics.md ("Shipped inputs").

With them, a model's LC never depends on which other models are scored with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from io import StringIO
from typing import Any

import numpy as np
import pandas as pd

from pasture.errors import InputError
from pasture.metrics.gamed import GAMED_BASELINES, rebuild_gamed_rows

SHIPPED_CSV = "alpacaeval2_lc_inputs.csv"
"""Package data: one row per AlpacaEval 2 instruction (eval-set order), numbers only."""

SHIPPED_JSON = "alpacaeval2_lc_inputs.json"
"""Its sidecar: provenance, method, the gamed baselines' published coefficients, measured error."""

REFERENCE = "gpt4_1106_preview"
"""The reference whose outputs the shipped difficulty and gamed rows are relative to."""


def instruction_digest(text: str) -> str:
    """SHA-256 (hex) of an instruction's UTF-8 text: the key of the shipped files."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, eq=False)
class ShippedInputs:
    """The shipped numbers, indexed by instruction digest in eval-set order (hashed by identity: cached)."""

    table: pd.DataFrame
    gamed_coefficients: pd.DataFrame
    meta: dict[str, Any]

    @property
    def difficulty(self) -> pd.Series:
        return self.table["instruction_difficulty"]

    def gamed_rows(self) -> pd.DataFrame:
        """The gamed baselines' rows (``instruction`` = digest), rebuilt from the shipped lengths."""
        return _gamed_rows(self)


def _read_text(name: str) -> str:
    return resources.files("pasture").joinpath("data", name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def load_shipped() -> ShippedInputs:
    """Read the package data once per process (it never changes while running)."""
    try:
        table = pd.read_csv(StringIO(_read_text(SHIPPED_CSV)), comment="#", index_col="instruction_sha256")
        meta = json.loads(_read_text(SHIPPED_JSON))
    except (OSError, ValueError) as exc:  # a broken install, not a user error, but say what is missing
        raise InputError(
            f"pasture's shipped LC inputs are unreadable ({type(exc).__name__}); reinstall pasture"
        ) from None
    coefs = pd.DataFrame(meta["gamed_coefficients"]).T[["length", "difficulty", "model"]].astype(float)
    return ShippedInputs(table=table, gamed_coefficients=coefs, meta=meta)


@lru_cache(maxsize=1)
def _gamed_rows(shipped: ShippedInputs) -> pd.DataFrame:
    t = shipped.table
    return rebuild_gamed_rows(
        t["len_reference"].astype(float),
        {g: t[f"len_{g}"].astype(float) for g in GAMED_BASELINES},
        shipped.gamed_coefficients,
        shipped.difficulty,
    )


def shipped_provenance() -> str:
    """One line naming where the shipped vector comes from and how far off it measured."""
    meta = load_shipped().meta
    return str(meta["summary"])


def match_alpacaeval2(pairs: pd.DataFrame) -> tuple[pd.Index | None, str]:
    """Whether a pair table is on AlpacaEval 2's eval set against its reference; returns (digests, reason).

    ``digests`` are the pairs' instruction digests (None when the shipped inputs do not apply) and ``reason``
    says why not (or what matched). The reference must be AlpacaEval 2's: its outputs' lengths equal the
    shipped ``len_reference`` on every pair (the difficulty and gamed rows are relative to that reference).
    """
    shipped = load_shipped()
    texts = pd.Index(pairs["instruction"].astype(str).unique())
    digests = pd.Index([instruction_digest(s) for s in texts])
    known = digests.isin(shipped.table.index)
    if not known.all():
        return None, (
            f"{int((~known).sum())} of {len(texts)} instructions are not in AlpacaEval 2's eval set: "
            "its shipped difficulty does not apply"
        )
    by_text = pd.Series(np.asarray(digests), index=texts)
    expected = shipped.table.loc[by_text.loc[pairs["instruction"]].to_numpy(), "len_reference"].to_numpy(float)
    differ = expected != pairs["len_1"].to_numpy(float)
    if differ.any():
        return None, (
            f"the reference outputs differ in length from AlpacaEval 2's {REFERENCE} on {int(differ.sum())} of "
            f"{len(pairs)} pairs: its shipped difficulty and gamed rows do not apply"
        )
    return digests, f"AlpacaEval 2 eval set ({len(texts)} of {len(shipped.table)} instructions), reference {REFERENCE}"


def difficulty_for(texts: Sequence[str], table_difficulty: pd.Series) -> pd.Series:
    """A digest-indexed difficulty as a text-indexed vector over ``texts``, in the shipped (eval-set) order."""
    digests = pd.Index([instruction_digest(s) for s in texts])
    pos = table_difficulty.index.get_indexer(digests)
    if (pos < 0).any():
        raise InputError("an instruction has no shipped difficulty")
    order = np.argsort(pos, kind="stable")
    return pd.Series(
        table_difficulty.to_numpy(float)[pos[order]],
        index=np.asarray(list(texts), dtype=object)[order],
        name="instruction_difficulty",
    )
