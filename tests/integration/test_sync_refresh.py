"""What a plan reads of the account in each refresh mode, counted on the fake's requests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import local_client

from asyncgroups import BulkProgress, ClientStats, GroupPatch, ValidationError
from asyncgroups.sync import (
    Action,
    DesiredGroup,
    Refresh,
    SyncState,
    VanishedGroupsError,
    apply,
    plan,
)
from asyncgroups.testing import FakeGroupsServer, RecordedRequest

from .test_sync import _assert_agreement, _desired

LISTING = "/v1/group/all"


def _own(server: FakeGroupsServer, state: SyncState, desired: Sequence[DesiredGroup]) -> None:
    """The account as an apply of `desired` leaves it: a group for each record, owned by
    the state (made directly, so a test of 1,700 groups sends no 1,700 POSTs)."""
    with state.locked():
        for d in desired:
            values = d.values()
            prokey = server.add_group(**values)
            state.record(d.key, prokey, values, "created")


def _reads(requests: Sequence[RecordedRequest]) -> list[str]:
    """The paths of the reads of single groups."""
    return [r.path for r in requests if r.method == "GET" and r.path != LISTING]


def _pages(requests: Sequence[RecordedRequest]) -> list[str | None]:
    """The page parameter of each listing request, in order."""
    return [r.query.get("page") for r in requests if r.method == "GET" and r.path == LISTING]


async def test_plan_without_prune_reads_only_the_owned_groups_it_compares(tmp_path: Path) -> None:
    desired = _desired(200)
    async with FakeGroupsServer() as server, local_client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            _own(server, state, desired)
            rows = state.rows()
            few = await plan(client, desired[:3], state)
            assert len(few.unchanged) == 3
            assert len(few.kept) == 197
            assert sorted(_reads(server.requests)) == sorted(
                f"/v1/group/{rows[d.key].prokey}" for d in desired[:3]
            )
            server.reset_stats()
            # Pruning decides about every owned group: it reads them all.
            pruning = await plan(client, desired[:3], state, prune=True)
            assert len(pruning.deletes) == 197
            assert len(_reads(server.requests)) == 200


async def test_plan_from_the_listing_of_an_unchanged_account_of_1700_groups_costs_its_pages(
    tmp_path: Path,
) -> None:
    desired = _desired(1_700)
    async with FakeGroupsServer() as server, local_client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            _own(server, state, desired)
            the_plan = await plan(client, desired, state, refresh="listing")
            assert the_plan.refresh is Refresh.LISTING
            assert len(the_plan.unchanged) == 1_700
            assert not the_plan.has_changes
            # 800 + 800 + 100: the short third page ends the listing
            assert _pages(server.requests) == [None, "2", "3"]
            assert len(server.requests) == 3
            assert (client.stats.pages, client.stats.reads) == (3, 0)
            report = await apply(client, the_plan, state)
            assert report.ok
        assert len(server.requests) == 3  # nothing to change: the apply sends nothing


@pytest.mark.parametrize(
    ("refresh", "actions", "requests"),
    [
        # every field of every compared group is read: both changes by hand are seen
        ("full", [Action.UPDATE, Action.UPDATE, Action.UNCHANGED], 3),
        (True, [Action.UPDATE, Action.UPDATE, Action.UNCHANGED], 3),
        # the listing shows names: the rename is seen, the note changed by hand is not
        ("listing", [Action.UPDATE, Action.UNCHANGED, Action.UNCHANGED], 2),
        # the state is trusted: neither is seen, and nothing is asked of the account
        ("none", [Action.UNCHANGED] * 3, 0),
        (False, [Action.UNCHANGED] * 3, 0),
    ],
)
async def test_plan_sees_the_changes_by_hand_its_refresh_reads(
    tmp_path: Path, refresh: str | bool, actions: list[Action], requests: int
) -> None:
    desired = _desired(3)
    async with FakeGroupsServer() as server, local_client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            _own(server, state, desired)
            rows = state.rows()
            await client.groups.update(rows["id-0"].prokey, GroupPatch(name="Renamed by hand"))
            await client.groups.update(rows["id-1"].prokey, GroupPatch(internal_note="by hand"))
            server.reset_stats()
            the_plan = await plan(client, desired, state, refresh=refresh)
            assert [item.action for item in the_plan.items] == actions
            assert len(server.requests) == requests
            if actions[0] is Action.UPDATE:
                assert [c.field for c in the_plan.items[0].changes] == ["name"]
            report = await apply(client, the_plan, state)
            assert report.ok
        patched = [r.body for r in server.requests if r.method == "PATCH"]
        expected = [{"name": "Group 0"}, {"internal_note": "note 1"}]
        assert patched == expected[: actions.count(Action.UPDATE)]


async def test_plan_from_the_listing_makes_a_group_deleted_by_hand_again_once(
    tmp_path: Path,
) -> None:
    desired = _desired(3)
    async with FakeGroupsServer() as server, local_client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            _own(server, state, desired)
            gone = state.rows()["id-1"].prokey
            await client.groups.delete(gone)
            the_plan = await plan(client, desired, state, refresh="listing")
            (drift,) = the_plan.creates
            assert (drift.key, drift.drift, drift.prokey) == ("id-1", True, gone)
            assert "missing from the account's listing" in (drift.reason or "")
            assert the_plan.vanished_count == 1
            report = await apply(client, the_plan, state)
            assert report.ok
            _assert_agreement(server, state, desired)
            assert state.rows()["id-1"].prokey != gone
            assert not (await plan(client, desired, state, refresh="listing")).has_changes
        assert len(server.groups) == 3
        assert [r.method for r in server.requests].count("POST") == 1


async def test_plan_from_a_listing_that_missed_a_group_creates_nothing_when_the_apply_sees_it(
    tmp_path: Path,
) -> None:
    # The plan's listing lacks a group that exists (pages shifted while it was read):
    # drift, but the two listings the apply takes before any create show the group.
    desired = _desired(3)
    async with FakeGroupsServer() as server, local_client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            _own(server, state, desired)
            rows = state.rows()
            shown = [{"prokey": rows[f"id-{n}"].prokey, "name": f"Group {n}"} for n in (0, 2)]
            server.inject(status=200, method="GET", path="/group/all", body=shown)
            the_plan = await plan(client, desired, state, refresh="listing")
            (drift,) = the_plan.creates
            assert drift.key == "id-1"
            report = await apply(client, the_plan, state)
            assert report.ok
            item = report.items[1]
            assert (item.action, item.prokey) == (Action.UNCHANGED, rows["id-1"].prokey)
            assert "listings show it" in (item.note or "")
            _assert_agreement(server, state, desired)
        assert len(server.groups) == 3
        assert "POST" not in [r.method for r in server.requests]


@pytest.mark.parametrize(("refresh", "refused"), [("listing", True), ("none", False)])
async def test_plan_from_a_listing_that_shows_no_owned_group_is_refused(
    tmp_path: Path, refresh: str, refused: bool
) -> None:
    desired = _desired(6)
    async with FakeGroupsServer() as server, local_client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            _own(server, state, desired)
            for row in state.rows().values():
                await client.groups.delete(row.prokey)
            server.reset_stats()
            the_plan = await plan(client, desired, state, refresh=refresh)
            assert the_plan.vanished_count == (6 if refused else 0)
            if refused:
                with pytest.raises(VanishedGroupsError):
                    await apply(client, the_plan, state)
            else:  # none trusts the state: it cannot know (nothing was read)
                assert not the_plan.has_changes
        assert [r.method for r in server.requests if r.method != "GET"] == []


async def test_plan_from_the_listing_shares_it_with_adoption(tmp_path: Path) -> None:
    desired = _desired(3)
    async with FakeGroupsServer() as server, local_client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            _own(server, state, desired[:2])
            made_by_hand = server.add_group("Group 2")
            server.reset_stats()
            the_plan = await plan(client, desired, state, refresh="listing", adopt_by_name=True)
            assert [(i.key, i.action) for i in the_plan.items] == [
                ("id-0", Action.UNCHANGED),
                ("id-1", Action.UNCHANGED),
                ("id-2", Action.ADOPT),
            ]
            assert the_plan.items[2].prokey == made_by_hand
        # one listing (its page, and the empty one that ends it), then the candidate's read
        assert _pages(server.requests) == [None, "2"]
        assert _reads(server.requests) == [f"/v1/group/{made_by_hand}"]


@pytest.mark.parametrize("bad", ["fast", "", None, 1])
async def test_plan_refuses_an_unknown_refresh_before_any_request(
    tmp_path: Path, bad: object
) -> None:
    async with FakeGroupsServer() as server, local_client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            with pytest.raises(ValidationError, match="refresh must be") as info:
                await plan(client, _desired(2), state, refresh=bad)  # type: ignore[arg-type]
            assert info.value.field == "refresh"
        assert server.requests == []


async def test_plan_reports_the_progress_of_its_reads(tmp_path: Path) -> None:
    desired = _desired(12)
    progress: list[BulkProgress] = []
    async with FakeGroupsServer() as server, local_client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            _own(server, state, desired)
            await client.groups.delete(state.rows()["id-4"].prokey)
            await plan(client, desired[:10], state, on_progress=progress.append)
    assert [p.done for p in progress] == list(range(1, 11))
    assert {p.total for p in progress} == {10}  # the compared ones: not the 2 kept
    assert (progress[-1].missing, progress[-1].failed) == (1, 0)


async def test_apply_after_a_listing_records_a_name_it_showed_already_in_place(
    tmp_path: Path,
) -> None:
    # An apply cut off between a rename's PATCH and its state write: the listing shows
    # the desired name, so the group is unchanged, and the row is brought up to date.
    desired = _desired(2)
    async with FakeGroupsServer() as server, local_client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            _own(server, state, desired)
            await client.groups.update(state.rows()["id-0"].prokey, GroupPatch(name="Renamed"))
            desired[0] = DesiredGroup("id-0", "Renamed", internal_note="note 0")
            the_plan = await plan(client, desired, state, refresh="listing")
            assert [i.action for i in the_plan.items] == [Action.UNCHANGED] * 2
            await apply(client, the_plan, state)
            assert state.rows()["id-0"].fields["name"] == "Renamed"
            assert not (await plan(client, desired, state, refresh="none")).has_changes


async def test_apply_after_a_plan_that_read_nothing_leaves_the_rows_as_they_were(
    tmp_path: Path,
) -> None:
    async with FakeGroupsServer() as server, local_client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            _own(server, state, [DesiredGroup("a", "A", internal_note="n")])
            desired = [DesiredGroup("a", "A")]  # the note is no longer managed
            the_plan = await plan(client, desired, state, refresh="none")
            assert [i.action for i in the_plan.items] == [Action.UNCHANGED]
            await apply(client, the_plan, state)
            # nothing was read, so nothing proves what the group holds now
            assert dict(state.rows()["a"].fields) == {"name": "A", "internal_note": "n"}


async def test_apply_report_counts_what_the_apply_sent(tmp_path: Path) -> None:
    desired = _desired(3)
    async with FakeGroupsServer() as server, local_client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            _own(server, state, desired)
            await client.groups.delete(state.rows()["id-1"].prokey)
            the_plan = await plan(client, desired, state, refresh="listing")
            server.reset_stats()
            report = await apply(client, the_plan, state)
    # two listings before the create (2 groups: a page each, and the page that ends it)
    assert report.sent == ClientStats(requests=5, pages=4, writes=1)
    assert len(server.requests) == 5
    assert report.summary().endswith("s: 5 requests (4 pages, 1 write)")
