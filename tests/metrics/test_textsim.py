"""chrF and shingle Jaccard against hand computations, and on real AlpacaEval text."""

from __future__ import annotations

from pathlib import Path

import pytest

from pasture.io import read_model_outputs
from pasture.metrics.textsim import chrf, normalize_text, shingle_jaccard, shingles


def test_chrf_by_hand() -> None:
    # "ab" vs reference "abc": n=1 P=2/2 R=2/3; n=2 P=1/1 R=1/2; n>=3: the candidate has none (order skipped)
    # P=1, R=(2/3+1/2)/2=7/12, F2 = 5*P*R/(4P+R) = (35/12)/(55/12) = 7/11
    got = chrf("ab", "abc")
    assert (got.precision, got.orders) == (1.0, 2)
    assert got.recall == pytest.approx(7 / 12) and got.score == pytest.approx(7 / 11)
    # whitespace is ignored; beta=1 makes it symmetric
    assert chrf("a b", "ab").score == 1.0
    assert chrf("abcd", "abxy", beta=1).score == pytest.approx(chrf("abxy", "abcd", beta=1).score)
    assert chrf("", "").score == 1.0 and chrf("abc", "").score == 0.0 and chrf("abc", "xyz").score == 0.0
    with pytest.raises(ValueError):
        chrf("a", "a", order=0)


def test_chrf_on_real_outputs_orders_closeness(alpacaeval: Path) -> None:
    rows = read_model_outputs(alpacaeval / "results/gpt4_1106_preview/model_outputs.json.gz")
    text = rows[0].output
    words = text.split()
    lightly_edited = " ".join(words[:-3])  # the same answer, its last three words cut
    other = rows[1].output
    assert chrf(text, text).score == 1.0
    assert 0.8 < chrf(lightly_edited, text).score < 1.0
    assert chrf(other, text).score < chrf(lightly_edited, text).score


def test_shingle_jaccard_by_hand() -> None:
    assert normalize_text("  Hello,  WORLD! ") == "hello world"
    assert shingles("abcdef") == frozenset({"abcde", "bcdef"})
    # "abcdef" {abcde, bcdef} vs "abcdeg" {abcde, bcdeg}: 1 shared of 3
    assert shingle_jaccard("abcdef", "abcdeg") == pytest.approx(1 / 3)
    assert shingle_jaccard("Hi!", "hi") == 1.0 and shingle_jaccard("", "") == 0.0
