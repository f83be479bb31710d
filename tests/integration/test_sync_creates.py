"""Sync's creates over real sockets: a POST carries the managed fields and nothing else."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from asyncgroups import GroupsClient, NewGroup, RetryPolicy
from asyncgroups.sync import Action, DesiredGroup, SyncState, apply, plan
from asyncgroups.testing import FakeGroupsServer

NO_WAIT = RetryPolicy(backoff_base=0.0, backoff_max=0.0, jitter=False)
CAL = "https://example.com/team.ics"


def _client(server: FakeGroupsServer) -> GroupsClient:
    return GroupsClient(server.api_key, base_url=server.url, retry=NO_WAIT, rate_limit=None)


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
