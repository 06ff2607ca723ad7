"""Runs come back from the store as typed RunRecords (with a RunManifest), through public methods."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pasture.errors import StoreError
from pasture.records import RunManifest, RunRecord
from pasture.store import Store


def _put(store: Store, generator: str, kind: str, *, judge: str = "j", note: str = "") -> int:
    return store.put_run(
        eval_set_digest="e",
        reference_digest="r",
        judge_digest=judge,
        generator=generator,
        kind=kind,
        result={"win_rate": 50.0},
        manifest=RunManifest(pasture_version="0.1.0", judge_name="judge", inputs={"position": "both"}, notes=(note,)),
    )


def test_runs_are_typed_filtered_and_newest_per_generator_and_kind(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        first = _put(store, "m1", "evaluate", note="old")
        second = _put(store, "m1", "evaluate", note="new")
        _put(store, "m2", "import")
        _put(store, "m3", "gamed")
        _put(store, "m4", "evaluate", judge="other")
        runs = store.runs(kinds=["evaluate", "import"], judge_digest="j")
        assert [r.generator for r in runs] == ["m1", "m1", "m2"] and second > first
        assert all(isinstance(r, RunRecord) and isinstance(r.manifest, RunManifest) for r in runs)
        assert runs[0].manifest.inputs == {"position": "both"} and runs[0].result == {"win_rate": 50.0}
        latest = store.latest_runs(eval_set_digest="e", reference_digest="r", judge_digest="j")
        assert [(r.generator, r.kind, r.id) for r in latest] == [
            ("m1", "evaluate", second),
            ("m2", "import", second + 1),
            ("m3", "gamed", second + 2),
        ]
        assert latest[0].manifest.notes == ("new",)


def test_untyped_manifests_of_older_stores_are_read_and_broken_ones_named(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        with store.transaction() as conn:
            conn.execute(
                "INSERT INTO runs(eval_set, reference, judge, generator, kind, result, manifest, created_at) "
                "VALUES ('e', '', '', 'gen', 'generate', '{}', ?, '2026-01-01T00:00:00+00:00')",
                (json.dumps({"provider": "llama_cpp", "model": "SmolLM2"}),),
            )
        (run,) = store.runs(kinds=["generate"])
        assert run.manifest.inputs == {"provider": "llama_cpp", "model": "SmolLM2"}
        with store.transaction() as conn:
            conn.execute(
                "INSERT INTO runs(eval_set, reference, judge, generator, kind, result, manifest, created_at) "
                "VALUES ('e', '', '', 'bad', 'generate', '{}', ?, '2026-01-01T00:00:00+00:00')",
                (json.dumps({"pasture_version": "x", "seeds": "not a dict"}),),
            )
        with pytest.raises(StoreError, match=r"run 2 has an unreadable manifest"):
            store.runs(kinds=["generate"])
