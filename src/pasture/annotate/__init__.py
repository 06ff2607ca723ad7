"""The annotation engine: judge pairs concurrently, cached in the store, resumable, shared between processes.

Public API: :func:`annotate` (and :func:`annotate_async`), :func:`plan` for a dry run, :class:`EngineSettings` (how a run goes), the
:class:`PairToJudge` input record, :func:`pairs_from_outputs`, and the :class:`AnnotationReport` /
:class:`AnnotationPlan` results. Judgments of ONE response: :func:`annotate_responses` (and
:func:`annotate_responses_async`) with :class:`ResponseToJudge` items. See docs/annotate.md.
"""

from pasture.annotate.engine import (
    POSITIONS,
    AnnotationPlan,
    AnnotationReport,
    EngineSettings,
    JudgmentTask,
    Position,
    annotate,
    annotate_async,
    build_tasks,
    plan,
    shown_orders,
)
from pasture.annotate.pairs import PairToJudge, pairs_from_outputs
from pasture.annotate.responses import (
    ResponseTask,
    ResponseToJudge,
    annotate_responses,
    annotate_responses_async,
    build_response_tasks,
    responses_from_outputs,
)

__all__ = [
    "POSITIONS",
    "AnnotationPlan",
    "AnnotationReport",
    "EngineSettings",
    "JudgmentTask",
    "PairToJudge",
    "Position",
    "ResponseTask",
    "ResponseToJudge",
    "annotate",
    "annotate_async",
    "annotate_responses",
    "annotate_responses_async",
    "build_response_tasks",
    "build_tasks",
    "pairs_from_outputs",
    "plan",
    "responses_from_outputs",
    "shown_orders",
]
