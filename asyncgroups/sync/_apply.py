"""`apply()`: carry a plan out through the client, writing the state after every item.

How a create never duplicates a group, although the API takes no client-chosen id:

1. Before the first create, the account is listed twice. What either listing shows is
   stored in the state as a *baseline*, together with a *pending create* row (key,
   name, fields) for every create the apply may send, in one transaction synced to
   disk.
2. When a POST answers, the group is recorded and its pending row dropped, in one
   transaction.
3. When a POST fails in a way that may still have created the group (connection lost
   after sending, timeout, 5xx, broken reply), the account is listed again and the
   groups that are new since the baseline, owned by no row and named exactly like the
   create are counted. One: that is the group the create made; it is recorded. None:
   the account is listed once more, and only when that listing shows none either was
   nothing made, and the POST is sent again (up to `CREATE_ATTEMPTS` times). More
   than one: nothing is guessed; the item fails with `AmbiguousCreateError` and its
   pending row stays. A POST refused outright (a 4xx) drops the pending row.
4. A pending row left by a crash or Ctrl-C is settled the same way at the start of the
   next apply, against the baseline it was written with, before anything else.

A listing reads every page of the account (`client.groups.list()`), and pages shift
while groups are deleted (or, where the order follows the last change, updated) between
their reads: a group can slip into a page already read and go unseen. So a listing for
a lookup is taken while this apply has no update or delete in flight (`WriteGate`
holds them; creates only add groups, which can make one appear twice but never hide
one), and "nothing was made" needs two listings that agree, so a delete made by
someone else during one listing cannot pass for a create that never happened.

Creates with the same name are sent one at a time, so step 3 never mistakes another
key's in-flight create for its own.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from .. import AsyncGroupsError, GroupPatch, RequestTimeout, ValidationError, check_concurrency
from ._desired import DesiredGroup
from ._errors import AmbiguousCreateError, StalePlanError
from ._live import FreshListing, Listing, NewGroups, WriteGate, may_have_acted
from ._plan import Action, Plan, PlanItem
from ._report import ItemOutcome, ItemResult, SyncProgress, SyncReport
from ._state import PendingCreate, StateSnapshot, SyncState

if TYPE_CHECKING:
    from .. import GroupsClient

__all__ = ["CREATE_ATTEMPTS", "UPDATE_ATTEMPTS", "SyncProgressCallback", "apply"]

#: POSTs sent at most for one create (each after checking that the last made nothing).
CREATE_ATTEMPTS: Final = 3
#: PATCH attempts at most for one update (each retry re-reads and sends what still differs).
UPDATE_ATTEMPTS: Final = 3

SyncProgressCallback = Callable[[SyncProgress], Awaitable[None] | None]

_WORK: Final = frozenset({Action.CREATE, Action.ADOPT, Action.UPDATE, Action.DELETE})


async def apply(
    client: GroupsClient,
    plan: Plan,
    state: SyncState,
    *,
    concurrency: int | None = None,
    on_progress: SyncProgressCallback | None = None,
) -> SyncReport:
    """Carry out `plan`, at most `concurrency` items at once (default: the client's cap).

    Takes the state's apply lock (`StateLockedError` if another apply holds it) and
    refuses a plan made before the state last changed (`StalePlanError`). Every item
    ends as done, failed (with its error) or skipped, and the state is written after
    each one, so cancelling the apply (Ctrl-C) loses nothing: plan and apply again.
    `on_progress` (plain or async) is called after each item that does work.
    """
    if not isinstance(plan, Plan):
        raise ValidationError(f"plan must be a Plan, not {type(plan).__name__}", field="plan")
    if not isinstance(state, SyncState):
        raise ValidationError(
            f"state must be a SyncState, not {type(state).__name__}", field="state"
        )
    limit = check_concurrency(concurrency, client.max_connections)
    with state.applying():
        snapshot = state.snapshot()
        if snapshot.state_id != plan.state_id:
            raise StalePlanError(
                f"this plan was made for another state file than {state.path}; make a new plan"
            )
        if snapshot.generation != plan.state_generation:
            raise StalePlanError(
                f"the state file {state.path} changed after this plan was made (another "
                "apply ran, or one was interrupted); make a new plan and apply that"
            )
        return await _Apply(client, plan, state, limit, on_progress).run(snapshot)


class _Apply:
    """One run of `apply`: the bookkeeping shared by its workers."""

    def __init__(
        self,
        client: GroupsClient,
        plan: Plan,
        state: SyncState,
        concurrency: int,
        on_progress: SyncProgressCallback | None,
    ) -> None:
        self._client = client
        self._plan = plan
        self._state = state
        self._concurrency = concurrency
        self._on_progress = on_progress
        #: Holds this apply's updates and deletes while a lookup lists the account.
        self._gate = WriteGate()
        self._listing = FreshListing(client, self._gate)
        self._results: dict[str, ItemResult] = {}
        self._name_locks: dict[str, asyncio.Lock] = {}
        self._baseline_id = 0
        self._baseline: frozenset[str] = frozenset()
        #: Names learnt by reading groups the account lists by id only: prokey -> name.
        self._names: dict[str, str] = {}
        #: Why creates cannot be sent safely this run (the baseline listing failed).
        self._no_creates: AsyncGroupsError | None = None
        #: Keys whose interrupted create was found at the start: key -> prokey.
        self._settled: dict[str, str] = {}
        #: Keys whose interrupted create could not be settled: key -> why.
        self._unsettled: dict[str, AsyncGroupsError] = {}
        self._total = 0
        self._done = 0
        self._failed = 0

    async def run(self, snapshot: StateSnapshot) -> SyncReport:
        started = time.monotonic()
        before = self._client.stats.updates_sent
        items = self._plan.items
        if snapshot.pending or any(item.action is Action.CREATE for item in items):
            await self._prepare_creates(snapshot)
        work = [item for item in items if item.action in _WORK]
        self._total = len(work)
        for item in items:
            if item.action is Action.UNCHANGED:
                self._settle_unchanged(item, snapshot)
                self._results[item.key] = ItemResult(
                    item.key, item.action, ItemOutcome.DONE, prokey=item.prokey
                )
            elif item.action not in _WORK:
                # An interrupted create of a key no longer desired, found at the start:
                # the state owns its group now, and the report says which one.
                settled = self._settled.get(item.key)
                note = item.reason
                if settled is not None:
                    note = "an interrupted apply had created it; it is owned now, and kept"
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
                    await self._finish(await self._run_item(item))
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
        )

    def _settle_unchanged(self, item: PlanItem, snapshot: StateSnapshot) -> None:
        """Store the fields a live read found already in place, if the state lacks them.

        An apply interrupted between a PATCH and its state write leaves the group right
        and the row behind; the refresh read proved the group right, so the row follows.
        """
        row = snapshot.rows.get(item.key)
        if item.desired is not None and row is not None and self._plan.refresh:
            values = item.desired.values()
            if dict(row.fields) != values:
                self._state.set_fields(item.key, values)

    async def _finish(self, result: ItemResult) -> None:
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

    # Creates: the baseline, and settling interrupted creates ------------------------

    async def _prepare_creates(self, snapshot: StateSnapshot) -> None:
        """List the account: settle interrupted creates, then store the baseline and the
        intents of this run's creates (before any of them is sent)."""
        try:
            listing = await self._listing.after(-math.inf)
            unfound = await self._settle_pending(list(snapshot.pending.values()), listing)
            seen = {summary.prokey for summary in listing.summaries}
            # A second listing: "nothing was made" needs two that agree, and a group that
            # someone else's delete shifted past one listing of the baseline would look
            # new later, and could be taken for what a lost create made.
            listing = await self._listing.newer_than(listing)
            for pending in await self._settle_pending(unfound, listing):
                self._state.forget_pending(pending.key)
            seen.update(summary.prokey for summary in listing.summaries)
        except AsyncGroupsError as err:
            self._no_creates = err
            self._unsettled.update(
                (key, err) for key in snapshot.pending if key not in self._settled
            )
            return
        intents = [
            (item.key, item.desired.name, item.desired.created_values())
            for item in self._plan.items
            if item.action is Action.CREATE
            and item.desired is not None
            and item.key not in self._settled
            and item.key not in self._unsettled
        ]
        # Seen in either listing: not new, so never taken for what a create made.
        self._baseline = frozenset(seen)
        self._baseline_id = self._state.new_baseline(self._baseline, intents)

    async def _settle_pending(
        self, pendings: list[PendingCreate], listing: Listing
    ) -> list[PendingCreate]:
        """Record each interrupted create that `listing` shows made its group; return the
        ones it shows nothing for (an ambiguous or unreadable one is unsettled)."""
        owned = self._state.owned_prokeys()
        indexes: dict[int, NewGroups | AsyncGroupsError] = {}
        unfound: list[PendingCreate] = []
        for pending in pendings:
            if pending.baseline not in indexes:  # usually one: that of the interrupted run
                try:
                    indexes[pending.baseline] = await self._new_groups(
                        listing, self._state.baseline(pending.baseline), owned
                    )
                except AsyncGroupsError as err:
                    indexes[pending.baseline] = err
            index = indexes[pending.baseline]
            if isinstance(index, AsyncGroupsError):
                self._unsettled[pending.key] = index
                continue
            found = index.named(pending.name, owned)
            if len(found) == 1:
                self._state.record(pending.key, found[0], pending.fields, "created")
                owned.add(found[0])
                self._settled[pending.key] = found[0]
            elif not found:
                unfound.append(pending)
            else:
                self._unsettled[pending.key] = AmbiguousCreateError(
                    pending.key, pending.name, found
                )
        return unfound

    async def _new_groups(
        self, listing: Listing, baseline: frozenset[str], owned: set[str]
    ) -> NewGroups:
        return await NewGroups.build(
            self._client,
            listing.summaries,
            baseline=baseline,
            owned=owned,
            names=self._names,
            concurrency=self._concurrency,
        )

    async def _made_by_lost_create(self, name: str, failed_at: float) -> list[str]:
        """The new, unowned groups named `name` in a listing taken after `failed_at`;
        empty only when a second listing shows none either (see the module docstring)."""
        listing = await self._listing.after(failed_at)
        found = await self._named(listing, name)
        if not found:
            found = await self._named(await self._listing.newer_than(listing), name)
        return found

    async def _named(self, listing: Listing, name: str) -> list[str]:
        index = await self._new_groups(listing, self._baseline, self._state.owned_prokeys())
        return index.named(name)

    # Items --------------------------------------------------------------------------

    async def _run_item(self, item: PlanItem) -> ItemResult:
        if item.action is Action.DELETE:
            return await self._delete(item)
        desired = item.desired
        assert desired is not None, "create, adopt and update items carry their record"
        if item.action is Action.CREATE:
            return await self._create(item, desired)
        if item.action is Action.ADOPT:
            return await self._adopt(item, desired)
        return await self._update(item, desired)

    def _done_result(
        self, item: PlanItem, prokey: str | None, note: str | None = None
    ) -> ItemResult:
        return ItemResult(item.key, item.action, ItemOutcome.DONE, prokey=prokey, note=note)

    def _failed_result(
        self,
        item: PlanItem,
        error: AsyncGroupsError,
        prokey: str | None = None,
        note: str | None = None,
    ) -> ItemResult:
        return ItemResult(
            item.key, item.action, ItemOutcome.FAILED, prokey=prokey, error=error, note=note
        )

    async def _create(self, item: PlanItem, desired: DesiredGroup) -> ItemResult:
        settled = self._settled.get(item.key)
        if settled is not None:
            note = "an interrupted apply had already created it; found it, not created again"
            # The desired fields may have changed since that create: send what differs.
            return await self._complete(
                item, desired, settled, desired.full_patch(), note, reread=True
            )
        error = self._unsettled.get(item.key)
        if error is not None:
            note = "an interrupted create could not be settled; nothing was sent"
            return self._failed_result(item, error, note=note)
        if self._no_creates is not None:
            note = "the account listing a safe create needs could not be read; nothing was sent"
            return self._failed_result(item, self._no_creates, note=note)
        lock = self._name_locks.setdefault(desired.name, asyncio.Lock())
        async with lock:
            return await self._create_once(item, desired)

    async def _create_once(self, item: PlanItem, desired: DesiredGroup) -> ItemResult:
        """Create the group exactly once, however many replies are lost on the way."""
        new = desired.new_group()
        fields = desired.created_values()
        loop = asyncio.get_running_loop()
        last: AsyncGroupsError | None = None
        for _ in range(CREATE_ATTEMPTS):
            # The pending row, on disk since `_prepare_creates`, covers a crash from here.
            try:
                prokey = await self._client.groups.create(new)
            except AsyncGroupsError as err:
                if not may_have_acted(err):
                    self._state.forget_pending(item.key)
                    return self._failed_result(item, err)
                try:
                    found = await self._made_by_lost_create(desired.name, loop.time())
                except AsyncGroupsError as lookup:
                    note = (
                        f"could not check whether the create went through ({lookup}); the "
                        "next apply checks again before creating anything"
                    )
                    return self._failed_result(item, err, note=note)
                if len(found) > 1:
                    return self._failed_result(
                        item, AmbiguousCreateError(item.key, desired.name, found)
                    )
                if found:
                    self._state.record(item.key, found[0], fields, "created")
                    note = f"the reply to the create was lost ({err}); found the group it made"
                    return await self._complete(
                        item, desired, found[0], desired.followup(), note, reread=True
                    )
                if isinstance(err, RequestTimeout):
                    # A POST that timed out may still be running on the server: an empty
                    # listing now proves nothing, and sending again could make two.
                    note = (
                        "the create timed out and the server may still be making the group; "
                        "it was not sent again: the next apply looks for it before creating"
                    )
                    return self._failed_result(item, err, note=note)
                last = err  # provably nothing was made: sending again cannot duplicate
                continue
            self._state.record(item.key, prokey, fields, "created")
            return await self._complete(item, desired, prokey, desired.followup(), None)
        self._state.forget_pending(item.key)
        assert last is not None
        note = f"{CREATE_ATTEMPTS} attempts failed, and none of them made a group"
        return self._failed_result(item, last, note=note)

    async def _complete(
        self,
        item: PlanItem,
        desired: DesiredGroup,
        prokey: str,
        patch: GroupPatch,
        note: str | None,
        *,
        reread: bool = False,
    ) -> ItemResult:
        """Send what a create left to patch (if anything), then record the fields."""
        if not patch.is_empty():
            try:
                await self._patch(prokey, patch, reread=reread)
            except AsyncGroupsError as err:
                extra = "it exists, but setting its other fields failed; the next apply retries"
                note = f"{note}; {extra}" if note else extra
                return self._failed_result(item, err, prokey, note)
            self._state.set_fields(item.key, desired.values())
        return self._done_result(item, prokey, note)

    async def _patch(self, prokey: str, patch: GroupPatch, *, reread: bool = False) -> None:
        """Send `patch`; after a reply that may have been lost, re-read and send the rest.

        A retried PATCH only sends the fields that still differ (none, when the lost
        one went through), so a lost reply costs a read, not another update.
        """
        skip = reread
        for attempt in range(1, UPDATE_ATTEMPTS + 1):
            try:
                async with self._gate.writing():
                    await self._client.groups.update(prokey, patch, skip_unchanged=skip)
                return
            except AsyncGroupsError as err:
                if attempt == UPDATE_ATTEMPTS or not may_have_acted(err):
                    raise
                skip = True

    async def _update(self, item: PlanItem, desired: DesiredGroup) -> ItemResult:
        assert item.prokey is not None
        try:
            await self._patch(item.prokey, item.patch())
        except AsyncGroupsError as err:
            return self._failed_result(item, err, item.prokey)
        self._state.set_fields(item.key, desired.values())
        return self._done_result(item, item.prokey)

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
                return self._failed_result(item, err, item.prokey, note)
            self._state.set_fields(item.key, desired.values())
        return self._done_result(item, item.prokey)

    async def _delete(self, item: PlanItem) -> ItemResult:
        assert item.prokey is not None
        try:
            async with self._gate.writing():
                await self._client.groups.delete(item.prokey, missing_ok=True)
        except AsyncGroupsError as err:
            return self._failed_result(item, err, item.prokey)
        self._state.forget(item.key, item.prokey)
        return self._done_result(item, item.prokey, item.reason)
