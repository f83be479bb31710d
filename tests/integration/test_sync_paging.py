"""Sync against accounts of several pages: lost creates, adoption, and pages that shift."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import aiohttp

from asyncgroups.sync import Action, DesiredGroup, SyncProgress, SyncState, apply, plan
from asyncgroups.testing import FakeGroupsServer, RecordedRequest

from .test_sync import _assert_agreement, _client, _desired

LISTING = "/v1/group/all"


def _fill(server: FakeGroupsServer, count: int) -> None:
    for n in range(count):
        server.add_group(f"Made by hand {n}")


def _names(server: FakeGroupsServer) -> list[str]:
    return [g["name"] for g in server.groups.values()]


def _lose_create(server: FakeGroupsServer, after_posts: int) -> object:
    """A progress callback that makes the reply of create number `after_posts + 1` lost."""
    seen = 0

    def callback(progress: SyncProgress) -> None:
        nonlocal seen
        seen += 1
        if seen == after_posts:
            server.inject(method="POST", lost_reply=True)

    return callback


async def test_sync_lost_create_past_page_two_is_found_not_duplicated(tmp_path: Path) -> None:
    desired = _desired(30)
    async with FakeGroupsServer() as server, _client(server) as client:
        _fill(server, 1_700)  # the new groups land on page 3
        with SyncState(tmp_path / "sync.db") as state:
            the_plan = await plan(client, desired, state)
            report = await apply(
                client, the_plan, state, concurrency=1, on_progress=_lose_create(server, 19)
            )
            assert report.ok
            assert "found the group it made" in (report.items[19].note or "")
            _assert_agreement(server, state, desired)
            assert len(server.groups) == 1_730
            assert _names(server).count("Group 19") == 1

            again = await plan(client, desired, state)
            assert not again.has_changes
            await apply(client, again, state)
        assert len(server.groups) == 1_730


async def test_sync_interrupted_create_past_page_two_is_settled_by_the_next_apply(
    tmp_path: Path,
) -> None:
    desired = _desired(5)
    async with FakeGroupsServer() as server:

        async def on_request_exception(
            session: aiohttp.ClientSession,
            context: SimpleNamespace,
            params: aiohttp.TraceRequestExceptionParams,
        ) -> None:
            if params.method == "POST":
                # The lookup after the lost reply fails too (3 passes of 6 attempts):
                # the create stays pending for the next apply to settle.
                server.inject(status=500, method="GET", path="/group/all", times=18)

        trace = aiohttp.TraceConfig()
        trace.on_request_exception.append(on_request_exception)
        client = _client(server, trace_configs=[trace])
        _fill(server, 1_700)
        async with client:
            state = SyncState(tmp_path / "sync.db")
            the_plan = await plan(client, desired, state)
            server.inject(method="POST", lost_reply=True)
            first = await apply(client, the_plan, state, concurrency=1)
            assert not first.ok
            assert server.pending_injections == []
            assert list(state.pending()) == ["id-0"]
            assert len(server.groups) == 1_705  # the lost create did make its group

            report = await apply(client, await plan(client, desired, state), state)
            assert report.ok
            assert "an earlier apply had created it" in (report.items[0].note or "")
            _assert_agreement(server, state, desired)
            state.close()
        assert len(server.groups) == 1_705
        assert sorted(_names(server)[1_700:]) == [f"Group {n}" for n in range(5)]


async def test_sync_against_an_unpaged_account_of_1000_groups_finishes(tmp_path: Path) -> None:
    # A server from before paging: every listing (the baseline's two, the lookup after
    # a lost reply) gets the whole account for page 1 and again for ?page=2.
    desired = _desired(5)
    async with FakeGroupsServer(page_size=None) as server, _client(server) as client:
        _fill(server, 1_000)
        with SyncState(tmp_path / "sync.db") as state:
            the_plan = await plan(client, desired, state, adopt_by_name=True)
            assert len(the_plan.creates) == 5
            server.inject(method="POST", lost_reply=True)
            report = await apply(client, the_plan, state, concurrency=1)
            assert report.ok, report.failed
            assert "found the group it made" in (report.items[0].note or "")
            _assert_agreement(server, state, desired)
            assert not (await plan(client, desired, state)).has_changes
        assert len(server.groups) == 1_005
        listings = [r.query.get("page") for r in server.requests if r.path == LISTING]
        assert listings == [None, "2"] * 4  # adoption's, the baseline's two, the lookup's


async def test_sync_adopt_by_name_finds_a_group_on_page_three(tmp_path: Path) -> None:
    async with FakeGroupsServer() as server, _client(server) as client:
        _fill(server, 1_650)
        target = server.add_group("Team Berlin")  # group 1,651: page 3
        desired = [DesiredGroup("berlin", "Team Berlin", internal_note="adopted")]
        with SyncState(tmp_path / "sync.db") as state:
            the_plan = await plan(client, desired, state, adopt_by_name=True)
            [item] = the_plan.items
            assert (item.action, item.prokey) == (Action.ADOPT, target)
            report = await apply(client, the_plan, state)
            assert report.ok
        assert len(server.groups) == 1_651
        assert server.groups[target]["internal_note"] == "adopted"


class DeleteElsewhere:
    """Someone else deletes `victim` right after the client's `at`-th read of page 1.

    Pass `trace` to the client; `page_one_reads` counts those reads.
    """

    def __init__(self, server: FakeGroupsServer, victim: str, *, at: int) -> None:
        self.page_one_reads = 0
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_end.append(self._on_request_end)
        self._server = server
        self._victim = victim
        self._at = at

    async def _on_request_end(
        self,
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        if params.url.path == LISTING and "page" not in params.url.query:
            self.page_one_reads += 1
            if self.page_one_reads == self._at:
                async with aiohttp.ClientSession() as other:
                    url = f"{self._server.url}/group/{self._victim}"
                    headers = {"Authorization": self._server.api_key}
                    async with other.delete(url, headers=headers) as reply:
                        assert reply.status == 200


async def test_sync_lost_create_is_found_although_a_delete_elsewhere_shifted_the_pages(
    tmp_path: Path,
) -> None:
    # 800 groups fill page 1, so the lost create's group is number 801, on page 2. While
    # the lookup reads its pages, someone else deletes a group of page 1: number 801
    # slides back onto page 1, already read, and that listing misses it. A second
    # listing must see it before the create is taken for one that made nothing.
    async with FakeGroupsServer() as server:
        _fill(server, 799)
        victim = server.add_group("Deleted by someone else")
        # After the baseline's two listings, the lookup's first page.
        elsewhere = DeleteElsewhere(server, victim, at=3)
        desired = _desired(1)
        async with _client(server, trace_configs=[elsewhere.trace]) as client:
            with SyncState(tmp_path / "sync.db") as state:
                the_plan = await plan(client, desired, state)
                server.inject(method="POST", lost_reply=True)
                report = await apply(client, the_plan, state)
                assert report.ok, report.items
                assert "found the group it made" in (report.items[0].note or "")
                _assert_agreement(server, state, desired)
        assert elsewhere.page_one_reads == 4  # the baseline's two, the lookup, a second look
        assert _names(server).count("Group 0") == 1
        assert [r.method for r in server.requests].count("POST") == 1


def _listings(requests: list[RecordedRequest]) -> list[tuple[int, int]]:
    """(first, last) indexes in `requests` of each listing of the account, page 1 on."""
    spans: list[list[int]] = []
    for index, request in enumerate(requests):
        if request.method == "GET" and request.path == LISTING:
            if "page" not in request.query:
                spans.append([index, index])
            elif spans:
                spans[-1][1] = index
    return [(first, last) for first, last in spans]


async def test_sync_lookup_listing_holds_this_applys_deletes_and_updates(
    tmp_path: Path,
) -> None:
    old = _desired(60)
    async with FakeGroupsServer() as server, _client(server) as client:
        with SyncState(tmp_path / "sync.db") as state:
            assert (await apply(client, await plan(client, old, state), state)).ok
            _fill(server, 800)
            # Prune 40 of the owned groups (on page 1), update 20, and create 10 new
            # ones whose replies are all lost: ten lookups while the writes run.
            desired = [
                DesiredGroup(d.key, d.name, internal_note="changed") for d in old[40:]
            ] + [DesiredGroup(f"new-{n}", f"New {n}") for n in range(10)]
            the_plan = await plan(client, desired, state, prune=True)
            server.inject(method="POST", lost_reply=True, times=10)
            server.reset_stats()
            report = await apply(client, the_plan, state, concurrency=16, max_deletes=40)
            assert report.ok, [i for i in report.items if i.error]
            _assert_agreement(server, state, desired)
        requests = server.requests
        listings = _listings(requests)
        assert len(listings) > 1, "the lost replies made the apply list the account"
        for first, last in listings:
            between = [r.method for r in requests[first : last + 1]]
            assert "DELETE" not in between
            assert "PATCH" not in between
        assert len(server.groups) == 20 + 800 + 10
        assert sorted(n for n in _names(server) if n.startswith("New ")) == [
            f"New {n}" for n in range(10)
        ]


async def test_sync_baseline_sees_a_group_that_a_delete_elsewhere_hid_from_one_listing(
    tmp_path: Path,
) -> None:
    # A group of the desired name made by hand sits first on page 2. While the apply
    # reads its baseline, someone else deletes a group of page 1: the hand-made group
    # slides back onto page 1, already read. Were the baseline that one listing, the
    # group would look new, and a failed create would take it for its own (and a prune
    # later delete it). The baseline's second listing sees it.
    async with FakeGroupsServer() as server:
        _fill(server, 799)
        victim = server.add_group("Deleted by someone else")
        theirs = server.add_group("Team Berlin")
        elsewhere = DeleteElsewhere(server, victim, at=1)  # during the baseline
        desired = [DesiredGroup("berlin", "Team Berlin", internal_note="ours")]
        async with _client(server, trace_configs=[elsewhere.trace]) as client:
            with SyncState(tmp_path / "sync.db") as state:
                the_plan = await plan(client, desired, state)
                server.inject(method="POST", status=503)  # made nothing, maybe acted
                report = await apply(client, the_plan, state)
                assert report.ok, report.items
                assert state.rows()["berlin"].prokey != theirs
        assert server.groups[theirs]["internal_note"] is None  # left alone
        assert _names(server).count("Team Berlin") == 2
