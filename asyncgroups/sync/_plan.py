"""Plans: what an apply would do with each key, and the rules a plan carries. Pure.

A `Plan` holds one `PlanItem` (an `Action`, and why) per key; `_decide.build_plan` makes
it. Also the rules plans and reports share: which actions write (`WRITE_ACTIONS`) and
what updates cost (`estimated_credits`, by the core's own credit rule); the two guards
an apply checks before it sends anything (`delete_allowance`, `all_vanished`); and the
refresh modes a plan reads the account in (`Refresh`).
"""

from __future__ import annotations

import enum
from typing import Any, Final

import attrs

from .. import ClientStats, GroupPatch, ValidationError
from ._desired import DesiredGroup
from ._errors import MassDeleteError, SyncError, VanishedGroupsError

__all__ = [
    "DELETES_ALWAYS_ALLOWED",
    "DELETE_SHARE_PERCENT",
    "VANISHED_AT_LEAST",
    "WRITE_ACTIONS",
    "Action",
    "Change",
    "Plan",
    "PlanItem",
    "Refresh",
    "all_vanished",
    "check_refresh",
    "delete_allowance",
    "estimated_credits",
]


class Action(enum.StrEnum):
    """What an apply does with one key."""

    #: Create the group (again, after drift, when `PlanItem.drift`).
    CREATE = "create"
    #: Take over an existing group found by its exact name, then patch what differs.
    ADOPT = "adopt"
    #: Send one PATCH with the fields that differ.
    UPDATE = "update"
    #: Delete the group (only with `prune`, only of a group the state owns).
    DELETE = "delete"
    #: Nothing to do: the group already matches.
    UNCHANGED = "unchanged"
    #: Something stops the change (`PlanItem.reason` says what); nothing is sent.
    BLOCKED = "blocked"
    #: Owned by the state but no longer desired; left alone because `prune` is off.
    KEEP = "keep"


class Refresh(enum.StrEnum):
    """How much of the account a plan reads to see drift (changes made outside the sync).

    Each mode trusts the state file for what it does not read: the sync page's "Refresh
    modes" says what each can miss.
    """

    #: Read every owned group the plan compares (and, with prune, every owned group):
    #: drift in any field is seen. One request per group.
    FULL = "full"
    #: Read only the pages of the account's listing: a group it lacks is drift (made
    #: again under the lost-create rules), a name it shows that differs is drift; the
    #: other fields are those last applied. One request per 800 groups.
    LISTING = "listing"
    #: Read nothing: compare with the fields last applied.
    NONE = "none"


def check_refresh(value: object) -> Refresh:
    """`value` as a `Refresh`: a mode or its name; True is `FULL` and False `NONE`
    (the flag it once was). Anything else is a `ValidationError`."""
    if isinstance(value, bool):
        return Refresh.FULL if value else Refresh.NONE
    if isinstance(value, str) and value in Refresh.__members__.values():
        return Refresh(value)
    raise ValidationError(
        f"refresh must be 'full', 'listing' or 'none' (or True/False), not {value!r}",
        field="refresh",
    )



#: The actions that send a write: an apply's work, and what `Plan.has_changes` looks for.
WRITE_ACTIONS: Final = frozenset({Action.CREATE, Action.ADOPT, Action.UPDATE, Action.DELETE})


def estimated_credits(updates_before: int, updates: int) -> int:
    """The event credits `updates` more updates cost a client that has sent
    `updates_before`: the core's rule (`ClientStats.estimated_credits`), not a copy."""

    def spent(sent: int) -> int:
        return ClientStats(updates_sent=sent).estimated_credits

    return spent(updates_before + updates) - spent(updates_before)


#: Deletes an apply allows by default whenever the desired set is not empty ...
DELETES_ALWAYS_ALLOWED: Final = 10
#: ... or this share (in percent) of the owned groups, when that is more.
DELETE_SHARE_PERCENT: Final = 10
#: From this many owned groups on, an apply refuses when all of them are gone at once.
VANISHED_AT_LEAST: Final = 5


def delete_allowance(desired: int, owned: int) -> int:
    """How many owned groups an apply deletes without being told (`max_deletes`).

    Zero when `desired` (the number of desired keys) is 0: an empty desired set is what
    a failed export or an empty pipe looks like, far more often than a wish to delete
    every group and all their events. Otherwise max(10, 10% of the `owned` groups,
    rounded down): a set cut short deletes a tenth of the account at most, while the
    everyday removal of a few records never needs a flag.
    """
    if desired <= 0:
        return 0
    return max(DELETES_ALWAYS_ALLOWED, owned * DELETE_SHARE_PERCENT // 100)


def all_vanished(checked: int, vanished: int) -> bool:
    """True when all of the `checked` owned groups (at least `VANISHED_AT_LEAST`) are gone
    at once.

    `checked` counts the owned groups whose read got an answer (found, or gone): a read
    that failed tells nothing about the account, so it neither hides the others nor
    counts as one still there. All gone is how a state file used against another
    account looks (or an account that was emptied): an apply would create every group
    again and leave the originals orphaned. A group or two deleted by hand is ordinary
    drift, made again without a word; so is a small state whose few groups all went.
    """
    return checked >= VANISHED_AT_LEAST and vanished >= checked


@attrs.frozen
class Change:
    """One field that differs: its value now (`UNSET` when not known) and the one wanted."""

    field: str
    old: Any
    new: Any


@attrs.frozen
class PlanItem:
    """What the plan does with one key, and why."""

    key: str
    action: Action
    #: The group's prokey: the one owned (or adopted, or deleted); for a drift create,
    #: the prokey that went missing. None for a plain create.
    prokey: str | None = None
    #: The desired record (None for a delete or keep).
    desired: DesiredGroup | None = None
    #: For an update or adoption: the fields that differ, in field order.
    changes: tuple[Change, ...] = ()
    #: Why the item is blocked, kept or otherwise noteworthy.
    reason: str | None = None
    #: A create of a group the state owned but the account no longer has.
    drift: bool = False
    #: A create that an earlier, interrupted apply may already have made: apply looks
    #: for that group before it creates anything.
    resume: bool = False
    #: For a blocked item: what it would have been.
    intended: Action | None = None

    def patch(self) -> GroupPatch:
        """The PATCH this item sends: exactly the fields that differ."""
        return GroupPatch(**{c.field: c.new for c in self.changes})

    @property
    def patches(self) -> int:
        """How many PATCHes (updates, each counting toward credits) the item sends."""
        if self.action is Action.UPDATE or (self.action is Action.ADOPT and self.changes):
            return 1
        if self.action is Action.CREATE and self.desired is not None:
            return 0 if self.desired.followup().is_empty() else 1
        return 0



@attrs.frozen
class Plan:
    """What an apply of the desired records to the state would do.

    Make it with `plan()`, look at it (or print it), then hand it to `apply()`. A plan
    belongs to the state file and the moment it was made at: `apply()` refuses it if the
    state has changed since.
    """

    items: tuple[PlanItem, ...]
    state_id: str
    state_generation: int
    #: `client.stats.updates_sent` when the plan was made (credits count from there).
    updates_before: int = 0
    prune: bool = False
    #: What the plan read of the account to see drift.
    refresh: Refresh = Refresh.FULL
    adopt_by_name: bool = False
    #: How many keys the desired set held.
    desired_count: int = 0
    #: How many groups the state owned when the plan was made.
    owned_count: int = 0
    #: How many of those the plan looked for in the account (`looked_for`) and got an
    #: answer about (found, or gone; not those whose read failed).
    checked_count: int = 0
    #: How many of those it found gone: a read answered 404, or the listing lacked them.
    vanished_count: int = 0

    def of(self, action: Action) -> tuple[PlanItem, ...]:
        """The items with `action`, in plan order."""
        return tuple(item for item in self.items if item.action is action)

    @property
    def creates(self) -> tuple[PlanItem, ...]:
        return self.of(Action.CREATE)

    @property
    def adopts(self) -> tuple[PlanItem, ...]:
        return self.of(Action.ADOPT)

    @property
    def updates(self) -> tuple[PlanItem, ...]:
        return self.of(Action.UPDATE)

    @property
    def deletes(self) -> tuple[PlanItem, ...]:
        return self.of(Action.DELETE)

    @property
    def unchanged(self) -> tuple[PlanItem, ...]:
        return self.of(Action.UNCHANGED)

    @property
    def blocked(self) -> tuple[PlanItem, ...]:
        return self.of(Action.BLOCKED)

    @property
    def kept(self) -> tuple[PlanItem, ...]:
        return self.of(Action.KEEP)

    @property
    def patches(self) -> int:
        """How many PATCHes the apply is expected to send."""
        return sum(item.patches for item in self.items)

    @property
    def estimated_credits(self) -> int:
        """Event credits the apply's updates are expected to cost.

        Every 5th update costs one credit, counted on from the client's running total,
        so 4 updates on a client that has sent 3 cost one credit, and on a fresh client
        none. A retried update (its reply lost) may add one; the account's own count
        of updates made by other tools is unknown here.
        """
        return estimated_credits(self.updates_before, self.patches)

    @property
    def has_changes(self) -> bool:
        """True when an apply would send any write."""
        return any(item.action in WRITE_ACTIONS for item in self.items)

    def summary(self) -> str:
        """One line for a person: the counts, and the credits the updates should cost."""
        drift = sum(1 for item in self.creates if item.drift)
        parts = [
            f"{len(self.creates)} to create" + (f" ({drift} after drift)" if drift else ""),
            f"{len(self.updates)} to update",
            f"{len(self.deletes)} to delete",
        ]
        if self.adopt_by_name or self.adopts:
            parts.append(f"{len(self.adopts)} to adopt")
        parts += [f"{len(self.unchanged)} unchanged", f"{len(self.blocked)} blocked"]
        if self.kept:
            parts.append(f"{len(self.kept)} kept (not desired; --prune deletes them)")
        credits = self.estimated_credits
        return (
            f"plan: {', '.join(parts)}; {self.patches} update(s), "
            f"estimated {credits} event credit{'' if credits == 1 else 's'}"
        )

    @property
    def delete_allowance(self) -> int:
        """How many deletes `apply` allows this plan without `max_deletes`
        (`delete_allowance`'s rule)."""
        return delete_allowance(self.desired_count, self.owned_count)

    def refusal(
        self, *, max_deletes: int | None = None, allow_vanished: bool = False
    ) -> SyncError | None:
        """The error `apply` refuses this plan with, before sending anything; or None.

        `VanishedGroupsError` when every owned group the plan could check is gone
        (`all_vanished`) unless `allow_vanished`; `MassDeleteError` when the plan
        deletes more groups than `max_deletes` (default: `delete_allowance`).
        """
        if not allow_vanished and all_vanished(self.checked_count, self.vanished_count):
            return VanishedGroupsError(self.owned_count, checked=self.checked_count)
        deletes = len(self.deletes)
        if max_deletes is not None:
            allowed, basis = max_deletes, "by max_deletes"
        else:
            allowed = self.delete_allowance
            basis = (
                "the desired set is empty"
                if self.desired_count == 0
                else f"by default, max(10, 10% of the {self.owned_count} owned groups)"
            )
        if deletes > allowed:
            return MassDeleteError(deletes, allowed, desired=self.desired_count, basis=basis)
        return None

