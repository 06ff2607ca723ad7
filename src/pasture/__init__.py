"""pasture: evaluate and improve instruction-following models from pairwise feedback.

The public API is what this module exports; everything else may move between releases. The exports are loaded on
first use (PEP 562), so that ``import pasture.records`` in a worker process or a CLI call does not pay for pandas,
scipy and the analyses (about 1.5 s of CPU each time).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names as _EXPORTS, for type checkers and editors
    from pasture.analysis import analyze_judge, audit, bradley_terry_leaderboard, style_controlled_leaderboard
    from pasture.annotate import AnnotationPlan, AnnotationReport, PairToJudge, pairs_from_outputs
    from pasture.demo import run_demo
    from pasture.errors import InputError, JudgeError, PastureError, StoreError
    from pasture.evalsets import demo_eval_set, resolve_eval_set
    from pasture.generate import GenerationSettings
    from pasture.io import (
        read_annotations,
        read_eval_set,
        read_model_outputs,
        write_annotations,
        write_model_outputs,
    )
    from pasture.judges import get_judge, get_provider
    from pasture.metrics.bootstrap import BootstrapInterval, predicted_win_rate, predicted_win_rate_matrix
    from pasture.metrics.correlation import CorrelationResult, rank_correlation
    from pasture.metrics.lc import LCInputs, LCResult, length_controlled_winrate, length_controlled_winrates
    from pasture.metrics.lc_inputs import prepare_lc_inputs
    from pasture.metrics.pairs import pair_table
    from pasture.metrics.winrate import win_rate, win_rates
    from pasture.records import (
        OFFICIAL_JUDGE_ALIASES,
        EvalSet,
        Instruction,
        JudgeFingerprint,
        Judgment,
        ModelOutput,
        RunManifest,
        WinRateResult,
        judgment_key,
    )
    from pasture.report import write_report
    from pasture.scoring import score_files, score_judgments, score_pairs, score_store
    from pasture.simulate import (
        AnnotatorPool,
        flip_labels,
        load_pool,
        persona_pool,
        pool_report,
        simulate_preferences,
        write_simulation,
    )
    from pasture.store import Store
    from pasture.transfer import export_annotations, import_annotations, import_outputs, load_eval_set

_EXPORTS: dict[str, tuple[str, ...]] = {
    "pasture.analysis": (
        "analyze_judge",
        "audit",
        "bradley_terry_leaderboard",
        "style_controlled_leaderboard",
    ),
    "pasture.annotate": (
        "AnnotationPlan",
        "AnnotationReport",
        "PairToJudge",
        "pairs_from_outputs",
    ),
    "pasture.demo": ("run_demo",),
    "pasture.errors": (
        "InputError",
        "JudgeError",
        "PastureError",
        "StoreError",
    ),
    "pasture.evalsets": (
        "demo_eval_set",
        "resolve_eval_set",
    ),
    "pasture.generate": ("GenerationSettings",),
    "pasture.io": (
        "read_annotations",
        "read_eval_set",
        "read_model_outputs",
        "write_annotations",
        "write_model_outputs",
    ),
    "pasture.judges": (
        "get_judge",
        "get_provider",
    ),
    "pasture.metrics.bootstrap": (
        "BootstrapInterval",
        "predicted_win_rate",
        "predicted_win_rate_matrix",
    ),
    "pasture.metrics.correlation": (
        "CorrelationResult",
        "rank_correlation",
    ),
    "pasture.metrics.lc": (
        "LCInputs",
        "LCResult",
        "length_controlled_winrate",
        "length_controlled_winrates",
    ),
    "pasture.metrics.lc_inputs": ("prepare_lc_inputs",),
    "pasture.metrics.pairs": ("pair_table",),
    "pasture.metrics.winrate": (
        "win_rate",
        "win_rates",
    ),
    "pasture.records": (
        "OFFICIAL_JUDGE_ALIASES",
        "EvalSet",
        "Instruction",
        "JudgeFingerprint",
        "Judgment",
        "ModelOutput",
        "RunManifest",
        "WinRateResult",
        "judgment_key",
    ),
    "pasture.report": ("write_report",),
    "pasture.scoring": (
        "score_files",
        "score_judgments",
        "score_pairs",
        "score_store",
    ),
    "pasture.simulate": (
        "AnnotatorPool",
        "flip_labels",
        "load_pool",
        "persona_pool",
        "pool_report",
        "simulate_preferences",
        "write_simulation",
    ),
    "pasture.store": ("Store",),
    "pasture.transfer": (
        "export_annotations",
        "import_annotations",
        "import_outputs",
        "load_eval_set",
    ),
}

__version__ = "0.1.0"

__all__ = [
    "OFFICIAL_JUDGE_ALIASES",
    "AnnotationPlan",
    "AnnotationReport",
    "AnnotatorPool",
    "BootstrapInterval",
    "CorrelationResult",
    "EvalSet",
    "GenerationSettings",
    "InputError",
    "Instruction",
    "JudgeError",
    "JudgeFingerprint",
    "Judgment",
    "LCInputs",
    "LCResult",
    "ModelOutput",
    "PairToJudge",
    "PastureError",
    "RunManifest",
    "Store",
    "StoreError",
    "WinRateResult",
    "__version__",
    "analyze_judge",
    "audit",
    "bradley_terry_leaderboard",
    "demo_eval_set",
    "export_annotations",
    "flip_labels",
    "get_judge",
    "get_provider",
    "import_annotations",
    "import_outputs",
    "judgment_key",
    "length_controlled_winrate",
    "length_controlled_winrates",
    "load_eval_set",
    "load_pool",
    "pair_table",
    "pairs_from_outputs",
    "persona_pool",
    "pool_report",
    "predicted_win_rate",
    "predicted_win_rate_matrix",
    "prepare_lc_inputs",
    "rank_correlation",
    "read_annotations",
    "read_eval_set",
    "read_model_outputs",
    "resolve_eval_set",
    "run_demo",
    "score_files",
    "score_judgments",
    "score_pairs",
    "score_store",
    "simulate_preferences",
    "style_controlled_leaderboard",
    "win_rate",
    "win_rates",
    "write_annotations",
    "write_model_outputs",
    "write_report",
    "write_simulation",
]


_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    """Import an export's module on first use and cache the attribute on this module."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'pasture' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})
