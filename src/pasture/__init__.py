"""pasture: evaluate and improve instruction-following models from pairwise feedback.

The public API is what this module exports; everything else may move between releases.
"""

from pasture.analysis import analyze_judge, audit, bradley_terry_leaderboard, style_controlled_leaderboard
from pasture.errors import InputError, JudgeError, PastureError, StoreError
from pasture.io import (
    read_annotations,
    read_eval_set,
    read_model_outputs,
    write_annotations,
    write_model_outputs,
)
from pasture.judges import get_judge, get_provider
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
from pasture.scoring import score_files, score_judgments, score_store
from pasture.store import Store
from pasture.transfer import export_annotations, import_annotations, import_outputs, load_eval_set

__version__ = "0.1.0"

__all__ = [
    "OFFICIAL_JUDGE_ALIASES",
    "EvalSet",
    "InputError",
    "Instruction",
    "JudgeError",
    "JudgeFingerprint",
    "Judgment",
    "ModelOutput",
    "PastureError",
    "RunManifest",
    "Store",
    "StoreError",
    "WinRateResult",
    "__version__",
    "analyze_judge",
    "audit",
    "bradley_terry_leaderboard",
    "export_annotations",
    "get_judge",
    "get_provider",
    "import_annotations",
    "import_outputs",
    "judgment_key",
    "load_eval_set",
    "pair_table",
    "read_annotations",
    "read_eval_set",
    "read_model_outputs",
    "score_files",
    "score_judgments",
    "score_store",
    "style_controlled_leaderboard",
    "win_rate",
    "win_rates",
    "write_annotations",
    "write_model_outputs",
]
