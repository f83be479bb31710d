"""What an error says about the request, end to end: may_have_acted and its kin.

These are the answers sync (and any caller deciding whether to send a write again)
reads instead of guessing from the error's type.
"""

from __future__ import annotations

import socket

import pytest

from asyncgroups import (
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

from .support import NO_WAIT
from .support import local_client as _client

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
