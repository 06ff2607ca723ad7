"""Self-Rewarding and Temporal Self-Rewarding round builders (formulas and choices: docs/train.md).

**self_rewarding** (Yuan et al. 2024): for each prompt x, N samples y_1..y_N from the current policy M_k, each
scored by the round's judge s(x, y) (the policy itself as judge in the paper); the pair is
(x, argmax_i s(x, y_i) ≻ argmin_i s(x, y_i)), kept only when the two scores differ.

**temporal_self_rewarding** (Temporal Self-Rewarding LMs): two changes so that chosen and rejected do not improve
together and the gap does not close:

* *anchored rejection*: the rejected response is the worst-scored of N samples from the initial model M0;
* *future-guided chosen*: a temporary next model M_k' is trained from M_k on the anchored pairs
  (best of M_k's N samples ≻ worst of M0's) with the round's method; the chosen response is the best-scored of
  M_k''s N samples. The pair is kept only when the chosen score exceeds the rejected one.

Every sample set is judged by the same round judge (derived from M_k for a self-judge).
"""

from __future__ import annotations

from collections.abc import Sequence

from pasture.errors import InputError
from pasture.train.builders import SelfRewardingSettings, TemporalSelfRewardingSettings
from pasture.train.core import PreferencePair, TrainingData
from pasture.train.loop import BuiltRound, RoundContext, Scored


def _extremes(row: Sequence[Scored]) -> tuple[Scored, Scored] | None:
    """(best, worst) of the judged samples (first of equal scores), or None with fewer than two judged."""
    ok = [s for s in row if s.score is not None]
    if len(ok) < 2:
        return None
    best = max(ok, key=lambda s: float(s.score))  # type: ignore[arg-type]
    worst = min(ok, key=lambda s: float(s.score))  # type: ignore[arg-type]
    return best, worst


def _check_n(n: int) -> None:
    if n < 2:
        raise InputError(f"builder setting n={n}: need at least 2 samples per prompt to pick best and worst")


def _built(triples: list[tuple[str, Scored, Scored]], n_prompts: int, n_failed: int) -> BuiltRound:
    return BuiltRound(
        pairs=tuple(PreferencePair(x, c.text, r.text) for x, c, r in triples),
        chosen_scores=tuple(float(c.score) for _, c, _ in triples),  # type: ignore[arg-type]
        rejected_scores=tuple(float(r.score) for _, _, r in triples),  # type: ignore[arg-type]
        n_skipped=n_prompts - len(triples),
        n_failed_judgments=n_failed,
    )


def _keep(c: Scored, r: Scored) -> bool:
    return c.score is not None and r.score is not None and c.score > r.score and c.text != r.text


def build_self_rewarding(ctx: RoundContext) -> BuiltRound:
    """Best vs worst of N samples of the current policy, by the round's judge."""
    s = ctx.settings
    assert isinstance(s, SelfRewardingSettings)
    _check_n(s.n)
    rows = ctx.sample_scored(ctx.policy, "policy", s.n)
    triples = []
    for x, row in zip(ctx.prompts, rows, strict=True):
        ext = _extremes(row)
        if ext is not None and _keep(*ext):
            triples.append((x, ext[0], ext[1]))
    return _built(triples, len(ctx.prompts), ctx.n_failed_judgments)


def build_temporal_self_rewarding(ctx: RoundContext) -> BuiltRound:
    """Anchored rejection (worst of M0's N samples) and future-guided chosen (best of a temporary next model's N
    samples, the temporary model trained from M_k on best-of-M_k ≻ worst-of-M0 pairs)."""
    s = ctx.settings
    assert isinstance(s, TemporalSelfRewardingSettings)
    _check_n(s.n)
    anchor = ctx.sample_scored(ctx.start, "start", s.n)
    current = ctx.sample_scored(ctx.policy, "policy", s.n)
    worst: dict[str, Scored] = {}
    anchored = []
    for x, a_row, c_row in zip(ctx.prompts, anchor, current, strict=True):
        a, c = _extremes(a_row), _extremes(c_row)
        if a is None or c is None:
            continue
        worst[x] = a[1]
        if _keep(c[0], a[1]):
            anchored.append(PreferencePair(x, c[0].text, a[1].text))
    if not anchored:
        raise InputError(f"round {ctx.index}: no anchored pair (the current policy never beat M0's worst sample)")
    temporary = ctx.train_temporary(TrainingData(pairs=anchored), "future", s.future_steps)
    future = ctx.sample_scored(temporary, "future", s.n)
    triples = []
    for x, f_row in zip(ctx.prompts, future, strict=True):
        f = _extremes(f_row)
        if f is not None and x in worst and _keep(f[0], worst[x]):
            triples.append((x, f[0], worst[x]))
    return _built(triples, len(ctx.prompts), ctx.n_failed_judgments)
