"""`plan()`, and the reads of the account a sync makes (through the public client API).

`plan()` reads what it needs from the state and the account, then hands everything to
`_decide.build_plan`, which decides without I/O. Changes nothing, not even the state.

The client already retries what it safely can; a read that fails in a way worth one
more try (a broken reply, say, which the client does not retry) gets it here, because
a plan or a lost-create check that gives up on one unlucky read helps nobody.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import TYPE_CHECKING, Final

import attrs

from .. import (
    AsyncGroupsError,
    BulkProgress,
    Group,
    GroupSummary,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
    check_concurrency,
)
from .._telemetry import Attributes, traced
from ._decide import LiveView, build_plan, looked_for
from ._desired import DesiredGroup, DesiredInput, collect_desired
from ._errors import SyncError
from ._plan import Action, Plan, Refresh, check_refresh
from ._rows import StateRow, StateSnapshot
from ._state import SyncState

if TYPE_CHECKING:
    from .. import GroupsClient

__all__ = [
    "READ_PASSES",
    "ReadProgressCallback",
    "list_groups",
    "may_pass",
    "plan",
    "read_live",
]

#: How many times a sync tries a read that fails in a way that may pass next time.
READ_PASSES: Final = 3


def may_pass(error: AsyncGroupsError) -> bool:
    """True when a read that failed so may pass when tried again: the connection, a 5xx
    (a proxy in front of the service, often) or an unreadable reply; never a 4xx."""
    return isinstance(error, TransportError | ServerError | UnexpectedResponseError)


#: Called with where the plan's reads stand (`plan(..., on_progress=...)`).
ReadProgressCallback = Callable[[BulkProgress], Awaitable[None] | None]


def _planned(made: Plan) -> Attributes:
    """What a plan's span says: its items, and how many of each action."""
    return {
        "asyncgroups.sync.items": len(made.items),
        **{f"asyncgroups.sync.{action}": len(made.of(action)) for action in Action},
    }


@traced("sync.plan", result=_planned)
async def plan(
    client: GroupsClient,
    desired: DesiredInput,
    state: SyncState,
    *,
    prune: bool = False,
    refresh: Refresh | str | bool = Refresh.FULL,
    adopt_by_name: bool = False,
    concurrency: int | None = None,
    on_progress: ReadProgressCallback | None = None,
) -> Plan:
    """Work out what `apply` would do to make the account match `desired`. Changes nothing.

    `desired` is any iterable or async iterable of `DesiredGroup`; it is read to the end
    and checked first (duplicate keys raise `DesiredStateError` before any request).
    `refresh` says how much of the account is read to see drift (changes made by hand;
    `Refresh`): "full" (the default, or True) reads every owned group the plan compares
    with a desired record (bulk, at most `concurrency` at once), and with `prune` every
    owned group; "listing" reads only the pages of the account's listing (a group it
    lacks, or a name that differs, is drift; the other fields are trusted from the
    state); "none" (or False) reads nothing. `prune` plans the deletion of owned groups
    that are no longer desired; nothing the state does not own is ever deleted.
    `adopt_by_name` lists the account and plans to take over an unowned group whose
    name is exactly a new key's name; when several could match, the key is blocked,
    never guessed. `on_progress` (plain or async) is called after each group read, as
    by `get_many`, counting all the plan's reads as one (a read tried again is not
    counted again).
    """
    if not isinstance(state, SyncState):
        raise ValidationError(
            f"state must be a SyncState, not {type(state).__name__}", field="state"
        )
    mode = check_refresh(refresh)
    limit = check_concurrency(concurrency, client.max_connections)
    state.check_account(client.base_url)
    records = await collect_desired(desired)
    snapshot = state.snapshot()
    reads = _Reads(client, limit, on_progress)
    live, adoptable = await _read_account(
        reads, records, snapshot, mode, prune=prune, adopt_by_name=adopt_by_name
    )
    return build_plan(
        records,
        snapshot,
        live=live,
        refresh=mode,
        adoptable=adoptable,
        prune=prune,
        updates_before=client.stats.updates_sent,
    )


async def _read_account(
    reads: _Reads,
    records: list[DesiredGroup],
    snapshot: StateSnapshot,
    mode: Refresh,
    *,
    prune: bool,
    adopt_by_name: bool,
) -> tuple[LiveView, dict[str, list[str]] | None]:
    """What the plan reads of the account: the owned groups `looked_for` (as `mode`
    reads them), and with `adopt_by_name` the adoption candidates (None without)."""
    checked = looked_for(snapshot.rows, {d.key for d in records}, refresh=mode, prune=prune)
    seeking = _seeking(records, snapshot) if adopt_by_name else set()
    # One listing serves both the listing refresh and adoption.
    listing = await list_groups(reads.client) if mode is Refresh.LISTING or seeking else []
    adoptable: dict[str, list[str]] | None = None
    known: dict[str, Group] = {}
    to_read = [row.prokey for row in checked] if mode is Refresh.FULL else []
    if adopt_by_name:
        owned = {row.prokey for row in snapshot.rows.values()}
        adoptable, known = await _adoption_candidates(reads, listing, seeking, owned)
        to_read += [
            key for keys in adoptable.values() if len(keys) == 1 for key in keys if key not in known
        ]
    live = await reads.live(to_read)
    if mode is Refresh.LISTING:
        live = _with_listing(live, listing, checked)
    return attrs.evolve(live, groups={**known, **live.groups}), adoptable


def _seeking(records: list[DesiredGroup], snapshot: StateSnapshot) -> set[str]:
    """The names of the desired keys adoption may find a group for: the new ones."""
    return {
        d.name for d in records if d.key not in snapshot.rows and d.key not in snapshot.pending
    }


def _with_listing(live: LiveView, listing: list[GroupSummary], checked: list[StateRow]) -> LiveView:
    """`live` with what `listing` shows of the `checked` owned groups: the name of each
    one it shows, and those it lacks as missing."""
    names = {summary.prokey: summary.name for summary in listing}
    listed = {row.prokey: names[row.prokey] for row in checked if row.prokey in names}
    lacking = {row.prokey for row in checked if row.prokey not in names}
    return attrs.evolve(live, missing=live.missing | lacking, listed=listed)


async def _adoption_candidates(
    reads: _Reads, listing: list[GroupSummary], seeking: set[str], owned: set[str]
) -> tuple[dict[str, list[str]], dict[str, Group]]:
    """The unowned groups of `listing` named like a new key (name -> prokeys), and the
    groups read on the way to learn names the listing did not give."""
    adoptable: dict[str, list[str]] = {}
    known: dict[str, Group] = {}
    if not seeking:
        return adoptable, known
    unowned = [s for s in listing if s.prokey not in owned]
    names = {s.prokey: s.name for s in unowned if s.name is not None}
    unnamed = [s.prokey for s in unowned if s.name is None]
    if unnamed:
        # The API may list ids only; the names are then read group by group.
        found = await reads.live(unnamed)
        if found.failed:
            prokey, error = next(iter(found.failed.items()))
            raise SyncError(
                f"could not read {len(found.failed)} group(s) of the account to learn "
                f"their names for adoption (group {prokey}: {error}); adoption by "
                "name must see every name, so nothing was planned"
            ) from error
        known.update(found.groups)
        names.update((key, group.name) for key, group in found.groups.items())
    for prokey, name in names.items():
        if name in seeking:
            adoptable.setdefault(name, []).append(prokey)
    return adoptable, known


class _Reads:
    """The plan's bulk reads, reported to `on_progress` as one: each read adds its keys
    to the total, and its progress to what the reads before it did."""

    __slots__ = ("_callback", "_concurrency", "_so_far", "client")

    def __init__(
        self, client: GroupsClient, concurrency: int, callback: ReadProgressCallback | None
    ) -> None:
        self.client = client
        self._concurrency = concurrency
        self._callback = callback
        self._so_far = BulkProgress(done=0, total=0, failed=0, missing=0)

    async def live(self, prokeys: Collection[str]) -> LiveView:
        """Read `prokeys` (`read_live`), counting on from the reads before."""
        if not prokeys:
            return LiveView()
        before = self._so_far
        total = (before.total or 0) + len(set(prokeys))
        self._so_far = attrs.evolve(before, total=total)

        def report(progress: BulkProgress) -> Awaitable[None] | None:
            assert self._callback is not None
            self._so_far = BulkProgress(
                done=before.done + progress.done,
                total=total,
                failed=before.failed + progress.failed,
                missing=before.missing + progress.missing,
            )
            return self._callback(self._so_far)

        callback = report if self._callback is not None else None
        return await read_live(
            self.client, prokeys, concurrency=self._concurrency, on_progress=callback
        )


async def list_groups(client: GroupsClient) -> list[GroupSummary]:
    """`client.groups.list()` (every page), tried again when it fails in a way that may pass."""
    for attempt in range(1, READ_PASSES + 1):
        try:
            return await client.groups.list()
        except AsyncGroupsError as err:
            if attempt == READ_PASSES or not may_pass(err):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


async def read_live(
    client: GroupsClient,
    prokeys: Collection[str],
    *,
    concurrency: int | None,
    on_progress: ReadProgressCallback | None = None,
) -> LiveView:
    """Read many groups (bulk, bounded concurrency); failed reads get more passes.

    `on_progress` follows the first pass (`get_many`'s); a key tried again in a later
    pass is not counted again.
    """
    groups: dict[str, Group] = {}
    missing: set[str] = set()
    failed: dict[str, AsyncGroupsError] = {}
    todo: Iterable[str] = prokeys
    callback = on_progress
    for _ in range(READ_PASSES):
        if not todo:
            break
        result = await client.groups.get_many(todo, concurrency=concurrency, on_progress=callback)
        callback = None
        groups.update(result.ok)
        missing.update(result.missing)
        for key in result.ok.keys() | set(result.missing):
            failed.pop(key, None)
        failed.update(result.failed)
        todo = [key for key, err in result.failed.items() if may_pass(err)]
    return LiveView(groups=groups, missing=frozenset(missing), failed=failed)
