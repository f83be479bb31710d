"""`client.with_options(...)`: views of one client that send with other options, over
real sockets against the fake server."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator

import attrs
import pytest
from conftest import NO_WAIT, local_client

from asyncgroups import (
    ClientStateError,
    GroupsClient,
    RateLimitError,
    RequestTimeout,
    RetryPolicy,
    ValidationError,
)
from asyncgroups._deadline import Deadlines
from asyncgroups.testing import FakeGroupsServer

#: Slower than a view's timeout, well within the client's own.
SLOW = 0.3


@pytest.fixture
async def server() -> AsyncIterator[FakeGroupsServer]:
    async with FakeGroupsServer() as fake:
        yield fake


def _gets(server: FakeGroupsServer) -> int:
    return sum(r.method == "GET" for r in server.requests)


async def test_with_options_times_out_on_a_slow_server_while_the_client_keeps_its_timeout(
    server: FakeGroupsServer,
) -> None:
    key = server.add_group("Team")
    async with local_client(server, timeout=5.0) as client:
        quick = client.with_options(timeout=0.1, retry=None)
        server.inject(delay=SLOW, times=2, method="GET")

        with pytest.raises(RequestTimeout, match=r"within 0\.1s"):
            await quick.groups.get(key)
        assert _gets(server) == 1  # retry=None: one attempt

        assert (await client.groups.get(key)).name == "Team"  # 0.3 s is within 5 s
        assert _gets(server) == 2
        assert client.timeout == 5.0
        assert quick.timeout == 0.1


async def test_with_options_keeps_the_client_s_retries_unless_given(
    server: FakeGroupsServer,
) -> None:
    key = server.add_group("Team")
    async with local_client(server, timeout=5.0) as client:
        quick = client.with_options(timeout=0.1)
        assert quick.retry is client.retry is NO_WAIT
        server.inject(delay=SLOW, times=NO_WAIT.max_attempts, method="GET")

        with pytest.raises(RequestTimeout):
            await quick.groups.get(key)
        assert _gets(server) == NO_WAIT.max_attempts


async def test_with_options_view_shares_stats_limiter_and_cool_down(
    server: FakeGroupsServer,
) -> None:
    key = server.add_group("Team")
    async with local_client(server) as client:
        view = client.with_options(retry=None)
        assert view.stats is client.stats
        assert view.limiter is client.limiter
        assert view.base_url == client.base_url

        await view.groups.get(key)
        await client.groups.get(key)
        assert client.stats.requests == 2

        # A 429 met through the view stops the client too: the cool-down is shared.
        server.inject(status=429, retry_after=120)
        with pytest.raises(RateLimitError):
            await view.groups.get(key)
        with pytest.raises(RateLimitError):
            await client.groups.get(key)
        assert _gets(server) == 3  # the client's call was refused unsent


def _live_deadlines() -> int:
    return sum(isinstance(o, Deadlines) for o in gc.get_objects())


async def test_with_options_views_of_ever_new_timeouts_hold_no_memory_each(
    server: FakeGroupsServer,
) -> None:
    """An app that gives each call what is left of its own budget makes a view of a new
    timeout per call; what the client keeps for them stays bounded."""
    key = server.add_group("Team")
    async with local_client(server, timeout=5.0) as client:
        await client.groups.get(key)
        before = _live_deadlines()
        for budget in range(200):
            view = client.with_options(timeout=1.0 + budget / 1000)
            assert (await view.groups.get(key)).name == "Team"
        gc.collect()
        assert _live_deadlines() - before <= 20


#: A client that answers at once rather than wait out a long 429: it stops instead.
IMPATIENT = attrs.evolve(NO_WAIT, max_retry_after=1.0)


@pytest.mark.parametrize("view_retry", [None, RetryPolicy(max_attempts=1)], ids=["none", "own"])
async def test_with_options_view_s_429_never_pauses_the_client_past_its_max_retry_after(
    server: FakeGroupsServer, view_retry: RetryPolicy | None
) -> None:
    """The pause after a 429 is the whole client's: a view's policy (or none) must not
    make every other call queue for a wait the client was told never to wait for."""
    key = server.add_group("Team")
    async with local_client(server, retry=IMPATIENT) as client:
        server.inject(status=429, retry_after=30, method="GET")
        with pytest.raises(RateLimitError) as met:
            await client.with_options(retry=view_retry).groups.get(key)
        assert met.value.client_stopped  # stopped, as the client's own call would have

        with pytest.raises(RateLimitError, match="not sent"):
            await client.groups.get(key)  # at once, not after a 30 s pause
        assert _gets(server) == 1


async def test_closing_the_client_closes_its_views(server: FakeGroupsServer) -> None:
    key = server.add_group("Team")
    client = local_client(server)
    async with client:
        view = client.with_options(timeout=1.0).with_options(retry=None)
        await view.groups.get(key)
    assert view.closed
    with pytest.raises(ClientStateError, match="closed"):
        await view.groups.get(key)


async def test_closing_a_view_leaves_the_client_open(server: FakeGroupsServer) -> None:
    key = server.add_group("Team")
    async with local_client(server) as client:
        async with client.with_options(timeout=1.0) as view:
            await view.groups.get(key)
        await view.close()
        assert not client.closed
        assert (await client.groups.get(key)).name == "Team"


async def test_with_options_view_entered_before_its_client_opened_refuses(
    server: FakeGroupsServer,
) -> None:
    """`async with GroupsClient(...).with_options(...)` would open a pool that nothing
    closes: leaving the view leaves the client, which owns the pool, open."""
    key = server.add_group("Team")
    client = local_client(server)
    with pytest.raises(ClientStateError, match="open the client first"):
        async with client.with_options(timeout=1.0):
            pass
    # The client itself is untouched, and opens as usual.
    async with client, client.with_options(timeout=1.0) as view:
        assert (await view.groups.get(key)).name == "Team"


def test_with_options_refuses_bad_options_at_once() -> None:
    client = GroupsClient("key", base_url="http://127.0.0.1:1/v1")
    with pytest.raises(ValidationError, match="timeout"):
        client.with_options(timeout=-1)
    with pytest.raises(ValidationError, match="retry"):
        client.with_options(retry=3)  # type: ignore[arg-type]


def test_with_options_view_says_what_differs_and_never_the_key() -> None:
    client = GroupsClient("sk_secret_key_123", base_url="http://127.0.0.1:1/v1")
    view = client.with_options(timeout=2, retry=None)
    assert isinstance(view, GroupsClient)
    assert "view: timeout=2, retry=None" in repr(view)
    assert "sk_secret_key_123" not in repr(view)
    assert "view" not in repr(client)
