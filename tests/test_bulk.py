"""Bulk calls over small misbehaving servers: one key's bad reply never sinks the batch,
and a call that cannot reach the API at all stops sending (the pure rule: `test_breaker.py`).

Each test runs a tiny aiohttp.web app or a raw socket on 127.0.0.1 (the fake server
cannot misbehave in these ways; it serves only the untrusted-certificate case); clients
use no rate limit and no backoff, so nothing sleeps for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from conftest import local_client

from asyncgroups import (
    AuthenticationError,
    BulkResult,
    GroupsClient,
    NotFoundError,
    Outcome,
    RateLimitError,
    RequestTimeout,
    RetryPolicy,
    ServerError,
    TransportError,
    UnexpectedResponseError,
)
from asyncgroups._breaker import FAILURES_TO_STOP, TIMEOUTS_TO_STOP
from asyncgroups.testing import FakeGroupsServer

if TYPE_CHECKING:
    from conftest import Serve

GROUP = [{"name": "Team", "status": "published", "events": []}]
#: A JSON array nested 100,000 deep: `json.loads` raises RecursionError on it.
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _keys(count: int) -> list[str]:
    return [f"{i:08x}-0000-4000-8000-000000000000" for i in range(count)]


def _app(handler: Handler) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


def _one_deep_reply(bad_key: str, status: int) -> Handler:
    """Answer every key with a group, except `bad_key`: JSON nested 100,000 deep."""

    async def handler(request: web.Request) -> web.Response:
        if request.path.endswith(bad_key):
            return web.Response(status=status, body=DEEP_JSON, content_type="application/json")
        if request.method == "DELETE":
            return web.json_response({"success": "Deleted"})
        return web.json_response(GROUP)

    return handler


# One hostile reply among good ones ---------------------------------------------------

_DEEP_CASES = [(200, UnexpectedResponseError), (404, NotFoundError), (500, ServerError)]


@pytest.mark.parametrize(("status", "expected"), _DEEP_CASES)
async def test_get_many_keeps_every_good_result_when_one_reply_is_nested_too_deep(
    serve: Serve, status: int, expected: type[Exception]
) -> None:
    keys = _keys(200)
    base = await serve(_app(_one_deep_reply(keys[137], status)))
    async with local_client(base) as client:
        result = await client.groups.get_many(keys)
    assert len(result.ok) == 199
    assert keys[137] not in result.ok
    if expected is NotFoundError:
        assert result.missing == [keys[137]]
    else:
        assert isinstance(result.failed[keys[137]], expected)


async def test_delete_many_against_a_web_page_deletes_nothing_it_reports_done(
    serve: Serve,
) -> None:
    # A wrong base URL (or a captive portal) answers every request 200 with a page.
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><h1>Welcome</h1>", content_type="text/html")

    keys = _keys(5)
    base = await serve(_app(page))
    async with local_client(base) as client:
        result = await client.groups.delete_many(keys)
    assert result.ok == {}
    assert result.missing == []
    assert set(result.failed) == set(keys)
    assert all(isinstance(err, UnexpectedResponseError) for err in result.failed.values())


@pytest.mark.parametrize(("status", "expected"), _DEEP_CASES)
async def test_iter_many_yields_an_outcome_for_every_key_when_one_reply_is_nested_too_deep(
    serve: Serve, status: int, expected: type[Exception]
) -> None:
    keys = _keys(200)
    base = await serve(_app(_one_deep_reply(keys[3], status)))
    async with local_client(base) as client:
        outcomes = [outcome async for outcome in client.groups.iter_many(keys)]
    assert sorted(o.prokey for o in outcomes) == sorted(keys)
    bad = [o for o in outcomes if not o.ok]
    assert [o.prokey for o in bad] == [keys[3]]
    assert isinstance(bad[0].error, expected)


@pytest.mark.parametrize("status", [404, 500])
async def test_delete_many_keeps_every_good_result_when_one_reply_is_nested_too_deep(
    serve: Serve, status: int
) -> None:
    keys = _keys(50)
    base = await serve(_app(_one_deep_reply(keys[0], status)))
    async with local_client(base) as client:
        result = await client.groups.delete_many(keys)
    assert len(result.ok) == 49
    assert len(result) == 50


# An API that cannot be reached: the breaker -------------------------------------------


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def _run(client: GroupsClient, op: str, keys: list[str]) -> list[Outcome[Any]]:
    """Run bulk `op` over `keys`; give back one outcome per key the call reported."""
    groups = client.groups
    if op in ("get_many", "delete_many"):
        result: BulkResult[Any] = await getattr(groups, op)(keys)
        assert len(result) == len(set(keys))
        return [
            *(Outcome(k, value=v) for k, v in result.ok.items()),
            *(Outcome(k, error=NotFoundError("", status=404, method="", url="")) for k in
              result.missing),
            *(Outcome(k, error=e) for k, e in result.failed.items()),
        ]
    return [outcome async for outcome in getattr(groups, op)(keys)]


_OPS = ["get_many", "iter_many", "delete_many", "iter_delete_many"]


@pytest.mark.parametrize("op", _OPS)
async def test_bulk_call_against_a_dead_url_stops_sending_and_fails_every_key(op: str) -> None:
    keys = _keys(5000)
    retry = RetryPolicy(max_attempts=3, backoff_base=0.01)
    async with local_client(_dead_url(), retry=retry, max_connections=32) as client:
        outcomes = await _run(client, op, keys)
    assert sorted(o.prokey for o in outcomes) == keys
    errors = [o.error for o in outcomes]
    assert all(isinstance(e, TransportError) and e.never_connected for e in errors)
    # Only the first wave was sent (three attempts each); every other key shares one cause.
    assert client.stats.requests <= 3 * 32
    shared = max({id(e): e for e in errors}.values(), key=lambda e: errors.count(e))
    assert errors.count(shared) >= 5000 - 32
    assert "connection refused" in str(shared)


async def test_bulk_call_against_a_host_that_never_answers_stops_after_one_wave() -> None:
    listener = socket.socket()  # a full accept queue: every further SYN is dropped
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = [socket.socket() for _ in range(4)]
    for filler in fillers:
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
    try:
        keys = _keys(1000)
        dead = f"http://127.0.0.1:{port}"
        async with local_client(dead, timeout=0.1, max_connections=8) as client:
            result = await client.groups.get_many(keys)
    finally:
        for sock in [*fillers, listener]:
            sock.close()
    assert len(result.failed) == 1000
    assert all(isinstance(e, RequestTimeout) for e in result.failed.values())
    assert client.stats.requests <= 3 * 8


@contextlib.asynccontextmanager
async def _black_hole() -> AsyncIterator[str]:
    """A server that takes every connection, reads what comes, and never answers."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.mark.parametrize("op", _OPS)
async def test_bulk_call_against_a_server_that_never_answers_stops_after_a_few_timeouts(
    op: str,
) -> None:
    keys = _keys(400)
    async with _black_hole() as base, local_client(base, timeout=0.05, max_connections=8) as client:
        outcomes = await _run(client, op, keys)
    assert sorted(o.prokey for o in outcomes) == keys  # every key once, none lost
    errors = [o.error for o in outcomes]
    assert all(isinstance(e, RequestTimeout) for e in errors)
    # The first wave alone was sent (three attempts each); the rest share one cause.
    assert client.stats.requests <= 3 * 8
    shared = max({id(e): e for e in errors}.values(), key=lambda e: errors.count(e))
    assert errors.count(shared) >= 400 - 8
    assert any("stopped sending" in note for note in shared.__notes__)


@contextlib.asynccontextmanager
async def _hangs_up() -> AsyncIterator[str]:
    """A server that reads each request and closes the connection without a reply."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@contextlib.asynccontextmanager
async def _always_503(serve: Serve) -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"message": "Service Unavailable"}, status=503)

    yield await serve(_app(handler))


@pytest.mark.parametrize("op", _OPS)
@pytest.mark.parametrize("server", ["503", "hangs-up"])
async def test_bulk_call_whose_every_attempt_the_server_fails_stops_after_a_few_keys(
    serve: Serve, op: str, server: str
) -> None:
    keys = _keys(400)
    dead = _always_503(serve) if server == "503" else _hangs_up()
    async with dead as base, local_client(base, max_connections=8) as client:
        outcomes = await _run(client, op, keys)
    assert sorted(o.prokey for o in outcomes) == keys  # every key once, none lost
    errors = [o.error for o in outcomes]
    assert all(e is not None for e in errors)
    # The first wave, and the keys started while the fifth failure was still coming.
    assert client.stats.requests <= 3 * (8 + FAILURES_TO_STOP)
    shared = max({id(e): e for e in errors}.values(), key=lambda e: errors.count(e))
    assert errors.count(shared) >= 400 - 8 - FAILURES_TO_STOP
    assert any("failed every attempt" in note for note in shared.__notes__)


def _always_429(retry_after: str) -> tuple[Handler, list[str]]:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response(
            {"message": "Too Many Requests"}, status=429, headers={"Retry-After": retry_after}
        )

    return handler, seen


@pytest.mark.parametrize("op", _OPS)
@pytest.mark.parametrize("retry_after", ["0.01", "120"], ids=["429-forever", "over-the-cap"])
async def test_bulk_call_that_the_server_keeps_refusing_stops_sending(
    serve: Serve, op: str, retry_after: str
) -> None:
    handler, seen = _always_429(retry_after)
    base = await serve(_app(handler))
    keys = _keys(1000)
    retry = RetryPolicy(backoff_base=0.01)
    async with local_client(base, retry=retry, max_connections=8) as client:
        outcomes = await _run(client, op, keys)
    assert sorted(o.prokey for o in outcomes) == keys
    errors = [o.error for o in outcomes]
    assert all(isinstance(e, RateLimitError) for e in errors)
    # A wave of eight at most per 429 counted: three in a row, or one over the cap.
    assert len(seen) <= (3 if retry_after == "0.01" else 1) * 8
    shared = max({id(e): e for e in errors}.values(), key=lambda e: errors.count(e))
    assert isinstance(shared, RateLimitError)
    assert shared.client_stopped
    assert errors.count(shared) >= 1000 - 8


async def test_bulk_call_whose_429s_are_passing_tries_every_key(serve: Serve) -> None:
    seen = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal seen
        seen += 1
        if seen % 3:  # two 429s, then a group: over and over
            return web.json_response({}, status=429, headers={"Retry-After": "0.001"})
        return web.json_response(GROUP)

    base = await serve(_app(handler))
    keys = _keys(20)
    async with local_client(base, retry=RetryPolicy(backoff_base=0)) as client:
        result = await client.groups.get_many(keys, concurrency=1)
    assert list(result.ok) == keys
    assert seen == 3 * 20


async def test_bulk_call_one_key_at_a_time_against_a_server_that_never_answers() -> None:
    keys = _keys(40)
    async with _black_hole() as base, local_client(base, timeout=0.05) as client:
        result = await client.groups.get_many(keys, concurrency=1)
    assert list(result.failed) == keys
    assert client.stats.requests == 3 * TIMEOUTS_TO_STOP  # five keys, three attempts each


async def test_bulk_call_whose_first_keys_time_out_among_answers_tries_every_key(
    serve: Serve,
) -> None:
    keys = _keys(20)
    slow = set(keys[:2])

    async def handler(request: web.Request) -> web.Response:
        if request.path.rsplit("/", 1)[-1] in slow:
            await asyncio.sleep(1)
        return web.json_response(GROUP)

    base = await serve(_app(handler))
    async with local_client(base, timeout=0.05) as client:
        result = await client.groups.get_many(keys, concurrency=4)
    assert list(result.ok) == keys[2:]
    assert list(result.failed) == keys[:2]
    assert all(isinstance(e, RequestTimeout) for e in result.failed.values())


@pytest.mark.parametrize("op", _OPS)
async def test_bulk_call_with_a_refused_key_stops_sending(serve: Serve, op: str) -> None:
    seen = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal seen
        seen += 1
        return web.json_response({"message": "Invalid API key"}, status=401)

    base = await serve(_app(handler))
    keys = _keys(2000)
    async with local_client(base, max_connections=8) as client:
        outcomes = await _run(client, op, keys)
    assert sorted(o.prokey for o in outcomes) == keys
    assert all(isinstance(o.error, AuthenticationError) for o in outcomes)
    assert seen <= 8
    assert len({id(o.error) for o in outcomes}) <= 8


async def test_delete_many_whose_key_is_refused_midway_reports_what_the_server_did(
    serve: Serve,
) -> None:
    deleted: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        if len(deleted) >= 100:  # the key expired
            return web.json_response({"message": "Key expired"}, status=401)
        deleted.append(request.path.rsplit("/", 1)[-1])
        return web.json_response({"success": "Deleted"})

    base = await serve(_app(handler))
    keys = _keys(3000)
    async with local_client(base, max_connections=4) as client:
        result = await client.groups.delete_many(keys)
    assert sorted(result.ok) == sorted(deleted)
    assert len(result.ok) == 100
    assert len(result.failed) == 2900
    assert client.stats.requests <= 100 + 4


async def test_bulk_call_that_loses_the_server_midway_still_tries_every_key(
    serve: Serve,
) -> None:
    """Connection failures after the server was reached are passing trouble, not a stop."""
    runner: list[web.AppRunner] = []

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(GROUP)

    app = _app(handler)
    runner.append(web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1))
    await runner[0].setup()
    site = web.TCPSite(runner[0], "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner[0].addresses[0][1]}"
    keys = _keys(100)

    async def keys_then_outage() -> AsyncIterator[str]:
        for key in keys[:20]:
            yield key
        await runner[0].cleanup()  # the 20 reads are done (one worker): the server goes away
        for key in keys[20:]:
            yield key

    async with local_client(base) as client:
        result = await client.groups.get_many(keys_then_outage(), concurrency=1)
    assert list(result.ok) == keys[:20]
    assert list(result.failed) == keys[20:]
    assert client.stats.requests == 20 + 80 * 3  # every key was tried, three times
    assert len({id(e) for e in result.failed.values()}) == 80


async def test_bulk_call_against_an_untrusted_certificate_stops_after_one_wave() -> None:
    async with FakeGroupsServer(tls=True) as fake:
        keys = [fake.add_group(name=f"g{n}") for n in range(300)]
        async with local_client(fake, max_connections=4) as client:  # no trust in its CA
            result = await client.groups.get_many(keys)
    assert len(result.failed) == 300
    assert all("TLS certificate verification failed" in str(e) for e in result.failed.values())
    assert client.stats.requests <= 4
