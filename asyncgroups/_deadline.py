"""Per-attempt time limits, kept with one loop timer instead of one each.

`asyncio.timeout()` schedules a timer handle for every use: a heap push of a Python
object compared in Python, a cancel, and a cancelled handle left in the loop's heap
until it comes due or the heap is rebuilt (where the pipeline uses this module, a
comment says what that costs per request). Every attempt under one `Deadlines` has the
same limit (the pipeline keeps one per length), so deadlines come in the order attempts
start: an insertion-ordered dict holds the attempts still running, and a single timer
waits for the oldest of them. Performs no I/O.

The cancellation semantics are those of `asyncio.timeout()` on every Python this
package supports (3.11 to 3.13): an expired attempt's task is cancelled, and leaving the
block with that `CancelledError` (or a subclass) raises `TimeoutError` instead, unless
something else cancelled the task too (`Task.uncancel()` then stays above the count
taken on entry). CPython 3.13's `asyncio/timeouts.py` (read in 3.13.0) changed one thing
beside that: when an expired block is left with some *other* exception, it links a
`TimeoutError` into that exception's `__context__` for the traceback's sake; which
exception propagates is unchanged, so this module does not copy it. Its tests, and the
pipeline's that time attempts out (tests/test_http.py, tests/integration/), pass on
CPython 3.13.0.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

__all__ = ["Deadlines"]


class _Watch:
    """One block under a deadline, entered with `with deadlines.watch():`."""

    __slots__ = ("_cancelling", "_owner", "_task", "deadline", "expired")

    def __init__(self, owner: Deadlines, task: asyncio.Task[Any], deadline: float) -> None:
        self._owner = owner
        self._task = task
        self._cancelling = task.cancelling()
        self.deadline = deadline
        #: True once the deadline passed and the task was cancelled for it.
        self.expired = False

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        owner = self._owner
        owner._running.pop(self, None)
        if owner.transient and not owner._running:
            owner._stop_timer()
        if (
            self.expired
            and self._task.uncancel() <= self._cancelling
            and exc_type is not None
            and issubclass(exc_type, asyncio.CancelledError)
        ):
            # No one else asked to cancel the task: this cancellation is ours.
            raise TimeoutError from exc

    def _expire(self) -> None:
        self.expired = True
        self._task.cancel()


class Deadlines:
    """Cancel each watched block `seconds` after it began; one per client and loop.

    A `transient` one, made for a few attempts and then dropped, stops its timer when
    no block is left under watch, so that nothing holds it after its last attempt.
    """

    __slots__ = ("_handle", "_loop", "_running", "seconds", "transient")

    def __init__(
        self, seconds: float, loop: asyncio.AbstractEventLoop, *, transient: bool = False
    ) -> None:
        self.seconds = seconds
        self.transient = transient
        self._loop = loop
        # The blocks still running, in the order they began: soonest deadline first.
        self._running: dict[_Watch, None] = {}
        self._handle: asyncio.TimerHandle | None = None

    def watch(self) -> _Watch:
        """A context manager that times out the current task after `seconds`."""
        task = asyncio.current_task(self._loop)
        if task is None:
            raise RuntimeError("a deadline must be used inside a task")
        watch = _Watch(self, task, self._loop.time() + self.seconds)
        self._running[watch] = None
        if self._handle is None:
            self._handle = self._loop.call_at(watch.deadline, self._fire)
        return watch

    @property
    def running(self) -> int:
        """Blocks under watch right now."""
        return len(self._running)

    def _stop_timer(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        """Expire every block whose deadline has passed; wait for the next one."""
        self._handle = None
        running = self._running
        now = self._loop.time()
        while running:
            watch = next(iter(running))
            if watch.deadline > now:
                self._handle = self._loop.call_at(watch.deadline, self._fire)
                return
            del running[watch]
            watch._expire()
