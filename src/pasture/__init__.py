"""pasture: evaluate and improve instruction-following models from pairwise feedback.

The public API is what this module exports; everything else may move between releases.
"""

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
