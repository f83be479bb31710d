"""Sync's creates over real sockets: what a POST carries, and creates that may still land."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import NO_WAIT
from conftest import local_client as _client

from asyncgroups import GroupsClient, NewGroup
from asyncgroups.sync import (
    Action,
    DesiredGroup,
    ItemOutcome,
    SyncReport,
    SyncState,
    apply,
    plan,
)
from asyncgroups.sync._landing import LANDING_FLOOR
from asyncgroups.testing import FakeGroupsServer

from .support import MovedClock

CAL = "https://example.com/team.ics"


def _posts(server: FakeGroupsServer) -> dict[str, dict[str, Any]]:
    """The recorded POST bodies, by the group name they carry."""
    return {r.body["name"]: r.body for r in server.requests if r.method == "POST"}


async def test_sync_create_sends_exactly_the_fields_the_record_manages(tmp_path: Path) -> None:
    desired = [
        DesiredGroup("a", "Only a name"),
        DesiredGroup("b", "With a note", internal_note="n", layout="grid"),
        DesiredGroup("c", "External", subscription="external", subscription_cal_url=CAL),
        DesiredGroup("d", "Explicitly no", subscription="no", cta=True),
        # Managed, but not sendable on a create: null note, draft status, null cta.
        DesiredGroup("e", "Draft", internal_note=None, status="draft", cta=None),
    ]
    async with FakeGroupsServer() as server, _client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            the_plan = await plan(client, desired, state)
            report = await apply(client, the_plan, state)
        assert report.ok
        assert report.count(Action.CREATE) == 5
        posts = _posts(server)
        assert posts == {
            "Only a name": {"name": "Only a name"},
            "With a note": {"name": "With a note", "internal_note": "n", "layout": "grid"},
            "External": {
                "name": "External",
                "subscription": "external",
                "subscription_cal_url": CAL,
            },
            "Explicitly no": {"name": "Explicitly no", "subscription": "no", "cta": True},
            "Draft": {"name": "Draft"},
        }
        # What the plan says a create sets is what went over the wire (the follow-up
        # PATCH carries the rest).
        for item in the_plan.creates:
            created = item.desired.created_values()
            body = posts[item.desired.name]
            assert body == {k: v for k, v in created.items() if v is not None}
        patches = [r.body for r in server.requests if r.method == "PATCH"]
        assert patches == [{"status": "draft", "cta": None}]


async def test_new_group_sent_directly_still_sends_its_default_subscription() -> None:
    async with FakeGroupsServer() as server, _client(server) as client:
        await client.groups.create(NewGroup("Direct"))
    assert _posts(server) == {"Direct": {"name": "Direct", "subscription": "no"}}


class _OddStatusProxy:
    """A raw-socket proxy to the fake that rewrites the status line of the first POST's
    reply to `HTTP/1.1 099 Odd`: the service made the group, the client reads nonsense."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.rewritten = 0
        self.url = ""

    async def __aenter__(self) -> _OddStatusProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                up_writer.write(head + await reader.readexactly(_length(head)))
                reply = await up_reader.readuntil(b"\r\n\r\n")
                body = await up_reader.readexactly(_length(reply))
                if head.startswith(b"POST ") and not self.rewritten:
                    self.rewritten += 1
                    reply = b"HTTP/1.1 099 Odd" + reply[reply.index(b"\r\n") :]
                writer.write(reply + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # either side closed the connection
        finally:
            up_writer.close()
            writer.close()


def _length(head: bytes) -> int:
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.partition(b":")[2])
    return 0


async def test_sync_keeps_a_create_answered_with_an_odd_status_and_finds_its_group(
    tmp_path: Path,
) -> None:
    desired = [DesiredGroup("a", "Odd reply"), DesiredGroup("b", "Plain reply")]
    async with FakeGroupsServer() as server, _OddStatusProxy(server.port) as proxy:
        client = GroupsClient(server.api_key, base_url=proxy.url, retry=NO_WAIT, rate_limit=None)
        async with client:
            with SyncState(tmp_path / "sync.db") as state:
                first = await apply(client, await plan(client, desired, state), state)
                again = await plan(client, desired, state)
                await apply(client, again, state)
                owned = state.owned_prokeys()
    assert proxy.rewritten == 1
    assert sorted(g["name"] for g in server.groups.values()) == ["Odd reply", "Plain reply"]
    assert first.ok, [str(r) for r in first.failed]
    assert again.creates == ()
    assert owned == set(server.groups)


def _post_count(server: FakeGroupsServer) -> int:
    return sum(1 for r in server.requests if r.method == "POST")


async def _sync(
    client: GroupsClient, desired: list[DesiredGroup], state: SyncState, clock: MovedClock
) -> SyncReport:
    return await apply(client, await plan(client, desired, state), state, clock=clock)


async def _landed(server: FakeGroupsServer, count: int) -> None:
    """Wait until the server holds `count` groups (a slow create finishing)."""
    for _ in range(200):
        if len(server.groups) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the server still holds {len(server.groups)} group(s)")


async def test_sync_timed_out_create_waits_then_its_late_group_is_found_not_duplicated(
    tmp_path: Path,
) -> None:
    # The service makes the group 0.5 s after the POST; the client gives up after 0.1 s.
    desired = [DesiredGroup("a", "Slow")]
    clock = MovedClock()
    async with FakeGroupsServer() as server, _client(server, timeout=0.1) as client:
        server.inject(method="POST", delay=0.5)
        with SyncState(tmp_path / "sync.db") as state:
            first = await _sync(client, desired, state, clock)
            (item,) = first.items
            decide_after = datetime.fromtimestamp(clock.now + LANDING_FLOOR, UTC)
            assert (item.outcome, item.decide_after) == (ItemOutcome.WAITING, decide_after)
            failed = "failed at 2027-01-15T08:00:00.000Z (POST /group: no complete reply"
            assert failed in (item.note or "")
            assert "may still land" in (item.note or "")
            assert "decided after 2027-01-15T08:02:00.000Z" in (item.note or "")
            assert not first.ok
            assert not first.failed
            assert "1 waiting (run again after 2027-01-15T08:02:00.000Z)" in first.summary()
            # A retry loop runs again at once: the group has not landed yet, and an
            # empty listing proves nothing, so nothing is sent.
            again = await _sync(client, desired, state, clock)
            assert again.items[0].outcome is ItemOutcome.WAITING
            assert again.decide_after == decide_after
            assert _post_count(server) == 1
            assert list(state.pending()) == ["a"]

            await _landed(server, 1)
            clock.now += LANDING_FLOOR
            found = await _sync(client, desired, state, clock)
            assert found.ok, found.items
            assert "found it, not created again" in (found.items[0].note or "")
        assert _post_count(server) == 1
        assert [g["name"] for g in server.groups.values()] == ["Slow"]


async def test_sync_timed_out_create_that_never_landed_is_created_once_after_the_window(
    tmp_path: Path,
) -> None:
    # The POST times out and the server drops it without acting: nothing ever lands.
    desired = [DesiredGroup("a", "Lost"), DesiredGroup("b", "Fine")]
    clock = MovedClock()
    async with FakeGroupsServer() as server, _client(server, timeout=0.1) as client:
        server.inject(method="POST", delay=0.2, reset=True)
        with SyncState(tmp_path / "sync.db") as state:
            first = await _sync(client, desired, state, clock)
            assert [i.outcome for i in first.items] == [ItemOutcome.WAITING, ItemOutcome.DONE]
            timed_out = clock.now
            # Still inside the window: nothing is sent for "a", whatever the listing shows.
            clock.now = timed_out + LANDING_FLOOR - 1
            waiting = await _sync(client, desired, state, clock)
            assert [i.outcome for i in waiting.items] == [ItemOutcome.WAITING, ItemOutcome.DONE]
            assert _post_count(server) == 2
            # Listings that start once the window has passed, and show nothing: the
            # create made nothing, and is sent again, once.
            clock.now = timed_out + LANDING_FLOOR
            last = await _sync(client, desired, state, clock)
            assert last.ok, last.items
            assert state.pending() == {}
            assert not (await plan(client, desired, state)).has_changes
        assert _post_count(server) == 3
        assert sorted(g["name"] for g in server.groups.values()) == ["Fine", "Lost"]


async def test_sync_create_cut_off_in_flight_waits_then_is_found_not_duplicated(
    tmp_path: Path,
) -> None:
    # Ctrl-C (a cancelled apply) while the server is still making the group: nobody
    # saw the POST end, so the next apply cannot trust a listing that shows nothing.
    desired = [DesiredGroup("a", "Slow"), DesiredGroup("b", "Never sent")]
    clock = MovedClock()
    async with FakeGroupsServer() as server, _client(server) as client:
        server.inject(method="POST", delay=0.4)
        with SyncState(tmp_path / "sync.db") as state:
            the_plan = await plan(client, desired, state)
            task = asyncio.create_task(apply(client, the_plan, state, concurrency=1, clock=clock))
            async with asyncio.timeout(5):  # until the POST has reached the server
                while not any(r.method == "POST" for r in server.requests):
                    await asyncio.sleep(0.005)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert set(state.pending()) == {"a", "b"}

            resumed = await _sync(client, desired, state, clock)
            assert [i.outcome for i in resumed.items] == [ItemOutcome.WAITING, ItemOutcome.DONE]
            note = resumed.items[0].note or ""
            assert "sent and never answered (an interrupted apply?) may still land" in note
            assert _post_count(server) == 2  # "b" was never sent: it was created at once

            await _landed(server, 2)
            clock.now += LANDING_FLOOR
            found = await _sync(client, desired, state, clock)
            assert found.ok, found.items
        assert _post_count(server) == 2
        assert sorted(g["name"] for g in server.groups.values()) == ["Never sent", "Slow"]


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 504},  # a gateway gave up on a backend that is still making it
        {"status": 502},
        {"reset": True},  # the connection dropped after the request was sent
    ],
)
@pytest.mark.parametrize("lands", [True, False])
async def test_sync_create_failed_by_a_gateway_or_a_dropped_connection_waits_not_resent(
    tmp_path: Path, fault: dict[str, Any], lands: bool
) -> None:
    # The fake answers (or drops) without acting; when `lands`, the test then makes the
    # group itself, as the backend behind the gateway finishing late would.
    desired = [DesiredGroup("a", "Alpha")]
    clock = MovedClock()
    async with FakeGroupsServer() as server, _client(server, timeout=1.0) as client:
        server.inject(method="POST", **fault)
        with SyncState(tmp_path / "sync.db") as state:
            first = await _sync(client, desired, state, clock)
            (item,) = first.items
            decide_after = datetime.fromtimestamp(clock.now + LANDING_FLOOR, UTC)
            assert (item.outcome, item.decide_after) == (ItemOutcome.WAITING, decide_after)
            assert "may still land" in (item.note or "")
            assert list(state.pending()) == ["a"]
            # A retry loop runs again at once: an empty listing proves nothing yet.
            again = await _sync(client, desired, state, clock)
            assert again.items[0].outcome is ItemOutcome.WAITING
            assert _post_count(server) == 1
            if lands:
                server.add_group("Alpha")
            clock.now += LANDING_FLOOR
            last = await _sync(client, desired, state, clock)
            assert last.ok, last.items
            assert state.pending() == {}
            assert set(state.owned_prokeys()) == set(server.groups)
        assert _post_count(server) == (1 if lands else 2)
        assert [g["name"] for g in server.groups.values()] == ["Alpha"]


@pytest.mark.parametrize("status", [500, 503])
async def test_sync_create_answered_5xx_by_the_service_is_sent_again_at_once(
    tmp_path: Path, status: int
) -> None:
    # The service itself answered: it is done, and two listings showing nothing prove
    # that nothing was made. Sending again at once cannot duplicate.
    desired = [DesiredGroup("a", "Alpha")]
    async with FakeGroupsServer() as server, _client(server, timeout=1.0) as client:
        server.inject(method="POST", status=status, body={"message": "try again"})
        with SyncState(tmp_path / "sync.db") as state:
            report = await _sync(client, desired, state, MovedClock())
            assert report.ok, report.items
        assert _post_count(server) == 2
        assert [g["name"] for g in server.groups.values()] == ["Alpha"]
