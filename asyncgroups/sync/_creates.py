"""The lost-create protocol: how an apply's create never duplicates a group, although the
API takes no client-chosen id.

1. Before the first create, the account is listed twice. What either listing shows is
   stored in the state as a *baseline*, together with a *pending create* row (key,
   name, fields) for every create the apply may send, in one transaction synced to
   disk.
2. Just before each POST, its row notes that it was sent. When a POST answers, the
   group is recorded and its pending row dropped, in one transaction.
3. When a POST fails in a way that may still have created the group (connection lost
   after sending, timeout, 5xx, broken reply), the account is listed again and the
   groups that are new since the baseline, owned by no row and named exactly like the
   create are counted. One: that is the group the create made; it is recorded. More
   than one: nothing is guessed; the item fails with `AmbiguousCreateError` and its
   pending row stays. None, when the create may still land (`may_still_land`, step 5):
   the item waits. None otherwise (the service itself answered with a 5xx: it is done
   working): the account is listed once more, and only when that listing shows none
   either was nothing made, and the POST is sent again (up to `CREATE_ATTEMPTS`
   times). A POST that provably made nothing (`not err.may_have_acted`: refused with a
   4xx, or no connection could be made) drops the pending row.
4. A pending row left by a crash or Ctrl-C is settled the same way at the start of the
   next apply, against the baseline it was written with, before anything else: the
   group found is recorded; a row that both of the apply's first listings show nothing
   for is dropped, and its key is created anew, unless it may still land (step 5).
5. A create may still land while the server works on a POST nobody answered for. The
   rule (`may_still_land`): any failure after the request may have reached the server
   may still land, except an answer from the service itself that settles it. So a
   timeout, a connection dropped after sending, a reply that could not be used, and a
   gateway's 502 or 504 (or a 5xx HTTP does not define, as CDNs send), which speak for
   a backend that may still be at work, may still land; a 4xx (nothing was made) and
   a 500, 503 or other 5xx HTTP defines (the service answered: it is done) do not. So
   may a POST whose end nobody saw (its row says it was sent, and nothing recorded how
   it ended: its apply was interrupted, or the lookup after a failure failed too).
   Until `landing_window(client.timeout)` has passed — `LANDING_TIMEOUTS` times the
   client's timeout, and at least `LANDING_FLOOR` seconds — counted from the failure
   (for a POST whose end nobody saw: from the first listing of the next apply that
   finds it missing), a listing that shows nothing proves nothing. That moment
   (`decide_after`, wall-clock) is stored with the row. Until it passes the item ends
   *waiting*: nothing is sent for it, and its pending row stays; the report says when
   it can be decided. Only two listings that both started after it, and both show
   nothing, drop the row, so that the group is then created once. A group that lands
   meanwhile is found and recorded by the next apply's listings, whenever that runs.
6. A create after drift (the plan's read of a group the state owns answered 404) needs
   the same evidence that the group is gone: the two listings of step 1 must both not
   show the owned group. A read can answer 404 for a group that exists (a lagging
   replica, a misrouted request); when either listing shows it, nothing is created:
   the group is re-read and patched with what differs, and the item is reported as
   that update (or as unchanged).

A listing reads every page of the account (`client.groups.list()`), and pages shift
while groups are deleted (or, where the order follows the last change, updated) between
their reads: a group can slip into a page already read and go unseen. So a listing for
a lookup is taken while this apply has no update or delete in flight (`WriteGate`
holds them; creates only add groups, which can make one appear twice but never hide
one), and "nothing was made" needs two listings that agree, so a delete made by
someone else during one listing cannot pass for a create that never happened. For the
same reason the baseline is two listings: a group that someone else's delete shifted
past one of them would look new later, and could be taken for what a lost create made.

Creates with the same name are sent one at a time, so step 3 never mistakes another
key's in-flight create for its own.

This module holds the protocol's steps; the state file only stores its rows
(`SyncState.new_baseline`, `.baseline`, `.mark_sent`, `.mark_undecided`, `.record`,
`.forget_pending`), step 5's rule and times are in `_landing.py`, and the listings (the
gate, listings shared by lookups, the index of new groups) in `_listings.py`.
`_apply.py` hands each create item to `Creates.run`, and sends every update and delete
through the gate.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Final

import attrs

from .. import AsyncGroupsError, GroupPatch
from ._desired import DesiredGroup
from ._errors import AmbiguousCreateError
from ._landing import Clock, Undecided, landing_window, may_still_land, stored
from ._listings import FreshListing, Listing, NewGroups, WriteGate
from ._plan import Action, PlanItem
from ._report import ItemResult, failed_result, waiting_result
from ._rows import PendingCreate, StateSnapshot
from ._state import SyncState

if TYPE_CHECKING:
    from .. import GroupsClient

__all__ = ["CREATE_ATTEMPTS", "Creates", "Finish", "Made"]

#: POSTs sent at most for one create (each after checking that the last made nothing).
CREATE_ATTEMPTS: Final = 3


@attrs.frozen
class Made:
    """A create item whose group exists: what is left for the apply to do with it."""

    prokey: str
    #: What the create could not say, to patch now (usually empty).
    patch: GroupPatch
    note: str | None = None
    #: Read the group first and send only what differs (its fields are not known).
    reread: bool = False
    #: The group the state already owned (a drift create found it there): the item is
    #: reported as the update it was, or as unchanged, not as a create.
    kept: bool = False


#: How the apply completes a create item whose group exists: patch, record, report.
Finish = Callable[[PlanItem, DesiredGroup, Made], Awaitable[ItemResult]]


class Creates:
    """The creates of one apply: the baseline, interrupted creates, and each POST."""

    def __init__(
        self,
        client: GroupsClient,
        state: SyncState,
        gate: WriteGate,
        *,
        concurrency: int,
        finish: Finish,
        clock: Clock = time.time,
    ) -> None:
        self._client = client
        self._state = state
        self._concurrency = concurrency
        self._finish = finish
        self._clock = clock
        self._listing = FreshListing(client, gate, clock=clock)
        self._name_locks: dict[str, asyncio.Lock] = {}
        self._baseline: frozenset[str] = frozenset()
        #: Names learnt by reading groups the account lists by id only: prokey -> name.
        self._names: dict[str, str] = {}
        #: Why creates cannot be sent safely this run (the baseline listing failed).
        self._no_creates: AsyncGroupsError | None = None
        #: Keys whose interrupted create was found at the start: key -> prokey.
        self._settled: dict[str, str] = {}
        #: Keys whose interrupted create could not be settled: key -> why.
        self._unsettled: dict[str, AsyncGroupsError] = {}
        #: Keys whose earlier create may still land (step 5).
        self._waiting: dict[str, Undecided] = {}
        #: Drift creates whose group the listings still show (step 6): key -> prokey.
        self._present: dict[str, str] = {}

    def settled(self, key: str) -> str | None:
        """The prokey an interrupted create of `key` was found to have made, if any."""
        return self._settled.get(key)

    def waiting(self, key: str) -> Undecided | None:
        """Why an earlier create of `key` cannot be decided in this apply, if it cannot."""
        return self._waiting.get(key)

    # The baseline, and settling interrupted creates (steps 1, 4, 5 and 6) ------------

    async def prepare(self, snapshot: StateSnapshot, items: Sequence[PlanItem]) -> None:
        """Before any item runs: settle interrupted creates, then store the baseline and
        the intents of this run's creates (when there are any of either)."""
        if not snapshot.pending and not any(item.action is Action.CREATE for item in items):
            return
        try:
            first = await self._listing.after(-math.inf)
            unfound = await self._settle_pending(list(snapshot.pending.values()), first)
            seen = {summary.prokey for summary in first.summaries}
            # The second listing of the baseline (see the module docstring).
            second = await self._listing.newer_than(first)
            for pending in await self._settle_pending(unfound, second):
                self._absent(pending, first)
            seen.update(summary.prokey for summary in second.summaries)
        except AsyncGroupsError as err:
            self._no_creates = err
            self._unsettled.update(
                (key, err) for key in snapshot.pending if key not in self._settled
            )
            return
        self._present = {
            item.key: item.prokey
            for item in items
            if item.drift and item.prokey is not None and item.prokey in seen
        }
        intents = [
            (item.key, item.desired.name, item.desired.created_values())
            for item in items
            if item.action is Action.CREATE
            and item.desired is not None
            and item.key not in self._settled
            and item.key not in self._unsettled
            and item.key not in self._waiting  # its row, and when it was sent, stay
            and item.key not in self._present
        ]
        # Seen in either listing: not new, so never taken for what a create made.
        self._baseline = frozenset(seen)
        self._state.new_baseline(self._baseline, intents)

    def _absent(self, pending: PendingCreate, first: Listing) -> None:
        """Two listings, `first` the earlier, show nothing for `pending`: drop its row,
        unless it may still land (step 5)."""
        undecided = Undecided.of(pending)
        if undecided is None and pending.sent_at is not None:
            # Sent, and nobody saw how it ended.
            moment = math.ceil(first.wall + landing_window(self._client.timeout))
            undecided = Undecided(moment)
            self._state.mark_undecided(pending.key, stored(moment))
        if undecided is not None and first.wall < undecided.decide_after:
            self._waiting[pending.key] = undecided
        else:
            self._state.forget_pending(pending.key)

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
        empty only when a second listing shows none either (step 3)."""
        listing = await self._listing.after(failed_at)
        found = await self._named(listing, name)
        if not found:
            found = await self._named(await self._listing.newer_than(listing), name)
        return found

    async def _named(self, listing: Listing, name: str) -> list[str]:
        index = await self._new_groups(listing, self._baseline, self._state.owned_prokeys())
        return index.named(name)

    # One create item (steps 2, 3, 5 and 6) -------------------------------------------

    async def run(self, item: PlanItem, desired: DesiredGroup) -> ItemResult:
        """Carry out one create item: settled, refused, or sent under its name's lock."""
        settled = self._settled.get(item.key)
        if settled is not None:
            note = "an earlier apply had created it (no reply said so); found it, not created again"
            # The desired fields may have changed since that create: send what differs.
            made = Made(settled, desired.full_patch(), note, reread=True)
            return await self._finish(item, desired, made)
        error = self._unsettled.get(item.key)
        if error is not None:
            note = "an interrupted create could not be settled; nothing was sent"
            return failed_result(item, error, note=note)
        undecided = self._waiting.get(item.key)
        if undecided is not None:
            return waiting_result(item, undecided.when, undecided.note())
        present = self._present.get(item.key)
        if present is not None:
            note = "a read of it answered 404, but the listings show it: kept, not created again"
            made = Made(present, desired.full_patch(), note, reread=True, kept=True)
            return await self._finish(item, desired, made)
        if self._no_creates is not None:
            note = "the account listing a safe create needs could not be read; nothing was sent"
            return failed_result(item, self._no_creates, note=note)
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
            # The pending row, on disk since `prepare`, covers a crash from here.
            self._state.mark_sent(item.key, stored(self._clock()))
            try:
                prokey = await self._client.groups.create(new)
            except AsyncGroupsError as err:
                result = await self._after_failure(item, desired, err, loop.time())
                if result is not None:
                    return result
                last = err  # provably nothing was made: sending again cannot duplicate
                continue
            self._state.record(item.key, prokey, fields, "created")
            return await self._finish(item, desired, Made(prokey, desired.followup()))
        self._state.forget_pending(item.key)
        assert last is not None
        note = f"{CREATE_ATTEMPTS} attempts failed, and none of them made a group"
        return failed_result(item, last, note=note)

    async def _after_failure(
        self, item: PlanItem, desired: DesiredGroup, err: AsyncGroupsError, failed_at: float
    ) -> ItemResult | None:
        """How the item ends after its POST failed with `err`, or None when that POST
        provably made nothing and may be sent again (step 3)."""
        if not err.may_have_acted:
            self._state.forget_pending(item.key)
            return failed_result(item, err)
        undecided = self._failed(item.key, err) if may_still_land(err) else None
        try:
            found = await self._made_by_lost_create(desired.name, failed_at)
        except AsyncGroupsError as lookup:
            then = "next apply" if undecided is None else f"first apply after {undecided.shown}"
            note = (
                f"could not check whether the create went through ({lookup}); the "
                f"{then} checks again before creating anything"
            )
            return failed_result(item, err, note=note)
        if len(found) > 1:
            return failed_result(item, AmbiguousCreateError(item.key, desired.name, found))
        if found:
            self._state.record(item.key, found[0], desired.created_values(), "created")
            note = f"the reply to the create was lost ({err}); found the group it made"
            made = Made(found[0], desired.followup(), note, reread=True)
            return await self._finish(item, desired, made)
        if undecided is not None:
            # An empty listing proves nothing while the server may still be at it.
            return waiting_result(item, undecided.when, undecided.note())
        return None

    def _failed(self, key: str, err: AsyncGroupsError) -> Undecided:
        """Store that `key`'s POST failed now with `err`, and until when it may still land."""
        now = self._clock()
        moment = math.ceil(now + landing_window(self._client.timeout))
        self._state.mark_undecided(key, stored(moment), stored(now))
        return Undecided(moment, now, str(err))
