"""The SQLite store on real database files: schema, upserts, claims and several writing processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pasture import EvalSet, Instruction, Judgment, ModelOutput, Store, StoreError
from pasture.records import OFFICIAL_JUDGE_ALIASES, ResponseJudgment, judgment_key
from pasture.store import SCHEMA_VERSION

JUDGE = OFFICIAL_JUDGE_ALIASES["weighted_alpaca_eval_gpt4_turbo"]


def _judgment(i: int, **kw: object) -> Judgment:
    base = dict(
        judge_digest=JUDGE.digest,
        judge_name="j",
        instruction=f"instruction {i}",
        output_1="reference answer",
        generator_1="ref",
        output_2=f"model answer {i}",
        generator_2="m",
        shown_first=1,
        preference=1.75,
    )
    base.update(kw)
    return Judgment(**base)  # type: ignore[arg-type]


def test_new_store_is_wal_and_versioned(tmp_path: Path) -> None:
    with Store(tmp_path / "a" / "s.db") as store:
        assert store.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(tmp_path / "a" / "s.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this pasture"):
        Store(path)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable pasture store"):
        Store(path)


def test_ok_verdicts_are_never_overwritten_but_failures_are(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        ok, failed = _judgment(1), _judgment(2, status="error", preference=None, error="timeout")
        assert store.put_judgments([ok, failed]) == 2
        # A later failure must not erase a paid-for verdict; a later success replaces a failure.
        store.put_judgments([_judgment(1, status="error", preference=None, error="429")])
        store.put_judgments([_judgment(2, preference=1.25)])
        got = store.get_judgments_by_key([ok.key, failed.key])
        assert got[ok.key].preference == 1.75 and got[ok.key].status == "ok"
        assert got[failed.key].preference == 1.25 and got[failed.key].attempts == 2
        assert store.judged_keys([ok.key, failed.key, "nope"]) == {ok.key, failed.key}


def test_batched_writes_keep_the_upsert_rules_across_statements_of_any_size(tmp_path: Path) -> None:
    """Many rows per statement (chunked to SQLite's variable limit): the same rules as one row at a time."""
    with Store(tmp_path / "s.db") as store:
        store._conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # older SQLite: 45 judgment rows a statement
        batch = [_judgment(i) for i in range(300)]
        claimed = store.claim([j.key for j in batch], "me")
        assert len(claimed) == 300
        assert store.put_judgments(batch, keys=[j.key for j in batch]) == 300
        assert store._conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # writing drops claims
        assert store._conn.execute("SELECT COUNT(*) FROM texts").fetchone()[0] == 300 + 300 + 1
        # one batch of 13: a failure then a success of one key, a success then a failure
        late_ok = [_judgment(1000, status="error", preference=None, error="429"), _judgment(1000, preference=1.5)]
        kept_ok = [_judgment(1001, preference=1.25), _judgment(1001, status="error", preference=None, error="x")]
        rest = [_judgment(i) for i in range(1002, 1011)]
        store.put_judgments([*late_ok, *kept_ok, *rest])
        got = store.get_judgments_by_key([late_ok[0].key, kept_ok[0].key])
        assert (got[late_ok[0].key].status, got[late_ok[0].key].preference, got[late_ok[0].key].attempts) == (
            "ok",
            1.5,
            2,
        )
        assert (got[kept_ok[0].key].status, got[kept_ok[0].key].preference) == ("ok", 1.25)
        assert store.count_judgments() == 300 + 2 + 9
        assert store.get_judgments_by_key([batch[123].key])[batch[123].key] == batch[123]


def test_keys_given_with_judgments_must_match_their_count(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        js = [_judgment(i) for i in range(3)]
        with pytest.raises(StoreError, match="2 keys given for 3 judgments"):
            store.put_judgments(js, keys=[j.key for j in js[:2]])
        assert store.count_judgments() == 0


def test_texts_are_stored_once(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.put_judgments([_judgment(i) for i in range(50)])
        n_texts = store._conn.execute("SELECT COUNT(*) FROM texts").fetchone()[0]
        assert n_texts == 50 + 50 + 1  # instructions, model answers, one shared reference answer


def test_eval_sets_and_outputs(tmp_path: Path) -> None:
    eval_set = EvalSet(
        name="tiny", instructions=(Instruction(instruction="a", dataset="x"), Instruction(instruction="b"))
    )
    with Store(tmp_path / "s.db") as store:
        digest = store.put_eval_set(eval_set)
        assert store.put_eval_set(eval_set) == digest
        assert store.get_eval_set(digest) == eval_set
        outs = [
            ModelOutput(instruction="a", output="1", generator="g"),
            ModelOutput(instruction="b", output="2", generator="g"),
        ]
        assert store.put_outputs(digest, outs) == 2
        assert store.put_outputs(digest, [ModelOutput(instruction="a", output="changed", generator="g")]) == 0
        assert [o.output for o in store.get_outputs(digest, "g")] == ["1", "2"]
        assert store.generators(digest) == ["g"]


def test_claims_expire_and_exclude_judged_keys(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.put_judgments([_judgment(0)])
        keys = [_judgment(i).key for i in range(4)]
        got_a = store.claim(keys, "a", ttl_s=60)
        assert got_a == keys[1:]  # keys[0] is judged already
        assert store.claim(keys, "b", ttl_s=60) == []
        store.release(keys[1:2], "a")
        assert store.claim(keys, "b", ttl_s=-1) == [keys[1]]  # an expired claim frees the key again
        assert store.claim(keys, "c", ttl_s=60) == [keys[1]]


WRITER = textwrap.dedent(
    """
    import sys
    from pasture import Judgment, Store
    from pasture.records import OFFICIAL_JUDGE_ALIASES, ResponseJudgment, judgment_key
    digest = OFFICIAL_JUDGE_ALIASES["weighted_alpaca_eval_gpt4_turbo"].digest
    who, path = sys.argv[1], sys.argv[2]
    with Store(path) as store:
        for i in range(200):
            store.put_judgments([Judgment(judge_digest=digest, judge_name=who, instruction=f"{who} {i}",
                output_1="ref", generator_1="r", output_2=f"out {i}", generator_2=who, shown_first=2,
                preference=1 + (i % 3) / 2)])
    """
)


@pytest.mark.slow
def test_several_processes_write_one_store(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, f"w{n}", str(path)], stderr=subprocess.PIPE) for n in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    with Store(path) as store:
        assert store.count_judgments() == 600
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for n in range(3):
            assert len(store.get_judgments(generator_2=f"w{n}")) == 200


# -- schema 2: migration of an existing store, and judgments of one response ----------------------------------

FIXTURE_V1 = Path(__file__).parent / "data" / "store_schema_v1.db"
"""A store written by schema 1 (pasture at 7f53e0b, tests/data/make_store_schema_v1.py): 12 real AlpacaEval
judgments of the official judge, one failed replicate, an eval set, outputs, a live claim and a run."""


def _rows(path: Path, table: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
    finally:
        conn.close()


def test_migration_from_schema_1_keeps_every_row_byte_equal(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    path.write_bytes(FIXTURE_V1.read_bytes())
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 1
    before = {t: _rows(path, t) for t in ("texts", "eval_sets", "outputs", "judges", "judgments", "claims", "runs")}
    assert len(before["judgments"]) == 13
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 2
        migrated = store.get_judgments()
        # every stored key is still the key its record computes: old keys stay valid (annotator NULL)
        stored_keys = [str(r[0]) for r in before["judgments"]]
        assert [j.key for j in migrated] == stored_keys
        assert all(j.annotator is None for j in migrated)
        assert store.count_response_judgments() == 0
        # the paid-for official verdicts are found again by key, and are still final
        assert store.judged_keys(stored_keys) == {str(r[0]) for r in before["judgments"] if r[11] == "ok"}
    after = {t: _rows(path, t) for t in before}
    for table, rows in before.items():
        if table == "judgments":  # one column added at the end, NULL for old rows; the rest byte-equal
            assert [r[:-1] for r in after[table]] == rows
            assert all(r[-1] is None for r in after[table])
        else:
            assert after[table] == rows, table
    with Store(path) as store:  # reopening does not migrate again
        assert store.schema_version == 2 and len(store.get_judgments()) == 13


def _response(i: int, **kw: object) -> ResponseJudgment:
    base: dict[str, object] = dict(
        judge_digest=JUDGE.digest,
        judge_name="critic",
        instruction=f"instruction {i}",
        output=f"answer {i}",
        generator="m",
        verdict="bad",
        critique="The second sentence is wrong.",
    )
    base.update(kw)
    return ResponseJudgment(**base)  # type: ignore[arg-type]


def test_response_judgments_round_trip_and_never_lose_an_ok_verdict(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        ok = _response(1, reference="the gold answer", score=3.0)
        failed = _response(
            2, status="parse_error", verdict=None, critique=None, raw_completion="??", error="no verdict"
        )
        rule = _response(3, subject="Answer in one sentence.", verdict="yes", critique=None)
        assert store.put_response_judgments([ok, failed, rule]) == 3
        got = store.get_response_judgments_by_key([ok.key, failed.key, rule.key, "nope"])
        assert set(got) == {ok.key, failed.key, rule.key}
        for j in (ok, failed, rule):  # every field comes back (created_at as written)
            assert got[j.key] == j
        # a later failure never replaces the paid-for verdict; a later success replaces a failure
        store.put_response_judgments([_response(1, reference="the gold answer", status="error", verdict=None,
                                                critique=None, error="429")])  # fmt: skip
        store.put_response_judgments([_response(2, verdict="good", critique="Nothing is wrong.")])
        got = store.get_response_judgments_by_key([ok.key, failed.key])
        assert got[ok.key].verdict == "bad" and got[ok.key].score == 3.0 and got[ok.key].status == "ok"
        assert got[failed.key].verdict == "good" and got[failed.key].attempts == 2
        assert store.judged_response_keys([ok.key, failed.key, rule.key]) == {ok.key, failed.key, rule.key}
        assert [j.key for j in store.get_response_judgments(status="ok")] == [ok.key, failed.key, rule.key]
        # the two kinds live apart: a pairwise lookup does not see response keys
        assert store.judged_keys([ok.key]) == set() and store.get_judgments_by_key([ok.key]) == {}


def test_response_claims_share_the_claim_table(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        done, todo = _response(1), _response(2)
        store.put_response_judgments([done])
        assert store.claim([done.key, todo.key], "a") == [todo.key]  # judged ok: not claimable
        assert store.claim([todo.key], "b") == []  # live claim of another owner
        store.put_response_judgments([todo])  # writing drops the claim, and ok makes it final
        assert store.claim([todo.key], "b") == []


def test_response_key_covers_what_changes_the_verdict_and_cannot_collide() -> None:
    base = _response(1)
    variants = [
        _response(1, judge_digest="0" * 64),
        _response(1, instruction="other"),
        _response(1, output="other"),
        _response(1, reference="gold"),
        _response(1, subject="Be brief."),
        _response(1, replicate=1),
        _response(1, annotator="member-b"),
    ]
    keys = {v.key for v in variants}
    assert base.key not in keys and len(keys) == len(variants)
    # provenance and outcome are not in the key
    for same in (_response(1, generator="other"), _response(1, dataset="d"), _response(1, verdict="good"),
                 _response(1, critique=None, score=7.0), _response(1, attempts=3)):  # fmt: skip
        assert same.key == base.key
    # a pairwise key over the same texts is a different key
    assert judgment_key(JUDGE.digest, "instruction 1", "answer 1", "answer 1", 1) != base.key


def test_response_record_refuses_incoherent_outcomes() -> None:
    with pytest.raises(ValueError, match="needs a score or a verdict"):
        _response(1, verdict=None)
    with pytest.raises(ValueError, match="carries no score or verdict"):
        _response(1, status="error")
    with pytest.raises(ValueError, match="finite"):
        _response(1, score=float("nan"))


def test_lookups_of_both_kinds_span_many_chunks_and_filter(tmp_path: Path) -> None:
    """More keys than one query binds (the lookups ask in chunks): every stored key is found, once, and filters
    combine; the two kinds answer the same questions the same way."""
    n = 1234
    pairwise = [_judgment(i, generator_2="m" if i % 2 else "n", status="ok" if i % 3 else "error",
                          preference=1.5 if i % 3 else None) for i in range(n)]  # fmt: skip
    single = [_response(i, generator="m" if i % 2 else "n", status="ok" if i % 3 else "error",
                        verdict="good" if i % 3 else None) for i in range(n)]  # fmt: skip
    with Store(tmp_path / "s.db") as store:
        assert store.put_judgments(pairwise) == n and store.put_response_judgments(single) == n
        for put, by_key, judged, get, kw in (
            (pairwise, store.get_judgments_by_key, store.judged_keys, store.get_judgments, "generator_2"),
            (single, store.get_response_judgments_by_key, store.judged_response_keys, store.get_response_judgments,
             "generator"),
        ):  # fmt: skip
            keys = [j.key for j in put] + ["absent"]
            found = by_key(keys)
            assert set(found) == {j.key for j in put} and all(found[j.key] == j for j in put)
            assert judged(keys, ok_only=False) == set(found)
            assert judged(keys) == {j.key for j in put if j.status == "ok"}
            assert [j.key for j in get()] == [j.key for j in put]  # insertion order
            wanted = [j.key for j in put if j.status == "error" and getattr(j, kw) == "n"]
            assert [j.key for j in get(**{kw: "n", "status": "error"})] == wanted
            assert get(judge_digest="0" * 64) == []


def test_a_judge_is_found_by_name_or_digest_prefix_and_ambiguity_is_an_error(tmp_path: Path) -> None:
    from pasture.errors import InputError
    from pasture.records import JudgeFingerprint

    def fingerprint(model: str) -> JudgeFingerprint:
        return JudgeFingerprint(provider="openai", model=model, template_digest="t" * 64, parser="pairwise")

    with Store(tmp_path / "s.db") as store:
        a = store.put_judge("judge-a", fingerprint("m1"))
        b = store.put_judge("judge-b", fingerprint("m2"))
    with Store(tmp_path / "s.db") as store:  # the real file, reopened
        assert store.judge_digest("judge-a") == a and store.judge_digest("judge-b") == b
        assert store.judge_digest(b[:12]) == b
        with pytest.raises(InputError, match="0 judges match 'nobody'; stored judges: judge-a"):
            store.judge_digest("nobody")
        with pytest.raises(InputError, match="2 judges match ''"):
            store.judge_digest("")  # every digest starts with the empty prefix
