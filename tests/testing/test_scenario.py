"""The scenario kit's proof of a sync: `check_sync` holds for a real apply, and catches lies."""

from __future__ import annotations

from pathlib import Path

from asyncgroups import GroupsClient
from asyncgroups.sync import DesiredGroup, SyncState, apply, plan
from asyncgroups.testing import FakeGroupsServer
from asyncgroups.testing.scenario import SCENARIO_RETRY, check_sync, failed_claims


def _desired(n: int) -> list[DesiredGroup]:
    return [DesiredGroup(f"id-{i}", f"Group {i}") for i in range(n)]


async def test_check_sync_holds_after_an_apply_and_flags_a_twin_or_a_lost_group(
    tmp_path: Path,
) -> None:
    desired = _desired(4)
    async with (
        FakeGroupsServer() as server,
        GroupsClient(
            server.api_key, base_url=server.url, retry=SCENARIO_RETRY, rate_limit=None
        ) as client,
    ):
        with SyncState(tmp_path / "sync.db") as state:
            report = await apply(client, await plan(client, desired, state), state)
            assert failed_claims(check_sync(report, state, server, desired=desired)) == []
            twin = server.add_group("Group 1")
            assert failed_claims(check_sync(report, state, server)) == [
                "no group was created twice (a lost reply is looked up, never re-sent blindly)"
            ]
            assert failed_claims(check_sync(report, state, server, foreign={twin})) == []
            await client.groups.delete(state.rows()["id-0"].prokey)
            assert "every group the state owns exists on the server" in failed_claims(
                check_sync(report, state, server, foreign={twin})
            )
