"""Trusting the metric: judge analysis, style control, Bradley–Terry leaderboards, a gaming audit,
selective answering and survey-style prediction (the torch model and the synthetic survey are imported from
their own modules, ``survey_model`` / ``survey_synthetic`` / ``survey_pool``, so that this package stays light).

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
from pasture.analysis.survey import (
    QuestionMarginal,
    SurveyScore,
    SurveySplit,
    evaluate_split,
    expected_auc,
    make_split,
    score_predictions,
)
from pasture.analysis.verbosity import VerbosityFamilies, verbosity_families

__all__ = [
    "STYLE_FEATURES",
    "BTFit",
    "BTLeaderboard",
    "CheckThresholds",
    "JudgeAnalysis",
    "QuestionMarginal",
    "RecurringText",
    "SelectiveAnswering",
    "StyleLeaderboard",
    "SurveyScore",
    "SurveySplit",
    "VerbosityFamilies",
    "analyze_judge",
    "audit",
    "bradley_terry_leaderboard",
    "evaluate_split",
    "expected_auc",
    "fit_bradley_terry",
    "labels_from_judgments",
    "make_split",
    "read_gold_labels",
    "recurring_text",
    "score_predictions",
    "selective_answering",
    "style_controlled_leaderboard",
    "style_features",
    "verbosity_families",
]
