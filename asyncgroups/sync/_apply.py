"""`apply()`: carry a plan out through the client, writing the state after every item.

Items run at most `concurrency` at once. Creates go to `_creates.Creates`, which holds
the lost-create protocol (how a create never duplicates a group; read its docstring);
this module runs updates, adoptions and deletes, and completes a create whose group
exists. Every update and delete passes the protocol's `WriteGate`, so that a listing
for a lost-create lookup never sees groups shift between its pages.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import attrs

from .. import APIError, AsyncGroupsError, GroupPatch, ValidationError, check_concurrency
from .._telemetry import Attributes, traced
from ._creates import Creates, Made
from ._desired import DesiredGroup
from ._errors import OutOfCreditsError
from ._landing import Clock
from ._listings import WriteGate
from ._plan import WRITE_ACTIONS, Action, Plan, PlanItem, Refresh
from ._report import (
    ItemOutcome,
    ItemResult,
    SyncProgress,
    SyncReport,
    done_result,
    failed_result,
    waiting_result,
)
from ._rows import StateSnapshot
from ._state import SyncState

if TYPE_CHECKING:
    from .. import GroupsClient

__all__ = ["UPDATE_ATTEMPTS", "SyncProgressCallback", "apply"]

#: PATCH attempts at most for one update (each retry re-reads and sends what still differs).
UPDATE_ATTEMPTS: Final = 3
#: The status the service answers an update with once the account's event credits are spent.
OUT_OF_CREDITS: Final = 402

SyncProgressCallback = Callable[[SyncProgress], Awaitable[None] | None]


def _applied(report: SyncReport) -> Attributes:
    """What an apply's span says: how its items ended, and the PATCHes it sent."""
    return {
        "asyncgroups.sync.items": len(report.items),
        "asyncgroups.sync.done": len(report.done),
        "asyncgroups.sync.failed": len(report.failed),
        "asyncgroups.sync.skipped": len(report.skipped),
        "asyncgroups.sync.waiting": len(report.waiting),
        "asyncgroups.sync.updates_sent": report.updates_sent,
    }


@traced("sync.apply", result=_applied)
async def apply(
    client: GroupsClient,
    plan: Plan,
    state: SyncState,
    *,
    concurrency: int | None = None,
    on_progress: SyncProgressCallback | None = None,
    max_deletes: int | None = None,
    allow_vanished: bool = False,
    clock: Clock = time.time,
) -> SyncReport:
    """Carry out `plan`, at most `concurrency` items at once (default: the client's cap).

    Before sending anything it refuses a plan that deletes more groups than
    `max_deletes` (`MassDeleteError`; the default allowance is `Plan.delete_allowance`:
    none for an empty desired set) and, unless `allow_vanished`, one in which every
    owned group is gone from the account (`VanishedGroupsError`). It takes the
    state's apply lock (`StateLockedError` if another apply holds it) and refuses a
    plan made before the state last changed (`StalePlanError`) or a client of another
    account than the state's (`StateAccountError`), before any request. Every item ends
    as done, failed (with its error), skipped, or waiting (an earlier create of the key
    may still land: `SyncReport.decide_after` says when to run again), and the state is
    written after each one, so cancelling the apply (Ctrl-C) loses nothing: plan and
    apply again. After the service answers an update 402 (out of event credits) no
    further PATCH is sent: the updates left fail with `OutOfCreditsError`.
    `on_progress` (plain or async) is called after each item that does work. `clock`
    (seconds since the epoch) dates the creates that may still land; a test passes one
    it can move instead of waiting.
    """
    if not isinstance(plan, Plan):
        raise ValidationError(f"plan must be a Plan, not {type(plan).__name__}", field="plan")
    if not isinstance(state, SyncState):
        raise ValidationError(
            f"state must be a SyncState, not {type(state).__name__}", field="state"
        )
    limit = check_concurrency(concurrency, client.max_connections)
    refusal = plan.refusal(
        max_deletes=_check_max_deletes(max_deletes), allow_vanished=allow_vanished
    )
    if refusal is not None:
        raise refusal
    with state.applying(
        state_id=plan.state_id, generation=plan.state_generation, base_url=client.base_url
    ) as snapshot:
        return await _Apply(client, plan, state, limit, on_progress, clock).run(snapshot)


def _check_max_deletes(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(
            f"max_deletes must be a whole number >= 0 or None, not {value!r}",
            field="max_deletes",
        )
    return value


class _Apply:
    """One run of `apply`: the bookkeeping shared by its workers."""

    def __init__(
        self,
        client: GroupsClient,
        plan: Plan,
        state: SyncState,
        concurrency: int,
        on_progress: SyncProgressCallback | None,
        clock: Clock,
    ) -> None:
        self._client = client
        self._plan = plan
        self._state = state
        self._concurrency = concurrency
        self._on_progress = on_progress
        #: Holds this apply's updates and deletes while a lookup lists the account.
        self._gate = WriteGate()
        self._creates = Creates(
            client, state, self._gate, concurrency=concurrency, finish=self._complete, clock=clock
        )
        #: The first update answered `OUT_OF_CREDITS`: no PATCH is sent after it.
        self._no_credits: APIError | None = None
        self._results: dict[str, ItemResult] = {}
        self._total = 0
        self._done = 0
        self._failed = 0

    async def run(self, snapshot: StateSnapshot) -> SyncReport:
        started = time.monotonic()
        stats = attrs.evolve(self._client.stats)  # a copy: what was sent until now
        before = stats.updates_sent
        items = self._plan.items
        await self._creates.prepare(snapshot, items)
        work = [item for item in items if item.action in WRITE_ACTIONS]
        self._total = len(work)
        for item in items:
            if item.action is Action.UNCHANGED:
                self._settle_unchanged(item, snapshot)
                self._results[item.key] = ItemResult(
                    item.key, item.action, ItemOutcome.DONE, prokey=item.prokey
                )
            elif item.action not in WRITE_ACTIONS:
                # An interrupted create of a key no longer desired, found at the start:
                # the state owns its group now, and the report says which one.
                settled = self._creates.settled(item.key)
                waiting = self._creates.waiting(item.key)
                note = item.reason
                if settled is not None:
                    note = "an earlier apply had created it; it is owned now, and kept"
                elif waiting is not None:
                    # Its row stays until a later apply decides it: say when.
                    self._results[item.key] = waiting_result(item, waiting.when, waiting.note())
                    continue
                self._results[item.key] = ItemResult(
                    item.key,
                    item.action,
                    ItemOutcome.SKIPPED,
                    prokey=item.prokey or settled,
                    note=note,
                )
        queue = iter(work)
        fatal: list[BaseException] = []

        async def worker() -> None:
            for item in queue:
                if fatal:
                    return
                try:
                    await self._record_result(await self._run_item(item))
                except Exception as err:  # not an item's failure: the state file, a callback
                    fatal.append(err)
                    return

        if work:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self._concurrency, len(work))):
                    group.create_task(worker())
        if fatal:
            raise fatal[0]
        return SyncReport(
            items=tuple(self._results[item.key] for item in items),
            updates_sent=self._client.stats.updates_sent - before,
            updates_before=before,
            elapsed=time.monotonic() - started,
            sent=self._client.stats - stats,
        )

    def _settle_unchanged(self, item: PlanItem, snapshot: StateSnapshot) -> None:
        """Store the fields the plan's refresh found already in place, if the state
        lacks them.

        An apply interrupted between a PATCH and its state write leaves the group right
        and the row behind; the refresh read proved the group right (with refresh
        listing: its name, the rest being the row's), so the row follows.
        """
        row = snapshot.rows.get(item.key)
        proved = self._plan.refresh is not Refresh.NONE
        if item.desired is not None and row is not None and proved:
            values = item.desired.values()
            if dict(row.fields) != values:
                self._state.set_fields(item.key, values)

    async def _record_result(self, result: ItemResult) -> None:
        self._results[result.key] = result
        self._done += 1
        if result.outcome is ItemOutcome.FAILED:
            self._failed += 1
        if self._on_progress is not None:
            progress = SyncProgress(
                done=self._done, total=self._total, failed=self._failed, last=result
            )
            outcome = self._on_progress(progress)
            if inspect.isawaitable(outcome):
                await outcome

    # Items --------------------------------------------------------------------------

    async def _run_item(self, item: PlanItem) -> ItemResult:
        if item.action is Action.DELETE:
            return await self._delete(item)
        desired = item.desired
        assert desired is not None, "create, adopt and update items carry their record"
        if item.action is Action.CREATE:
            return await self._creates.run(item, desired)
        if item.action is Action.ADOPT:
            return await self._adopt(item, desired)
        return await self._update(item, desired)

    async def _complete(self, item: PlanItem, desired: DesiredGroup, made: Made) -> ItemResult:
        """Send what a create left to patch (if anything), then record the fields."""
        note = made.note
        sent = False
        if not made.patch.is_empty():
            try:
                sent = await self._patch(made.prokey, made.patch, reread=made.reread)
            except AsyncGroupsError as err:
                extra = "it exists, but setting its other fields failed; the next apply retries"
                note = f"{note}; {extra}" if note else extra
                return failed_result(item, err, made.prokey, note)
            self._state.set_fields(item.key, desired.values())
        if made.kept:
            action = Action.UPDATE if sent else Action.UNCHANGED
            return ItemResult(item.key, action, ItemOutcome.DONE, prokey=made.prokey, note=note)
        return done_result(item, made.prokey, note)

    async def _patch(self, prokey: str, patch: GroupPatch, *, reread: bool = False) -> bool:
        """Send `patch`; after a reply that may have been lost, re-read and send the rest.
        Returns whether a PATCH may have been sent (False: nothing differed).

        A retried PATCH only sends the fields that still differ (none, when the lost
        one went through), so a lost reply costs a read, not another update. Once an
        update of this apply was answered 402, none is sent: `OutOfCreditsError`.
        """
        skip = reread
        for attempt in range(1, UPDATE_ATTEMPTS + 1):
            try:
                async with self._gate.writing():
                    if self._no_credits is not None:
                        raise OutOfCreditsError(self._no_credits)
                    sent = await self._client.groups.update(prokey, patch, skip_unchanged=skip)
                return sent or attempt > 1
            except AsyncGroupsError as err:
                if isinstance(err, APIError) and err.status == OUT_OF_CREDITS:
                    self._no_credits = self._no_credits or err
                if attempt == UPDATE_ATTEMPTS or not err.may_have_acted:
                    raise
                skip = True
        raise AssertionError("unreachable")  # pragma: no cover

    async def _update(self, item: PlanItem, desired: DesiredGroup) -> ItemResult:
        assert item.prokey is not None
        try:
            await self._patch(item.prokey, item.patch())
        except AsyncGroupsError as err:
            return failed_result(item, err, item.prokey)
        self._state.set_fields(item.key, desired.values())
        return done_result(item, item.prokey)

    async def _adopt(self, item: PlanItem, desired: DesiredGroup) -> ItemResult:
        assert item.prokey is not None
        # Owned from now on, with the fields as they were read; then made to match.
        before: dict[str, Any] = desired.values()
        before.update((c.field, c.old) for c in item.changes)
        self._state.record(item.key, item.prokey, before, "adopted")
        if item.changes:
            try:
                await self._patch(item.prokey, item.patch())
            except AsyncGroupsError as err:
                note = "adopted, but the patch to match it failed; the next apply retries"
                return failed_result(item, err, item.prokey, note)
            self._state.set_fields(item.key, desired.values())
        return done_result(item, item.prokey)

    async def _delete(self, item: PlanItem) -> ItemResult:
        assert item.prokey is not None
        try:
            async with self._gate.writing():
                await self._client.groups.delete(item.prokey, missing_ok=True)
        except AsyncGroupsError as err:
            return failed_result(item, err, item.prokey)
        self._state.forget(item.key, item.prokey)
        return done_result(item, item.prokey, item.reason)
