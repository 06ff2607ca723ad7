"""Reading tabular records from JSON, JSON Lines, CSV and Parquet (optionally gzipped) with located errors."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pasture.errors import InputError

SUPPORTED = (".json", ".jsonl", ".csv", ".parquet")


def _format_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for ext in SUPPORTED:
        if name.endswith(ext):
            return ext
    raise InputError(f"unsupported file type; expected one of {', '.join(SUPPORTED)} (optionally .gz)", path=path)


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise InputError("file not found", path=path)
    if path.is_dir():
        raise InputError("is a directory, expected a file", path=path)
    data = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"corrupt gzip data ({exc})", path=path) from None
    return data


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"not UTF-8 text (bad byte at line {line}, offset {exc.start})", path=path) from None


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """All rows of a file as dicts, in file order.

    JSON files must hold a list of objects (AlpacaEval's shape); JSON Lines one object per line.
    Raises :class:`InputError` naming the file and row for every malformed input, including empty files.
    """
    path = Path(path)
    fmt = _format_of(path)
    data = _read_bytes(path)
    if fmt == ".parquet":
        try:
            frame = pd.read_parquet(io.BytesIO(data))
        except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
            raise InputError(f"not a readable Parquet file ({type(exc).__name__}: {exc})", path=path) from None
        rows = _frame_rows(frame)
    else:
        text = _decode(data, path)
        if not text.strip():
            raise InputError("file is empty", path=path)
        if fmt == ".json":
            rows = _json_rows(text, path)
        elif fmt == ".jsonl":
            rows = _jsonl_rows(text, path)
        else:
            try:
                frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
            except Exception as exc:
                raise InputError(f"not a readable CSV file ({exc})", path=path) from None
            rows = _frame_rows(frame)
    if not rows:
        raise InputError("file has no rows", path=path)
    return rows


def _frame_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in rec.items()} for rec in frame.to_dict(orient="records")]


def _json_rows(text: str, path: Path) -> list[dict[str, Any]]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", path=path) from None
    if isinstance(value, Mapping):
        # pandas' column-oriented export {"col": {"0": v, ...}} is common in AlpacaEval land.
        if value and all(isinstance(v, Mapping) for v in value.values()):
            return _frame_rows(pd.DataFrame(value))
        raise InputError("expected a JSON list of objects, got a single object", path=path)
    if not isinstance(value, list):
        raise InputError(f"expected a JSON list of objects, got {type(value).__name__}", path=path)
    for i, row in enumerate(value, start=1):
        if not isinstance(row, Mapping):
            raise InputError(f"expected an object, got {type(row).__name__}", path=path, row=i)
    return [dict(r) for r in value]


def _jsonl_rows(text: str, path: Path) -> list[dict[str, Any]]:
    rows = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", path=path, row=i) from None
        if not isinstance(row, Mapping):
            raise InputError(f"expected an object, got {type(row).__name__}", path=path, row=i)
        rows.append(dict(row))
    return rows


def write_rows(rows: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write rows in the format the suffix names (.json, .jsonl, .csv, .parquet, optionally .gz)."""
    path = Path(path)
    fmt = _format_of(path)
    rows = [dict(r) for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == ".json":
        payload = json.dumps(rows, indent=2, ensure_ascii=False, default=str).encode("utf-8")
    elif fmt == ".jsonl":
        payload = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows).encode("utf-8")
    elif fmt == ".csv":
        payload = pd.DataFrame(rows).to_csv(index=False).encode("utf-8")
    else:
        buf = io.BytesIO()
        pd.DataFrame(rows).to_parquet(buf, index=False)
        payload = buf.getvalue()
    if path.name.lower().endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(payload)
    tmp.replace(path)
    return path


def require_text(row: Mapping[str, Any], field: str, *, path: Path | str, row_no: int) -> str:
    """A required string field, or a located error."""
    if field not in row:
        raise InputError("missing required field", path=path, row=row_no, field=field)
    value = row[field]
    if value is None or (isinstance(value, float) and value != value):
        raise InputError("is empty (null)", path=path, row=row_no, field=field)
    if not isinstance(value, str):
        raise InputError(f"expected text, got {type(value).__name__}", path=path, row=row_no, field=field)
    return value


def optional_text(row: Mapping[str, Any], field: str) -> str | None:
    value = row.get(field)
    if value is None or (isinstance(value, float) and value != value) or value == "":
        return None
    return str(value)
