"""Declarative sync end to end: plan and apply over real sockets against the fake server."""

from __future__ import annotations

import asyncio
import functools
import random
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
from conftest import local_client

from asyncgroups import GroupsClient, RetryPolicy, SubscriptionLockedError
from asyncgroups.sync import (
    Action,
    AmbiguousCreateError,
    DesiredGroup,
    ItemOutcome,
    StalePlanError,
    StateLockedError,
    SyncProgress,
    SyncReport,
    SyncState,
    apply,
    plan,
)
from asyncgroups.testing import FakeGroupsServer, Faults
from asyncgroups.testing.scenario import BULK_FAULTS, check_sync, failed_claims

from .support import MovedClock, resume

FAST_RETRY = RetryPolicy(max_attempts=6, backoff_base=0.001, backoff_max=0.01)
CAL = "https://example.com/team.ics"
WRITES = ("POST", "PATCH", "DELETE")
#: The faults `asyncgroups demo` puts on its bulk work and its sync round.
DEMO_FAULTS = BULK_FAULTS


#: A client for the local fake that retries, six times, without waiting long.
_client = functools.partial(local_client, retry=FAST_RETRY)


def _desired(n: int, **fields: Any) -> list[DesiredGroup]:
    return [
        DesiredGroup(f"id-{i}", f"Group {i}", internal_note=f"note {i}", **fields) for i in range(n)
    ]


def _writes(server: FakeGroupsServer) -> list[tuple[str, str, Any]]:
    return [(r.method, r.path, r.body) for r in server.requests if r.method in WRITES]


async def _sync(
    client: GroupsClient,
    desired: Iterable[DesiredGroup],
    state: SyncState,
    **options: Any,
) -> SyncReport:
    return await apply(client, await plan(client, desired, state, **options), state)


def _assert_agreement(
    server: FakeGroupsServer, state: SyncState, desired: Iterable[DesiredGroup]
) -> None:
    """Every desired key is owned by the state, and its group holds the desired fields."""
    rows = state.rows()
    groups = server.groups
    assert state.pending() == {}
    for d in desired:
        assert d.key in rows, d.key
        group = groups[rows[d.key].prokey]
        assert {f: group[f] for f in d.values()} == d.values(), d.key
        assert dict(rows[d.key].fields) == d.values()
    assert len({row.prokey for row in rows.values()}) == len(rows)


def _contents(server: FakeGroupsServer) -> list[tuple[tuple[str, Any], ...]]:
    """The groups of the account without their keys and dates, sorted: comparable."""
    skip = {"date_created", "date_updated", "events"}
    return sorted(
        tuple(sorted((k, v) for k, v in g.items() if k not in skip)) for g in server.groups.values()
    )


async def test_sync_first_apply_creates_every_group_and_records_it(tmp_path: Path) -> None:
    desired = _desired(25)
    progress: list[SyncProgress] = []
    async with FakeGroupsServer() as server, _client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            the_plan = await plan(client, desired, state)
            assert len(the_plan.creates) == 25
            assert _writes(server) == []  # planning changes nothing
            report = await apply(client, the_plan, state, on_progress=progress.append)
            assert report.ok
            assert report.count(Action.CREATE) == 25
            assert [p.done for p in progress] == list(range(1, 26))
            assert progress[-1].total == 25
            _assert_agreement(server, state, desired)
            assert {i.prokey for i in report.items} == set(server.groups)
        assert len(server.groups) == 25
        assert [m for m, _, _ in _writes(server)] == ["POST"] * 25


async def test_sync_second_apply_sends_no_write_and_spends_no_credit(tmp_path: Path) -> None:
    desired = _desired(12, status="draft")  # each create needs a follow-up PATCH
    async with FakeGroupsServer(credits=10) as server, _client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            first = await _sync(client, desired, state)
            assert first.ok
            assert first.updates_sent == 12
            credits, updates, requests = server.credits, server.updates, len(server.requests)
            second_plan = await plan(client, desired, state)
            assert not second_plan.has_changes
            assert second_plan.estimated_credits == 0
            assert len(second_plan.unchanged) == 12
            second = await apply(client, second_plan, state)
            assert second.ok
            assert second.count(Action.UNCHANGED) == 12
            assert second.updates_sent == 0
        assert server.credits == credits
        assert server.updates == updates
        assert all(r.method == "GET" for r in server.requests[requests:])
        assert "0 update(s) sent, estimated 0 event credits" in second.summary()


async def test_sync_field_changes_send_exactly_the_minimal_patches(tmp_path: Path) -> None:
    desired = _desired(6)
    async with FakeGroupsServer() as server, _client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            await _sync(client, desired, state)
            prokeys = {k: r.prokey for k, r in state.rows().items()}
            desired[1] = DesiredGroup("id-1", "Renamed", internal_note="note 1")
            desired[2] = DesiredGroup("id-2", "Group 2", internal_note=None)
            desired[3] = DesiredGroup(
                "id-3",
                "Group 3",
                internal_note="note 3",
                subscription="external",
                subscription_cal_url=CAL,
                cta=True,
            )
            server.reset_stats()
            the_plan = await plan(client, desired, state)
            assert [i.key for i in the_plan.updates] == ["id-1", "id-2", "id-3"]
            report = await apply(client, the_plan, state)
            assert report.ok
            _assert_agreement(server, state, desired)
        patches = sorted((p, b) for m, p, b in _writes(server) if m == "PATCH")
        assert patches == sorted(
            [
                (f"/v1/group/{prokeys['id-1']}", {"name": "Renamed"}),
                (f"/v1/group/{prokeys['id-2']}", {"internal_note": None}),
                (
                    f"/v1/group/{prokeys['id-3']}",
                    {"subscription": "external", "subscription_cal_url": CAL, "cta": True},
                ),
            ]
        )
        assert [m for m, _, _ in _writes(server)] == ["PATCH"] * 3


async def test_sync_prune_deletes_only_groups_the_state_owns(tmp_path: Path) -> None:
    desired = _desired(5)
    async with FakeGroupsServer() as server, _client(server) as client:
        by_hand = server.add_group("Group 4", internal_note="note 4")  # same name as one pruned
        other = server.add_group("Made in the web app")
        with SyncState(tmp_path / "sync.db") as state:
            await _sync(client, desired, state)
            doomed = state.rows()["id-4"].prokey
            kept_plan = await plan(client, desired[:3], state)  # without prune: kept
            assert [i.key for i in kept_plan.kept] == ["id-3", "id-4"]
            assert not kept_plan.has_changes
            report = await _sync(client, desired[:3], state, prune=True)
            assert report.count(Action.DELETE) == 2
            assert set(state.rows()) == {"id-0", "id-1", "id-2"}
        assert by_hand in server.groups
        assert other in server.groups
        assert doomed not in server.groups
        assert len(server.groups) == 5
        deleted = [p for m, p, _ in _writes(server) if m == "DELETE"]
        assert len(deleted) == 2
        assert f"/v1/group/{by_hand}" not in deleted


async def test_sync_blocked_subscription_change_sends_nothing_for_it(tmp_path: Path) -> None:
    desired = _desired(3)
    async with FakeGroupsServer() as server, _client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            await _sync(client, desired, state)
            locked = state.rows()["id-0"].prokey
            server.link_event(locked)
            wanted = [
                DesiredGroup(
                    d.key,
                    d.name + " v2",
                    internal_note=d.internal_note,
                    subscription="external",
                    subscription_cal_url=CAL,
                )
                for d in desired
            ]
            server.reset_stats()
            the_plan = await plan(client, wanted, state)
            (blocked,) = the_plan.blocked
            assert (blocked.key, blocked.prokey) == ("id-0", locked)
            assert "1 event(s) are linked" in (blocked.reason or "")
            report = await apply(client, the_plan, state)
            result = report.items[0]
            assert (result.outcome, result.note) == (ItemOutcome.SKIPPED, blocked.reason)
            assert report.count(Action.UPDATE) == 2
            assert report.ok
            assert dict(state.rows()["id-0"].fields) == desired[0].values()
        assert all(p != f"/v1/group/{locked}" for _, p, _ in _writes(server))
        assert server.groups[locked]["name"] == "Group 0"
        assert "1 blocked" in report.summary()


async def test_sync_does_not_try_to_publish_a_group_drafted_in_the_app(tmp_path: Path) -> None:
    desired = _desired(2, status="published")
    async with FakeGroupsServer() as server, _client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            await _sync(client, desired, state)
            drafted = state.rows()["id-1"].prokey
            server.set_drafted_in_app(drafted)
            server.reset_stats()
            report = await _sync(client, desired, state)
            assert report.items[1].action is Action.BLOCKED
            assert "web application" in (report.items[1].note or "")
        assert _writes(server) == []


async def test_sync_subscription_change_refused_by_the_client_fails_the_item(
    tmp_path: Path,
) -> None:
    # Without a refresh the plan cannot see the events; the client's own check stops it.
    desired = _desired(1)
    async with FakeGroupsServer() as server, _client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            await _sync(client, desired, state)
            server.link_event(state.rows()["id-0"].prokey)
            wanted = [
                DesiredGroup(
                    "id-0",
                    "Group 0",
                    internal_note="note 0",
                    subscription="external",
                    subscription_cal_url=CAL,
                )
            ]
            server.reset_stats()
            report = await _sync(client, wanted, state, refresh=False)
            assert not report.ok
            assert isinstance(report.failed[0].error, SubscriptionLockedError)
            assert dict(state.rows()["id-0"].fields) == desired[0].values()
        assert _writes(server) == []


async def test_sync_recreates_a_group_deleted_by_hand_as_drift(tmp_path: Path) -> None:
    desired = _desired(3)
    async with FakeGroupsServer() as server, _client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            await _sync(client, desired, state)
            gone = state.rows()["id-1"].prokey
            await client.groups.delete(gone)
            the_plan = await plan(client, desired, state)
            (drift,) = the_plan.creates
            assert (drift.key, drift.drift, drift.prokey) == ("id-1", True, gone)
            report = await apply(client, the_plan, state)
            assert report.ok
            assert state.rows()["id-1"].prokey != gone
            _assert_agreement(server, state, desired)
        assert len(server.groups) == 3
        assert sum(1 for m, _, _ in _writes(server) if m == "POST") == 4  # 3, then once


@pytest.mark.parametrize(
    ("fault", "posts"),
    [
        ({"lost_reply": True}, 1),  # acted, then the connection dropped
        ({"malformed": True}, 1),  # acted, then answered with broken JSON
        ({"status": 503}, 2),  # the service answered: done, nothing made, send again
        # (a reset or a 502/504 may still land: test_sync_creates.py)
    ],
)
async def test_sync_create_with_a_lost_reply_makes_no_duplicate(
    tmp_path: Path, fault: dict[str, Any], posts: int
) -> None:
    desired = [*_desired(3), DesiredGroup("draft", "Drafted", status="draft")]
    async with FakeGroupsServer() as server, _client(server) as client:
        server.add_group("Group 1")  # same name, made by hand before: never taken for it
        server.inject(method="POST", times=2, **fault)
        with SyncState(tmp_path / "sync.db") as state:
            the_plan = await plan(client, desired, state)
            report = await apply(client, the_plan, state, concurrency=1)
            assert report.ok, report.failed
            _assert_agreement(server, state, desired)
            notes = [i.note for i in report.items[:2]]
            if posts == 1:
                assert all("found the group it made" in (n or "") for n in notes)
        names = sorted(g["name"] for g in server.groups.values())
        assert names == ["Drafted", "Group 0", "Group 1", "Group 1", "Group 2"]
        post_count = sum(1 for m, _, _ in _writes(server) if m == "POST")
        assert post_count == 4 + 2 * (posts - 1)
        assert server.groups[state_prokey(report, "draft")]["status"] == "draft"


async def test_sync_lost_create_in_an_id_only_listing_reads_only_unowned_new_groups(
    tmp_path: Path,
) -> None:
    # The newer API lists ids only, so the lookup must read names: only of groups that
    # are new since the baseline and owned by no row, never the whole account.
    desired = _desired(30)
    async with FakeGroupsServer(shape="object") as server, _client(server) as client:
        for n in range(10):
            server.add_group(f"Made by hand {n}")
        with SyncState(tmp_path / "sync.db") as state:
            the_plan = await plan(client, desired, state)
            posts = 0

            def lose_the_20th(progress: SyncProgress) -> None:
                nonlocal posts
                posts += 1
                if posts == 19:
                    server.inject(method="POST", lost_reply=True)

            server.reset_stats()
            report = await apply(client, the_plan, state, concurrency=1, on_progress=lose_the_20th)
            assert report.ok
            assert "found the group it made" in (report.items[19].note or "")
            _assert_agreement(server, state, desired)
        reads = [(r.path, r.query.get("page")) for r in server.requests if r.method == "GET"]
        listing = [("/v1/group/all", None), ("/v1/group/all", "2")]  # page 2 proves the end
        # The baseline's two listings, the lookup's, then the one name read.
        assert reads == [*listing * 3, (f"/v1/group/{report.items[19].prokey}", None)]
        assert len(server.groups) == 40


def state_prokey(report: SyncReport, key: str) -> str:
    (item,) = [i for i in report.items if i.key == key]
    assert item.prokey is not None
    return item.prokey


async def test_sync_refused_create_fails_at_once_and_leaves_nothing_pending(
    tmp_path: Path,
) -> None:
    async with FakeGroupsServer() as server, _client(server) as client:
        server.inject(method="POST", status=400, body={"message": "The field name is bad"})
        with SyncState(tmp_path / "sync.db") as state:
            report = await _sync(client, _desired(1), state)
            (failed,) = report.failed
            assert "The field name is bad" in str(failed.error)
            assert state.pending() == {}
            assert state.rows() == {}
        # The baseline (two listings of an empty account), the POST, and no lookup.
        assert [r.method for r in server.requests] == ["GET", "GET", "POST"]


async def test_sync_ambiguous_interrupted_create_is_reported_not_guessed(
    tmp_path: Path,
) -> None:
    desired = _desired(2)
    async with FakeGroupsServer() as server, _client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            # What a crash leaves behind: an intent, and (here) two candidates for it.
            with state.locked():
                state.new_baseline(server.groups, [("id-0", "Group 0", desired[0].values())])
            twins = [server.add_group("Group 0"), server.add_group("Group 0")]
            the_plan = await plan(client, desired, state)
            assert the_plan.creates[0].resume
            report = await apply(client, the_plan, state)
            error = report.items[0].error
            assert isinstance(error, AmbiguousCreateError)
            assert set(error.prokeys) == set(twins)
            assert report.items[1].outcome is ItemOutcome.DONE
            assert list(state.pending()) == ["id-0"]  # asked again next time
            # a person deletes one twin: the next apply adopts the other, creates nothing
            await client.groups.delete(twins[1])
            server.reset_stats()
            again = await _sync(client, desired, state)
            assert again.ok
            assert "found it, not created again" in (again.items[0].note or "")
            assert state.rows()["id-0"].prokey == twins[0]
            _assert_agreement(server, state, desired)
        assert "POST" not in [m for m, _, _ in _writes(server)]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_sync_cancelled_apply_resumes_without_duplicates(tmp_path: Path, seed: int) -> None:
    desired = _desired(60, status="draft")
    cut = random.Random(seed).randrange(1, 45)
    faults = Faults(latency=0.004, jitter=0.004)
    async with (
        FakeGroupsServer(faults=faults, seed=seed) as server,
        FakeGroupsServer(faults=faults, seed=seed) as reference,
        _client(server) as client,
        _client(reference) as ref_client,
    ):
        with SyncState(tmp_path / "ref.db") as ref_state:
            assert (await _sync(ref_client, desired, ref_state)).ok
        with SyncState(tmp_path / "sync.db") as state:
            first_plan = await plan(client, desired, state)

            async def cancel_at_cut(progress: SyncProgress) -> None:
                if progress.done == cut:
                    task.cancel()

            task = asyncio.create_task(
                apply(client, first_plan, state, concurrency=8, on_progress=cancel_at_cut)
            )
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not state.holds_lock
            await asyncio.sleep(0.05)  # requests the server had taken finish acting
            # creates not finished (sent or not) are still pending: the next apply
            # looks for each before it creates anything
            assert state.pending()
            with pytest.raises(StalePlanError):
                await apply(client, first_plan, state)
            resumed = await resume(client, desired, state)
            assert resumed.ok, resumed.failed
            _assert_agreement(server, state, desired)
            assert (await plan(client, desired, state)).has_changes is False
        assert _contents(server) == _contents(reference)


_CHILD = """
import asyncio, sys
from asyncgroups import GroupsClient, RetryPolicy
from asyncgroups.sync import DesiredGroup, SyncState, apply, plan

async def main(url, key, path, n):
    desired = [
        DesiredGroup(f"id-{i}", f"Group {i}", internal_note=f"note {i}") for i in range(n)
    ]
    retry = RetryPolicy(backoff_base=0.001, backoff_max=0.01)
    async with GroupsClient(key, base_url=url, retry=retry) as client:
        with SyncState(path) as state:
            the_plan = await plan(client, desired, state)
            await apply(
                client, the_plan, state, concurrency=8,
                on_progress=lambda p: print(p.done, flush=True),
            )
    print("finished", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


async def test_sync_killed_apply_process_resumes_without_duplicates(tmp_path: Path) -> None:
    n = 80
    desired = _desired(n)
    path = tmp_path / "sync.db"
    async with FakeGroupsServer(faults=Faults(latency=0.005, jitter=0.005)) as server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CHILD,
            server.url,
            server.api_key,
            str(path),
            str(n),
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None
            while True:  # kill it, with no chance to clean up, part of the way through
                line = await asyncio.wait_for(proc.stdout.readline(), 20)
                assert line, "the child ended before it was killed"
                assert line != b"finished\n", "the child finished before it was killed"
                if int(line) >= 20:
                    proc.send_signal(signal.SIGKILL)
                    break
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await asyncio.sleep(0.05)
        assert 20 <= len(server.groups) < n
        async with _client(server) as client:
            with SyncState(path) as state:  # the killed process's lock is gone with it
                resumed = await resume(client, desired, state)
                assert resumed.ok, resumed.failed
                _assert_agreement(server, state, desired)
        assert sorted(g["name"] for g in server.groups.values()) == sorted(d.name for d in desired)


async def test_sync_second_apply_at_once_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    desired = _desired(20)
    path = tmp_path / "sync.db"
    async with (
        FakeGroupsServer(faults=Faults(latency=0.01)) as server,
        _client(server) as client,
    ):
        with SyncState(path) as first, SyncState(path) as second:
            first_plan = await plan(client, desired, first)
            second_plan = await plan(client, desired, second)
            running = asyncio.create_task(apply(client, first_plan, first))
            while not first.holds_lock:
                await asyncio.sleep(0.001)
            with pytest.raises(StateLockedError, match="in use by another apply"):
                await apply(client, second_plan, second)
            report = await running
            assert report.ok
            _assert_agreement(server, second, desired)  # the refused one wrote nothing bad
        assert len(server.groups) == 20


async def test_sync_adopts_groups_by_exact_name_and_reports_ambiguous_names(
    tmp_path: Path,
) -> None:
    desired = [
        DesiredGroup("a", "Alpha", internal_note="synced"),
        DesiredGroup("b", "Beta"),
        DesiredGroup("c", "Gamma"),
    ]
    for shape in ("list", "object"):  # the object shape lists ids only: names are read
        async with FakeGroupsServer(shape=shape) as server, _client(server) as client:
            alpha = server.add_group("Alpha", internal_note="by hand")
            betas = [server.add_group("Beta"), server.add_group("Beta")]
            unrelated = server.add_group("Alpha ")  # not the exact name
            with SyncState(tmp_path / f"{shape}.db") as state:
                the_plan = await plan(client, desired, state, adopt_by_name=True)
                assert [i.action for i in the_plan.items] == [
                    Action.ADOPT,
                    Action.BLOCKED,
                    Action.CREATE,
                ]
                assert all(k in (the_plan.items[1].reason or "") for k in betas)
                report = await apply(client, the_plan, state)
                assert report.count(Action.ADOPT) == 1
                rows = state.rows()
                assert (rows["a"].prokey, rows["a"].origin) == (alpha, "adopted")
                assert server.groups[alpha]["internal_note"] == "synced"
                assert set(rows) == {"a", "c"}
                # adopted groups are owned: prune may delete them, and nothing else
                emptied = await plan(client, [], state, prune=True)
                await apply(client, emptied, state, max_deletes=2)
            assert set(server.groups) == {*betas, unrelated}


@pytest.mark.parametrize(("before", "expected"), [(0, 1), (3, 2)])
async def test_sync_credit_estimate_matches_what_the_account_is_charged(
    tmp_path: Path, before: int, expected: int
) -> None:
    desired = _desired(7)
    async with FakeGroupsServer(credits=50) as server, _client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            await _sync(client, desired, state)
            spare = server.add_group("spare")
            for _ in range(before):  # other updates this client (and the account) made
                await client.groups.update(spare, _patch_name(f"spare {_}"))
            credits = server.credits
            renamed = [
                DesiredGroup(d.key, d.name + "!", internal_note=d.internal_note) for d in desired
            ]
            the_plan = await plan(client, renamed, state)
            assert the_plan.estimated_credits == expected
            assert f"estimated {expected} event credit" in the_plan.summary()
            report = await apply(client, the_plan, state)
            assert report.estimated_credits == expected
        assert credits - server.credits == expected


def _patch_name(name: str) -> Any:
    from asyncgroups import GroupPatch

    return GroupPatch(name=name)


async def test_sync_reads_desired_records_from_an_async_iterable(tmp_path: Path) -> None:
    async def produce() -> AsyncIterator[DesiredGroup]:
        for d in _desired(5):
            await asyncio.sleep(0)
            yield d

    async with FakeGroupsServer() as server, _client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            report = await _sync(client, produce(), state)
            assert report.count(Action.CREATE) == 5


async def test_sync_soak_2000_groups_under_the_demo_faults(tmp_path: Path) -> None:
    desired = _desired(2000)
    async with (
        FakeGroupsServer(faults=DEMO_FAULTS, seed=7) as server,
        _client(server, max_connections=32) as client,
    ):
        with SyncState(tmp_path / "sync.db") as state:
            report = await _sync(client, desired, state)
            assert failed_claims(check_sync(report, state, server)) == []
            lost = [i for i in report.items if "found the group it made" in (i.note or "")]
            assert lost, "the faults lost some create replies, and each group was found"
            # changes, deletes and drift, still under faults
            changed = [
                DesiredGroup(d.key, d.name, internal_note="changed") if i % 10 == 0 else d
                for i, d in enumerate(desired[:1900])
            ]
            await client.groups.delete(state.rows()["id-5"].prokey, missing_ok=True)
            second = await _sync(client, changed, state, prune=True)
            assert failed_claims(check_sync(second, state, server)) == []
            # whatever failed or waits under faults is finished by the next runs, then
            # nothing is left. A create that may still land (a 502, a dropped connection)
            # waits out its window: the fake never lands one late, so the clock moves.
            last, clock = second, MovedClock(time.time())
            # Each run under faults can leave a few creates waiting anew: some runs.
            for _ in range(8):
                final = await plan(client, changed, state, prune=True)
                if not final.has_changes and not state.pending():
                    break
                clock.past(last.decide_after)
                last = await apply(client, final, state, clock=clock)
            assert not final.has_changes
            server.faults = Faults()
            _assert_agreement(server, state, changed)
        assert len(server.groups) == 1900
        assert len({g["name"] for g in server.groups.values()}) == 1900


async def test_sync_second_apply_through_the_same_state_object_is_refused(
    tmp_path: Path,
) -> None:
    # Two tasks sharing one SyncState: the lock nests for one object, so without a
    # guard both applies ran and each created the group.
    async with FakeGroupsServer() as server, _client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            the_plan = await plan(client, _desired(2), state)
            first, second = await asyncio.gather(
                apply(client, the_plan, state),
                apply(client, the_plan, state),
                return_exceptions=True,
            )
            assert isinstance(first, SyncReport)
            assert first.ok
            assert isinstance(second, StateLockedError)
            _assert_agreement(server, state, _desired(2))
            assert not state.holds_lock
            # Once the first has ended, the object applies again (a fresh plan).
            assert (await _sync(client, _desired(2), state)).ok
        assert len(server.groups) == 2


async def test_sync_report_names_the_group_of_a_settled_create_no_longer_desired(
    tmp_path: Path,
) -> None:
    # A crash left a pending create for "gone", which is no longer desired: the apply
    # finds the group it made and owns it; the report must say which group that is.
    async with FakeGroupsServer() as server, _client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            with state.locked():
                state.new_baseline([], [("gone", "Gone", {"name": "Gone"})])
            made = server.add_group("Gone")
            report = await _sync(client, [], state)
            (item,) = report.items
            assert item.action is Action.KEEP
            assert item.outcome is ItemOutcome.SKIPPED
            assert state.rows()["gone"].prokey == made
            assert item.prokey == made


@pytest.mark.parametrize("changed", [False, True])
async def test_sync_one_transient_404_on_a_refresh_read_recreates_nothing(
    tmp_path: Path, changed: bool
) -> None:
    # A lagging replica answers one read of an owned group 404: the plan sees drift,
    # but the listings the apply takes show the group, so it is kept, not made twice.
    desired = _desired(3)
    async with FakeGroupsServer() as server, _client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            await _sync(client, desired, state)
            owned = state.rows()["id-1"].prokey
            if changed:
                desired[1] = DesiredGroup("id-1", "Group 1", internal_note="changed")
            server.inject(status=404, method="GET", path=f"/group/{owned}", times=1)
            the_plan = await plan(client, desired, state)
            (drift,) = the_plan.creates
            assert (drift.key, drift.drift, drift.prokey) == ("id-1", True, owned)
            server.reset_stats()
            report = await apply(client, the_plan, state)
            assert report.ok, report.items
            item = report.items[1]
            assert item.action is (Action.UPDATE if changed else Action.UNCHANGED)
            assert item.prokey == owned
            assert "listings show it" in (item.note or "")
            assert state.rows()["id-1"].prokey == owned
            _assert_agreement(server, state, desired)
            assert (await plan(client, desired, state)).has_changes is False
        assert [m for m, _, _ in _writes(server)] == (["PATCH"] if changed else [])
        assert len(server.groups) == 3
