"""Deciding a plan: what to do with every desired key and every key the state owns,
from the desired records, the state and what was read of the account (`LiveView`).
Pure: `build_plan` does no I/O, so every decision is tested without a server.

Also what each refresh mode looks at in the account (`looked_for`). The plan itself,
and the rules it carries, are in `_plan.py`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from .. import UNSET, AsyncGroupsError, Group, GroupPatch, GroupStatus, ValidationError
from .._timestamp import iso_utc
from ._desired import FIELDS, DesiredGroup, plain
from ._plan import Action, Change, Plan, PlanItem, Refresh, check_refresh
from ._rows import PendingCreate, StateRow, StateSnapshot

__all__ = ["LiveView", "build_plan", "looked_for"]


def looked_for(
    rows: Mapping[str, StateRow], wanted: Collection[str], *, refresh: Refresh, prune: bool
) -> list[StateRow]:
    """The owned groups a plan looks for in the account, in state order.

    A full refresh reads the ones it compares with a desired record, and every one
    when it may prune (a group already gone is then not deleted, only forgotten); the
    ones it only keeps are not worth a request. One listing shows every group, so it
    checks them all; refresh none checks none. What the plan finds gone among these
    is drift, and the vanished-groups guard (`all_vanished`) counts only these, and of
    them only the ones whose read got an answer.
    """
    if refresh is Refresh.NONE:
        return []
    if refresh is Refresh.LISTING or prune:
        return list(rows.values())
    return [row for key, row in rows.items() if key in wanted]



@attrs.frozen
class LiveView:
    """What the plan's reads of the account found, by prokey."""

    groups: Mapping[str, Group] = attrs.field(factory=dict)
    #: Prokeys the account answered 404 for (with refresh listing: the owned groups
    #: its listing lacked).
    missing: frozenset[str] = frozenset()
    #: Prokeys whose read failed after retries.
    failed: Mapping[str, AsyncGroupsError] = attrs.field(factory=dict)
    #: With refresh listing: the name the listing showed for each owned group it
    #: showed (None when it lists ids only).
    listed: Mapping[str, str | None] = attrs.field(factory=dict)



def build_plan(
    desired: Sequence[DesiredGroup],
    snapshot: StateSnapshot,
    *,
    live: LiveView | None = None,
    refresh: Refresh | bool = Refresh.FULL,
    adoptable: Mapping[str, Sequence[str]] | None = None,
    prune: bool = False,
    updates_before: int = 0,
) -> Plan:
    """Decide what to do with every desired key and every key the state owns.

    `desired` must hold unique keys (see `check_unique`). `live` holds what was read
    of the account: with refresh full, the owned groups `looked_for` (each desired one
    is compared with the group as it is); with refresh listing, the names its listing
    showed and the owned groups it lacked (compared with the fields last applied, the
    listed name instead of the stored one); and the adoption candidates. With refresh
    none, owned groups are compared with the fields last applied, unread. `adoptable`
    maps a name to the prokeys of the groups with exactly that name that no row owns;
    None turns adoption off.
    """
    if live is None:
        live = LiveView()
    refresh = check_refresh(refresh)
    wanted = {d.key for d in desired}
    items = _desired_items(desired, snapshot, live, refresh, adoptable)
    items += _undesired(snapshot, wanted, live, prune=prune, refresh=refresh)
    checked = looked_for(snapshot.rows, wanted, refresh=refresh, prune=prune)
    return Plan(
        items=tuple(items),
        state_id=snapshot.state_id,
        state_generation=snapshot.generation,
        updates_before=updates_before,
        prune=prune,
        refresh=refresh,
        adopt_by_name=adoptable is not None,
        desired_count=len(desired),
        owned_count=len(snapshot.rows),
        checked_count=sum(1 for r in checked if r.prokey not in live.failed),
        vanished_count=sum(1 for r in checked if r.prokey in live.missing),
    )


def _desired_items(
    desired: Sequence[DesiredGroup],
    snapshot: StateSnapshot,
    live: LiveView,
    refresh: Refresh,
    adoptable: Mapping[str, Sequence[str]] | None,
) -> list[PlanItem]:
    """One item per desired key: compared with its owned group, a create resumed, a
    plain create, or (with `adoptable`) an adoption."""
    rows, pending = snapshot.rows, snapshot.pending
    seekers = Counter(d.name for d in desired if d.key not in rows and d.key not in pending)
    pending_names = Counter(p.name for p in pending.values())
    items: list[PlanItem] = []
    for d in desired:
        row = rows.get(d.key)
        if row is not None:
            items.append(_owned(d, row, live, refresh))
        elif d.key in pending:
            items.append(_resume(d, pending[d.key]))
        elif adoptable is None:
            items.append(PlanItem(d.key, Action.CREATE, desired=d))
        else:
            items.append(
                _adoption(d, adoptable.get(d.name, ()), live, seekers[d.name], pending_names)
            )
    return items


def _undesired(
    snapshot: StateSnapshot, wanted: set[str], live: LiveView, *, prune: bool, refresh: Refresh
) -> list[PlanItem]:
    """Keys the state owns (or was creating) that are no longer desired: keep or delete."""
    items: list[PlanItem] = []
    rows = snapshot.rows
    for key, row in rows.items():
        if key in wanted:
            continue
        if not prune:
            reason = "not in the desired state; --prune would delete it"
            items.append(PlanItem(key, Action.KEEP, prokey=row.prokey, reason=reason))
        elif refresh is not Refresh.NONE and row.prokey in live.missing:
            reason = "already gone from the account; only the state row is dropped"
            items.append(PlanItem(key, Action.DELETE, prokey=row.prokey, reason=reason))
        else:
            items.append(PlanItem(key, Action.DELETE, prokey=row.prokey))
    for key in snapshot.pending:
        if key not in wanted and key not in rows:
            reason = (
                "an interrupted create of a key no longer desired; apply settles it, and "
                "a later --prune deletes what it made"
            )
            items.append(PlanItem(key, Action.KEEP, reason=reason))
    return items


def _resume(d: DesiredGroup, pending: PendingCreate) -> PlanItem:
    """A create an earlier apply may have made, or may still be making (`_creates.py`)."""
    reason = (
        "an interrupted apply may have created this group; apply looks for what it "
        "made before creating anything"
    )
    if pending.decide_after is not None:
        after = iso_utc(datetime.fromisoformat(pending.decide_after))
        reason = (
            "an earlier create of this group failed without an answer or was cut off "
            f"and may still land; apply looks for it, and creates nothing before {after}"
        )
    return PlanItem(d.key, Action.CREATE, desired=d, resume=True, reason=reason)


def _owned(d: DesiredGroup, row: StateRow, live: LiveView, refresh: Refresh) -> PlanItem:
    if refresh is Refresh.NONE:
        return _compare(d, row.prokey, row.fields, None, row, Action.UPDATE)
    if row.prokey in live.missing:
        seen = (
            "its read answered 404"
            if refresh is Refresh.FULL
            else "it is missing from the account's listing"
        )
        return PlanItem(
            d.key,
            Action.CREATE,
            prokey=row.prokey,
            desired=d,
            drift=True,
            reason=f"group {row.prokey} is gone from the account ({seen}); apply creates "
            "it again unless the account's listings still show it",
        )
    if refresh is Refresh.LISTING:
        return _compare(d, row.prokey, _listed_fields(row, live), None, row, Action.UPDATE)
    group = live.groups.get(row.prokey)
    if group is not None:
        return _compare(d, row.prokey, _live_fields(group), group, row, Action.UPDATE)
    error = live.failed.get(row.prokey, "it was not read")
    return PlanItem(
        d.key,
        Action.BLOCKED,
        prokey=row.prokey,
        desired=d,
        intended=Action.UPDATE,
        reason=f"could not read group {row.prokey}: {error}",
    )


def _listed_fields(row: StateRow, live: LiveView) -> Mapping[str, Any]:
    """The fields last applied to `row`'s group, with the name its listing showed."""
    name = live.listed.get(row.prokey)
    return row.fields if name is None else {**row.fields, "name": name}


def _adoption(
    d: DesiredGroup,
    candidates: Sequence[str],
    live: LiveView,
    seekers: int,
    pending_names: Counter[str],
) -> PlanItem:
    def blocked(reason: str) -> PlanItem:
        return PlanItem(d.key, Action.BLOCKED, desired=d, intended=Action.ADOPT, reason=reason)

    if not candidates:
        return PlanItem(d.key, Action.CREATE, desired=d)
    if pending_names[d.name]:
        return blocked(
            f"an interrupted create of another key used the name {d.name!r}; run an apply "
            "without adoption first, so that its group is settled before any is adopted"
        )
    if seekers > 1:
        return blocked(
            f"{seekers} desired keys share the name {d.name!r}; adoption by name cannot "
            "tell which existing group belongs to which key"
        )
    if len(candidates) > 1:
        return blocked(
            f"{len(candidates)} groups in the account are named {d.name!r} "
            f"({', '.join(candidates)}); adoption never guesses: rename or delete all but one"
        )
    (prokey,) = candidates
    group = live.groups.get(prokey)
    if group is None:
        if prokey in live.missing:  # deleted between the listing and the read
            return PlanItem(d.key, Action.CREATE, desired=d)
        error = live.failed.get(prokey, "it was not read")
        return PlanItem(
            d.key,
            Action.BLOCKED,
            prokey=prokey,
            desired=d,
            intended=Action.ADOPT,
            reason=f"could not read group {prokey} to adopt it: {error}",
        )
    return _compare(d, prokey, _live_fields(group), group, None, Action.ADOPT)


def _live_fields(group: Group) -> dict[str, Any]:
    return {f: plain(getattr(group, f)) for f in FIELDS}


def _compare(
    d: DesiredGroup,
    prokey: str,
    current: Mapping[str, Any],
    group: Group | None,
    row: StateRow | None,
    action: Action,
) -> PlanItem:
    """An update (or adoption) of the differing fields, unchanged, or blocked."""
    changes = tuple(
        Change(f, current.get(f, UNSET), new)
        for f, new in d.values().items()
        if f not in current or current[f] != new
    )

    def blocked(reason: str) -> PlanItem:
        return PlanItem(
            d.key,
            Action.BLOCKED,
            prokey=prokey,
            desired=d,
            changes=changes,
            intended=action,
            reason=reason,
        )

    fields = {c.field: c for c in changes}
    if group is not None:
        sub = fields.get("subscription")
        if sub is not None and group.has_events:
            return blocked(
                f"the subscription cannot change from {sub.old!r} to {sub.new!r} while "
                f"{len(group.event_prokeys)} event(s) are linked to the group (the API "
                "refuses it); unlink the events first, or keep the subscription"
            )
        status = fields.get("status")
        applied = row.fields.get("status") if row is not None else None
        if (
            status is not None
            and status.new == GroupStatus.PUBLISHED.value
            and status.old == GroupStatus.DRAFT.value
            and applied != GroupStatus.DRAFT.value
        ):
            return blocked(
                "the group was set to draft outside this sync (in the web application?), "
                "and the API cannot publish a group drafted there; publish it in the web "
                "application, or desire status draft"
            )
    try:
        GroupPatch(**{c.field: c.new for c in changes})
    except ValidationError as err:
        return blocked(f"the change cannot be sent as a patch: {err}")
    if action is Action.UPDATE and not changes:
        return PlanItem(d.key, Action.UNCHANGED, prokey=prokey, desired=d)
    return PlanItem(d.key, action, prokey=prokey, desired=d, changes=changes)
