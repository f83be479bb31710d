"""`plan()`: read what is needed from the state and the account, then decide (purely)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import Group, ValidationError, check_concurrency
from ._desired import DesiredInput, collect_desired
from ._errors import SyncError
from ._live import list_groups, read_live
from ._plan import LiveView, Plan, build_plan
from ._state import SyncState

if TYPE_CHECKING:
    from .. import GroupsClient

__all__ = ["plan"]


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
    records = await collect_desired(desired)
    snapshot = state.snapshot()
    owned = {row.prokey for row in snapshot.rows.values()}
    to_read = list(owned) if refresh else []

    adoptable: dict[str, list[str]] | None = None
    known: dict[str, Group] = {}
    if adopt_by_name:
        adoptable = {}
        seeking = {
            d.name for d in records if d.key not in snapshot.rows and d.key not in snapshot.pending
        }
        if seeking:
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
            to_read += [
                key
                for keys in adoptable.values()
                if len(keys) == 1
                for key in keys
                if key not in known
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
