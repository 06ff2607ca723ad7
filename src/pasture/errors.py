"""Errors that pasture shows to users as one clear line, never a traceback."""

from __future__ import annotations

from pathlib import Path


class PastureError(Exception):
    """Base class: the CLI prints ``str(error)`` and exits with status 2.

    ``param`` names the Python parameter (or setting) whose value is wrong or missing, when there is one,
    e.g. ``"template"``. Deep code never names a command-line flag, since the same parameter has a
    different flag in each command (``--judge-template`` in ``pasture evaluate``); the CLI maps ``param``
    to its own flag (``flag``, set by ``pasture.cli.options``). ``str(error)`` names the parameter.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        self.message = message
        self.param = param
        self.flag: str | None = None
        super().__init__(f"{message} (parameter '{param}')" if param is not None else message)


class InputError(PastureError):
    """Bad user input, located as precisely as possible: file, row (1-based) and field."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        row: int | None = None,
        field: str | None = None,
        param: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.row = row
        self.field = field
        where = []
        if self.path is not None:
            where.append(self.path)
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ": ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message, param=param)


class StoreError(PastureError):
    """The store file is unusable (newer schema, corrupt, locked past the timeout)."""


class JudgeError(PastureError):
    """A judge is misconfigured or unknown."""
