"""What an error says about the request, end to end: may_have_acted and its kin.

These are the answers sync (and any caller deciding whether to send a write again)
reads instead of guessing from the error's type.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from conftest import NO_WAIT
from conftest import local_client as _client

from asyncgroups import (
    AsyncGroupsError,
    ConnectError,
    GroupPatch,
    GroupsClient,
    LimiterUnavailableError,
    NewGroup,
    NotFoundError,
    RateLimitError,
    RequestTimeout,
    RetryPolicy,
    ServerError,
    TransportError,
)
from asyncgroups.testing import FakeGroupsServer

MISSING = "31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa"


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_create_whose_reply_was_lost_may_have_acted() -> None:
    async with FakeGroupsServer() as server:
        server.inject(lost_reply=True, method="POST")
        async with _client(server) as client:
            with pytest.raises(TransportError) as info:
                await client.groups.create(NewGroup("Once"))
    assert not isinstance(info.value, ConnectError)
    assert info.value.may_have_acted
    assert not info.value.may_still_be_running


async def test_a_create_that_timed_out_may_still_be_running() -> None:
    async with FakeGroupsServer() as server:
        server.inject(delay=1.0, method="POST")
        async with _client(server, timeout=0.05) as client:
            with pytest.raises(RequestTimeout) as info:
                await client.groups.create(NewGroup("Slow"))
    assert (info.value.may_have_acted, info.value.may_still_be_running) == (True, True)


async def test_a_create_refused_at_connect_did_not_act() -> None:
    base = f"http://127.0.0.1:{_unused_port()}/v1"
    async with GroupsClient("k", base_url=base, retry=NO_WAIT, rate_limit=None) as client:
        with pytest.raises(ConnectError) as info:
            await client.groups.create(NewGroup("Never"))
    assert info.value.never_connected
    assert (info.value.may_have_acted, info.value.may_still_be_running) == (False, False)


@asynccontextmanager
async def _answering(status_line: bytes, heads: list[bytes]) -> AsyncIterator[str]:
    """A raw-socket server answering every request with `status_line` and `{}`; yields
    its base URL and keeps each request's head in `heads`."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(status_line + b"\r\nContent-Type: application/json\r\n")
        writer.write(b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"


@pytest.mark.parametrize(
    "status_line",
    [
        b"HTTP/1.1 099 Odd",  # aiohttp hands it over as status 99
        b"HTTP/1.1 000 Zero",
        b"HTTP/1.1 101 Switching Protocols",  # informational, yet the last thing said
        b"HTTP/1.1 600 Beyond",
        b"HTTP/1.1 99 Short",  # aiohttp refuses the line itself (as a "400")
        b"HTTP/1.1 1000 Long",
    ],
)
async def test_a_create_answered_with_a_status_http_does_not_define_may_have_acted(
    status_line: bytes,
) -> None:
    heads: list[bytes] = []
    async with _answering(status_line, heads) as base:
        client = GroupsClient("k", base_url=base, retry=NO_WAIT, rate_limit=None)
        async with client:
            with pytest.raises(AsyncGroupsError) as info:
                await client.groups.create(NewGroup("Odd"))
    assert [h.split(b" ", 2)[:2] for h in heads] == [[b"POST", b"/v1/group"]]  # sent once
    assert info.value.may_have_acted


async def test_a_429_did_not_act_and_a_5xx_may_have() -> None:
    async with FakeGroupsServer() as server:
        key = server.add_group(name="g")
        server.inject(status=429, method="PATCH", retry_after=120)
        server.inject(status=502, method="POST")
        async with _client(server) as client:
            with pytest.raises(ServerError) as failed:
                await client.groups.create(NewGroup("Maybe"))
            # Last: after a Retry-After of 120 s the client sends nothing for that long.
            with pytest.raises(RateLimitError) as limited:
                await client.groups.update(key, GroupPatch(name="h"))
    assert not limited.value.may_have_acted
    assert failed.value.may_have_acted


async def test_a_delete_404_after_a_lost_reply_may_have_acted_in_a_bulk_call() -> None:
    async with FakeGroupsServer() as server:
        key = server.add_group(name="g")
        server.inject(lost_reply=True, method="DELETE", path=f"/group/{key}")
        async with _client(server) as client:
            outcomes = [o async for o in client.groups.iter_delete_many([key, MISSING])]
    errors = {o.prokey: o.error for o in outcomes}
    assert isinstance(errors[key], NotFoundError)
    assert errors[key].may_have_acted  # the lost attempt deleted it
    assert isinstance(errors[MISSING], NotFoundError)
    assert not errors[MISSING].may_have_acted


async def test_only_the_pipeline_counts_updates() -> None:
    async with FakeGroupsServer() as server:
        key = server.add_group(name="g")
        async with _client(server, retry=RetryPolicy(backoff_base=0)) as client:
            assert await client.groups.update(key, GroupPatch(name="h"))
            assert not await client.groups.update(key, GroupPatch())  # nothing sent
    assert client.stats.updates_sent == 1 == server.updates


class _StoreGoesDown:
    """A shared limiter whose store answers `ok` acquires, then is unreachable."""

    def __init__(self, ok: int) -> None:
        self.ok = ok

    async def acquire(self) -> None:
        if self.ok == 0:
            raise LimiterUnavailableError("the store is down", backend="test")
        self.ok -= 1

    def release(self) -> None:
        pass

    def cool_down(self, seconds: float) -> None:
        pass


async def test_a_limiter_outage_before_any_attempt_did_not_act() -> None:
    async with FakeGroupsServer() as server:
        key = server.add_group("Kept")
        async with _client(server, limiter=_StoreGoesDown(ok=0)) as client:
            with pytest.raises(LimiterUnavailableError) as info:
                await client.groups.delete(key)
        assert server.requests == []
    assert (info.value.may_have_acted, info.value.may_still_be_running) == (False, False)


async def test_a_limiter_outage_after_a_lost_reply_may_have_acted() -> None:
    async with FakeGroupsServer() as server:
        key = server.add_group("Gone")
        server.inject(lost_reply=True, method="DELETE")  # deleted, the reply lost
        async with _client(server, limiter=_StoreGoesDown(ok=1)) as client:
            with pytest.raises(LimiterUnavailableError) as info:
                await client.groups.delete(key)  # the retry is refused by the limiter
        assert key not in server.groups
    assert info.value.may_have_acted
    assert not info.value.may_still_be_running
