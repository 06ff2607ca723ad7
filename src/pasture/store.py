"""The SQLite store: one file that holds eval sets, outputs, judges, judgments, claims and leaderboard runs.

Why SQLite: it is embedded (no server to run), atomic per transaction (a killed process loses at most the
judgment in flight), and safe for several processes writing one file in WAL mode. Texts are stored once,
content-addressed by SHA-256, so a 100k-judgment store does not repeat the 805 reference outputs 100k times.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from pasture.errors import InputError, StoreError
from pasture.records import (
    EvalSet,
    Instruction,
    JudgeFingerprint,
    Judgment,
    ModelOutput,
    ResponseJudgment,
    RunManifest,
    RunRecord,
    canonical_json,
    sha256_text,
)

_J = TypeVar("_J", Judgment, ResponseJudgment)

SCHEMA_VERSION = 2
DEFAULT_STORE_PATH = Path("pasture.db")
"""Where the store lives unless a path is given (the CLI also reads ``--store``)."""

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE texts (hash TEXT PRIMARY KEY, text TEXT NOT NULL);
    CREATE TABLE eval_sets (
        digest TEXT PRIMARY KEY, name TEXT NOT NULL, n INTEGER NOT NULL, created_at TEXT NOT NULL);
    CREATE TABLE eval_set_items (
        eval_set TEXT NOT NULL REFERENCES eval_sets(digest), position INTEGER NOT NULL,
        instruction TEXT NOT NULL REFERENCES texts(hash), dataset TEXT,
        PRIMARY KEY (eval_set, position));
    CREATE TABLE outputs (
        eval_set TEXT NOT NULL, instruction TEXT NOT NULL, generator TEXT NOT NULL,
        sample_index INTEGER NOT NULL, output TEXT NOT NULL REFERENCES texts(hash), dataset TEXT,
        prompt_tokens INTEGER, completion_tokens INTEGER, latency_s REAL, created_at TEXT NOT NULL,
        PRIMARY KEY (eval_set, instruction, generator, sample_index));
    CREATE INDEX outputs_by_generator ON outputs(eval_set, generator);
    CREATE TABLE judges (digest TEXT PRIMARY KEY, name TEXT NOT NULL, fingerprint TEXT NOT NULL);
    CREATE TABLE judgments (
        key TEXT PRIMARY KEY, judge TEXT NOT NULL, judge_name TEXT NOT NULL,
        instruction TEXT NOT NULL, output_1 TEXT NOT NULL, generator_1 TEXT NOT NULL,
        output_2 TEXT NOT NULL, generator_2 TEXT NOT NULL, shown_first INTEGER NOT NULL,
        replicate INTEGER NOT NULL, dataset TEXT, status TEXT NOT NULL, preference REAL,
        raw_completion TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, cost_usd REAL,
        latency_s REAL, error TEXT, attempts INTEGER NOT NULL, created_at TEXT NOT NULL);
    CREATE INDEX judgments_by_pair ON judgments(judge, generator_2, generator_1);
    CREATE TABLE claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL);
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, eval_set TEXT NOT NULL, reference TEXT NOT NULL,
        judge TEXT NOT NULL, generator TEXT NOT NULL, kind TEXT NOT NULL, result TEXT NOT NULL,
        manifest TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE INDEX runs_by_board ON runs(eval_set, reference, judge);
    """,
    # 2: independent annotators in pairwise keys (NULL for every row before: their keys are unchanged), and
    # judgments of one response (critiques, scores, rule checks). Adds only; every existing row is kept.
    2: """
    ALTER TABLE judgments ADD COLUMN annotator TEXT;
    CREATE TABLE response_judgments (
        key TEXT PRIMARY KEY, judge TEXT NOT NULL, judge_name TEXT NOT NULL,
        instruction TEXT NOT NULL, output TEXT NOT NULL, generator TEXT NOT NULL, reference TEXT, subject TEXT,
        replicate INTEGER NOT NULL, annotator TEXT, dataset TEXT, status TEXT NOT NULL, score REAL, verdict TEXT,
        critique TEXT, raw_completion TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, cost_usd REAL,
        latency_s REAL, error TEXT, attempts INTEGER NOT NULL, created_at TEXT NOT NULL);
    CREATE INDEX response_judgments_by_judge ON response_judgments(judge, generator);
    """,
}


_JUDGMENT_COLUMNS = (
    "key", "judge", "judge_name", "instruction", "output_1", "generator_1", "output_2", "generator_2", "shown_first",
    "replicate", "annotator", "dataset", "status", "preference", "raw_completion", "prompt_tokens",
    "completion_tokens", "cost_usd", "latency_s", "error", "attempts", "created_at",
)  # fmt: skip
_RESPONSE_COLUMNS = (
    "key", "judge", "judge_name", "instruction", "output", "generator", "reference", "subject", "replicate",
    "annotator", "dataset", "status", "score", "verdict", "critique", "raw_completion", "prompt_tokens",
    "completion_tokens", "cost_usd", "latency_s", "error", "attempts", "created_at",
)  # fmt: skip
"""Columns of the two judgment tables (the key first): the upsert writes them and the lookups read them, so a
column added by a migration is added here once."""
_TEXT_COLUMNS = frozenset({"instruction", "output_1", "output_2", "output", "reference", "subject"})
"""Columns that hold the hash of a text in ``texts`` (those in ``_NULLABLE_TEXT_COLUMNS`` may be NULL)."""
_NULLABLE_TEXT_COLUMNS = frozenset({"reference", "subject"})
_JUDGMENT_VERDICT = ("status", "preference")
_RESPONSE_VERDICT = ("status", "score", "verdict", "critique")
"""What a failed judgment's retry replaces besides the completion, its usage, latency and error."""


def _select(table: str, columns: Sequence[str]) -> str:
    """SELECT of ``columns`` of a judgment table (aliased j, key first), each text read back through its hash."""
    parts, joins = [], []
    for c in columns:
        if c in _TEXT_COLUMNS:
            parts.append(f"t_{c}.text")
            joins.append(f"{'LEFT JOIN' if c in _NULLABLE_TEXT_COLUMNS else 'JOIN'} texts t_{c} ON t_{c}.hash=j.{c}")
        else:
            parts.append(f"j.{c}")
    return f"SELECT {', '.join(parts)} FROM {table} j {' '.join(joins)}"


_JUDGMENT_SELECT = _select("judgments", _JUDGMENT_COLUMNS)
_RESPONSE_SELECT = _select("response_judgments", _RESPONSE_COLUMNS)


def _record(cls: type[_J], columns: Sequence[str], row: Sequence[Any]) -> _J:
    """A row of ``_select(table, columns)`` as its record: the inverse of the mapping in ``_upsert_judgments``
    (the key is computed by the record, not read)."""
    fields = {name: value for name, value in zip(_field_names(tuple(columns)), row, strict=True) if name}
    fields["created_at"] = datetime.fromisoformat(fields["created_at"])
    return cls(**fields)


@cache
def _field_names(columns: tuple[str, ...]) -> tuple[str, ...]:
    """The record field of each column ('' for the key, which records compute)."""
    return tuple("" if c == "key" else "judge_digest" if c == "judge" else c for c in columns)


def outputs_digest(outputs: Iterable[ModelOutput]) -> str:
    """Digest of a set of outputs (e.g. the reference): order-independent, over (instruction, sample, text)."""
    items = sorted((o.instruction, o.sample_index, o.output) for o in outputs)
    return sha256_text(canonical_json(items))


class Store:
    """A pasture store in one SQLite file.

    Parameters
    ----------
    path:
        The database file; created with its folder if missing.
    timeout_s:
        How long a writer waits for another process's write lock before failing, in seconds.
    """

    def __init__(self, path: str | Path = DEFAULT_STORE_PATH, *, timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None, cached_statements=256)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=OFF")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable pasture store ({exc})") from None

    # -- lifecycle -------------------------------------------------------------------------------------
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: takes the write lock up front so concurrent writers queue, not deadlock."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: store schema version {current} is newer than this pasture "
                f"(supports {SCHEMA_VERSION}); upgrade pasture"
            )
        if current == SCHEMA_VERSION:
            return
        with self.transaction() as conn:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])  # another process may have won
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={version}")

    def _insert_rows(self, conn: sqlite3.Connection, head: str, rows: Sequence[Sequence[Any]], tail: str = "") -> None:
        """``head VALUES (?, ...), (?, ...) tail`` over ``rows``: all of them in one statement, up to 256 rows
        and SQLite's limit on variables.

        Why not ``executemany``: it steps once per row, and every step hands the GIL over and back; the
        annotation engine writes from a thread next to a busy event loop, which pays for each hand-over.
        Each batch size is its own statement, compiled once per connection (the cache holds 256).
        """
        if not rows:
            return
        width = len(rows[0])
        most = min(256, max(1, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
        for start in range(0, len(rows), most):
            chunk = rows[start : start + most]
            marks = ",".join(["(" + ",".join("?" * width) + ")"] * len(chunk))
            conn.execute(f"{head} VALUES {marks} {tail}", [v for row in chunk for v in row])

    def _delete_keys(self, conn: sqlite3.Connection, table: str, keys: Sequence[str]) -> None:
        """``DELETE FROM table WHERE key IN (...)`` in a few statements (see :meth:`_insert_rows`)."""
        most = min(512, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
        for start in range(0, len(keys), most):
            chunk = keys[start : start + most]
            conn.execute(f"DELETE FROM {table} WHERE key IN ({','.join('?' * len(chunk))})", chunk)

    # -- texts -----------------------------------------------------------------------------------------
    def _put_texts(self, conn: sqlite3.Connection, texts: Iterable[str]) -> None:
        self._insert_rows(conn, "INSERT OR IGNORE INTO texts(hash, text)", [(sha256_text(t), t) for t in set(texts)])

    def _put_hashed_texts(self, conn: sqlite3.Connection, hashes: dict[str, str]) -> None:
        """Texts whose hashes the caller computed already (``text -> hash``)."""
        self._insert_rows(conn, "INSERT OR IGNORE INTO texts(hash, text)", [(h, t) for t, h in hashes.items()])

    # -- eval sets and outputs -------------------------------------------------------------------------
    def put_eval_set(self, eval_set: EvalSet) -> str:
        digest = eval_set.digest
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM eval_sets WHERE digest=?", (digest,)).fetchone():
                return digest
            self._put_texts(conn, eval_set.texts())
            conn.execute(
                "INSERT INTO eval_sets(digest, name, n, created_at) VALUES (?, ?, ?, ?)",
                (digest, eval_set.name, len(eval_set), _now()),
            )
            conn.executemany(
                "INSERT INTO eval_set_items(eval_set, position, instruction, dataset) VALUES (?, ?, ?, ?)",
                (
                    (digest, i, sha256_text(item.instruction), item.dataset)
                    for i, item in enumerate(eval_set.instructions)
                ),
            )
        return digest

    def get_eval_set(self, digest: str) -> EvalSet:
        row = self._conn.execute("SELECT name FROM eval_sets WHERE digest=?", (digest,)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: no eval set with digest {digest[:16]}")
        items = self._conn.execute(
            "SELECT t.text, i.dataset FROM eval_set_items i JOIN texts t ON t.hash=i.instruction "
            "WHERE i.eval_set=? ORDER BY i.position",
            (digest,),
        ).fetchall()
        return EvalSet(name=row[0], instructions=tuple(Instruction(instruction=t, dataset=d) for t, d in items))

    def eval_sets(self) -> list[tuple[str, str, int]]:
        """(digest, name, size) of every stored eval set."""
        return [tuple(r) for r in self._conn.execute("SELECT digest, name, n FROM eval_sets ORDER BY created_at")]

    def put_outputs(self, eval_set_digest: str, outputs: Sequence[ModelOutput]) -> int:
        """Store outputs; an existing (instruction, generator, sample) keeps its first text. Returns rows added."""
        with self.transaction() as conn:
            self._put_texts(conn, [o.output for o in outputs] + [o.instruction for o in outputs])
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO outputs(eval_set, instruction, generator, sample_index, output, dataset, "
                "prompt_tokens, completion_tokens, latency_s, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    (
                        eval_set_digest,
                        sha256_text(o.instruction),
                        o.generator,
                        o.sample_index,
                        sha256_text(o.output),
                        o.dataset,
                        o.prompt_tokens,
                        o.completion_tokens,
                        o.latency_s,
                        _now(),
                    )
                    for o in outputs
                ),
            )
            return conn.total_changes - before

    def get_outputs(self, eval_set_digest: str, generator: str | None = None) -> list[ModelOutput]:
        sql = (
            "SELECT ti.text, tout.text, o.generator, o.sample_index, o.dataset, o.prompt_tokens, "
            "o.completion_tokens, o.latency_s FROM outputs o JOIN texts ti ON ti.hash=o.instruction "
            "JOIN texts tout ON tout.hash=o.output WHERE o.eval_set=?"
        )
        params: list[Any] = [eval_set_digest]
        if generator is not None:
            sql += " AND o.generator=?"
            params.append(generator)
        sql += " ORDER BY o.generator, o.rowid"
        return [
            ModelOutput(
                instruction=r[0],
                output=r[1],
                generator=r[2],
                sample_index=r[3],
                dataset=r[4],
                prompt_tokens=r[5],
                completion_tokens=r[6],
                latency_s=r[7],
            )
            for r in self._conn.execute(sql, params)
        ]

    def generators(self, eval_set_digest: str) -> list[str]:
        return [
            r[0]
            for r in self._conn.execute(
                "SELECT DISTINCT generator FROM outputs WHERE eval_set=? ORDER BY generator",
                (eval_set_digest,),
            )
        ]

    # -- judges and judgments --------------------------------------------------------------------------
    def put_judge(self, name: str, fingerprint: JudgeFingerprint) -> str:
        digest = fingerprint.digest
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO judges(digest, name, fingerprint) VALUES (?, ?, ?)",
                (digest, name, canonical_json(fingerprint.model_dump(mode="json"))),
            )
        return digest

    def get_judge(self, digest: str) -> tuple[str, JudgeFingerprint] | None:
        row = self._conn.execute("SELECT name, fingerprint FROM judges WHERE digest=?", (digest,)).fetchone()
        if row is None:
            return None
        return row[0], JudgeFingerprint.model_validate(json.loads(row[1]))

    def judges(self) -> list[tuple[str, str]]:
        """(digest, name) of every judge that has stored judgments or was registered."""
        return [tuple(r) for r in self._conn.execute("SELECT digest, name FROM judges ORDER BY name")]

    def judge_digest(self, name_or_digest: str) -> str:
        """The digest of the one stored judge named ``name_or_digest`` or whose digest starts with it; an
        InputError listing the stored judges when none or several match (what the analysis commands' ``--judge``
        accepts)."""
        judges = self.judges()
        matches = [d for d, n in judges if n == name_or_digest or d.startswith(name_or_digest)]
        if len(matches) != 1:
            known = ", ".join(f"{n} ({d[:12]})" for d, n in judges) or "none"
            raise InputError(f"{len(matches)} judges match {name_or_digest!r}; stored judges: {known}")
        return matches[0]

    def _upsert_judgments(
        self,
        table: str,
        columns: Sequence[str],
        verdict: Sequence[str],
        judgments: Iterable[Judgment | ResponseJudgment],
        keys: Sequence[str] | None,
    ) -> int:
        """Insert ``judgments`` into ``table`` (its ``columns``, key first), where a stored 'ok' row is never
        replaced and a failed one takes the new ``verdict`` columns, completion, usage, latency, error and time,
        with attempts added up; then drop the claims on the keys. Returns rows written.

        Why one place: the rule that a paid-for verdict survives any later failure of the same question holds
        for both kinds of judgments. ``table`` and the columns are this module's constants, never user text.
        ``keys``: the judgments' keys, in order, when the caller already holds them (see :meth:`put_judgments`).
        A column is the record's field of the same name, except ``judge`` (the judge's digest), ``created_at``
        (ISO text) and the texts (:data:`_TEXT_COLUMNS`: stored once in ``texts``, referenced by hash).
        """
        judgments = list(judgments)
        keys = _keys_for(judgments, keys)
        rows: list[tuple[Any, ...]] = []
        hashes: dict[str, str] = {}  # each text hashed once per call (the reference repeats across pairs)
        for key, j in zip(keys, judgments, strict=True):
            row: list[Any] = [key]
            for column in columns[1:]:
                if column in _TEXT_COLUMNS:
                    text = getattr(j, column)
                    if text is None:
                        row.append(None)
                        continue
                    digest = hashes.get(text)
                    if digest is None:
                        digest = hashes[text] = sha256_text(text)
                    row.append(digest)
                elif column == "judge":
                    row.append(j.judge_digest)
                elif column == "created_at":
                    row.append(j.created_at.isoformat())
                else:
                    row.append(getattr(j, column))
            rows.append(tuple(row))
        if not rows:
            return 0
        updated = [*verdict, "raw_completion", "prompt_tokens", "completion_tokens", "cost_usd", "latency_s", "error"]
        upsert = (
            f"ON CONFLICT(key) DO UPDATE SET {', '.join(f'{c}=excluded.{c}' for c in updated)}, "
            f"attempts={table}.attempts + excluded.attempts, created_at=excluded.created_at "
            f"WHERE {table}.status != 'ok'"
        )
        with self.transaction() as conn:
            self._put_hashed_texts(conn, hashes)
            before = conn.total_changes
            self._insert_rows(conn, f"INSERT INTO {table}({', '.join(columns)})", rows, upsert)
            written = conn.total_changes - before
            self._delete_keys(conn, "claims", keys)
        return written

    def put_judgments(self, judgments: Iterable[Judgment], *, keys: Sequence[str] | None = None) -> int:
        """Store judgments; a stored 'ok' verdict is never replaced, a failed one is. Returns rows written.

        ``keys``: the judgments' keys, in order, when the caller already holds them (the annotation engine
        does: its tasks are keyed); saves hashing every judgment's texts again. They must be ``j.key``.
        """
        return self._upsert_judgments("judgments", _JUDGMENT_COLUMNS, _JUDGMENT_VERDICT, judgments, keys)

    def get_judgments(
        self,
        *,
        judge_digest: str | None = None,
        generator_1: str | None = None,
        generator_2: str | None = None,
        status: str | None = None,
    ) -> list[Judgment]:
        """Judgments filtered by judge, generators and status, in insertion order."""
        filters = (
            ("j.judge", judge_digest),
            ("j.generator_1", generator_1),
            ("j.generator_2", generator_2),
            ("j.status", status),
        )
        return [_record(Judgment, _JUDGMENT_COLUMNS, r) for r in self._select_where(_JUDGMENT_SELECT, filters)]

    def get_judgments_by_key(self, keys: Iterable[str]) -> dict[str, Judgment]:
        """Stored judgments for the given keys (missing keys are absent from the result)."""
        return {r[0]: _record(Judgment, _JUDGMENT_COLUMNS, r) for r in self._select_keys(_JUDGMENT_SELECT, keys)}

    def judged_keys(self, keys: Iterable[str], *, ok_only: bool = True) -> set[str]:
        """Which of ``keys`` already have a stored judgment (by default: an 'ok' one). Cheap: no text joins."""
        return self._stored_keys("judgments", keys, ok_only)

    def count_judgments(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM judgments").fetchone()[0])

    # -- judgments of one response ------------------------------------------------------------------------
    def put_response_judgments(
        self, judgments: Iterable[ResponseJudgment], *, keys: Sequence[str] | None = None
    ) -> int:
        """Store single-response judgments; a stored 'ok' one is never replaced, a failed one is.

        Like :meth:`put_judgments`: a paid-for verdict survives any later failure of the same question,
        attempts add up, and the claims on the written keys are dropped. Returns rows written. ``keys`` as
        for :meth:`put_judgments`.
        """
        return self._upsert_judgments("response_judgments", _RESPONSE_COLUMNS, _RESPONSE_VERDICT, judgments, keys)

    def get_response_judgments(
        self, *, judge_digest: str | None = None, generator: str | None = None, status: str | None = None
    ) -> list[ResponseJudgment]:
        """Single-response judgments filtered by judge, generator and status, in insertion order."""
        filters = (("j.judge", judge_digest), ("j.generator", generator), ("j.status", status))
        rows = self._select_where(_RESPONSE_SELECT, filters)
        return [_record(ResponseJudgment, _RESPONSE_COLUMNS, r) for r in rows]

    def get_response_judgments_by_key(self, keys: Iterable[str]) -> dict[str, ResponseJudgment]:
        """Stored single-response judgments for the given keys (missing keys are absent from the result)."""
        rows = self._select_keys(_RESPONSE_SELECT, keys)
        return {r[0]: _record(ResponseJudgment, _RESPONSE_COLUMNS, r) for r in rows}

    def judged_response_keys(self, keys: Iterable[str], *, ok_only: bool = True) -> set[str]:
        """Which of ``keys`` already have a stored single-response judgment (by default: an 'ok' one)."""
        return self._stored_keys("response_judgments", keys, ok_only)

    def count_response_judgments(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM response_judgments").fetchone()[0])

    # -- reading judgments of either kind (``select`` is one of this module's SELECTs over a table aliased j) --
    def _select_where(self, select: str, filters: Iterable[tuple[str, Any]]) -> list[Sequence[Any]]:
        """Rows of ``select`` whose columns equal the given values (None: any), in insertion order."""
        given = [(column, value) for column, value in filters if value is not None]
        where = " WHERE " + " AND ".join(f"{column}=?" for column, _ in given) if given else ""
        return list(self._conn.execute(select + where + " ORDER BY j.rowid", [value for _, value in given]))

    def _select_keys(self, select: str, keys: Iterable[str]) -> Iterator[Sequence[Any]]:
        """Rows of ``select`` (its first column the key) for ``keys``, asked 500 at a time (SQLite's bound
        parameter limit was 999 before 3.32)."""
        keys = list(keys)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            yield from self._conn.execute(select + f" WHERE j.key IN ({','.join('?' * len(chunk))})", chunk)

    def _stored_keys(self, table: str, keys: Iterable[str], ok_only: bool) -> set[str]:
        """Which of ``keys`` have a row in ``table`` (with ``ok_only``: an 'ok' one); no text joins."""
        keys = list(keys)
        done: set[str] = set()
        cond = " AND status='ok'" if ok_only else ""
        for start in range(0, len(keys), 900):
            chunk = keys[start : start + 900]
            marks = ",".join("?" * len(chunk))
            done.update(
                r[0] for r in self._conn.execute(f"SELECT key FROM {table} WHERE key IN ({marks}){cond}", chunk)
            )
        return done

    # -- claims: several processes sharing one store never pay for a judgment twice ---------------------
    def claim(self, keys: Sequence[str], owner: str, *, ttl_s: float = 300.0) -> list[str]:
        """Claim the keys that are neither judged 'ok' nor claimed by a live owner; returns those claimed.

        Keys of both kinds (pairwise and single-response judgments) share the claim table: they never collide.

        A claim expires after ``ttl_s`` so a killed process's work is picked up by the next run.
        """
        now = time.time()
        got: list[str] = []
        with self.transaction() as conn:
            conn.execute("DELETE FROM claims WHERE expires_at < ?", (now,))
            for start in range(0, len(keys), 300):  # 3 x 300 placeholders stay under SQLite's limit
                chunk = list(keys[start : start + 300])
                marks = ",".join("?" * len(chunk))
                taken = {
                    r[0]
                    for r in conn.execute(
                        f"SELECT key FROM judgments WHERE status='ok' AND key IN ({marks}) "
                        f"UNION SELECT key FROM response_judgments WHERE status='ok' AND key IN ({marks}) "
                        f"UNION SELECT key FROM claims WHERE key IN ({marks}) AND owner != ?",
                        [*chunk, *chunk, *chunk, owner],
                    )
                }
                free = [k for k in chunk if k not in taken]
                self._insert_rows(
                    conn,
                    "INSERT OR REPLACE INTO claims(key, owner, expires_at)",
                    [(k, owner, now + ttl_s) for k in free],
                )
                got += free
        return got

    def release(self, keys: Iterable[str], owner: str) -> None:
        keys = list(keys)
        with self.transaction() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                conn.execute(
                    f"DELETE FROM claims WHERE owner=? AND key IN ({','.join('?' * len(chunk))})", [owner, *chunk]
                )

    # -- leaderboard runs ------------------------------------------------------------------------------
    def put_run(
        self,
        *,
        eval_set_digest: str,
        reference_digest: str,
        judge_digest: str,
        generator: str,
        kind: str,
        result: dict[str, Any],
        manifest: RunManifest,
    ) -> int:
        """Record a computed result (e.g. kind='evaluate', 'import', 'generate') with its manifest; returns its id."""
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO runs(eval_set, reference, judge, generator, kind, result, manifest, created_at) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (
                    eval_set_digest,
                    reference_digest,
                    judge_digest,
                    generator,
                    kind,
                    json.dumps(result, default=str),
                    canonical_json(manifest.model_dump(mode="json")),
                    _now(),
                ),
            )
            return int(cur.lastrowid or 0)

    _RUN_SELECT = "SELECT id, eval_set, reference, judge, generator, kind, result, manifest, created_at FROM runs"

    def _run(self, r: Sequence[Any]) -> RunRecord:
        raw = json.loads(r[7])
        if "pasture_version" not in raw:
            # Runs written before manifests were typed (generator settings) held only provider and model.
            raw = {"pasture_version": "", "inputs": {k: str(v) for k, v in raw.items()}}
        try:
            manifest = RunManifest.model_validate(raw)
        except ValueError as exc:
            raise StoreError(f"{self.path}: run {r[0]} has an unreadable manifest ({exc})") from None
        return RunRecord(
            id=r[0],
            eval_set_digest=r[1],
            reference_digest=r[2],
            judge_digest=r[3],
            generator=r[4],
            kind=r[5],
            result=json.loads(r[6]),
            manifest=manifest,
            created_at=datetime.fromisoformat(r[8]),
        )

    def runs(
        self,
        *,
        kinds: Sequence[str] | None = None,
        eval_set_digest: str | None = None,
        reference_digest: str | None = None,
        judge_digest: str | None = None,
        generator: str | None = None,
    ) -> list[RunRecord]:
        """Every recorded run matching the filters (``kinds``: any of them), oldest first."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("eval_set", eval_set_digest),
            ("reference", reference_digest),
            ("judge", judge_digest),
            ("generator", generator),
        ):
            if value is not None:
                clauses.append(f"{column}=?")
                params.append(value)
        if kinds is not None:
            clauses.append(f"kind IN ({','.join('?' * len(kinds))})")
            params += list(kinds)
        sql = self._RUN_SELECT + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY id"
        return [self._run(r) for r in self._conn.execute(sql, params)]

    def latest_runs(
        self,
        *,
        eval_set_digest: str,
        reference_digest: str,
        judge_digest: str,
        kinds: Sequence[str] | None = None,
    ) -> list[RunRecord]:
        """The newest run per (generator, kind) on one leaderboard (``kinds``: only those), by generator."""
        newest: dict[tuple[str, str], RunRecord] = {}
        for run in self.runs(
            kinds=kinds, eval_set_digest=eval_set_digest, reference_digest=reference_digest, judge_digest=judge_digest
        ):
            newest[(run.generator, run.kind)] = run
        return [newest[k] for k in sorted(newest)]


def _keys_for(judgments: Sequence[Judgment | ResponseJudgment], keys: Sequence[str] | None) -> list[str]:
    """The judgments' keys: the ones given (their count checked), else computed from each judgment."""
    if keys is None:
        return [j.key for j in judgments]
    if len(keys) != len(judgments):
        raise StoreError(f"{len(keys)} keys given for {len(judgments)} judgments; pass one key per judgment")
    return list(keys)


def _now() -> str:
    return datetime.now().astimezone().isoformat()
