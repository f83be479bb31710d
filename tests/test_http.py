"""The request pipeline over real sockets: size cap, redirects, timeouts, retries, proxies.

Each test runs a tiny aiohttp.web app (or a raw socket) on 127.0.0.1 with the behaviour
it needs; retries use no backoff so nothing sleeps for long.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import gzip
import html
import itertools
import json
import logging
import socket
import ssl
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from conftest import API_KEY, KEY, NO_WAIT, URL_PASSWORD, PeakInFlight, local_client, shows_password

from asyncgroups import (
    ClientLimiter,
    GroupPatch,
    GroupsClient,
    NewGroup,
    NotFoundError,
    RateLimitError,
    RequestTimeout,
    RetryPolicy,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
)
from asyncgroups._mask import SecretMasker
from asyncgroups._urls import proxy_from_env

if TYPE_CHECKING:
    from conftest import FakeClock, MockAPI, Serve

OTHER = "31a17cce-cccc-4ee3-99bb-6144c6a3bbbb"
NEW_KEY = "99ec3e7f-ef04-bbbb-a3d7-e30736faaaaa"
GROUP = [{"name": "Team", "status": "published", "events": []}]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _app(handler: Handler) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


class Hits:
    """Counts the requests a handler saw, by method and path."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, request: web.Request) -> None:
        self.seen.append((request.method, request.path))

    def __len__(self) -> int:
        return len(self.seen)


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# Size cap ---------------------------------------------------------------------------


async def test_pipeline_refuses_a_reply_over_the_cap_with_content_length(serve: Serve) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response([GROUP[0] | {"internal_note": "x" * 5000}])

    base = await serve(_app(handler))
    async with local_client(base, max_body_size=1000) as client:
        with pytest.raises(UnexpectedResponseError, match="larger than the 1000 byte cap") as info:
            await client.groups.get(KEY)
    assert info.value.status == 200
    assert str(info.value).startswith(f"GET /group/{KEY}: 200 ")


async def test_pipeline_refuses_a_streamed_reply_over_the_cap_without_content_length(
    serve: Serve,
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            for _ in range(50):
                await resp.write(b" " * 400)
            await resp.write_eof()
        except ConnectionError:
            pass  # the client stopped reading, as it should
        return resp

    base = await serve(_app(handler))
    async with local_client(base, max_body_size=1000) as client:
        with pytest.raises(UnexpectedResponseError, match="larger than the 1000 byte cap"):
            await client.groups.list()


async def test_pipeline_refuses_a_compressed_reply_that_inflates_past_the_cap(
    serve: Serve,
) -> None:
    inflated = b"[" + b" " * 200_000 + b"]"
    compressed = gzip.compress(inflated)
    assert len(compressed) < 1000

    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            body=compressed,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    base = await serve(_app(handler))
    async with local_client(base, max_body_size=10_000) as client:
        with pytest.raises(UnexpectedResponseError, match="larger than the 10000 byte cap"):
            await client.groups.list()


async def test_pipeline_reads_a_reply_right_at_the_cap(serve: Serve) -> None:
    body = b'["' + NEW_KEY.encode() + b'"]'

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    base = await serve(_app(handler))
    async with local_client(base, max_body_size=len(body)) as client:
        assert [s.prokey for s in await client.groups.list()] == [NEW_KEY]


# Redirects --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_pipeline_does_not_follow_redirects(serve: Serve, status: int) -> None:
    elsewhere = Hits()

    async def handler(request: web.Request) -> web.Response:
        if request.path.startswith("/elsewhere"):
            elsewhere(request)
            return web.json_response(GROUP)
        return web.Response(status=status, headers={"Location": f"/elsewhere{request.path}"})

    base = await serve(_app(handler))
    async with local_client(base) as client:
        with pytest.raises(UnexpectedResponseError) as info:
            await client.groups.get(KEY)
        with pytest.raises(UnexpectedResponseError):
            await client.groups.create(NewGroup("Team"))
    assert info.value.status == status
    assert str(info.value) == f"GET /group/{KEY}: {status} redirect not followed"
    assert len(elsewhere) == 0
    assert client.stats.requests == 2  # a redirect is not retried either


# Timeouts ---------------------------------------------------------------------------


async def test_pipeline_maps_a_timeout_to_request_timeout(mock_api: MockAPI) -> None:
    # aiohttp and asyncio raise asyncio.TimeoutError: an alias of the builtin.
    mock_api.get(f"https://api.example.com/v1/group/{KEY}", exception=TimeoutError())
    async with GroupsClient(API_KEY, base_url="https://api.example.com/v1", retry=None) as client:
        with pytest.raises(RequestTimeout) as info:
            await client.groups.get(KEY)
    assert isinstance(info.value, TransportError)
    assert str(info.value).startswith(f"GET /group/{KEY}: no complete reply within 30s")


async def test_pipeline_times_out_a_slow_reply_and_retries_a_get(serve: Serve) -> None:
    hits = Hits()

    async def handler(request: web.Request) -> web.Response:
        hits(request)
        await asyncio.sleep(1)
        return web.json_response(GROUP)

    base = await serve(_app(handler))
    async with local_client(base, timeout=0.05) as client:
        with pytest.raises(RequestTimeout, match=r"within 0\.05s \(attempt 3\)"):
            await client.groups.get(KEY)
    assert len(hits) == 3
    assert (client.stats.requests, client.stats.retries) == (3, 2)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.groups.create(NewGroup("Team")),
        lambda c: c.groups.update(KEY, GroupPatch(name="x")),
    ],
    ids=["POST", "PATCH"],
)
async def test_pipeline_does_not_retry_a_write_that_timed_out(
    serve: Serve, call: Callable[[GroupsClient], Awaitable[object]]
) -> None:
    hits = Hits()

    async def handler(request: web.Request) -> web.Response:
        hits(request)
        await asyncio.sleep(1)
        return web.json_response({"id": NEW_KEY})

    base = await serve(_app(handler))
    async with local_client(base, timeout=0.05) as client:
        with pytest.raises(RequestTimeout):
            await call(client)
    assert len(hits) == 1


async def test_pipeline_does_not_count_waiting_for_a_slot_against_the_timeout(
    serve: Serve,
) -> None:
    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(0.15)
        return web.json_response(GROUP)

    base = await serve(_app(handler))
    async with local_client(base, max_connections=1, timeout=0.3, retry=None) as client:
        # The third call queues ~0.3 s for the one slot, then needs ~0.15 s on the wire.
        groups = await asyncio.gather(*(client.groups.get(KEY) for _ in range(3)))
    assert len(groups) == 3


# Connection failures ----------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.groups.get(KEY),
        lambda c: c.groups.create(NewGroup("Team")),
        lambda c: c.groups.update(KEY, GroupPatch(name="x")),
    ],
    ids=["GET", "POST", "PATCH"],
)
async def test_pipeline_maps_a_refused_connection_to_transport_error_and_retries_it(
    call: Callable[[GroupsClient], Awaitable[object]],
) -> None:
    async with local_client(f"http://127.0.0.1:{_unused_port()}") as client:
        with pytest.raises(TransportError, match="could not connect") as info:
            await call(client)
    assert not isinstance(info.value, RequestTimeout)
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)
    # Nothing left the machine, so even a POST or PATCH is safe to try again.
    assert client.stats.requests == 3


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_pipeline_connect_failure_names_host_port_and_cause(host: str) -> None:
    port = _unused_port()
    async with local_client(f"http://{host}:{port}", retry=None, rate_limit=None) as client:
        with pytest.raises(TransportError) as info:
            await client.groups.get(KEY)
    assert str(info.value) == (
        f"GET /group/{KEY}: could not connect to {host}:{port}: connection refused"
    )


async def test_pipeline_unresolvable_host_says_it_could_not_be_resolved() -> None:
    async with GroupsClient(
        API_KEY, base_url="https://nonexistent.invalid/v1", retry=None, rate_limit=None
    ) as client:
        with pytest.raises(TransportError) as info:
            await client.groups.get(KEY)
    assert str(info.value).startswith(
        f"GET /group/{KEY}: could not resolve host nonexistent.invalid: "
    )
    assert "ssl" not in str(info.value).lower()


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A port on 127.0.0.1 that never completes a connect: its accept queue is full.

    Linux drops the SYN of a connect to a listener whose backlog is full, as a firewall
    or a dead route does, so the client waits for its connect timeout.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    yield f"http://127.0.0.1:{port}"
    for sock in [*fillers, listener]:
        sock.close()


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_pipeline_connect_timeout_says_so_and_is_retried_as_never_sent(
    black_hole: str, method: str
) -> None:
    calls: dict[str, Callable[[GroupsClient], Awaitable[object]]] = {
        "GET": lambda c: c.groups.get(KEY),
        "POST": lambda c: c.groups.create(NewGroup("Team")),
    }
    async with local_client(black_hole, timeout=0.2, rate_limit=None) as client:
        with pytest.raises(RequestTimeout) as info:
            await calls[method](client)
    port = black_hole.rsplit(":", 1)[1]
    assert f"could not connect to 127.0.0.1:{port} within 0.18s (attempt 3)" in str(info.value)
    assert info.value.never_connected
    # Nothing left the machine, so even a POST is tried again.
    assert client.stats.requests == 3


@pytest.fixture
async def hang_up() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A server that reads each request, then closes the connection without a reply."""
    received: list[bytes] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", received
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize(
    ("method", "attempts"), [("GET", 3), ("DELETE", 3), ("POST", 1), ("PATCH", 1)]
)
async def test_pipeline_retries_a_lost_connection_only_for_idempotent_methods(
    hang_up: tuple[str, list[bytes]], method: str, attempts: int
) -> None:
    base, received = hang_up
    calls: dict[str, Callable[[GroupsClient], Awaitable[object]]] = {
        "GET": lambda c: c.groups.get(KEY),
        "DELETE": lambda c: c.groups.delete(KEY),
        "POST": lambda c: c.groups.create(NewGroup("Team")),
        "PATCH": lambda c: c.groups.update(KEY, GroupPatch(name="x")),
    }
    async with local_client(base) as client:
        with pytest.raises(TransportError, match="connection lost") as info:
            await calls[method](client)
    assert not isinstance(info.value, RequestTimeout)
    assert len(received) == attempts
    assert all(r.startswith(method.encode() + b" ") for r in received)


async def test_pipeline_maps_a_server_disconnect_to_transport_error(mock_api: MockAPI) -> None:
    mock_api.get(
        f"https://api.example.com/v1/group/{KEY}", exception=aiohttp.ServerDisconnectedError()
    )
    async with GroupsClient(API_KEY, base_url="https://api.example.com/v1", retry=None) as client:
        with pytest.raises(TransportError, match=f"GET /group/{KEY}: connection lost"):
            await client.groups.get(KEY)


# Hostile bodies ----------------------------------------------------------------------

#: A JSON array nested 100,000 deep: `json.loads` raises RecursionError on it.
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("status", "expected", "attempts"),
    [(200, UnexpectedResponseError, 3), (404, NotFoundError, 1), (500, ServerError, 3)],
)
async def test_pipeline_maps_a_deeply_nested_reply_to_an_api_error(
    serve: Serve, status: int, expected: type[Exception], attempts: int
) -> None:
    hits = Hits()

    async def handler(request: web.Request) -> web.Response:
        hits(request)
        return web.Response(status=status, body=DEEP_JSON, content_type="application/json")

    base = await serve(_app(handler))
    async with local_client(base, rate_limit=None) as client:
        with pytest.raises(expected) as info:
            await client.groups.get(KEY)
    assert len(hits) == attempts
    if status == 200:
        assert "nested deeper than the decoder allows" in str(info.value)
    assert info.value.__cause__ is None or not isinstance(info.value.__cause__, RecursionError)


async def test_pipeline_maps_a_deeply_nested_create_reply_to_unexpected_response(
    serve: Serve,
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=201, body=DEEP_JSON, content_type="application/json")

    base = await serve(_app(handler))
    async with local_client(base, rate_limit=None) as client:
        with pytest.raises(UnexpectedResponseError, match="nested deeper") as info:
            await client.groups.create(NewGroup("Team"))
    assert info.value.status == 201


# Retries on statuses ----------------------------------------------------------------


def _scripted(*replies: tuple[int, dict[str, str]], then: Any = GROUP) -> tuple[Handler, Hits]:
    """A handler answering each request with the next (status, headers), then 200 `then`."""
    hits = Hits()
    queue = list(replies)

    async def handler(request: web.Request) -> web.Response:
        hits(request)
        if queue:
            status, headers = queue.pop(0)
            return web.json_response(
                {"message": f"scripted {status}"}, status=status, headers=headers
            )
        return web.json_response(then)

    return handler, hits


async def test_pipeline_retries_a_get_on_retry_statuses_and_counts_it(serve: Serve) -> None:
    handler, hits = _scripted((503, {}), (502, {}))
    base = await serve(_app(handler))
    async with local_client(base) as client:
        group = await client.groups.get(KEY)
    assert group.prokey == KEY
    assert len(hits) == 3
    assert (client.stats.requests, client.stats.retries) == (3, 2)


async def test_pipeline_gives_up_after_max_attempts(serve: Serve) -> None:
    handler, hits = _scripted(*[(500, {})] * 5)
    base = await serve(_app(handler))
    async with local_client(base, retry=RetryPolicy(max_attempts=2, backoff_base=0)) as client:
        with pytest.raises(ServerError, match="scripted 500"):
            await client.groups.get(KEY)
    assert len(hits) == 2


@pytest.mark.parametrize(
    ("call", "status"),
    [
        (lambda c: c.groups.create(NewGroup("Team")), 503),
        (lambda c: c.groups.create(NewGroup("Team")), 500),
        (lambda c: c.groups.update(KEY, GroupPatch(name="x")), 503),
        (lambda c: c.groups.update(KEY, GroupPatch(name="x")), 504),
    ],
    ids=["POST-503", "POST-500", "PATCH-503", "PATCH-504"],
)
async def test_pipeline_does_not_retry_a_write_the_server_may_have_done(
    serve: Serve, call: Callable[[GroupsClient], Awaitable[object]], status: int
) -> None:
    handler, hits = _scripted((status, {}), then={"id": NEW_KEY})
    base = await serve(_app(handler))
    async with local_client(base) as client:
        with pytest.raises(ServerError):
            await call(client)
    assert len(hits) == 1
    assert client.stats.updates_sent == 0


async def test_pipeline_retries_a_post_on_429(serve: Serve) -> None:
    handler, hits = _scripted(
        (429, {"Retry-After": "0"}), then={"success": "Created", "id": NEW_KEY}
    )
    base = await serve(_app(handler))
    async with local_client(base) as client:
        assert await client.groups.create(NewGroup("Team")) == NEW_KEY
    assert hits.seen == [("POST", "/v1/group")] * 2


async def test_pipeline_raises_at_once_when_retry_after_exceeds_the_cap(
    serve: Serve, sleeps: list[float]
) -> None:
    handler, hits = _scripted((429, {"Retry-After": "120"}))
    base = await serve(_app(handler))
    async with local_client(base, retry=RetryPolicy(max_retry_after=5)) as client:
        with pytest.raises(RateLimitError) as info:
            await client.groups.get(KEY)
        assert not any(sleeps)  # nothing was waited for: no backoff, no Retry-After
        assert isinstance(client.limiter, ClientLimiter)
        assert client.limiter.paused_for() == 0  # nor does the client sit out 120 s
    assert info.value.retry_after == 120.0
    assert len(hits) == 1


async def test_pipeline_honours_a_retry_after_date(serve: Serve) -> None:
    handler, hits = _scripted((503, {"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}))
    base = await serve(_app(handler))
    async with local_client(base) as client:
        group = await client.groups.get(KEY)  # a date in the past: try again at once
    assert group.name == "Team"
    assert len(hits) == 2


@pytest.mark.parametrize(
    "retry_after", ["0", "-5", "Thu, 01 Jan 1970 00:00:00 GMT"], ids=["zero", "negative", "past"]
)
@pytest.mark.parametrize("status", [429, 503])
async def test_pipeline_retry_after_now_or_past_still_waits_the_backoff(
    serve: Serve, retry_after: str, status: int
) -> None:
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        arrivals.append(loop.time())
        return web.json_response({}, status=status, headers={"Retry-After": retry_after})

    base = await serve(_app(handler))
    policy = RetryPolicy(max_attempts=3, backoff_base=0.05, jitter=False)
    async with local_client(base, retry=policy, rate_limit=None) as client:
        with pytest.raises(RateLimitError if status == 429 else ServerError):
            await client.groups.get(KEY)
    assert len(arrivals) == 3
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert gaps[0] >= 0.045
    assert gaps[1] >= 0.095
    assert client.stats.cool_downs == (3 if status == 429 else 0)


@pytest.mark.parametrize(
    "retry_after", ["Fri, 01 Jan 10000 00:00:00 GMT", "Fri, 01 Jan 99999999999 00:00:00 GMT"]
)
async def test_pipeline_retry_after_past_year_9999_raises_rate_limit_error_at_once(
    serve: Serve, retry_after: str
) -> None:
    handler, hits = _scripted((429, {"Retry-After": retry_after}))
    base = await serve(_app(handler))
    async with local_client(base, rate_limit=None) as client:
        with pytest.raises(RateLimitError) as info:
            await client.groups.get(KEY)
    assert info.value.retry_after is not None
    assert info.value.retry_after > 200_000_000_000
    assert len(hits) == 1


async def test_pipeline_429_with_a_past_retry_after_still_pauses_the_client(
    serve: Serve,
) -> None:
    handler, _ = _scripted((429, {"Retry-After": "-5"}))
    base = await serve(_app(handler))
    loop = asyncio.get_running_loop()
    policy = RetryPolicy(max_attempts=1, backoff_base=0.1, jitter=False)
    async with local_client(base, retry=policy, rate_limit=None) as client:
        started = loop.time()  # before the 429 is read, so before the pause begins
        with pytest.raises(RateLimitError):
            await client.groups.get(KEY)
        await client.groups.get(OTHER)
    assert loop.time() - started >= 0.09
    assert client.stats.cool_downs == 1


async def test_pipeline_429_pauses_every_request_of_the_client(serve: Serve) -> None:
    loop = asyncio.get_running_loop()
    arrivals: dict[str, list[float]] = {KEY: [], OTHER: []}
    limited = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        key = request.path.rsplit("/", 1)[-1]
        arrivals[key].append(loop.time())
        if key == KEY and len(arrivals[KEY]) == 1:
            limited.set()
            return web.json_response({}, status=429, headers={"Retry-After": "0.2"})
        return web.json_response(GROUP)

    base = await serve(_app(handler))
    async with local_client(base) as client:
        first = asyncio.create_task(client.groups.get(KEY))
        await limited.wait()
        while not client.stats.cool_downs:  # until the client has read the 429
            await asyncio.sleep(0.001)
        await client.groups.get(OTHER)  # an unrelated call waits out the same pause
        await first
    assert arrivals[OTHER][0] - arrivals[KEY][0] >= 0.18
    assert client.stats.cool_downs == 1


@pytest.mark.parametrize(
    "retry", [None, RetryPolicy(max_attempts=1)], ids=["no-retry", "last-attempt"]
)
async def test_pipeline_429_pauses_the_client_even_when_the_call_gives_up(
    serve: Serve, retry: RetryPolicy | None
) -> None:
    handler, _ = _scripted((429, {"Retry-After": "0.2"}))
    base = await serve(_app(handler))
    loop = asyncio.get_running_loop()
    async with local_client(base, retry=retry) as client:
        started = loop.time()  # before the 429 is read, so before the pause begins
        with pytest.raises(RateLimitError):
            await client.groups.get(KEY)
        await client.groups.get(OTHER)
    assert loop.time() - started >= 0.18
    assert client.stats.cool_downs == 1


# A stop: the client sends nothing until the server's moment ---------------------------


async def _refused(client: GroupsClient, key: str) -> RateLimitError:
    with pytest.raises(RateLimitError) as info:
        await client.groups.get(key)
    return info.value


async def test_pipeline_after_a_retry_after_over_the_cap_sends_nothing_until_that_moment(
    serve: Serve, clock: FakeClock
) -> None:
    handler, hits = _scripted((429, {"Retry-After": "120"}))
    base = await serve(_app(handler))
    async with local_client(base, retry=RetryPolicy(max_retry_after=60)) as client:
        first = await _refused(client, KEY)
        assert (first.retry_after, first.client_stopped) == (120.0, True)
        await clock.advance(20)
        later = [await _refused(client, OTHER) for _ in range(5)]
        assert len(hits) == 1  # none of them was sent
        for err in later:
            assert err.client_stopped
            assert err.retry_after == 100.0
            assert not err.may_have_acted
            assert f"GET /group/{OTHER}: 429 not sent" in str(err)
            assert "Retry-After 120s is over max_retry_after 60s" in str(err)
        await clock.advance(100)  # the server's moment: requests flow again
        assert (await client.groups.get(OTHER)).prokey == OTHER
    assert len(hits) == 2
    assert client.stats.requests == 2


async def test_pipeline_stop_refuses_requests_already_waiting_for_a_slot(serve: Serve) -> None:
    handler, hits = _scripted((429, {"Retry-After": "120"}))
    base = await serve(_app(handler))
    async with local_client(base, max_connections=1) as client:
        calls = [client.groups.get(KEY) for _ in range(10)]  # nine wait for the one slot
        errors = await asyncio.gather(*calls, return_exceptions=True)
    assert len(hits) == 1
    assert all(isinstance(e, RateLimitError) and e.client_stopped for e in errors)


async def test_pipeline_third_429_in_a_row_stops_the_client_instead_of_a_cool_down(
    serve: Serve,
) -> None:
    handler, hits = _scripted(
        (429, {"Retry-After": "0.01"}), (429, {"Retry-After": "0.01"}), (429, {"Retry-After": "30"})
    )
    base = await serve(_app(handler))
    async with local_client(base, retry=RetryPolicy(max_attempts=5, backoff_base=0)) as client:
        third = await _refused(client, KEY)  # two cool-downs waited out, then a stop
        assert third.client_stopped
        assert len(hits) == 3
        later = await _refused(client, OTHER)
        assert client.limiter.paused_for() == 0  # type: ignore[attr-defined]
    assert len(hits) == 3
    assert later.client_stopped
    assert "3 replies in a row were 429" in str(later)
    assert client.stats.cool_downs == 3  # two cool-downs and the stop


async def test_pipeline_success_between_429s_keeps_the_client_going(serve: Serve) -> None:
    hits = Hits()

    async def handler(request: web.Request) -> web.Response:
        hits(request)
        if len(hits) % 3:  # two 429s, then a group: over and over
            return web.json_response({}, status=429, headers={"Retry-After": "0.01"})
        return web.json_response(GROUP)

    base = await serve(_app(handler))
    async with local_client(base, retry=RetryPolicy(backoff_base=0)) as client:
        for _ in range(3):
            await client.groups.get(KEY)
    assert len(hits) == 9


# The in-flight cap and the pool ------------------------------------------------------


async def test_pipeline_caps_requests_in_flight_at_max_connections(serve: Serve) -> None:
    counter = PeakInFlight(3, GROUP)
    base = await serve(counter.app())
    async with local_client(base, max_connections=3) as client:
        await asyncio.gather(*(client.groups.get(KEY) for _ in range(10)))
    assert counter.peak == 3


async def test_pipeline_reuses_a_pooled_connection(serve: Serve) -> None:
    peers: set[object] = set()

    async def handler(request: web.Request) -> web.Response:
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        return web.json_response(GROUP)

    base = await serve(_app(handler))
    async with local_client(base) as client:
        for _ in range(4):
            await client.groups.get(KEY)
    assert len(peers) == 1


# The API key stays secret ------------------------------------------------------------


async def _error_of(call: Callable[[], Awaitable[object]]) -> Exception:
    with pytest.raises(Exception) as info:  # noqa: PT011 (any error will do; its text is checked)
        await call()
    return info.value


async def test_pipeline_never_shows_the_api_key(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(request: web.Request) -> web.Response:
        echoed = request.headers.get("Authorization", "")
        if request.path.endswith("/group/all"):
            await asyncio.sleep(1)
        if request.method == "POST":
            return web.Response(status=502, text=f"<html>bad gateway for {echoed}</html>")
        if request.method == "DELETE":
            return web.Response(status=409, text=f"conflict for {echoed}")
        return web.json_response(
            {"message": f"key {echoed} is not valid"},
            status=401,
            headers={"X-Request-Id": "req-1"},
        )

    base = await serve(_app(handler))
    errors: list[BaseException] = []
    with caplog.at_level(logging.DEBUG):
        async with local_client(base, timeout=0.05) as client:
            for call in (
                lambda: client.groups.get(KEY),
                lambda: client.groups.list(),
                lambda: client.groups.create(NewGroup("Team")),
                lambda: client.groups.delete(KEY),
            ):
                errors.append(await _error_of(call))
        async with local_client(f"http://127.0.0.1:{_unused_port()}") as dead:
            with pytest.raises(TransportError) as refused:
                await dead.groups.get(KEY)
        errors.append(refused.value)
    assert len(errors) == 5
    assert "***" in str(errors[0])
    shown = [repr(client), repr(dead)]
    for err in errors:
        shown += [str(err), repr(err), "".join(traceback.format_exception(err))]
        shown += [getattr(err, "body", ""), getattr(err, "message", "")]
    shown += [record.getMessage() for record in caplog.records]
    assert any(f"/group/{KEY}" in record.getMessage() for record in caplog.records)
    assert not [text for text in shown if API_KEY in text]


#: A key shaped like a real one, with a slash that JSON may escape as `\/`.
SLASHED_KEY = "sk_live_MARKER/slash+plus=="
GET_KEYS = [f"31a17cce-bbbb-4ee3-99bb-6144c6a3a{n:03d}" for n in range(5)]


def _chain(err: BaseException) -> list[BaseException]:
    """`err` and every exception reachable from it: causes, contexts, group members."""
    found: list[BaseException] = []
    todo = [err]
    while todo:
        current = todo.pop()
        if any(current is seen for seen in found):
            continue
        found.append(current)
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
        if isinstance(current, BaseExceptionGroup):
            todo += current.exceptions
    return found


def _everything_shown(err: BaseException) -> str:
    """All the text an error keeps: its traceback, and each chained error's attributes."""
    texts = ["".join(traceback.format_exception(err))]
    for linked in _chain(err):
        texts += [str(linked), repr(linked), repr(linked.args), repr(vars(linked))]
        texts += [str(note) for note in getattr(linked, "__notes__", ())]
    return "\n".join(texts)


async def test_pipeline_masks_every_spelling_of_an_echoed_key_everywhere(
    serve: Serve,
) -> None:
    key = SLASHED_KEY
    all_u = "".join(f"\\u{ord(c):04x}" for c in key)

    async def handler(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == key
        tail = request.path.rsplit("/", 1)[-1]
        if request.method == "POST":  # a 201 without an id: the key rides the cause
            return web.json_response({"success": "Created", "echo": key}, status=201)
        if request.method == "PATCH":
            page = f"<html>denied for {quote(key, safe='')} &amp; {html.escape(key)}</html>"
            return web.Response(status=400, text=page, content_type="text/html")
        if request.method == "DELETE":
            return web.Response(status=409, text=f"conflict for {key.replace('/', '%2F')}")
        if tail == "all":  # an item without a key: its repr names the key
            return web.json_response([{"name": key}])
        replies = {
            GET_KEYS[0]: (401, '{"message": "key ' + key.replace("/", "\\/") + ' refused"}', {}),
            GET_KEYS[1]: (500, '{"message": "bad key ' + all_u + '"}', {}),
            GET_KEYS[2]: (404, '{"message": "No entry found"}', {"X-Request-Id": f"rq-{key}"}),
            GET_KEYS[3]: (200, json.dumps([{"name": [key], "status": {"k": key}}]), {}),
            GET_KEYS[4]: (200, '[{"name": "' + all_u + '"', {}),  # cut short: not JSON
        }
        status, body, headers = replies[tail]
        return web.Response(
            status=status, text=body, headers=headers, content_type="application/json"
        )

    base = await serve(_app(handler))
    errors: list[BaseException] = []
    async with GroupsClient(
        key, base_url=base + "/v1", retry=NO_WAIT, rate_limit=None
    ) as client:
        calls: list[Callable[[], Awaitable[object]]] = [
            *(functools.partial(client.groups.get, k) for k in GET_KEYS),
            lambda: client.groups.create(NewGroup("Team")),
            lambda: client.groups.update(KEY, GroupPatch(name="x")),
            lambda: client.groups.delete(KEY),
            lambda: client.groups.list(),
        ]
        for call in calls:
            errors.append(await _error_of(call))

    assert [type(e).__name__ for e in errors] == [
        "AuthenticationError",
        "ServerError",
        "NotFoundError",
        "UnexpectedResponseError",
        "UnexpectedResponseError",
        "UnexpectedResponseError",
        "BadRequestError",
        "ConflictError",
        "UnexpectedResponseError",
    ]
    masker = SecretMasker([key])
    for err in errors:
        shown = _everything_shown(err)
        assert not masker.leaks(shown), shown
        assert "MARKER" not in shown
    assert "***" in str(errors[0])
    assert errors[2].request_id == "rq-***"  # type: ignore[attr-defined]
    assert errors[5].__cause__ is not None  # the cause is kept, masked
    assert "***" in errors[5].body  # type: ignore[attr-defined]


async def test_pipeline_logs_method_path_status_attempt_and_time(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    handler, _ = _scripted((503, {}))
    base = await serve(_app(handler))
    with caplog.at_level(logging.DEBUG, logger="asyncgroups"):
        async with local_client(base) as client:
            await client.groups.get(KEY)
    lines = [r.getMessage() for r in caplog.records if "->" in r.getMessage()]
    assert len(lines) == 2
    assert lines[0].startswith(f"GET /group/{KEY} -> 503 (attempt 1, ")
    assert lines[1].startswith(f"GET /group/{KEY} -> 200 (attempt 2, ")
    assert lines[1].endswith(" ms)")


async def test_pipeline_logs_each_retry_decision_naming_the_request_and_the_wait(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    handler, _ = _scripted((503, {}), (503, {}), (429, {"Retry-After": "0.05"}))
    base = await serve(_app(handler))
    retry = RetryPolicy(backoff_base=0.01, jitter=False)
    with caplog.at_level(logging.DEBUG, logger="asyncgroups"):
        async with local_client(base, retry=retry) as client:
            with pytest.raises(ServerError):
                await client.groups.create(NewGroup("Team"))
            await client.groups.get(KEY)
    decisions = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert decisions == [
        "no retry POST /group: POST is not retried after status 503: it may have acted",
        f"retry GET /group/{KEY} in 0.01s after attempt 1 of 3: status 503 is retryable",
        f"retry GET /group/{KEY} in 0.05s after attempt 2 of 3: 429 means the server did not act",
    ]
    assert not [r for r in caplog.records if API_KEY in r.getMessage()]


# Proxies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "url", "expected"),
    [
        ({}, "https://api.example.com/v1", None),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "https://api.example.com/v1", "http://proxy:3128"),
        ({"https_proxy": "http://proxy:3128"}, "https://api.example.com/v1", "http://proxy:3128"),
        ({"HTTP_PROXY": "http://proxy:3128"}, "https://api.example.com/v1", None),
        ({"HTTP_PROXY": "http://proxy:3128"}, "http://groups.test:8080/v1", "http://proxy:3128"),
        ({"HTTP_PROXY": "http://proxy:3128"}, "http://127.0.0.1:8080/v1", None),
        ({"HTTP_PROXY": "http://proxy:3128"}, "http://localhost:8080/v1", None),
        ({"HTTPS_PROXY": "proxy.corp:3128"}, "https://api.example.com/v1", "http://proxy.corp:3128"),
        (
            {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "api.example.com"},
            "https://api.example.com/v1",
            None,
        ),
        (
            {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "localhost,.example.com"},
            "https://api.example.com/v1",
            None,
        ),
        (
            {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "*"},
            "https://api.example.com/v1",
            None,
        ),
        (
            {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "other.org"},
            "https://api.example.com/v1",
            "http://proxy:3128",
        ),
    ],
)
def test_proxy_from_env_honours_https_proxy_and_no_proxy(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str, expected: str | None
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert proxy_from_env(url) == expected


def test_proxy_from_env_refuses_a_scheme_it_cannot_use_without_showing_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://user:s3cret@proxy:1080")
    with pytest.raises(ValidationError, match="proxy from the environment") as info:
        GroupsClient(API_KEY)
    assert "s3cret" not in str(info.value)
    assert info.value.field == "proxy"


async def test_client_masks_the_proxy_password_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://user:s3cret@127.0.0.1:{_unused_port()}")
    async with local_client("http://groups.test:8080", allow_insecure_http=True) as client:
        with pytest.raises(TransportError) as info:
            await client.groups.get(KEY)
    assert "s3cret" not in str(info.value)


PROXY_USER = "proxy-user"
#: What aiohttp sends as `Proxy-Authorization: Basic <token>` for PROXY_USER:URL_PASSWORD.
PROXY_TOKEN = base64.b64encode(f"{PROXY_USER}:{URL_PASSWORD}".encode()).decode()


def _with_credentials(proxy_url: str) -> str:
    return proxy_url.replace("://", f"://{PROXY_USER}:{quote(URL_PASSWORD, safe='')}@")


def _assert_no_proxy_secret(err: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    shown = [str(err), repr(err), str(getattr(err, "body", "")), _everything_shown(err)]
    shown += [record.getMessage() for record in caplog.records]
    for text in shown:
        assert PROXY_TOKEN not in text, text
        assert not SecretMasker([PROXY_TOKEN]).leaks(text), text
        assert not shows_password(text), text


@pytest.mark.parametrize("status", [407, 502])
async def test_client_masks_the_proxy_credentials_a_proxy_echoes(
    serve: Serve, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    seen: list[str] = []

    async def echo(request: web.Request) -> web.Response:
        sent = request.headers.get("Proxy-Authorization", "")
        seen.append(sent)
        page = f"<html><p>refused: Proxy-Authorization: {sent}</p><p>{sent[6:]}</p></html>"
        return web.Response(status=status, text=page, content_type="text/html")

    proxy_url = _with_credentials(await serve(_app(echo)))
    with caplog.at_level(logging.DEBUG, logger="asyncgroups"):
        async with local_client(
            "http://groups.test:8080", proxy=proxy_url, allow_insecure_http=True
        ) as client:
            err = await _error_of(lambda: client.groups.get(KEY))
    assert seen[0] == f"Basic {PROXY_TOKEN}"  # the spelling this test expects is sent
    _assert_no_proxy_secret(err, caplog)
    assert "***" in str(getattr(err, "body", ""))


async def test_client_masks_the_proxy_credentials_a_refused_connect_echoes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        sent = next(
            (line.split(": ", 1)[1] for line in head.split("\r\n")
             if line.lower().startswith("proxy-authorization:")),
            "",
        )
        seen.append(sent)
        body = f"refused {sent}".encode()
        writer.write(
            f"HTTP/1.1 407 Refused {sent}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    proxy_url = _with_credentials(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    try:
        with caplog.at_level(logging.DEBUG, logger="asyncgroups"):
            async with local_client("https://groups.test", proxy=proxy_url) as client:
                err = await _error_of(lambda: client.groups.get(KEY))
    finally:
        server.close()
        await server.wait_closed()
    assert seen[0] == f"Basic {PROXY_TOKEN}"  # sent with the CONNECT, for an https target
    _assert_no_proxy_secret(err, caplog)


@pytest.fixture
async def proxy(serve: Serve) -> tuple[str, list[str]]:
    """A forward proxy for plain http: answers every request itself and records its URL."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        return web.json_response(GROUP)

    return await serve(_app(handler)), seen


async def test_client_sends_through_the_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, proxy: tuple[str, list[str]]
) -> None:
    proxy_url, seen = proxy
    target = "http://groups.test:8080"  # never resolved: only the proxy can answer
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    async with local_client(
        target, ssl_context=ssl.create_default_context(), allow_insecure_http=True
    ) as client:
        assert (await client.groups.get(KEY)).prokey == KEY
    assert seen == [f"{target}/v1/group/{KEY}"]


async def test_client_skips_the_proxy_for_no_proxy_hosts(
    monkeypatch: pytest.MonkeyPatch, serve: Serve, proxy: tuple[str, list[str]]
) -> None:
    proxy_url, seen = proxy
    handler, hits = _scripted()
    target = await serve(_app(handler))
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with local_client(target) as client:
        await client.groups.get(KEY)
    assert len(hits) == 1
    assert seen == []


async def test_client_explicit_proxy_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, proxy: tuple[str, list[str]]
) -> None:
    proxy_url, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_unused_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    target = f"http://127.0.0.1:{_unused_port()}"
    async with local_client(target, proxy=proxy_url) as client:
        await client.groups.get(KEY)
    assert len(seen) == 1


async def test_not_found_reply_through_the_pipeline_is_not_retried(serve: Serve) -> None:
    handler, hits = _scripted((404, {}), (404, {}))
    base = await serve(_app(handler))
    async with local_client(base) as client:
        with pytest.raises(NotFoundError):
            await client.groups.get(KEY)
    assert len(hits) == 1
