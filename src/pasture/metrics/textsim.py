"""Text similarity for data tools: chrF (translation agreement) and character-shingle Jaccard (near duplicates).

Pure functions with typed results; definitions in docs/data.md.

* :func:`chrf`: the character n-gram F-score (Popović 2015), used by ``pasture translate`` to compare a
  source text with its back-translation. Whitespace is removed first; for each order n = 1..6 the
  precision and recall of the candidate's character n-grams (as multisets) against the reference's are
  averaged over the orders where both texts have n-grams, and combined as F-beta with beta = 2 (recall
  counts twice as much as precision). 1.0 means identical n-gram multisets, 0.0 nothing in common.
* :func:`shingle_jaccard`: Jaccard similarity of the sets of character k-shingles (k = 5) of two normalised
  texts, used by ``pasture synthesize`` to find instructions that are near-duplicates of an eval set's.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

CHRF_ORDER = 6
CHRF_BETA = 2.0
SHINGLE_K = 5


@dataclass(frozen=True)
class ChrF:
    """A chrF score and its parts: ``precision``/``recall`` averaged over ``orders`` n-gram orders."""

    score: float
    precision: float
    recall: float
    orders: int


def _ngrams(text: str, n: int) -> Counter[str]:
    return Counter(text[i : i + n] for i in range(len(text) - n + 1))


def chrf(candidate: str, reference: str, *, order: int = CHRF_ORDER, beta: float = CHRF_BETA) -> ChrF:
    """chrF of ``candidate`` against ``reference`` (see the module docstring); symmetric only when beta = 1.

    Two empty texts (after whitespace removal) agree fully (score 1.0); one empty and one not score 0.0.
    """
    if order < 1 or beta <= 0:
        raise ValueError(f"chrF needs order >= 1 and beta > 0, got order={order}, beta={beta}")
    cand = re.sub(r"\s+", "", candidate)
    ref = re.sub(r"\s+", "", reference)
    if not cand and not ref:
        return ChrF(1.0, 1.0, 1.0, 0)
    precisions: list[float] = []
    recalls: list[float] = []
    for n in range(1, order + 1):
        c, r = _ngrams(cand, n), _ngrams(ref, n)
        if not c or not r:
            continue
        overlap = sum((c & r).values())
        precisions.append(overlap / sum(c.values()))
        recalls.append(overlap / sum(r.values()))
    if not precisions:
        return ChrF(0.0, 0.0, 0.0, 0)
    p = sum(precisions) / len(precisions)
    rc = sum(recalls) / len(recalls)
    b2 = beta * beta
    score = 0.0 if p == 0 and rc == 0 else (1 + b2) * p * rc / (b2 * p + rc)
    return ChrF(score, p, rc, len(precisions))


def normalize_text(text: str) -> str:
    """Case-folded, NFKC, punctuation removed, whitespace collapsed: what "the same instruction" compares."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text)
    return " ".join(text.split())


def shingles(text: str, k: int = SHINGLE_K) -> frozenset[str]:
    """The set of character ``k``-grams of ``normalize_text(text)`` (the whole text when shorter than k)."""
    norm = normalize_text(text)
    if len(norm) <= k:
        return frozenset({norm}) if norm else frozenset()
    return frozenset(norm[i : i + k] for i in range(len(norm) - k + 1))


def shingle_jaccard(a: str, b: str, k: int = SHINGLE_K) -> float:
    """|S(a) ∩ S(b)| / |S(a) ∪ S(b)| over character k-shingles of the normalised texts; 0.0 when both are empty."""
    sa, sb = shingles(a, k), shingles(b, k)
    union = sa | sb
    return len(sa & sb) / len(union) if union else 0.0
