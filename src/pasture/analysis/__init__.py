"""Trusting the metric: judge analysis, style control, Bradley–Terry leaderboards, a gaming audit and
selective answering.

All pure functions over pair tables / judgments with typed results; definitions in docs/trust.md.
"""

from pasture.analysis.bradley_terry import BTFit, BTLeaderboard, bradley_terry_leaderboard, fit_bradley_terry
from pasture.analysis.gaming import CheckThresholds, audit
from pasture.analysis.judge_analysis import JudgeAnalysis, analyze_judge, labels_from_judgments, read_gold_labels
from pasture.analysis.recurring import RecurringText, recurring_text
from pasture.analysis.selective import SelectiveAnswering, selective_answering
from pasture.analysis.style import (
    STYLE_FEATURES,
    StyleLeaderboard,
    style_controlled_leaderboard,
    style_features,
)
from pasture.analysis.verbosity import VerbosityFamilies, verbosity_families

__all__ = [
    "STYLE_FEATURES",
    "BTFit",
    "BTLeaderboard",
    "CheckThresholds",
    "JudgeAnalysis",
    "RecurringText",
    "SelectiveAnswering",
    "StyleLeaderboard",
    "VerbosityFamilies",
    "analyze_judge",
    "audit",
    "bradley_terry_leaderboard",
    "fit_bradley_terry",
    "labels_from_judgments",
    "read_gold_labels",
    "recurring_text",
    "selective_answering",
    "style_controlled_leaderboard",
    "style_features",
    "verbosity_families",
]
