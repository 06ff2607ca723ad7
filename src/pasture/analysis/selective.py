"""Selective answering, measured: how well a scorer tells good responses from bad ones.

Why: a judge, a reward model or a trained self-judge is useful for *selective* instruction following (answer
only when the predicted quality is high) and for best-of-n exactly to the extent that its scores order
responses by their true quality. This module measures that against any quality truth (an oracle, gold labels,
a reference judge), with three views that answer different questions (definitions in docs/trust.md,
"Selective answering"):

* **AUC**: P(score of a good response > score of a bad one), ties counted half, with DeLong's standard error;
* **rank correlation** (Spearman, Kendall) of score with quality;
* the **quality–coverage curve**: mean true quality of the answered fraction when the scorer answers only its
  top-scored fraction, and the curve's area, next to answering at random (the mean quality) and the oracle's
  own curve (sorting by the truth itself).

Pure functions over arrays; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field
from scipy.stats import kendalltau, norm, spearmanr

from pasture.errors import InputError
from pasture.records import _Record


class SelectiveAnswering(_Record):
    """A scorer measured against a quality truth; every field is defined in docs/trust.md."""

    n: int = Field(description="Responses with a finite score and a finite quality.")
    n_good: int = Field(description="Responses counted good (quality >= good_threshold).")
    good_threshold: float = Field(description="Quality at or above which a response counts as good (for AUC).")
    auc: float = Field(
        description="P(score_good > score_bad) + P(tie)/2 over all good/bad pairs; NaN if one class is empty."
    )
    auc_se: float = Field(description="DeLong's standard error of the AUC.")
    auc_low: float = Field(description="Lower end of the normal interval auc ± z·se, clipped to [0, 1].")
    auc_high: float = Field(description="Upper end of that interval.")
    level: float = Field(description="Coverage probability of the AUC interval.")
    spearman: float = Field(description="Spearman's rho of score with quality.")
    kendall: float = Field(description="Kendall's tau-b of score with quality.")
    coverage: tuple[float, ...] = Field(description="Answered fractions k/n, k = 1..n.")
    quality: tuple[float, ...] = Field(
        description="Mean true quality of the k top-scored responses (ties in score broken at random, in expectation)."
    )
    area: float = Field(description="Area under the quality–coverage curve: mean of `quality` over k = 1..n.")
    area_random: float = Field(description="The same area for a scorer that carries no information (= mean quality).")
    area_oracle: float = Field(description="The same area when responses are ranked by their true quality.")

    def quality_at(self, coverage: float) -> float:
        """Mean true quality when answering the top ``coverage`` fraction (0 < coverage <= 1), by the curve."""
        if not 0.0 < coverage <= 1.0:
            raise InputError(f"coverage must be in (0, 1], got {coverage}")
        k = max(1, int(np.ceil(coverage * self.n - 1e-9)))
        return self.quality[k - 1]


def auc_delong(scores_good: np.ndarray, scores_bad: np.ndarray) -> tuple[float, float]:
    """AUC = P(S_good > S_bad) + P(S_good = S_bad)/2 and DeLong's standard error.

    With m good and n bad responses, each good one's placement V10_i = (#bad below + #bad tied / 2) / n and
    each bad one's V01_j = (#good above + #good tied / 2) / m; AUC is the mean of either, and
    Var(AUC) = Var(V10) / m + Var(V01) / n (sample variances; DeLong, DeLong and Clarke-Pearson 1988).
    """
    good = np.asarray(scores_good, dtype=float)
    bad = np.asarray(scores_bad, dtype=float)
    m, n = len(good), len(bad)
    if m == 0 or n == 0:
        return float("nan"), float("nan")
    bad_sorted = np.sort(bad)
    good_sorted = np.sort(good)
    below = np.searchsorted(bad_sorted, good, side="left")
    not_above = np.searchsorted(bad_sorted, good, side="right")
    v10 = (below + 0.5 * (not_above - below)) / n
    above = m - np.searchsorted(good_sorted, bad, side="right")
    not_below = m - np.searchsorted(good_sorted, bad, side="left")
    v01 = (above + 0.5 * (not_below - above)) / m
    auc = float(v10.mean())
    var = (v10.var(ddof=1) / m if m > 1 else 0.0) + (v01.var(ddof=1) / n if n > 1 else 0.0)
    return auc, float(np.sqrt(var))


def quality_coverage(scores: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Mean quality of the k top-scored responses for k = 1..n.

    Responses tied in score are answered in random order; the curve is the expectation over that order, so
    within a tie group each response counts with the group's mean quality (a constant scorer then gives the
    flat line at the mean quality, exactly).
    """
    s = np.asarray(scores, dtype=float)
    q = np.asarray(quality, dtype=float)
    order = np.argsort(-s, kind="stable")
    s_sorted, q_sorted = s[order], q[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    group_mean = np.add.reduceat(q_sorted, starts) / np.diff(np.r_[starts, len(q_sorted)])
    q_tied = np.repeat(group_mean, np.diff(np.r_[starts, len(q_sorted)]))
    return np.cumsum(q_tied) / np.arange(1, len(q_tied) + 1)


def selective_answering(
    scores: Sequence[float] | np.ndarray,
    quality: Sequence[float] | np.ndarray,
    *,
    good_threshold: float = 0.5,
    level: float = 0.95,
) -> SelectiveAnswering:
    """Measure ``scores`` (higher = predicted better) against the true ``quality`` of the same responses.

    Parameters
    ----------
    scores:
        Any scorer's output per response: a judge's grade, a reward model's reward, a trained judge's expected
        digit. Only its order matters for every statistic here.
    quality:
        The truth per response: 0/1 gold labels, an oracle's score, a reference judge's grade.
    good_threshold:
        A response with quality >= this counts as good for the AUC (0.5 suits 0/1 labels and [0, 1] scores).
    level:
        Coverage probability of the AUC's normal interval.

    Pairs where either value is not finite are left out (``n`` says how many remain); fewer than two is an
    error.
    """
    s = np.asarray(scores, dtype=float)
    q = np.asarray(quality, dtype=float)
    if s.shape != q.shape or s.ndim != 1:
        raise InputError(f"scores and quality must be 1-D and equally long, got {s.shape} and {q.shape}")
    keep = np.isfinite(s) & np.isfinite(q)
    s, q = s[keep], q[keep]
    if len(s) < 2:
        raise InputError(f"need at least 2 responses with a finite score and quality, got {len(s)}")
    good = q >= good_threshold
    auc, se = auc_delong(s[good], s[~good])
    z = float(norm.ppf(0.5 + level / 2))
    constant = np.all(s == s[0]) or np.all(q == q[0])
    rho = float("nan") if constant else float(spearmanr(s, q).statistic)
    tau = float("nan") if constant else float(kendalltau(s, q).statistic)
    curve = quality_coverage(s, q)
    oracle = np.cumsum(np.sort(q)[::-1]) / np.arange(1, len(q) + 1)
    return SelectiveAnswering(
        n=len(s),
        n_good=int(good.sum()),
        good_threshold=good_threshold,
        auc=auc,
        auc_se=se,
        auc_low=float(np.clip(auc - z * se, 0.0, 1.0)) if np.isfinite(auc) else float("nan"),
        auc_high=float(np.clip(auc + z * se, 0.0, 1.0)) if np.isfinite(auc) else float("nan"),
        level=level,
        spearman=rho,
        kendall=tau,
        coverage=tuple((np.arange(1, len(s) + 1) / len(s)).tolist()),
        quality=tuple(curve.tolist()),
        area=float(curve.mean()),
        area_random=float(q.mean()),
        area_oracle=float(oracle.mean()),
    )


def gaussian_noise_auc(sigma: float, gap: float = 1.0) -> float:
    """The AUC of ``score = gap * good + N(0, sigma^2)``: Φ(gap / (sigma·√2)).

    The score difference of a good and a bad response is N(gap, 2σ²), so P(difference > 0) is this; it is the
    analytic check of :func:`auc_delong` in the tests and the curve a noisy oracle scorer moves along.
    """
    if sigma <= 0:
        return 1.0
    return float(norm.cdf(gap / (sigma * np.sqrt(2.0))))
