"""Progress of bulk work on stderr: a rich bar, a plain one-line fallback, or nothing.

A bar is drawn only when stderr is a terminal, so logs and CI output stay clean. rich
comes from the `cli` extra and is imported only here, only when a bar is drawn: the
core install does not need it, and without it a plain line is redrawn instead.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final, Protocol

from ._common import KeyOutcome
from ._io import is_terminal, printable, say

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["Bar", "progress_bar"]

#: The plain fallback redraws at most this often, in seconds.
_PLAIN_EVERY: Final = 0.2


class Bar(Protocol):
    """What bulk commands report to: one `advance` per key, `log` for a line to keep."""

    #: Keys counted so far, by how they ended (`deleted` keys count as `ok`).
    counts: dict[KeyOutcome, int]

    def advance(self, kind: KeyOutcome) -> None:
        """Count one finished key."""

    def log(self, line: str) -> None:
        """Print a line to stderr above the bar (a failure, say), control characters escaped."""

    def expect(self, total: int | None) -> None:
        """Set how many keys there are in all, once that is known (or grows)."""


class _Counts:
    __slots__ = ("counts", "started", "total")

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.started = time.monotonic()
        self.counts: dict[KeyOutcome, int] = {"ok": 0, "missing": 0, "failed": 0, "skipped": 0}

    def count(self, kind: KeyOutcome) -> None:
        """Count one finished key; a delete that succeeded counts as `ok`."""
        self.counts["ok" if kind == "deleted" else kind] += 1

    def expect(self, total: int | None) -> None:
        self.total = total

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def detail(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        parts = [f"{self.done / elapsed:,.0f}/s"]
        parts += [f"{n:,} {kind}" for kind, n in self.counts.items() if n and kind != "ok"]
        return " · ".join(parts)


class _Quiet(_Counts):
    """No bar (stderr is not a terminal): lines still reach stderr."""

    def advance(self, kind: KeyOutcome) -> None:
        self.count(kind)

    def log(self, line: str) -> None:
        say(line)


class _Plain(_Counts):
    """One status line redrawn with `\\r`, for terminals without rich installed."""

    __slots__ = ("_description", "_drawn_at", "_width")

    def __init__(self, description: str, total: int | None) -> None:
        super().__init__(total)
        self._description = description
        self._drawn_at = 0.0
        self._width = 0

    def advance(self, kind: KeyOutcome) -> None:
        self.count(kind)
        now = time.monotonic()
        if now - self._drawn_at >= _PLAIN_EVERY:
            self._drawn_at = now
            self.draw()

    def log(self, line: str) -> None:
        self._clear()
        say(line)
        self.draw()

    def draw(self) -> None:
        total = f"{self.total:,}" if self.total is not None else "?"
        text = f"{self._description}: {self.done:,}/{total} ({self.detail()})"
        sys.stderr.write("\r" + text.ljust(self._width))
        sys.stderr.flush()
        self._width = len(text)

    def _clear(self) -> None:
        if self._width:
            sys.stderr.write("\r" + " " * self._width + "\r")
            self._width = 0

    def finish(self) -> None:
        self.draw()
        sys.stderr.write("\n")
        sys.stderr.flush()


class _Rich(_Counts):
    """A rich progress bar on stderr; logged lines scroll above it."""

    __slots__ = ("_progress", "_task")

    def __init__(self, progress: Progress, task: TaskID, total: int | None) -> None:
        super().__init__(total)
        self._progress = progress
        self._task = task

    def advance(self, kind: KeyOutcome) -> None:
        self.count(kind)
        self._progress.update(self._task, advance=1, detail=self.detail())

    def log(self, line: str) -> None:
        self._progress.console.print(printable(line), markup=False, highlight=False, soft_wrap=True)

    def expect(self, total: int | None) -> None:
        super().expect(total)
        self._progress.update(self._task, total=total)


def _rich_progress() -> Progress | None:
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
    except ImportError:
        return None
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
        console=Console(file=sys.stderr),
        # rich would send stdout through the bar's console, which is stderr: the JSON
        # then missed `> out.jsonl`. Only a stdout on the terminal is drawn above the bar.
        redirect_stdout=is_terminal(sys.stdout),
    )


@contextlib.contextmanager
def progress_bar(
    description: str, total: int | None = None, *, show: bool | None = None
) -> Iterator[Bar]:
    """A bar for `total` keys (None: unknown); drawn when `show`, default: stderr is a tty."""
    if show is None:
        show = is_terminal(sys.stderr)
    if not show:
        yield _Quiet(total)
        return
    progress = _rich_progress()
    if progress is None:
        plain = _Plain(description, total)
        try:
            yield plain
        finally:
            plain.finish()
        return
    with progress:
        task = progress.add_task(description, total=total, detail="")
        yield _Rich(progress, task, total)
