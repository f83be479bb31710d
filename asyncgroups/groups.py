"""`client.groups`: what each operation of the Groups API sends and what it expects back.

How a request travels (limiter, retries, timeouts) is the pipeline's business; this
module only builds paths and bodies from validated input and decodes the replies.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, TypeVar

from ._bulk import (
    BulkResult,
    Keys,
    Outcome,
    ProgressCallback,
    check_concurrency,
    collect,
    stream,
)
from ._convert import decode_created, decode_group, decode_summaries, encode_new_group, encode_patch
from ._paging import PageTracker, PagingError, page_path
from ._telemetry import (
    bulk_result,
    keys_given,
    prokey_given,
    tally_listed,
    tally_outcome,
    traced,
    traced_stream,
)
from .errors import NotFoundError, SubscriptionLockedError, UnexpectedResponseError, ValidationError
from .models import UNSET, Group, GroupPatch, GroupSummary, NewGroup, validate_prokey

if TYPE_CHECKING:
    from ._config import Options
    from ._http import Pipeline

__all__ = ["GroupsResource"]

T = TypeVar("T")


class GroupsResource:
    """The operations on groups. Reach it as `client.groups`.

    Each call is sent with `options`: the client's own, or a `with_options` view's.
    """

    __slots__ = ("_options", "_pipeline")

    def __init__(self, pipeline: Pipeline, options: Options) -> None:
        self._pipeline = pipeline
        self._options = options

    @traced("groups.get", given=prokey_given)
    async def get(self, prokey: str) -> Group:
        """Read one group. Raises `NotFoundError` when there is none with that key."""
        return await self._get(validate_prokey(prokey))

    async def _get(self, key: str) -> Group:
        return await self._pipeline.send(
            "GET",
            f"/group/{key}",
            decode=lambda payload: decode_group(payload, prokey=key),
            options=self._options,
        )

    @traced("groups.list", result=lambda listed: {"asyncgroups.groups.listed": len(listed)})
    async def list(self) -> builtins.list[GroupSummary]:
        """Every group of the account (`GET /group/all`, page after page), as summaries.

        Each group is listed once, in the order served. A page that fails is retried
        like any read; when it still fails, or the pages do not add up to a listing that
        can be trusted (a server that ignores `?page=`), this raises and returns nothing.
        A page past the end may answer `[]` or 404. Pages are read one after another:
        a group deleted meanwhile by someone else can shift another across a page
        boundary, unseen (sync guards against that; see its docs). `iter_list` streams
        the same listing.
        """
        return [summary async for summary in self._iter_list()]

    def iter_list(self) -> AsyncGenerator[GroupSummary, None]:
        """Yield every group of the account as each page arrives, each group once.

        For accounts too large to hold as a list: one page (800 groups) is in memory at
        a time, plus the keys seen so far. It stops with the same errors as `list`;
        what was yielded before an error is not the whole account.
        """
        return self._traced_stream("groups.iter_list", self._iter_list(), tally_listed)

    async def _iter_list(self) -> AsyncGenerator[GroupSummary, None]:
        pages = PageTracker()
        while (number := pages.next_page) is not None:
            path = page_path(number)
            try:
                page = await self._pipeline.send(
                    "GET", path, decode=decode_summaries, page=True, options=self._options
                )
            except NotFoundError:
                if number == 1:
                    raise
                page = []  # "No entry found" past the last page: the end, as `[]` is
            try:
                fresh = pages.take(number, page)
            except PagingError as err:
                raise UnexpectedResponseError(
                    str(err),
                    status=200,
                    method="GET",
                    url=self._pipeline.base_url + path,
                    path=path,
                ) from None
            for summary in fresh:
                yield summary

    @traced("groups.latest", result=lambda group: {"asyncgroups.prokey": group.prokey})
    async def latest(self) -> Group:
        """The most recently created group; its key is read from the reply."""
        return await self._pipeline.send(
            "GET", "/group/latest", decode=decode_group, options=self._options
        )

    @traced("groups.create", result=lambda prokey: {"asyncgroups.prokey": prokey})
    async def create(self, new: NewGroup) -> str:
        """Create a group and return its new prokey.

        A create is retried only where the server provably did not act (a 429, or no
        connection made), so a retry never makes a duplicate group.
        """
        if not isinstance(new, NewGroup):
            raise ValidationError(
                f"create() takes a NewGroup, not {type(new).__name__}", field="new"
            )
        return await self._pipeline.send(
            "POST",
            "/group",
            body=encode_new_group(new),
            decode=decode_created,
            options=self._options,
        )

    @traced("groups.update", given=prokey_given, result=lambda sent: {"asyncgroups.sent": sent})
    async def update(
        self, prokey: str, patch: GroupPatch, *, skip_unchanged: bool = False
    ) -> bool:
        """Apply `patch`; return True when a PATCH was sent.

        An empty patch sends nothing. With `skip_unchanged` the group is read first and
        only the differing fields are sent (every 5th update costs an event credit, so
        an update that changes nothing is worth avoiding). A patch that changes the
        subscription also reads first, and raises `SubscriptionLockedError` without
        sending anything when events are linked.
        """
        key = validate_prokey(prokey)
        if not isinstance(patch, GroupPatch):
            raise ValidationError(
                f"update() takes a GroupPatch, not {type(patch).__name__}", field="patch"
            )
        if patch.is_empty():
            return False
        if skip_unchanged or patch.changes_subscription():
            current = await self.get(key)
            patch = self._checked_against(current, patch, skip_unchanged=skip_unchanged)
            if patch.is_empty():
                return False
        await self._pipeline.send(
            "PATCH", f"/group/{key}", body=encode_patch(patch), options=self._options
        )
        return True

    @staticmethod
    def _checked_against(current: Group, patch: GroupPatch, *, skip_unchanged: bool) -> GroupPatch:
        """The patch to send given the group as it is now, or `SubscriptionLockedError`."""
        unchanged = patch.without_unchanged(current)
        if skip_unchanged:
            patch = unchanged
        if patch.changes_subscription() and current.has_events:
            if not unchanged.changes_subscription():
                # The same value again is no change; the server would still refuse it.
                return GroupPatch(**{**patch.changes(), "subscription": UNSET})
            raise SubscriptionLockedError(current.prokey, len(current.event_prokeys))
        return patch

    @traced("groups.delete", given=prokey_given)
    async def delete(self, prokey: str, *, missing_ok: bool = False) -> None:
        """Delete a group and every event linked to it.

        Raises `NotFoundError` when the group does not exist, unless `missing_ok`. A 404
        that answers the retry of an attempt whose reply was lost (the error says
        `may_have_acted`) is a success: that attempt deleted the group.
        """
        try:
            await self._delete(validate_prokey(prokey))
        except NotFoundError as err:
            if not (missing_ok or err.may_have_acted):
                raise

    async def _delete(self, key: str) -> None:
        await self._pipeline.send("DELETE", f"/group/{key}", options=self._options)

    # Bulk -----------------------------------------------------------------------------

    @traced("groups.get_many", given=keys_given, result=bulk_result)
    async def get_many(
        self,
        prokeys: Keys,
        *,
        concurrency: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> BulkResult[Group]:
        """Read many groups, at most `concurrency` at once (default: `max_connections`).

        Every distinct key ends in exactly one of `ok`, `missing` (404) or `failed`; a
        duplicate is read once, an invalid key fails without a request, and one key's
        failure never stops the batch.
        """
        limit = check_concurrency(concurrency, self._pipeline.max_connections)
        return await collect(prokeys, self._get, concurrency=limit, on_progress=on_progress)

    def iter_many(
        self, prokeys: Keys, *, concurrency: int | None = None
    ) -> AsyncGenerator[Outcome[Group], None]:
        """Yield an `Outcome` per input key (duplicates included) as each read completes.

        Keys are pulled only as workers free up, so memory stays O(concurrency) however
        long the input. Closing the generator cancels the reads still in flight: wrap it
        in `contextlib.aclosing` to do that the moment you leave the loop.
        """
        limit = check_concurrency(concurrency, self._pipeline.max_connections)
        return self._traced_stream(
            "groups.iter_many", stream(prokeys, self._get, concurrency=limit), tally_outcome
        )

    def iter_delete_many(
        self, prokeys: Keys, *, concurrency: int | None = None
    ) -> AsyncGenerator[Outcome[None], None]:
        """Delete groups, yielding an `Outcome` per input key as each delete completes.

        The streaming twin of `delete_many`, for jobs that record each outcome as it
        happens (a journal, say): memory stays O(concurrency), duplicates are deleted
        again (a 404 then: `outcome.missing`), and closing the generator cancels the
        deletes still in flight.
        """
        limit = check_concurrency(concurrency, self._pipeline.max_connections)
        return self._traced_stream(
            "groups.iter_delete_many",
            stream(prokeys, self._delete, concurrency=limit),
            tally_outcome,
        )

    def _traced_stream(
        self,
        name: str,
        items: AsyncGenerator[T, None],
        tally: Callable[[T, dict[str, int]], None],
    ) -> AsyncGenerator[T, None]:
        """`items` under a span named `name`, when this client records spans."""
        telemetry = self._pipeline.telemetry
        if telemetry is None:
            return items
        return traced_stream(telemetry, name, {}, items, tally)

    @traced("groups.delete_many", given=keys_given, result=bulk_result)
    async def delete_many(
        self,
        prokeys: Keys,
        *,
        concurrency: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> BulkResult[None]:
        """Delete many groups (and their events); a 404 counts as `missing`, not failed.

        A delete whose reply was lost is retried; the retry's 404 means the first one
        worked, and the key is reported as `missing`.
        """
        limit = check_concurrency(concurrency, self._pipeline.max_connections)
        return await collect(prokeys, self._delete, concurrency=limit, on_progress=on_progress)
