"""Listing the account page by page, and the default rate limit, over real sockets."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import AsyncIterator

import pytest
from conftest import NO_WAIT, steady_clock
from conftest import local_client as _client

from asyncgroups import GroupsClient, NotFoundError, ServerError, UnexpectedResponseError
from asyncgroups.testing import FakeGroupsServer


@pytest.fixture(params=["list", "object"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[FakeGroupsServer]:
    async with FakeGroupsServer(shape=request.param) as fake:
        yield fake


def _fill(server: FakeGroupsServer, count: int) -> list[str]:
    return [server.add_group(f"Group {n}") for n in range(count)]


def _pages_asked(server: FakeGroupsServer) -> list[str | None]:
    return [r.query.get("page") for r in server.requests if r.path == "/v1/group/all"]


async def test_list_returns_every_group_of_three_pages_once_in_order(
    server: FakeGroupsServer,
) -> None:
    keys = _fill(server, 1_750)
    async with _client(server) as client:
        summaries = await client.groups.list()
    assert [s.prokey for s in summaries] == keys
    assert _pages_asked(server) == [None, "2", "3"]  # page 3 (150) is short: the end
    if server.shape == "list":
        assert summaries[1_749].name == "Group 1749"


async def test_list_of_exactly_two_full_pages_reads_the_empty_third(
    server: FakeGroupsServer,
) -> None:
    keys = _fill(server, 1_600)
    async with _client(server) as client:
        assert [s.prokey for s in await client.groups.list()] == keys
    assert _pages_asked(server) == [None, "2", "3"]


async def test_iter_list_streams_page_by_page_each_group_once(server: FakeGroupsServer) -> None:
    keys = _fill(server, 1_700)
    seen: list[str] = []
    pages_when_first_arrived = 0
    async with _client(server) as client:
        async for summary in client.groups.iter_list():
            if not seen:
                pages_when_first_arrived = len(_pages_asked(server))
            seen.append(summary.prokey)
    assert seen == keys
    assert pages_when_first_arrived == 1  # the first group came before page 2 was asked
    assert _pages_asked(server) == [None, "2", "3"]


async def test_list_against_a_server_that_ignores_page_fails_fast() -> None:
    # Exactly 800 at once, then the same again: the account may hold more than 800.
    async with FakeGroupsServer(page_size=None) as server, _client(server) as client:
        _fill(server, 800)
        with pytest.raises(UnexpectedResponseError, match=r"ignore \?page="):
            await client.groups.list()
    assert _pages_asked(server) == [None, "2"]  # fast: two pages, not page after page


async def test_list_of_a_small_unpaged_account_is_complete() -> None:
    async with FakeGroupsServer(page_size=None) as server, _client(server) as client:
        keys = _fill(server, 30)
        assert [s.prokey for s in await client.groups.list()] == keys


async def test_list_of_an_unpaged_account_over_the_page_size_is_complete() -> None:
    # A server from before paging answers all 1,000 groups, for ?page=2 as well: more
    # than 800 at once proves it does not page at 800, so page 1 was the account.
    async with FakeGroupsServer(page_size=None) as server, _client(server) as client:
        keys = _fill(server, 1_000)
        assert [s.prokey for s in await client.groups.list()] == keys
    assert _pages_asked(server) == [None, "2"]


async def test_list_retries_a_page_that_fails_and_still_returns_everything(
    server: FakeGroupsServer,
) -> None:
    keys = _fill(server, 1_000)
    server.inject(status=503, method="GET", path="/group/all", times=1)
    server.inject(reset=True, method="GET", path="/group/all", times=1)
    async with _client(server) as client:
        assert [s.prokey for s in await client.groups.list()] == keys


async def test_list_never_returns_part_of_the_account_when_a_page_keeps_failing(
    server: FakeGroupsServer,
) -> None:
    _fill(server, 1_000)
    async with _client(server) as client:
        pages = client.groups.iter_list()
        first = [await anext(pages) for _ in range(800)]  # page 1 arrived
        assert len(first) == 800
        await pages.aclose()
        server.inject(status=500, method="GET", path="/group/all", times=NO_WAIT.max_attempts)
        server.reset_stats()
        with pytest.raises(ServerError):
            await client.groups.list()
    assert _pages_asked(server) == [None, None, None]


# The rate limit -----------------------------------------------------------------------


def _most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    return max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))


async def test_default_client_never_puts_more_than_80_requests_into_a_second() -> None:
    async with FakeGroupsServer() as server:
        keys = _fill(server, 240)
        # The default rate limit: no rate_limit= given.
        client = GroupsClient(server.api_key, base_url=server.url, retry=NO_WAIT)
        with steady_clock():
            async with client:
                assert client.rate_limit == 80.0
                result = await client.groups.get_many(keys, concurrency=32)
        assert len(result.ok) == 240
        arrivals = [r.received_at for r in server.requests]
        assert len(arrivals) == 240
        assert _most_in_one_second(arrivals) <= 80
        # Evenly spaced: 239 gaps of 1/80 s and a little, and not much more than that.
        assert 2.95 < max(arrivals) - min(arrivals) < 6


async def test_rate_limit_none_is_unlimited() -> None:
    async with FakeGroupsServer() as server:
        keys = _fill(server, 240)
        async with _client(server, rate_limit=None) as client:
            result = await client.groups.get_many(keys, concurrency=32)
        assert len(result.ok) == 240
        assert _most_in_one_second([r.received_at for r in server.requests]) > 80


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def _slow_handshakes(port: int, delay: float) -> AsyncIterator[int]:
    """A TCP relay to 127.0.0.1:`port` that holds each new connection `delay` seconds
    before passing anything on: a TLS handshake through it takes that much longer."""
    relays: set[asyncio.Task[object]] = set()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers = [writer]
        try:
            await asyncio.sleep(delay)
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            writers.append(up_writer)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for each in writers:
                each.close()
                with contextlib.suppress(OSError):
                    await each.wait_closed()

    def start(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(relay(reader, writer))
        relays.add(task)
        task.add_done_callback(relays.discard)

    server = await asyncio.start_server(start, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        # The client has closed its connections: the relays end as their pipes drain.
        if relays:
            await asyncio.wait(relays, timeout=2)
        for task in relays:
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)
        await server.wait_closed()


async def test_default_rate_holds_at_the_server_when_new_connections_are_slow() -> None:
    # New connections take 0.3 s to set up (the handshake), reused ones nothing: paced
    # only as they leave, the first requests would reach the server late and bunch up
    # with those on reused connections (104 in one second, measured).
    async with FakeGroupsServer(tls=True) as server:
        keys = _fill(server, 20)
        async with _slow_handshakes(server.port, 0.3) as port, GroupsClient(
            server.api_key,
            base_url=f"https://127.0.0.1:{port}/v1",
            ssl_context=server.ssl_context(),
            retry=NO_WAIT,
        ) as client:
            with steady_clock():
                outcomes = [o async for o in client.groups.iter_many(keys * 12)]
        assert all(o.ok for o in outcomes)
        assert len(server.requests) == 240
        assert _most_in_one_second([r.received_at for r in server.requests]) <= 80


async def test_list_takes_a_404_past_the_last_page_as_the_end() -> None:
    # Some servers answer "No entry found" rather than [] for a page past the end.
    async with FakeGroupsServer() as server, _client(server) as client:
        keys = _fill(server, 300)
        not_found = {"message": "No entry found"}
        server.inject(status=404, method="GET", path="/group/all", body=not_found)
        with pytest.raises(NotFoundError):
            await client.groups.list()  # page 1 missing is not an empty account
        server.reset_stats()
        listing = client.groups.iter_list()
        first = await anext(listing)  # page 1 read; page 2 answers 404
        server.inject(status=404, method="GET", path="/group/all", body=not_found)
        rest = [s.prokey async for s in listing]
        assert [first.prokey, *rest] == keys
        assert _pages_asked(server) == [None, "2"]


async def test_paging_error_names_the_path_like_every_other_error() -> None:
    async with FakeGroupsServer(page_size=None) as server, _client(server) as client:
        _fill(server, 800)
        with pytest.raises(UnexpectedResponseError) as info:
            await client.groups.list()
    assert info.value.path == "/group/all?page=2"
    assert str(info.value).startswith("GET /group/all?page=2: 200 page 2 ")
