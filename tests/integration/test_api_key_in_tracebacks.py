"""The API key stays out of tracebacks rendered with frame locals, over real sockets.

`log.exception()` through structlog's `dict_tracebacks`, `traceback` with
`capture_locals=True`, pytest's `-l` and rich's `show_locals` all print the repr of every
local of every frame, ours and aiohttp's. Each failure a user meets (a 5xx, a refused
connection, a timeout, a 401, a dropped connection) is raised here for real, and the
frames of its traceback (and of its causes) are searched for the key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import socket
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator, Mapping
from types import BuiltinFunctionType, CodeType, FrameType, FunctionType, MethodType, ModuleType

import aiohttp
import pytest
import structlog
from conftest import local_client
from rich.traceback import Traceback

from asyncgroups import (
    AsyncGroupsError,
    AuthenticationError,
    GroupsClient,
    NewGroup,
    RequestTimeout,
    RetryPolicy,
    ServerError,
    TransportError,
)
from asyncgroups.testing import FakeGroupsServer

#: Longer than the 80 characters after which rich and structlog cut a string and show
#: the repr of the cut: the slice must not show the key either.
KEY = "sk_live_" + "0123456789abcdef" * 7
WRONG_KEY = "sk_live_the_server_knows_another_key"
PROKEY = "31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa"
TWO_ATTEMPTS = RetryPolicy(max_attempts=2, backoff_base=0.0, backoff_max=0.0, jitter=False)

#: Objects whose insides are not the failed request's: following them would reach the
#: event loop, every other task, and the fake server (which holds the key it received).
#: Transports, protocols, sockets and buffers are followed.
_OPAQUE = (
    type,
    ModuleType,
    FunctionType,
    BuiltinFunctionType,
    MethodType,
    CodeType,
    FrameType,
    Coroutine,
    Generator,
    asyncio.AbstractEventLoop,
    asyncio.Future,
    asyncio.Handle,
)


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _exceptions(error: BaseException) -> Iterator[BaseException]:
    """`error`, its causes and contexts, and the members of exception groups."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        exc = todo.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        yield exc
        todo += [e for e in (exc.__cause__, exc.__context__) if e is not None]
        if isinstance(exc, BaseExceptionGroup):
            todo += list(exc.exceptions)


def _children(value: object) -> Iterator[tuple[str, object]]:
    """What a repr-walker looks inside: mapping items, elements, attributes and slots."""
    if isinstance(value, str | bytes | bytearray | int | float | complex | bool | None):
        return
    if isinstance(value, _OPAQUE):
        return
    items = getattr(value, "items", None)
    if isinstance(value, Mapping) or (callable(items) and hasattr(value, "getall")):
        for k, v in list(value.items()):  # type: ignore[attr-defined]
            yield f"[{k!r}]", k
            yield f"[{k!r}]", v
        return
    if isinstance(value, list | tuple | set | frozenset | deque):
        for i, item in enumerate(list(value)):
            yield f"[{i}]", item
        return
    names: list[str] = list(getattr(value, "__dict__", {}))
    for cls in type(value).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        names += [slots] if isinstance(slots, str) else list(slots)
    for name in dict.fromkeys(names):
        try:
            yield f".{name}", getattr(value, name)
        except Exception:  # noqa: S112 - an unset slot, a property that raises
            continue


def _leaks(
    error: BaseException,
    secret: str,
    depth: int = 6,
    walked: set[str] | None = None,
    *,
    own_frames: bool = False,
) -> list[str]:
    """Where in `error`'s tracebacks a repr of a local (or of what it holds) shows `secret`.

    The frames of this test module are the caller's, holding the fake server (and its
    key) on purpose: they are skipped unless `own_frames`. `walked`, when given,
    collects the modules of the types of every object looked at.
    """
    found: list[str] = []
    seen: set[int] = set()

    def visit(path: str, value: object, level: int) -> None:
        if id(value) in seen:
            return
        seen.add(id(value))
        if walked is not None:
            walked.add(type(value).__module__)
        try:
            shown = repr(value)
        except Exception:
            shown = ""
        if secret in shown:
            found.append(f"{path}: {shown[:120]}")
        if level < depth:
            for step, child in _children(value):
                visit(path + step, child, level + 1)

    for exc in _exceptions(error):
        visit(f"{type(exc).__name__}", exc, 0)
        for frame, _ in traceback.walk_tb(exc.__traceback__):
            if frame.f_code.co_filename == __file__ and not own_frames:
                continue
            where = f"{frame.f_code.co_filename.rsplit('/', 2)[-2:]}:{frame.f_code.co_name}"
            for name, value in frame.f_locals.items():
                visit(f"{where} {name}", value, 0)
    return found


def _renderings(error: BaseException) -> dict[str, str]:
    """The error as each locals-showing traceback renderer writes it."""
    captured = "".join(
        traceback.TracebackException.from_exception(error, capture_locals=True).format()
    )
    # What rich prints for each frame's locals (rendering whole panels would highlight
    # every source file, at half a second a traceback), then its exception lines.
    trace = Traceback.extract(type(error), error, error.__traceback__, show_locals=True)
    rich_text = "\n".join(
        f"{name} = {node.render()}"
        for stack in trace.stacks
        for frame in stack.frames
        for name, node in (frame.locals or {}).items()
    ) + "".join(f"\n{stack.exc_type}: {stack.exc_value}" for stack in trace.stacks)
    event = structlog.processors.dict_tracebacks(None, "error", {"exc_info": error})
    pytest_repr = pytest.ExceptionInfo.from_exception(error).getrepr(showlocals=True)
    return {
        "traceback(capture_locals=True)": captured,
        "rich show_locals": rich_text,
        "structlog dict_tracebacks": json.dumps(event, default=repr),
        "pytest -l": str(pytest_repr),
    }


@dataclasses.dataclass
class Caught:
    """A call's error, searched the moment it was caught (the client still open)."""

    error: BaseException
    server: FakeGroupsServer | None = None
    leaks: list[str] = dataclasses.field(default_factory=list, repr=False)
    walked: set[str] = dataclasses.field(default_factory=set, repr=False)
    renderings: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)


Scenario = Callable[[], Awaitable[Caught]]


async def _caught(call: Callable[[], Awaitable[object]]) -> Caught:
    try:
        await call()
    except AsyncGroupsError as err:
        # As a `log.exception()` in the caller's except block would see it.
        caught = Caught(err)
        caught.leaks = _leaks(err, KEY, walked=caught.walked)
        caught.renderings = _renderings(err)
        return caught
    raise AssertionError("the call did not fail")


#: A client that sends `KEY` (whatever key its server expects), trying twice.
_client = functools.partial(local_client, api_key=KEY, retry=TWO_ATTEMPTS)


async def _server_error() -> Caught:
    async with FakeGroupsServer(api_key=KEY) as server, _client(server) as client:
        server.inject(status=500, times=2, method="GET")
        caught = await _caught(lambda: client.groups.get(PROKEY))
    caught.server = server
    return caught


async def _server_echoing_the_key() -> Caught:
    # A server that writes the key back, in its message and as the request id: the
    # error masks it, and neither may a local of any frame (the reply's raw bytes, its
    # headers) show it.
    async with FakeGroupsServer(api_key=KEY) as server, _client(server) as client:
        body = {"message": f"bad key {KEY}", "echo": KEY.replace("_", "\\u005f")}
        for status in (502, 400):
            server.inject(status=status, method="GET", body=body, headers={"X-Request-Id": KEY})
        caught = await _caught(lambda: client.groups.get(PROKEY))
    caught.server = server
    return caught


async def _server_error_on_create() -> Caught:
    async with FakeGroupsServer(api_key=KEY) as server, _client(server) as client:
        server.inject(status=500, method="POST")
        caught = await _caught(lambda: client.groups.create(NewGroup("Team")))
    caught.server = server
    return caught


async def _refused() -> Caught:
    async with _client(f"http://127.0.0.1:{_unused_port()}") as client:
        return await _caught(lambda: client.groups.get(PROKEY))


async def _timeout() -> Caught:
    async with (
        FakeGroupsServer(api_key=KEY) as server,
        _client(server, timeout=0.05) as client,
    ):
        server.inject(delay=2.0, times=2, method="GET")
        caught = await _caught(lambda: client.groups.get(PROKEY))
    caught.server = server
    return caught


async def _unauthorized() -> Caught:
    async with FakeGroupsServer(api_key=WRONG_KEY) as server, _client(server) as client:
        caught = await _caught(lambda: client.groups.get(PROKEY))
    caught.server = server
    return caught


async def _reset() -> Caught:
    async with FakeGroupsServer(api_key=KEY) as server, _client(server) as client:
        server.inject(reset=True, times=2, method="GET")
        caught = await _caught(lambda: client.groups.get(PROKEY))
    caught.server = server
    return caught


def _closing_before_the_write() -> aiohttp.TraceConfig:
    """A trace hook that closes the connection once the request head is serialised.

    What a stale keep-alive connection does when the server's FIN lands just as the
    request is written: aiohttp's writer then raises with the serialised head, the
    Authorization header among it, in its frames. (The hook reaches the connection
    through the connector's private set of acquired ones: test-only.)
    """

    async def close(session: aiohttp.ClientSession, ctx: object, params: object) -> None:
        for protocol in list(session.connector._acquired):  # type: ignore[union-attr]
            protocol.transport.close()

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(close)
    return trace


async def _closed_before_the_write() -> Caught:
    async with (
        FakeGroupsServer(api_key=KEY) as server,
        _client(server, trace_configs=[_closing_before_the_write()]) as client,
    ):
        caught = await _caught(lambda: client.groups.get(PROKEY))
    return caught


async def _closed_before_the_body() -> Caught:
    async with (
        FakeGroupsServer(api_key=KEY) as server,
        _client(server, trace_configs=[_closing_before_the_write()]) as client,
    ):
        caught = await _caught(lambda: client.groups.create(NewGroup("Team")))
    return caught


#: Each failure, the error it raises, and whether aiohttp's own frames are in its
#: traceback (a transport failure), not only aiohttp objects held by our frames.
SCENARIOS: dict[str, tuple[Scenario, type[BaseException], bool]] = {
    "500": (_server_error, ServerError, False),
    "500 on create": (_server_error_on_create, ServerError, False),
    "a reply echoing the key": (_server_echoing_the_key, AsyncGroupsError, False),
    "refused connection": (_refused, TransportError, True),
    "timeout": (_timeout, RequestTimeout, True),
    "401": (_unauthorized, AuthenticationError, False),
    "connection reset": (_reset, TransportError, True),
    "closed before the request was written": (_closed_before_the_write, TransportError, True),
    "closed before the body was written": (_closed_before_the_body, TransportError, True),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_request_error_tracebacks_never_show_the_api_key_in_any_local(
    scenario: str,
) -> None:
    run, expected, in_aiohttp_frames = SCENARIOS[scenario]
    caught = await run()
    error = caught.error
    assert isinstance(error, expected)
    if caught.server is not None:  # the key was sent, exactly, on every attempt
        sent = [r.headers.get("Authorization") for r in caught.server.requests]
        assert sent
        assert all(value == KEY for value in sent)
    # Searched while the client was open, and again once it is closed.
    assert caught.leaks == []
    assert _leaks(error, KEY) == []
    # The search went through aiohttp's objects (the session, the request and response,
    # the request info and its headers) and, for transport failures, aiohttp's frames.
    assert {"aiohttp.client", "aiohttp.client_reqrep"} <= caught.walked
    assert any(module.startswith("multidict") for module in caught.walked)
    files = [
        frame.f_code.co_filename
        for exc in _exceptions(error)
        for frame, _ in traceback.walk_tb(exc.__traceback__)
    ]
    assert any("/aiohttp/" in name for name in files) is in_aiohttp_frames
    for renderer, text in {**caught.renderings, **_renderings(error)}.items():
        assert KEY not in text, renderer
        assert KEY[:40] not in text, renderer  # nor a cut of it
    assert KEY not in repr(error)
    assert KEY not in str(error)


async def test_the_leak_finder_finds_a_plain_key_in_a_local() -> None:
    """The search above can fail: a key held as a plain string is found at once."""

    def fails_with_the_key_in_a_local() -> None:
        headers = {"Authorization": str(KEY)}
        raise RuntimeError(f"{len(headers)} header(s)")

    with pytest.raises(RuntimeError) as info:
        fails_with_the_key_in_a_local()
    assert _leaks(info.value, KEY, own_frames=True) != []
    # rich and structlog cut long strings: the cut still shows the key's start.
    assert all(KEY[:40] in text for text in _renderings(info.value).values())


async def test_client_repr_and_pipeline_hold_the_key_only_masked() -> None:
    client = GroupsClient(KEY, base_url="http://127.0.0.1:9/v1", rate_limit=None)
    try:
        shown = [repr(client), repr(vars(client)), repr(client.groups)]
        assert not [text for text in shown if KEY in text]
        assert _leaks_in(client) == []
    finally:
        await client.close()


def _leaks_in(value: object) -> list[str]:
    try:
        raise RuntimeError("holder")
    except RuntimeError as err:
        holder = value  # a local of this frame, walked like any other
        assert holder is value
        return _leaks(err, KEY, own_frames=True)
