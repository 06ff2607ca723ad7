"""Judges and providers: who is asked, with which prompt, and how the reply becomes a preference.

``get_judge(name_or_path, **overrides)`` builds a built-in judge or one defined in a TOML file;
``get_provider(name, **kwargs)`` builds a provider (also used for generation). See docs/judges.md.
"""

from pasture.judges.base import (
    ChatRequest,
    Completion,
    Judge,
    JudgeRequest,
    PermanentError,
    Provider,
    ResponseJudge,
    ResponseReading,
    ResponseRequest,
    ResponseVerdict,
    TransientError,
    Verdict,
)
from pasture.judges.batched import BatchedJudge
from pasture.judges.definitions import (
    BUILTIN_JUDGES,
    JudgeSpec,
    get_judge,
    get_response_judge,
    get_spec,
    load_spec,
)
from pasture.judges.judge import (
    LLMJudge,
    ProgrammaticJudge,
    ProgrammaticResponseJudge,
    longer_output_wins,
    shorter_output_wins,
)
from pasture.judges.parsers import CritiqueParser, GradedVerdictParser, LabelLogprobParser, ParseFailure, ScoreParser
from pasture.judges.protocols import (
    JudgeProtocol,
    PairwiseProtocol,
    ResponseProtocol,
    get_protocol,
    protocol_names,
    register_protocol,
)
from pasture.judges.templates import PromptTemplate
from pasture.providers import get_provider, provider_names, register_provider

__all__ = [
    "BUILTIN_JUDGES",
    "BatchedJudge",
    "ChatRequest",
    "Completion",
    "CritiqueParser",
    "GradedVerdictParser",
    "Judge",
    "JudgeProtocol",
    "JudgeRequest",
    "JudgeSpec",
    "LLMJudge",
    "LabelLogprobParser",
    "PairwiseProtocol",
    "ParseFailure",
    "PermanentError",
    "ProgrammaticJudge",
    "ProgrammaticResponseJudge",
    "PromptTemplate",
    "Provider",
    "ResponseJudge",
    "ResponseProtocol",
    "ResponseReading",
    "ResponseRequest",
    "ResponseVerdict",
    "ScoreParser",
    "TransientError",
    "Verdict",
    "get_judge",
    "get_protocol",
    "get_provider",
    "get_response_judge",
    "get_spec",
    "load_spec",
    "longer_output_wins",
    "protocol_names",
    "provider_names",
    "register_protocol",
    "register_provider",
    "shorter_output_wins",
]
