"""PUGC's pipeline (pasture.train.pugc): documents in, best/worst pairs out, every step in the real store and
resumed, with the synthetic task's programmatic judges and a tiny policy."""

from __future__ import annotations

import json

import pytest

from pasture.errors import InputError
from pasture.store import Store
from pasture.train.core import PreferencePair
from pasture.train.models import read_preference_pairs
from pasture.train.pugc import PUGCJudges, PUGCSettings, best_worst, pugc_pairs, read_documents
from pasture.train.pugc_synthetic import synthetic_document, synthetic_pugc_judges
from pasture.train.synthetic import extended_tokenizer, make_prompts
from pasture.train.tiny import tiny_llama


def test_read_documents_from_text_files_and_table_columns(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("  A post about bread.\n\nIt rises.  \n", encoding="utf-8")
    table = tmp_path / "t.jsonl"
    table.write_text(json.dumps({"body": "Review one."}) + "\n" + json.dumps({"body": "Review two."}) + "\n")
    assert read_documents([a, table], column="body") == [
        "A post about bread.\n\nIt rises.",
        "Review one.",
        "Review two.",
    ]
    with pytest.raises(InputError, match=r"no text in column 'text'.*--column"):
        read_documents([table])
    empty = tmp_path / "e.md"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match="empty document"):
        read_documents([empty])
    with pytest.raises(InputError, match="at least one"):
        read_documents([])


def test_best_worst_by_hand():
    assert best_worst("q", ["a", "b", "c"], [3.0, 9.0, 1.0]) == PreferencePair("q", "b", "c")
    assert best_worst("q", ["a", "b", "c"], [5.0, 5.0, 2.0]) == PreferencePair("q", "a", "c")  # first best
    assert best_worst("q", ["a", "b"], [4.0, 4.0]) is None  # no preference
    assert best_worst("q", ["a", "b", "c"], [None, 7.0, None]) is None  # one grade is not a pair
    assert best_worst("q", ["a", "a"], [1.0, 2.0]) is None  # same text


def test_settings_are_checked():
    with pytest.raises(InputError, match="best vs worst"):
        PUGCSettings(samples_per_question=1).validate()
    with pytest.raises(InputError, match="temperature"):
        PUGCSettings(temperature=0).validate()


def test_a_pass_makes_pairs_graded_by_the_document_and_a_rerun_asks_and_samples_nothing(tmp_path):
    tok = extended_tokenizer()
    model = tiny_llama(tok, seed=0)
    prompts = make_prompts(12, seed=5)
    docs = [synthetic_document(p, 1.0, seed=0) for p in prompts] + [
        "1122:1122"
    ]  # the last: no strict mode, nothing kept
    settings = PUGCSettings(questions_per_document=2, samples_per_question=3, max_new_tokens=10, seed=1)
    judges = synthetic_pugc_judges()
    with Store(tmp_path / "s.db") as store:
        result = pugc_pairs(store, docs, judges, model, tok, settings)
        c = result.counts
        assert c["documents"] == 13 and c["questions_written"] >= 13
        assert c["questions_kept"] == len(result.questions) == 12  # one per gold document: its own prompt
        assert {sq.question for sq in result.questions} == set(prompts)
        assert all(len(sq.samples) == 3 and len(sq.scores) == 3 for sq in result.questions)
        by_q = {sq.question: sq for sq in result.questions}
        for pair in result.pairs:
            sq = by_q[pair.prompt]
            grades = dict(zip(sq.samples, sq.scores, strict=True))
            assert grades[pair.chosen] > grades[pair.rejected]
        assert c["pairs"] + c["no_pair"] == len(result.questions)
        n_outputs = sum(len(store.get_outputs(d)) for d, _, _ in store.eval_sets())
        again = pugc_pairs(store, docs, judges, model, tok, settings)
        for step in ("questions", "filter", "grades"):
            assert again.counts[step]["cached"] == again.counts[step]["asked"] > 0
        assert again.pairs == result.pairs
        assert sum(len(store.get_outputs(d)) for d, _, _ in store.eval_sets()) == n_outputs
    if result.pairs:
        path = result.write_pairs(tmp_path / "pairs.jsonl")
        assert read_preference_pairs(path) == result.pairs


def test_nothing_kept_is_a_clear_error(tmp_path):
    tok = extended_tokenizer()
    judges = synthetic_pugc_judges()
    with Store(tmp_path / "s.db") as store, pytest.raises(InputError, match="kept none"):
        pugc_pairs(store, ["1234:1234"], judges, tiny_llama(tok, seed=0), tok, PUGCSettings(samples_per_question=2))


def test_judges_from_a_judge_definition_use_its_provider_under_the_three_protocols():
    j = PUGCJudges.from_judge("smollm2-graded-server")
    assert [x.fingerprint.protocol for x in (j.questions, j.answers, j.grader)] == [
        "item_list", "yes_no", "reference_grade"
    ]  # fmt: skip
    assert j.grader.reads == frozenset({"reference"}) and j.answers.reads == frozenset()
