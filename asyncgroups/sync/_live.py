"""Reading the account for a sync, through the public client API only.

The client already retries what it safely can; a read that fails in a way worth one
more try (a broken reply, say, which the client does not retry) gets it here, because
a plan or a lost-create check that gives up on one unlucky read helps nobody.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Final

from ..errors import AsyncGroupsError, ServerError, TransportError, UnexpectedResponseError
from ..models import Group, GroupSummary
from ._plan import LiveView

if TYPE_CHECKING:
    from .._client import GroupsClient

__all__ = [
    "READ_PASSES",
    "FreshListing",
    "NewGroups",
    "list_groups",
    "may_have_acted",
    "read_live",
]

#: How many times a sync tries a read that fails in a way that may pass next time.
READ_PASSES: Final = 3


def may_have_acted(error: AsyncGroupsError) -> bool:
    """True when a failed write may still have happened on the server.

    A connection that broke or timed out after sending, a 5xx (possibly from a proxy in
    front of a server that did act) and an unreadable reply all leave it open; a 4xx
    (429 included) and input refused before sending mean nothing happened.
    """
    return isinstance(error, TransportError | ServerError | UnexpectedResponseError)


async def list_groups(client: GroupsClient) -> list[GroupSummary]:
    """`client.groups.list()`, tried again when it fails in a way that may pass."""
    for attempt in range(1, READ_PASSES + 1):
        try:
            return await client.groups.list()
        except AsyncGroupsError as err:
            if attempt == READ_PASSES or not may_have_acted(err):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


async def read_live(
    client: GroupsClient, prokeys: Collection[str], *, concurrency: int | None
) -> LiveView:
    """Read many groups (bulk, bounded concurrency); failed reads get more passes."""
    groups: dict[str, Group] = {}
    missing: set[str] = set()
    failed: dict[str, AsyncGroupsError] = {}
    todo: Iterable[str] = prokeys
    for _ in range(READ_PASSES):
        if not todo:
            break
        result = await client.groups.get_many(todo, concurrency=concurrency)
        groups.update(result.ok)
        missing.update(result.missing)
        for key in result.ok.keys() | set(result.missing):
            failed.pop(key, None)
        failed.update(result.failed)
        todo = [key for key, err in result.failed.items() if may_have_acted(err)]
    return LiveView(groups=groups, missing=frozenset(missing), failed=failed)


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


class FreshListing:
    """Account listings shared by callers that each need one taken after some moment.

    After a create's reply is lost, the check for what it made needs a listing sent
    after the failure. Several such checks at once share one request instead of each
    listing the whole account.
    """

    __slots__ = ("_client", "_lock", "_result", "_started")

    def __init__(self, client: GroupsClient) -> None:
        self._client = client
        self._lock = asyncio.Lock()
        self._started = -math.inf
        self._result: list[GroupSummary] | None = None

    async def after(self, moment: float) -> list[GroupSummary]:
        """A listing whose request started at `moment` (event-loop time) or later."""
        async with self._lock:
            if self._result is not None and self._started >= moment:
                return self._result
            started = asyncio.get_running_loop().time()
            result = await list_groups(self._client)
            self._started, self._result = started, result
            return result
