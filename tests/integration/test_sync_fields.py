"""Sync managing a group's landing page and event overview, over the fake in both shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import local_client

from asyncgroups import GroupPatch
from asyncgroups.sync import DesiredGroup, SyncReport, SyncState, apply, plan
from asyncgroups.testing import FakeGroupsServer


@pytest.fixture(params=["list", "object"])
async def server(request: pytest.FixtureRequest) -> Any:
    async with FakeGroupsServer(shape=request.param) as fake:
        yield fake


def _writes(server: FakeGroupsServer) -> list[tuple[str, Any]]:
    return [(r.method, r.body) for r in server.requests if r.method in ("POST", "PATCH")]


async def _sync(server: FakeGroupsServer, desired: list[DesiredGroup], path: Path) -> SyncReport:
    async with local_client(server) as client:
        with SyncState(path) as state:
            report = await apply(client, await plan(client, desired, state), state)
    assert report.ok, report.failed
    return report


async def test_sync_creates_and_updates_landingpage_and_overview(
    server: FakeGroupsServer, tmp_path: Path
) -> None:
    db = tmp_path / "sync.db"
    desired = [DesiredGroup("a", "A", landingpage="lp-1", public_event_overview=True)]
    await _sync(server, desired, db)
    assert _writes(server) == [
        ("POST", {"name": "A", "landingpage": "lp-1", "public_event_overview": True})
    ]
    (key,) = server.groups

    server.reset_stats()
    await _sync(server, desired, db)  # read back in either shape: nothing differs
    assert _writes(server) == []

    desired = [DesiredGroup("a", "A", landingpage=None, public_event_overview=False)]
    await _sync(server, desired, db)
    assert _writes(server) == [("PATCH", {"landingpage": None, "public_event_overview": False})]
    group = server.groups[key]
    assert (group["landingpage"], group["public_event_overview"]) == (None, False)


async def test_sync_restores_managed_fields_changed_by_hand_and_leaves_the_others(
    server: FakeGroupsServer, tmp_path: Path
) -> None:
    db = tmp_path / "sync.db"
    desired = [DesiredGroup("a", "A", landingpage="lp-1"), DesiredGroup("b", "B")]
    await _sync(server, desired, db)
    async with local_client(server) as client:
        for key in server.groups:  # by hand, in the web application
            await client.groups.update(
                key, GroupPatch(landingpage="lp-9", public_event_overview=True)
            )

    server.reset_stats()
    await _sync(server, desired, db)
    assert _writes(server) == [("PATCH", {"landingpage": "lp-1"})]
    fields = sorted(
        (g["name"], g["landingpage"], g["public_event_overview"]) for g in server.groups.values()
    )
    assert fields == [("A", "lp-1", True), ("B", "lp-9", True)]
