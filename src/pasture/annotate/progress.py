"""The engine's progress bar: judgments done, call rate, ETA, tokens and cost, on stderr.

Kept apart from the engine so the engine never imports a terminal library's state at import time, and so
``progress=False`` costs nothing.
"""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class ProgressBar:
    """A rich progress bar over the judgments of one run (cached ones count as done at the start)."""

    def __init__(self, total: int, *, description: str, enabled: bool = True) -> None:
        self.enabled = enabled
        self._start = time.monotonic()
        self._progress: Progress | None = None
        self._task = None
        if not enabled:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.1f} calls/s"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[tokens]:,} tok"),
            TextColumn("${task.fields[cost]:.4f}"),
            TextColumn("[red]{task.fields[failed]} failed"),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task(description, total=total, rate=0.0, tokens=0, cost=0.0, failed=0)

    def __enter__(self) -> ProgressBar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, *, completed: int, calls: int, tokens: int, cost: float, failed: int) -> None:
        """Show ``completed`` judgments resolved so far and the totals of this process's calls."""
        if self._progress is None or self._task is None:
            return
        elapsed = max(time.monotonic() - self._start, 1e-9)
        self._progress.update(
            self._task, completed=completed, rate=calls / elapsed, tokens=tokens, cost=cost, failed=failed
        )
