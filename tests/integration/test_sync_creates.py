"""Sync's creates over real sockets: a POST carries the managed fields and nothing else."""

from __future__ import annotations

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
