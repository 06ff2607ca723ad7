"""The SQLite store on real database files: schema, upserts, claims and several writing processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pasture import EvalSet, Instruction, Judgment, ModelOutput, Store, StoreError
from pasture.records import OFFICIAL_JUDGE_ALIASES
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
    from pasture.records import OFFICIAL_JUDGE_ALIASES
    digest = OFFICIAL_JUDGE_ALIASES["weighted_alpaca_eval_gpt4_turbo"].digest
    who, path = sys.argv[1], sys.argv[2]
    with Store(path) as store:
        for i in range(200):
            store.put_judgments([Judgment(judge_digest=digest, judge_name=who, instruction=f"{who} {i}",
                output_1="ref", generator_1="r", output_2=f"out {i}", generator_2=who, shown_first=2,
                preference=1 + (i % 3) / 2)])
    """
)


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
