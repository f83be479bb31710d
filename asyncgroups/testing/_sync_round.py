"""A declarative sync round under faults, and `check_sync`: report, state and server agree.

`check_sync` is the proof both `asyncgroups demo` and the project's own sync tests use
after an apply; `SyncRound` is the demo's round (plan a desired set, apply it under
faults, run it again). Uses only the public names of `asyncgroups.sync`.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import attrs

from .. import GroupsClient, Subscription
from ..sync import (
    Action,
    DesiredGroup,
    ItemOutcome,
    Plan,
    StateRow,
    SyncReport,
    SyncState,
    apply,
    plan,
)
from ._checks import Check, Finding
from ._server import FakeGroupsServer

__all__ = ["SyncRound", "check_sync"]

_CAL: Final = "https://calendar.example.com/crm/{}.ics"
#: Every this many desired groups, one already exists in the account, made by hand.
_BY_HAND_EVERY: Final = 50
#: The methods that change the fake's account (the fake plays the service: its rule).
_WRITE_METHODS: Final = frozenset({"POST", "PATCH", "DELETE"})
#: Applies the re-run may take while creates that met a fault again wait to be decided.
_RERUN_APPLIES: Final = 4


def check_sync(
    report: SyncReport,
    state: SyncState,
    server: FakeGroupsServer,
    *,
    desired: Iterable[DesiredGroup] | None = None,
    foreign: Collection[str] = (),
) -> list[Check]:
    """Prove that an apply's report, its state file and the server's groups agree.

    Every item the report calls done is in the state under the same prokey (a done
    delete is gone from it); every group the state owns exists on the server (with
    `desired`: holding exactly the desired fields, and every item that neither failed
    nor waits is owned); no group exists twice and only a failed create or a waiting
    item may stay pending; the `foreign` groups (prokeys the sync must leave alone) are
    still there. Names are unique among the groups that are not `foreign`.
    """
    rows = state.rows()
    held = server.groups
    owned = {row.prokey for row in rows.values()}
    done_in_state = all(
        (item.key not in rows and item.prokey not in owned)
        if item.action is Action.DELETE
        else (item.key in rows and rows[item.key].prokey == item.prokey)
        for item in report.items
        if item.outcome is ItemOutcome.DONE
    )
    # A create that failed, or one that may still land (of a key desired or not).
    may_pend = {r.key for r in report.failed if r.action is Action.CREATE}
    may_pend.update(r.key for r in report.waiting)
    names = collections.Counter(held[p]["name"] for p in held if p not in foreign)
    return [
        Check(
            "every item the report calls done is in the state under the same prokey",
            done_in_state,
        ),
        _owned_check(report, rows, held, desired),
        Check(
            "no group was created twice (a lost reply is looked up, never re-sent blindly)",
            all(n == 1 for n in names.values()) and set(state.pending()) <= may_pend,
        ),
        Check("groups the state does not own were left alone", set(foreign) <= set(held)),
    ]


def _owned_check(
    report: SyncReport,
    rows: Mapping[str, StateRow],
    held: Mapping[str, Mapping[str, Any]],
    desired: Iterable[DesiredGroup] | None,
) -> Check:
    """The claim about the groups the state owns: they exist (with the desired fields)."""
    owned = {row.prokey: key for key, row in rows.items()}
    if desired is None:
        return Check("every group the state owns exists on the server", set(owned) <= set(held))
    wanted = {d.key: d for d in desired}
    finished = set(wanted) - {r.key for r in (*report.failed, *report.waiting)}
    return Check(
        "every group the state owns exists, with exactly the desired fields",
        all(
            key in wanted
            and prokey in held
            and all(held[prokey][f] == v for f, v in wanted[key].values().items())
            for prokey, key in owned.items()
        )
        and finished <= set(rows),
    )


def _writes(server: FakeGroupsServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in server.requests if r.method in _WRITE_METHODS]


def _work(the_plan: Plan) -> set[str]:
    """The keys a plan sends a write for (through the plan's own lists of them)."""
    return {
        item.key
        for item in (*the_plan.creates, *the_plan.adopts, *the_plan.updates, *the_plan.deletes)
    }


@attrs.define
class SyncRound:
    """The demo's sync round: plan a desired set, apply it under faults, re-run it.

    Each step returns a `Finding`: what it did (one line) and the checks it proved
    against the fake server's state. The state file lives in the given directory.
    """

    desired: list[DesiredGroup] = attrs.Factory(list)
    state_path: Path | None = None
    plan: Plan | None = None
    report: SyncReport | None = None
    #: Prokeys of groups the sync must leave alone (not desired, not owned).
    foreign: set[str] = attrs.Factory(set)
    #: Prokeys of the groups made by hand whose names the desired set uses.
    by_hand: set[str] = attrs.Factory(set)

    @staticmethod
    def desired_set(count: int) -> list[DesiredGroup]:
        """Records as a CRM export would give them: every 10th has a calendar feed."""
        records = []
        for n in range(1, count + 1):
            key, name, note = f"crm-{n:05d}", f"CRM calendar {n:05d}", f"CRM record {n}"
            if n % 10 == 0:
                feed = _CAL.format(n)
                records.append(
                    DesiredGroup(
                        key,
                        name,
                        internal_note=note,
                        subscription=Subscription.EXTERNAL,
                        subscription_cal_url=feed,
                    )
                )
            else:
                records.append(DesiredGroup(key, name, internal_note=note))
        return records

    async def plan_step(
        self, server: FakeGroupsServer, client: GroupsClient, workdir: Path, count: int
    ) -> Finding:
        """Plan a fresh desired set (adopting same-named groups made by hand)."""
        self.desired = self.desired_set(count)
        for n, record in enumerate(self.desired):
            if n % _BY_HAND_EVERY == 0:  # the account was partly filled by hand before
                self.by_hand.add(server.add_group(record.name, internal_note="typed by hand"))
        server.add_group("A group nobody desires")
        self.foreign = set(server.groups) - self.by_hand
        self.state_path = workdir / "sync-state.db"
        writes = _writes(server)
        with SyncState(self.state_path) as state:
            self.plan = await plan(client, self.desired, state, prune=True, adopt_by_name=True)
        adopts = {item.prokey for item in self.plan.adopts}
        return Finding(
            self.plan.summary(),
            [
                Check("planning sent no write", _writes(server) == writes),
                Check(
                    f"the {len(self.by_hand)} groups made by hand with a desired name are "
                    "adopted, the rest created",
                    adopts == self.by_hand
                    and len(self.plan.creates) == len(self.desired) - len(self.by_hand),
                ),
            ],
        )

    async def apply_step(self, server: FakeGroupsServer, client: GroupsClient) -> Finding:
        """Apply the plan under faults; prove the report, the state and the server agree."""
        assert self.plan is not None
        assert self.state_path is not None
        with SyncState(self.state_path) as state:
            self.report = report = await apply(client, self.plan, state)
            checks = check_sync(report, state, server, desired=self.desired, foreign=self.foreign)
        found = sum(1 for r in report.items if "found the group it made" in (r.note or ""))
        said = (
            f"{report.summary().removeprefix('sync: ')}; {found} create repl"
            f"{'y' if found == 1 else 'ies'} lost on the way, each group found again"
        )
        return Finding(said, checks)

    async def rerun_step(self, server: FakeGroupsServer, client: GroupsClient) -> Finding:
        """Plan and apply the same desired set again: nothing left to do, nothing sent.

        A create that failed in a way that may still land waits out its landing window
        (`asyncgroups.sync`'s lost-create protocol). The fake acts at once or never, so
        nothing lands late: the re-run moves its apply's clock past the window instead
        of waiting it out, and says how many creates it decided that way.
        """
        assert self.report is not None
        assert self.state_path is not None
        unfinished = {r.key for r in (*self.report.failed, *self.report.waiting)}
        writes, credits = _writes(server), server.credits
        clock = _MovedClock()
        with SyncState(self.state_path) as state:
            again = await plan(client, self.desired, state, prune=True, adopt_by_name=True)
            report, decided = await self._until_decided(client, state, again, clock)
        sent = _writes(server)[len(writes) :]
        if unfinished:
            claim = f"the re-run only finished the {len(unfinished)} item(s) the apply could not"
            holds = _work(again) <= unfinished
        else:
            claim = "the re-run found nothing to do: no write sent, no credit spent"
            holds = not again.has_changes and not sent and server.credits == credits
        said = f"re-run: {again.summary().removeprefix('plan: ')}"
        if decided:
            said += (
                f"; {decided} create(s) that may still have landed decided after their "
                "landing window, the apply's clock moved past it (the fake never lands a "
                "create late)"
            )
        return Finding(
            said,
            [Check(claim, holds), Check("the re-run ended with every item done", report.ok)],
        )

    async def _until_decided(
        self, client: GroupsClient, state: SyncState, again: Plan, clock: _MovedClock
    ) -> tuple[SyncReport, int]:
        """Apply `again` past the landing window of the creates that wait, and again
        while some wait anew; return the last report and how many creates waited."""
        assert self.report is not None
        report, decided = self.report, set[str]()
        for _ in range(_RERUN_APPLIES):
            decided.update(r.key for r in report.waiting)
            clock.past(report.decide_after)
            report = await apply(client, again, state, clock=clock)
            if not report.waiting:
                break
            again = await plan(client, self.desired, state, prune=True, adopt_by_name=True)
        return report, len(decided)


class _MovedClock:
    """The re-run's wall clock (epoch seconds): now, or past a moment it was moved to."""

    def __init__(self) -> None:
        self._offset = 0.0

    def past(self, moment: datetime | None) -> None:
        """Run from just after `moment` on, if that is later than now."""
        if moment is not None:
            self._offset = max(self._offset, moment.timestamp() + 1 - time.time())

    def __call__(self) -> float:
        return time.time() + self._offset
