"""GroupsClient: configuration, environment, lifecycle, repr, loop affinity, borrowed sessions."""

from __future__ import annotations

import asyncio
import math
import socket
import ssl
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web
from conftest import API_KEY, KEY, PeakInFlight

from asyncgroups import (
    DEFAULT_BASE_URL,
    AsyncGroupsError,
    ClientStateError,
    GroupPatch,
    GroupsClient,
    RetryPolicy,
    ValidationError,
)

if TYPE_CHECKING:
    from conftest import MockAPI, Serve

BASE = "https://api.example.com/v1"
GROUP = [{"name": "Team", "events": []}]


def _authorization(mock: MockAPI) -> list[str]:
    return [c.kwargs["headers"]["Authorization"] for calls in mock.requests.values() for c in calls]


def _group_app(**response_headers: str) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        if request.method == "PATCH":
            return web.json_response({"success": "Updated"}, headers=response_headers)
        return web.json_response(GROUP, headers=response_headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


# The API key ------------------------------------------------------------------------


def test_client_without_an_api_key_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="ASYNCGROUPS_API_KEY") as info:
        GroupsClient()
    assert info.value.field == "api_key"


async def test_client_reads_the_api_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, mock_api: MockAPI
) -> None:
    monkeypatch.setenv("ASYNCGROUPS_API_KEY", "key-from-env")
    mock_api.get(f"{BASE}/group/{KEY}", payload=GROUP)
    async with GroupsClient(base_url=BASE) as client:
        await client.groups.get(KEY)
    assert _authorization(mock_api) == ["key-from-env"]


async def test_client_api_key_argument_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, mock_api: MockAPI
) -> None:
    monkeypatch.setenv("ASYNCGROUPS_API_KEY", "key-from-env")
    mock_api.get(f"{BASE}/group/{KEY}", payload=GROUP)
    async with GroupsClient("key-from-arg", base_url=BASE) as client:
        await client.groups.get(KEY)
    assert _authorization(mock_api) == ["key-from-arg"]


@pytest.mark.parametrize("key", ["", "   ", "abc\ndef", "abc\r\nX-Evil: 1", "abc\x00"])
def test_client_rejects_a_key_that_cannot_be_a_header(key: str) -> None:
    with pytest.raises(ValidationError) as info:
        GroupsClient(key)
    assert info.value.field == "api_key"
    assert key.strip() == "" or key.strip() not in str(info.value)


def test_client_rejects_an_empty_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCGROUPS_API_KEY", "")
    with pytest.raises(ValidationError, match="empty"):
        GroupsClient()


# The base URL -----------------------------------------------------------------------


def test_client_base_url_defaults_to_production() -> None:
    assert GroupsClient(API_KEY).base_url == DEFAULT_BASE_URL
    assert DEFAULT_BASE_URL == "https://api.add-to-calendar-pro.com/v1"


def test_client_reads_the_base_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCGROUPS_BASE_URL", "https://staging.example.com/v1/")
    assert GroupsClient(API_KEY).base_url == "https://staging.example.com/v1"
    assert GroupsClient(API_KEY, base_url=BASE).base_url == BASE


async def test_client_joins_paths_to_a_base_url_with_a_trailing_slash(mock_api: MockAPI) -> None:
    mock_api.get(f"{BASE}/group/{KEY}", payload=GROUP)
    async with GroupsClient(API_KEY, base_url=BASE + "/") as client:
        assert client.base_url == BASE
        await client.groups.get(KEY)
    assert len(_authorization(mock_api)) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://api.example.com/v1",
        "http://10.0.0.5:8080",
        "http://192.168.1.1",
        "http://localhost.evil.example",
        "http://evil.localhost",
        "http://127.0.0.1.nip.io",
        "HTTP://API.EXAMPLE.COM",
    ],
)
def test_client_refuses_plain_http_to_a_host_that_is_not_loopback(url: str) -> None:
    with pytest.raises(ValidationError, match="plain http") as info:
        GroupsClient(API_KEY, base_url=url)
    assert info.value.field == "base_url"


def test_client_refuses_plain_http_from_the_environment_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASYNCGROUPS_BASE_URL", "http://api.example.com/v1")
    with pytest.raises(ValidationError, match="plain http"):
        GroupsClient(API_KEY)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "http://127.9.9.9", "http://localhost:1", "http://[::1]:8080/v1"],
)
def test_client_allows_plain_http_to_loopback(url: str) -> None:
    assert GroupsClient(API_KEY, base_url=url).base_url == url.rstrip("/")


def test_client_allows_plain_http_anywhere_when_asked() -> None:
    client = GroupsClient(API_KEY, base_url="http://api.example.com/v1", allow_insecure_http=True)
    assert client.base_url == "http://api.example.com/v1"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://api.example.com",
        "api.example.com/v1",
        "https://",
        "https://user:secret@api.example.com/v1",
        "https://api.example.com/v1?debug=1",
        "https://api.example.com/v1#frag",
        "https://[::1/v1",  # urlsplit raises ValueError on this one
        "https://api.example.com:port/v1",
    ],
)
def test_client_rejects_a_base_url_that_is_not_a_plain_https_url(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        GroupsClient(API_KEY, base_url=url)
    assert info.value.field == "base_url"


# Other options ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": math.nan}, "timeout"),
        ({"timeout": math.inf}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"max_connections": 0}, "max_connections"),
        ({"max_connections": 2.5}, "max_connections"),
        ({"max_connections": True}, "max_connections"),
        ({"rate_limit": 0}, "rate_limit"),
        ({"rate_limit": -5}, "rate_limit"),
        ({"rate_limit": math.inf}, "rate_limit"),
        ({"retry": 3}, "retry"),
        ({"ssl_context": "/etc/ssl/ca.pem"}, "ssl_context"),
        ({"proxy": "socks5://proxy:1080"}, "proxy"),
        ({"proxy": "proxy:3128"}, "proxy"),
        ({"proxy": "http://[::1"}, "proxy"),
        ({"user_agent": "job\r\nX-Evil: 1"}, "user_agent"),
        ({"max_body_size": 0}, "max_body_size"),
    ],
)
def test_client_rejects_bad_options(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        GroupsClient(API_KEY, base_url=BASE, **kwargs)
    assert info.value.field == field


def test_client_exposes_its_configuration() -> None:
    policy = RetryPolicy(max_attempts=5)
    client = GroupsClient(
        API_KEY, base_url=BASE, timeout=5, max_connections=4, rate_limit=10, retry=policy
    )
    assert (client.timeout, client.max_connections, client.rate_limit) == (5.0, 4, 10)
    assert client.retry is policy
    assert GroupsClient(API_KEY, retry=None).retry is None
    assert GroupsClient(API_KEY).retry == RetryPolicy()


# repr -------------------------------------------------------------------------------


async def test_client_repr_shows_the_base_url_and_state_never_the_key() -> None:
    client = GroupsClient(API_KEY, base_url=BASE, max_connections=8)
    assert repr(client) == (
        f"GroupsClient(base_url='{BASE}', max_connections=8, rate_limit=80.0, open)"
    )
    await client.close()
    assert repr(client).endswith(", closed)")
    assert API_KEY not in repr(client)
    assert API_KEY not in str(client)


# Lifecycle --------------------------------------------------------------------------


def test_client_can_be_built_outside_an_event_loop() -> None:
    # Nothing is opened yet: no session, no warning about an unclosed one.
    client = GroupsClient(API_KEY, base_url=BASE)
    assert not client.closed


async def test_client_opens_its_session_lazily_on_the_first_call(mock_api: MockAPI) -> None:
    mock_api.get(f"{BASE}/group/{KEY}", payload=GROUP)
    client = GroupsClient(API_KEY, base_url=BASE)
    assert client._pipeline._session is None
    assert (await client.groups.get(KEY)).prokey == KEY
    session = client._pipeline._session
    assert session is not None
    await client.close()
    assert session.closed


async def test_client_owns_one_pooled_connector_sized_by_max_connections() -> None:
    async with GroupsClient(API_KEY, base_url=BASE, max_connections=7) as client:
        session = client._pipeline._session
        assert session is not None
        connector = session.connector
        assert isinstance(connector, aiohttp.TCPConnector)
        assert connector.limit == 7
        assert connector.limit_per_host == 0
        assert connector.use_dns_cache
        assert not connector.force_close  # keep-alive
        assert client._pipeline.open() is session  # one session for the client's life
    assert session.closed
    assert connector.closed


async def test_client_async_with_closes_what_it_opened() -> None:
    async with GroupsClient(API_KEY, base_url=BASE) as client:
        assert not client.closed
        session = client._pipeline._session
    assert client.closed
    assert session is not None
    assert session.closed


async def test_client_close_is_idempotent() -> None:
    client = GroupsClient(API_KEY, base_url=BASE)
    await client.close()
    await client.close()
    assert client.closed
    async with GroupsClient(API_KEY, base_url=BASE) as opened:
        await opened.close()  # closing inside the block, then leaving it, is fine too
    assert opened.closed


async def test_client_call_after_close_raises_a_clear_error(mock_api: MockAPI) -> None:
    async with GroupsClient(API_KEY, base_url=BASE) as client:
        pass
    with pytest.raises(ClientStateError, match="closed"):
        await client.groups.get(KEY)
    with pytest.raises(ClientStateError, match="closed"):
        await client.groups.update(KEY, GroupPatch(name="x"))
    with pytest.raises(ClientStateError, match="closed"):
        async with client:
            pass
    assert mock_api.requests == {}


def test_client_state_error_escapes_a_broad_except_of_request_errors() -> None:
    assert issubclass(ClientStateError, RuntimeError)
    assert not issubclass(ClientStateError, AsyncGroupsError)


# Loop affinity ----------------------------------------------------------------------


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


async def _serve_once(sock: socket.socket, client: GroupsClient) -> None:
    async def handler(request: web.Request) -> web.Response:
        response = web.json_response(GROUP)
        response.force_close()  # leave no pooled connection bound to this loop
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        assert (await client.groups.get(KEY)).prokey == KEY
    finally:
        await runner.cleanup()


def test_client_used_from_a_second_event_loop_fails_at_once() -> None:
    sock = _listening_socket()
    port = sock.getsockname()[1]
    client = GroupsClient(API_KEY, base_url=f"http://127.0.0.1:{port}/v1")
    asyncio.run(_serve_once(sock, client))  # opens the client in the first loop

    async def second_loop() -> None:
        with pytest.raises(ClientStateError, match="another event loop") as info:
            await asyncio.wait_for(client.groups.get(KEY), timeout=2)
        assert "create one client per event loop" in str(info.value)
        with pytest.raises(ClientStateError, match="another event loop"):
            async with client:
                pass

    asyncio.run(second_loop())
    asyncio.run(asyncio.wait_for(client.close(), timeout=2))  # neither hangs nor raises
    assert client.closed
    assert client.stats.requests == 1


async def test_client_built_outside_a_loop_binds_to_the_loop_that_uses_it(
    mock_api: MockAPI,
) -> None:
    client = GroupsClient(API_KEY, base_url=BASE)  # made while no loop runs
    mock_api.get(f"{BASE}/group/{KEY}", payload=GROUP)
    async with client:
        assert (await client.groups.get(KEY)).prokey == KEY

        def from_another_loop() -> None:
            with pytest.raises(ClientStateError, match="another event loop"):
                asyncio.run(client.groups.get(KEY))

        await asyncio.to_thread(from_another_loop)  # bound to this test's loop, not that one


# Borrowed sessions ------------------------------------------------------------------


@pytest.fixture
async def borrowed() -> AsyncIterator[tuple[aiohttp.ClientSession, list[str]]]:
    sent: list[str] = []

    async def on_start(
        session: aiohttp.ClientSession, ctx: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        sent.append(f"{params.method} {params.url.path}")

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    session = aiohttp.ClientSession(trace_configs=[trace])
    yield session, sent
    await session.close()


async def test_client_sends_through_a_borrowed_session_and_never_closes_it(
    serve: Serve, borrowed: tuple[aiohttp.ClientSession, list[str]]
) -> None:
    session, sent = borrowed
    base = await serve(_group_app())
    async with GroupsClient(API_KEY, base_url=base + "/v1", session=session) as client:
        await client.groups.get(KEY)
    await client.close()
    assert client.closed
    assert not session.closed
    assert sent == [f"GET /v1/group/{KEY}"]
    async with session.get(base + "/still-usable") as resp:
        assert resp.status == 200


async def test_client_with_a_closed_borrowed_session_raises_a_clear_error(
    serve: Serve, borrowed: tuple[aiohttp.ClientSession, list[str]]
) -> None:
    session, sent = borrowed
    base = await serve(_group_app())
    async with GroupsClient(API_KEY, base_url=base + "/v1", session=session) as client:
        await client.groups.get(KEY)
        await session.close()  # its owner closes it while the client is still open
        with pytest.raises(ClientStateError, match="borrowed aiohttp session is closed"):
            await client.groups.get(KEY)
    assert sent == [f"GET /v1/group/{KEY}"]


async def test_client_caps_requests_in_flight_on_a_borrowed_session(
    serve: Serve, borrowed: tuple[aiohttp.ClientSession, list[str]]
) -> None:
    session, _ = borrowed
    counter = PeakInFlight(2, GROUP)
    base = await serve(counter.app())
    async with GroupsClient(API_KEY, base_url=base, session=session, max_connections=2) as client:
        await asyncio.gather(*(client.groups.get(KEY) for _ in range(8)))
    assert counter.peak == 2


# Hooks and stats --------------------------------------------------------------------


async def test_client_calls_its_trace_configs(serve: Serve) -> None:
    started: list[str] = []

    async def on_start(
        session: aiohttp.ClientSession, ctx: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        started.append(params.method)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    base = await serve(_group_app())
    async with GroupsClient(API_KEY, base_url=base, trace_configs=[trace]) as client:
        await client.groups.get(KEY)
    assert started == ["GET"]


async def test_client_stats_count_requests_retries_and_updates(serve: Serve) -> None:
    failures = [503]

    async def handler(request: web.Request) -> web.Response:
        if failures:
            return web.json_response({}, status=failures.pop())
        return web.json_response(GROUP if request.method == "GET" else {})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    base = await serve(app)
    retry = RetryPolicy(backoff_base=0)
    async with GroupsClient(API_KEY, base_url=base, retry=retry) as client:
        assert (client.stats.requests, client.stats.retries, client.stats.updates_sent) == (0, 0, 0)
        await client.groups.get(KEY)  # 503, then 200
        await client.groups.update(KEY, GroupPatch(name="x"))
        await client.groups.update(KEY, GroupPatch())  # empty: nothing sent, nothing counted
    assert client.stats.requests == 3
    assert client.stats.retries == 1
    assert client.stats.updates_sent == 1
    assert client.stats.estimated_credits == 0


async def test_client_uses_a_given_ssl_context(serve: Serve) -> None:
    context = ssl.create_default_context()
    async with GroupsClient(API_KEY, base_url=BASE, ssl_context=context) as client:
        session = client._pipeline._session
        assert session is not None
        assert isinstance(session.connector, aiohttp.TCPConnector)
        assert session.connector._ssl is context


@pytest.mark.parametrize("key", ["abc\x7f", "abc\x1b[0m", "clé", "a\tb\x00"])
def test_client_refuses_an_api_key_that_cannot_be_a_header(key: str) -> None:
    with pytest.raises(ValidationError, match="control or non-ASCII") as info:
        GroupsClient(key)
    assert info.value.field == "api_key"
    assert key not in str(info.value)
