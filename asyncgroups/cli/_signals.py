"""SIGTERM handled as Ctrl-C, and `run_loop`: how a command runs its event loop.

A container stop, `kill` or systemd sends SIGTERM; the command ends the run as it ends
one on Ctrl-C: the main task is cancelled from the event loop, so the cancellation
lands at an `await` (never between a state write and the line that reports it), every
`finally` runs (the journal synced, the sync state closed), and `KeyboardInterrupt`
then reaches the command's own handling. This holds whatever SIGINT's disposition: a
background job of a non-interactive shell starts with SIGINT ignored, so asyncio
installs no Ctrl-C handler to borrow.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Coroutine, Iterator
from types import FrameType
from typing import Any, Final, TypeVar

__all__ = ["TERMINATION", "Termination", "run_loop", "sigterm_as_interrupt"]

T = TypeVar("T")


class Termination:
    """The SIGTERM handler: remembers the signal, then interrupts the command.

    While `run_loop`'s event loop works, it cancels the main task from the loop; outside
    one (parsing, a question on the terminal) it raises `KeyboardInterrupt` at once,
    as Ctrl-C does there.
    """

    __slots__ = ("_main", "_running", "received")

    def __init__(self) -> None:
        self.received = False
        self._running = False
        self._main: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received = True
        if self._main is not None:
            loop, task = self._main
            loop.call_soon_threadsafe(task.cancel)
        elif not self._running:
            raise KeyboardInterrupt
        # else: the loop is starting or closing; `run_loop` interrupts once it returns

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Mark an event loop of `run_loop` as working: a SIGTERM meanwhile only cancels."""
        self._running = True
        try:
            yield
        finally:
            self._running = False

    async def main(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Await `coroutine` as the task SIGTERM cancels."""
        task = asyncio.current_task()
        assert task is not None, "awaited by asyncio.Runner.run, as its task"
        self._main = (asyncio.get_running_loop(), task)
        try:
            if self.received:  # it came while the loop was starting
                coroutine.close()
                raise asyncio.CancelledError
            return await coroutine
        finally:
            self._main = None  # the loop may close from here on


#: The one handler of this process (only the main thread handles signals).
TERMINATION: Final = Termination()


def run_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coroutine)`, with SIGTERM ending it as Ctrl-C does.

    Ctrl-C is asyncio's own (it cancels the main task, then raises
    `KeyboardInterrupt`); SIGTERM cancels the main task the same way, and then raises
    `KeyboardInterrupt` here. Outside the main thread it is plain `asyncio.run`.
    """
    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(coroutine)
    try:
        with TERMINATION.running(), asyncio.Runner() as runner:
            result = runner.run(TERMINATION.main(coroutine))
    except asyncio.CancelledError:
        if not TERMINATION.received:
            raise
        raise KeyboardInterrupt from None
    if TERMINATION.received:  # it came as the loop closed, or the task caught it
        raise KeyboardInterrupt
    return result


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[Termination]:
    """Handle SIGTERM as Ctrl-C while the command runs (only the main thread can)."""
    TERMINATION.received = False
    if threading.current_thread() is not threading.main_thread():
        yield TERMINATION
        return
    previous = signal.signal(signal.SIGTERM, TERMINATION)
    try:
        yield TERMINATION
    finally:
        signal.signal(signal.SIGTERM, previous)
