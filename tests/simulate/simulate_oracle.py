"""A real Judge (the protocol of pasture.judges.base) that answers with an exact oracle function.

Used until pasture.judges ships its programmatic judge; it calls the oracle for real, nothing is faked.
"""

from __future__ import annotations

from collections.abc import Callable

from pasture.judges.base import JudgeRequest, Verdict
from pasture.records import JudgeFingerprint, sha256_text


class OracleJudge:
    def __init__(self, name: str, oracle: Callable[[str, str, str], float]) -> None:
        self.name = name
        self._oracle = oracle
        self._fp = JudgeFingerprint(
            provider="programmatic",
            model=f"{oracle.__module__}.{oracle.__qualname__}",
            template_digest=sha256_text(""),
            parser="none",
            protocol="programmatic",
        )

    @property
    def fingerprint(self) -> JudgeFingerprint:
        return self._fp

    async def judge(self, request: JudgeRequest) -> Verdict:
        pref = self._oracle(request.instruction, request.output_1, request.output_2)
        return Verdict(preference=pref, status="ok", raw_completion=str(pref), cost_usd=0.0)

    def estimate_tokens(self, request: JudgeRequest) -> tuple[int, int]:
        return (0, 0)

    def price_per_token(self) -> tuple[float, float] | None:
        return (0.0, 0.0)
