"""Sync's spans: `sync.plan` and `sync.apply`, each the parent of the operations it runs."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.trace import SpanKind
from telemetry_support import Recorded, parent_id, span_id

from asyncgroups.sync import DesiredGroup, SyncState, apply, plan
from asyncgroups.testing import FakeGroupsServer


async def test_telemetry_sync_plan_and_apply_are_the_parents_of_their_operations(
    recorded: Recorded, tmp_path: Path
) -> None:
    desired = [DesiredGroup(key="a", name="A"), DesiredGroup(key="b", name="B")]
    async with FakeGroupsServer() as fake, recorded.client(fake) as client:
        with SyncState(tmp_path / "state.db") as state:
            made = await plan(client=client, desired=desired, state=state)
            report = await apply(client, made, state)
    assert report.ok
    planned, applied = recorded.named("sync.plan"), recorded.named("sync.apply")
    assert planned.attributes is not None
    assert applied.attributes is not None
    assert planned.attributes["asyncgroups.sync.create"] == 2
    assert applied.attributes["asyncgroups.sync.done"] == 2
    creates = [s for s in recorded.spans() if s.name == "groups.create"]
    assert len(creates) == 2
    assert {parent_id(span) for span in creates} == {span_id(applied)}
    posts = [s for s in recorded.spans(SpanKind.CLIENT) if s.name == "POST"]
    assert {parent_id(span) for span in posts} == {span_id(span) for span in creates}
