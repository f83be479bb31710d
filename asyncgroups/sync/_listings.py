"""Account listings for the lost-create lookups (`_creates.py`): the gate that keeps this
apply's writes out of a listing, listings shared by the lookups that each need one taken
after some moment, and the index of the groups a listing shows that are new since a
baseline, by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING

from .. import GroupSummary
from ._landing import Clock
from ._read import list_groups, read_live

if TYPE_CHECKING:
    from .. import GroupsClient

__all__ = ["FreshListing", "Listing", "NewGroups", "WriteGate"]


class NewGroups:
    """The groups of a listing that are new since a baseline and unowned, by exact name.

    That is what a create whose reply was lost would have made. Groups the listing gives
    without a name (the API may list ids only) are read to learn theirs, once per apply:
    `names` is a cache shared by every index built in that apply.
    """

    __slots__ = ("_by_name",)

    def __init__(self, by_name: Mapping[str, list[str]]) -> None:
        self._by_name = by_name

    @classmethod
    async def build(
        cls,
        client: GroupsClient,
        listing: Iterable[GroupSummary],
        *,
        baseline: Collection[str],
        owned: Collection[str],
        names: dict[str, str],
        concurrency: int | None,
    ) -> NewGroups:
        """Index `listing`; raises the error of a name read that still fails.

        Guessing a name here could make a duplicate or take another key's group, so a
        read that fails ends the lookup instead.
        """
        fresh = [s for s in listing if s.prokey not in baseline and s.prokey not in owned]
        unnamed = [s.prokey for s in fresh if s.name is None and s.prokey not in names]
        if unnamed:
            live = await read_live(client, unnamed, concurrency=concurrency)
            if live.failed:
                raise next(iter(live.failed.values()))
            names.update((key, group.name) for key, group in live.groups.items())
        by_name: dict[str, list[str]] = {}
        for summary in fresh:
            name = summary.name if summary.name is not None else names.get(summary.prokey)
            if name is not None:  # None: deleted between the listing and the read
                by_name.setdefault(name, []).append(summary.prokey)
        return cls(by_name)

    def named(self, name: str, owned: Collection[str] = ()) -> list[str]:
        """Prokeys of the new groups named exactly `name`, leaving out `owned` ones."""
        return [key for key in self._by_name.get(name, ()) if key not in owned]


class Listing:
    """One complete listing of the account, numbered in the order they were taken."""

    __slots__ = ("number", "started", "summaries", "wall")

    def __init__(
        self, summaries: list[GroupSummary], *, number: int, started: float, wall: float
    ) -> None:
        self.summaries = summaries
        #: 1 for the first listing an apply took, then 2, …
        self.number = number
        #: When its first page was asked for (event-loop time, to order it in the apply).
        self.started = started
        #: The same moment by the apply's clock (epoch seconds, comparable across runs).
        self.wall = wall


class WriteGate:
    """Holds this apply's updates and deletes while the account is being listed.

    A listing is read page after page, and the service promises no order: a delete
    (or an update, where the order follows the last change) while the pages are read
    can move a group across a page boundary into a page already read, and the listing
    then misses it. A create only adds: it can make a group appear twice (given once),
    never hide one, so creates are not held. Listings are rare (after a lost create
    reply), so holding writes for one costs little; a listing waits for the writes in
    flight to finish, and new writes wait for it.
    """

    __slots__ = ("_changed", "_listings", "_writes")

    def __init__(self) -> None:
        self._changed = asyncio.Condition()
        self._writes = 0
        self._listings = 0

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Hold one update or delete; waits while a listing is under way."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._listings == 0)
            self._writes += 1
        try:
            yield
        finally:
            async with self._changed:
                self._writes -= 1
                self._changed.notify_all()

    @contextlib.asynccontextmanager
    async def listing(self) -> AsyncIterator[None]:
        """Hold a listing: no new writes start, and those in flight are waited for."""
        async with self._changed:
            self._listings += 1
            try:
                await self._changed.wait_for(lambda: self._writes == 0)
            except BaseException:
                self._listings -= 1
                self._changed.notify_all()
                raise
        try:
            yield
        finally:
            async with self._changed:
                self._listings -= 1
                self._changed.notify_all()


class FreshListing:
    """Account listings shared by callers that each need one taken after some moment.

    After a create's reply is lost, the check for what it made needs a listing sent
    after the failure. Several such checks at once share one listing instead of each
    reading every page of the account. Each listing is taken through `gate`, so this
    apply's own writes cannot shift groups between its pages.
    """

    __slots__ = ("_client", "_clock", "_gate", "_last", "_lock")

    def __init__(self, client: GroupsClient, gate: WriteGate, *, clock: Clock = time.time) -> None:
        self._client = client
        self._gate = gate
        self._clock = clock
        self._lock = asyncio.Lock()
        self._last: Listing | None = None

    async def after(self, moment: float) -> Listing:
        """A listing whose first request started at `moment` (event-loop time) or later."""
        return await self._take(lambda last: last.started >= moment)

    async def newer_than(self, listing: Listing) -> Listing:
        """A listing taken after `listing` was (to check again what it did not show)."""
        return await self._take(lambda last: last.number > listing.number)

    async def _take(self, fresh_enough: Callable[[Listing], bool]) -> Listing:
        async with self._lock:
            last = self._last
            if last is not None and fresh_enough(last):
                return last
            async with self._gate.listing():
                started, wall = asyncio.get_running_loop().time(), self._clock()
                summaries = await list_groups(self._client)
            number = last.number + 1 if last is not None else 1
            self._last = Listing(summaries, number=number, started=started, wall=wall)
            return self._last
