"""Every kind of bad input is a one-line error naming file, row and field, and loses nothing stored."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pasture import InputError, Store, import_annotations, import_outputs, read_eval_set

GOOD_ROW = {
    "instruction": "Name a prime number.",
    "output_1": "2",
    "generator_1": "ref",
    "output_2": "Seven is prime.",
    "generator_2": "model",
    "annotator": "weighted_alpaca_eval_gpt4_turbo",
    "preference": 1.8,
}


def _write(path: Path, rows: object) -> Path:
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


@pytest.fixture()
def store_with_data(tmp_path: Path) -> Store:
    """A real store that already holds two judgments, which no failed import may touch."""
    good = _write(
        tmp_path / "good.json", [GOOD_ROW, {**GOOD_ROW, "instruction": "Name an even number.", "preference": 1.1}]
    )
    store = Store(tmp_path / "pasture.db")
    import_annotations(store, [good])
    assert store.count_judgments() == 2
    return store


def _assert_nothing_lost(store: Store) -> None:
    judgments = store.get_judgments()
    assert len(judgments) == 2
    assert sorted(j.preference for j in judgments) == [1.1, 1.8]  # type: ignore[type-var]


BAD_CASES = {
    "missing field": ([{k: v for k, v in GOOD_ROW.items() if k != "output_2"}], "row 1: field 'output_2': missing"),
    "preference above 2": ([{**GOOD_ROW, "preference": 2.5}], "row 1: field 'preference': must be in [1, 2]"),
    "preference below 1": (
        [GOOD_ROW, {**GOOD_ROW, "instruction": "x", "preference": 0.2}],
        "row 2: field 'preference'",
    ),
    "preference not a number": ([{**GOOD_ROW, "preference": "model"}], "field 'preference': expected a number"),
    "duplicated instruction": ([GOOD_ROW, {**GOOD_ROW, "preference": 1.2}], "row 2: field 'instruction': duplicated"),
    "wrong JSON shape": ({"instruction": "a"}, "expected a JSON list of objects"),
    "list of non-objects": ([GOOD_ROW, 3], "row 2: expected an object, got int"),
    "mixed annotators": (
        [GOOD_ROW, {**GOOD_ROW, "instruction": "x", "annotator": "my_judge"}],
        "mixed file: 2 annotators (1 rows by 'my_judge', 1 rows by 'weighted_alpaca_eval_gpt4_turbo')",
    ),
    "draw coded 0.5": ([{**GOOD_ROW, "preference": 0.5}], "must be in [1, 2] or 0 (draw)"),
    "empty list": ([], "file has no rows"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_annotation_files(case: str, tmp_path: Path, store_with_data: Store) -> None:
    rows, message = BAD_CASES[case]
    path = _write(tmp_path / "bad.json", rows)
    with pytest.raises(InputError) as err:
        import_annotations(store_with_data, [path])
    text = str(err.value)
    assert text.startswith(str(path)), text
    assert message in text
    assert "\n" not in text
    _assert_nothing_lost(store_with_data)


def test_a_bad_second_file_writes_nothing_of_the_first(tmp_path: Path, store_with_data: Store) -> None:
    fresh = _write(tmp_path / "fresh.json", [{**GOOD_ROW, "instruction": "Name a colour."}])
    bad = _write(tmp_path / "bad.json", [{**GOOD_ROW, "preference": 3}])
    with pytest.raises(InputError):
        import_annotations(store_with_data, [fresh, bad])
    _assert_nothing_lost(store_with_data)


def test_preference_strings_are_coerced(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.json", [{**GOOD_ROW, "preference": " 1.25 "}])
    with Store(tmp_path / "s.db") as store:
        import_annotations(store, [path])
        assert store.get_judgments()[0].preference == 1.25


def test_missing_verdict_is_imported_as_failed_not_dropped(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.json", [{**GOOD_ROW, "preference": None}])
    with Store(tmp_path / "s.db") as store:
        [report] = import_annotations(store, [path])
        assert (report.rows, report.failed) == (1, 1)
        [j] = store.get_judgments()
        assert j.status == "parse_error" and j.preference is None


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        ("empty.json", b"", "file is empty"),
        ("blank.json", b"  \n ", "file is empty"),
        ("latin1.json", '[{"instruction": "caf\xe9"}]'.encode("latin-1"), "not UTF-8 text (bad byte at line 1"),
        ("broken.json", b'[{"instruction": "a",}]', "invalid JSON at line 1"),
        ("broken.json.gz", b"this is not gzip", "corrupt gzip data"),
        ("truncated.json.gz", gzip.compress(b'[{"instruction": "a"}]', mtime=0)[:-6], "corrupt gzip data"),
        ("rows.jsonl", b'{"instruction": "a"}\n{"instruction": \n', "row 2: invalid JSON"),
        ("table.xlsx", b"PK", "unsupported file type"),
        ("table.parquet", b"not parquet at all", "not a readable Parquet file"),
    ],
)
def test_unreadable_files(name: str, payload: bytes, message: str, tmp_path: Path, store_with_data: Store) -> None:
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(InputError, match=None) as err:
        import_annotations(store_with_data, [path])
    assert message in str(err.value)
    assert str(err.value).startswith(str(path))
    _assert_nothing_lost(store_with_data)


def test_missing_file(tmp_path: Path, store_with_data: Store) -> None:
    with pytest.raises(InputError, match="file not found"):
        import_annotations(store_with_data, [tmp_path / "nope.json"])
    _assert_nothing_lost(store_with_data)


def test_outputs_against_an_eval_set(tmp_path: Path) -> None:
    eval_set = read_eval_set(_write(tmp_path / "set.json", [{"instruction": "a"}, {"instruction": "b"}]))
    unknown = _write(
        tmp_path / "out.json", [{"instruction": "a", "output": "x"}, {"instruction": "zzz", "output": "y"}]
    )
    dup = _write(tmp_path / "dup.json", [{"instruction": "a", "output": "x"}, {"instruction": "a", "output": "y"}])
    no_gen = _write(tmp_path / "nogen.json", [{"instruction": "a", "output": "x"}])
    with Store(tmp_path / "s.db") as store:
        ok = _write(tmp_path / "ok.json", [{"instruction": "b", "output": "fine", "generator": "m"}])
        import_outputs(store, ok, eval_set=eval_set)
        with pytest.raises(InputError, match="row 2: field 'instruction': instruction not in eval set"):
            import_outputs(store, unknown, eval_set=eval_set, generator="m")
        with pytest.raises(InputError, match="row 2: field 'instruction': duplicated instruction for generator 'm'"):
            import_outputs(store, dup, eval_set=eval_set, generator="m")
        with pytest.raises(InputError, match="row 1: field 'generator': missing generator"):
            import_outputs(store, no_gen, eval_set=eval_set)
        assert [o.output for o in store.get_outputs(eval_set.digest)] == ["fine"]


def test_duplicated_instruction_in_an_eval_set(tmp_path: Path) -> None:
    path = _write(tmp_path / "set.json", [{"instruction": "a"}, {"instruction": "b"}, {"instruction": "a"}])
    with pytest.raises(
        InputError, match="row 3: field 'instruction': duplicated instruction \\(first seen at row 1\\)"
    ):
        read_eval_set(path)


def test_several_samples_need_sample_index(tmp_path: Path) -> None:
    eval_set = read_eval_set(_write(tmp_path / "set.json", [{"instruction": "a"}]))
    rows = [
        {"instruction": "a", "output": "x", "sample_index": 0},
        {"instruction": "a", "output": "y", "sample_index": 1},
    ]
    with Store(tmp_path / "s.db") as store:
        import_outputs(store, _write(tmp_path / "o.json", rows), eval_set=eval_set, generator="m")
        assert sorted(o.output for o in store.get_outputs(eval_set.digest)) == ["x", "y"]


def test_cli_prints_one_line_not_a_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.json", [{**GOOD_ROW, "preference": 7}])
    proc = subprocess.run(
        [sys.executable, "-m", "pasture.cli", "import", str(path), "--store", str(tmp_path / "s.db")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == f"pasture: error: {path}: row 1: field 'preference': must be in [1, 2] or 0 (draw), got 7.0"
    )
    assert "Traceback" not in proc.stderr
