"""`plan()`, and the reads of the account a sync makes (through the public client API).

`plan()` reads what it needs from the state and the account, then hands everything to
`_decide.build_plan`, which decides without I/O. Changes nothing, not even the state.

The client already retries what it safely can; a read that fails in a way worth one
more try (a broken reply, say, which the client does not retry) gets it here, because
a plan or a lost-create check that gives up on one unlucky read helps nobody.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Final

from .. import (
    AsyncGroupsError,
    Group,
    GroupSummary,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
    check_concurrency,
)
from ._decide import LiveView, Plan, build_plan
from ._desired import DesiredGroup, DesiredInput, collect_desired
from ._errors import SyncError
from ._state import StateSnapshot, SyncState

if TYPE_CHECKING:
    from .. import GroupsClient

__all__ = ["READ_PASSES", "list_groups", "may_pass", "plan", "read_live"]

#: How many times a sync tries a read that fails in a way that may pass next time.
READ_PASSES: Final = 3


def may_pass(error: AsyncGroupsError) -> bool:
    """True when a read that failed so may pass when tried again: the connection, a 5xx
    (a proxy in front of the service, often) or an unreadable reply; never a 4xx."""
    return isinstance(error, TransportError | ServerError | UnexpectedResponseError)


async def plan(
    client: GroupsClient,
    desired: DesiredInput,
    state: SyncState,
    *,
    prune: bool = False,
    refresh: bool = True,
    adopt_by_name: bool = False,
    concurrency: int | None = None,
) -> Plan:
    """Work out what `apply` would do to make the account match `desired`. Changes nothing.

    `desired` is any iterable or async iterable of `DesiredGroup`; it is read to the end
    and checked first (duplicate keys raise `DesiredStateError` before any request).
    With `refresh` (the default) every group the state owns is read (bulk, at most
    `concurrency` at once), so changes made by hand and groups deleted by hand (drift)
    are seen. `prune` plans the deletion of owned groups that are no longer desired;
    nothing the state does not own is ever deleted. `adopt_by_name` lists the account
    and plans to take over an unowned group whose name is exactly a new key's name;
    when several could match, the key is blocked, never guessed.
    """
    if not isinstance(state, SyncState):
        raise ValidationError(
            f"state must be a SyncState, not {type(state).__name__}", field="state"
        )
    limit = check_concurrency(concurrency, client.max_connections)
    state.check_account(client.base_url)
    records = await collect_desired(desired)
    snapshot = state.snapshot()
    owned = {row.prokey for row in snapshot.rows.values()}
    to_read = list(owned) if refresh else []

    adoptable: dict[str, list[str]] | None = None
    known: dict[str, Group] = {}
    if adopt_by_name:
        adoptable, known = await _adoption_candidates(client, records, snapshot, owned, limit)
        to_read += [
            key for keys in adoptable.values() if len(keys) == 1 for key in keys if key not in known
        ]

    live = await read_live(client, to_read, concurrency=limit) if to_read else LiveView()
    if known:
        live = LiveView(groups={**known, **live.groups}, missing=live.missing, failed=live.failed)
    return build_plan(
        records,
        snapshot,
        live=live,
        refresh=refresh,
        adoptable=adoptable,
        prune=prune,
        updates_before=client.stats.updates_sent,
    )


async def _adoption_candidates(
    client: GroupsClient,
    records: list[DesiredGroup],
    snapshot: StateSnapshot,
    owned: set[str],
    limit: int,
) -> tuple[dict[str, list[str]], dict[str, Group]]:
    """The unowned groups named like a new key (name -> prokeys), and the groups read
    on the way to learn names the listing did not give."""
    adoptable: dict[str, list[str]] = {}
    known: dict[str, Group] = {}
    seeking = {
        d.name for d in records if d.key not in snapshot.rows and d.key not in snapshot.pending
    }
    if not seeking:
        return adoptable, known
    listing = [s for s in await list_groups(client) if s.prokey not in owned]
    names = {s.prokey: s.name for s in listing if s.name is not None}
    unnamed = [s.prokey for s in listing if s.name is None]
    if unnamed:
        # The API may list ids only; the names are then read group by group.
        found = await read_live(client, unnamed, concurrency=limit)
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
        todo = [key for key, err in result.failed.items() if may_pass(err)]
    return LiveView(groups=groups, missing=frozenset(missing), failed=failed)
