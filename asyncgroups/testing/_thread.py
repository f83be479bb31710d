"""The fake server on an event loop of its own, in a background thread, for sync tests.

A synchronous test (FastAPI's `TestClient`, Django, plain functions) blocks its thread
on each call; a fake on that thread's loop could never answer, and the test would hang.
`serve_in_thread` runs it on a loop in another thread instead. The server's state is
the loop's alone: a method marked `on_server_loop` called from any other thread is run
on that loop and waited for, so a test's `add_group` never interleaves with a request
being handled.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

if TYPE_CHECKING:
    from ._server import FakeGroupsServer

__all__ = ["ServingInThread", "on_server_loop", "serve_in_thread"]

F = TypeVar("F", bound=Callable[..., Any])

#: Seconds to wait for the loop thread to start or stop the server: it binds a local
#: port, so anything near this long means the thread is stuck.
_THREAD_TIMEOUT = 10.0


class ServingInThread:
    """What gives `FakeGroupsServer` its `in_thread()`."""

    #: The loop of `in_thread()` while it runs: calls from other threads are sent to it.
    _thread_loop: asyncio.AbstractEventLoop | None = None

    @contextlib.contextmanager
    def in_thread(self) -> Iterator[Self]:
        """Serve on an event loop of its own in a background thread, for synchronous tests.

        `with FakeGroupsServer().in_thread() as server:` starts the server and yields
        it; leaving the block stops it. A test blocked in a synchronous call (FastAPI's
        `TestClient`, say) would otherwise block the loop the fake answers on, and hang.
        Seeding and `inject` work from the test's thread: they run on the server's
        loop, between requests; what the server shows (`groups`, `requests`) is a copy.
        """
        with serve_in_thread(cast("FakeGroupsServer", self)):
            yield self


def on_server_loop(method: F) -> F:
    """Run `method` on the server's loop when called from another thread, and wait."""

    @functools.wraps(method)
    def call(server: FakeGroupsServer, /, *args: Any, **kwargs: Any) -> Any:
        loop = server._thread_loop
        if loop is None or _running_loop() is loop:
            return method(server, *args, **kwargs)
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(method(server, *args, **kwargs))
            except BaseException as err:
                done.set_exception(err)

        loop.call_soon_threadsafe(run)
        return done.result(_THREAD_TIMEOUT)

    return cast(F, call)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@contextlib.contextmanager
def serve_in_thread(server: FakeGroupsServer) -> Iterator[None]:
    """Start `server` on a new loop in a daemon thread; stop it, and the thread, on exit.

    A failure to start (the port taken, say) is raised here, in the caller's thread.
    """
    started: concurrent.futures.Future[asyncio.Event] = concurrent.futures.Future()
    thread = threading.Thread(
        target=asyncio.run, args=(_serve(server, started),), name="FakeGroupsServer", daemon=True
    )
    thread.start()
    try:
        stop = started.result(_THREAD_TIMEOUT)
    except BaseException:
        thread.join(_THREAD_TIMEOUT)
        raise
    loop = server._thread_loop
    assert loop is not None  # set by _serve before `started`
    try:
        yield
    finally:
        server._thread_loop = None  # from here, calls run in the caller's thread
        loop.call_soon_threadsafe(stop.set)
        thread.join(_THREAD_TIMEOUT)


async def _serve(
    server: FakeGroupsServer, started: concurrent.futures.Future[asyncio.Event]
) -> None:
    """The thread's main: start, say so, serve until told to stop, close."""
    try:
        await server.start()
    except Exception as err:
        started.set_exception(err)
        return
    stop = asyncio.Event()
    server._thread_loop = asyncio.get_running_loop()
    started.set_result(stop)
    try:
        await stop.wait()
    finally:
        await server.close()
