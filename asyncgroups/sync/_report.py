"""What an apply did: one `ItemResult` per plan item, gathered in a `SyncReport`."""

from __future__ import annotations

import enum
from collections import Counter
from datetime import datetime

import attrs

from .. import AsyncGroupsError, ClientStats
from .._timestamp import iso_utc
from ._errors import OutOfCreditsError
from ._plan import Action, PlanItem, estimated_credits

__all__ = [
    "ItemOutcome",
    "ItemResult",
    "SyncProgress",
    "SyncReport",
    "done_result",
    "failed_result",
    "waiting_result",
]


class ItemOutcome(enum.StrEnum):
    """How one plan item ended."""

    #: It happened (or there was nothing to do: an unchanged group).
    DONE = "done"
    #: It was tried and did not work; `ItemResult.error` says why.
    FAILED = "failed"
    #: It was not tried on purpose (blocked, or kept without prune); the note says why.
    SKIPPED = "skipped"
    #: It cannot be decided yet: an earlier create of the key may still land on the
    #: server. Nothing was sent; an apply after `ItemResult.decide_after` decides it.
    WAITING = "waiting"


@attrs.frozen
class ItemResult:
    """How one plan item ended, and its group's prokey (for a delete: the one deleted)."""

    key: str
    action: Action
    outcome: ItemOutcome
    prokey: str | None = None
    error: AsyncGroupsError | None = None
    #: Why it was skipped, or what was unusual (a lost reply found again, say).
    note: str | None = None
    #: For a waiting item: from when an apply can decide it (aware, UTC).
    decide_after: datetime | None = None

    @property
    def ok(self) -> bool:
        """True when the item is done or skipped: it neither failed nor waits."""
        return self.outcome in (ItemOutcome.DONE, ItemOutcome.SKIPPED)


def done_result(item: PlanItem, prokey: str | None, note: str | None = None) -> ItemResult:
    """`item` done, with its group's prokey."""
    return ItemResult(item.key, item.action, ItemOutcome.DONE, prokey=prokey, note=note)


def failed_result(
    item: PlanItem,
    error: AsyncGroupsError,
    prokey: str | None = None,
    note: str | None = None,
) -> ItemResult:
    """`item` failed with `error` (and its group's prokey, when it has one)."""
    return ItemResult(
        item.key, item.action, ItemOutcome.FAILED, prokey=prokey, error=error, note=note
    )


def waiting_result(item: PlanItem, decide_after: datetime, note: str) -> ItemResult:
    """`item` waiting: nothing was sent, and an apply after `decide_after` decides it."""
    return ItemResult(
        item.key, item.action, ItemOutcome.WAITING, note=note, decide_after=decide_after
    )


@attrs.frozen
class SyncProgress:
    """Where an apply stands, passed to `on_progress` after each item that does work."""

    #: Items with work (create, adopt, update, delete) finished so far.
    done: int
    #: Items with work in all.
    total: int
    failed: int
    #: The item that just finished.
    last: ItemResult


@attrs.frozen
class SyncReport:
    """What an apply did, item by item, in plan order.

    Every plan item appears once, as done, failed, skipped or waiting. After the apply
    the state file owns every group an item names by `prokey` (done creates and
    adoptions, and failed ones whose group exists but whose follow-up patch failed; a
    kept key whose interrupted create was found), plus those it held before, minus the
    done deletes.
    """

    items: tuple[ItemResult, ...]
    #: PATCHes the client sent during the apply (follow-ups and retries included).
    updates_sent: int = 0
    #: `client.stats.updates_sent` when the apply began.
    updates_before: int = 0
    #: Seconds the apply took.
    elapsed: float = 0.0
    #: What the client sent during the apply (by its other users too, if it has any).
    sent: ClientStats = attrs.field(factory=ClientStats)

    @property
    def ok(self) -> bool:
        """True when every item is done or skipped: none failed, none is waiting."""
        return all(item.ok for item in self.items)

    @property
    def waiting(self) -> tuple[ItemResult, ...]:
        return self._with(ItemOutcome.WAITING)

    @property
    def decide_after(self) -> datetime | None:
        """When an apply can decide every waiting item (None when none waits): run
        again after it."""
        return max((i.decide_after for i in self.waiting if i.decide_after), default=None)

    @property
    def failed(self) -> tuple[ItemResult, ...]:
        return self._with(ItemOutcome.FAILED)

    @property
    def skipped(self) -> tuple[ItemResult, ...]:
        return self._with(ItemOutcome.SKIPPED)

    @property
    def done(self) -> tuple[ItemResult, ...]:
        return self._with(ItemOutcome.DONE)

    @property
    def not_sent(self) -> tuple[ItemResult, ...]:
        """The failed items whose PATCH was not sent: the account ran out of event
        credits earlier in the apply (`OutOfCreditsError`)."""
        return tuple(i for i in self.failed if isinstance(i.error, OutOfCreditsError))

    def _with(self, outcome: ItemOutcome) -> tuple[ItemResult, ...]:
        return tuple(item for item in self.items if item.outcome is outcome)

    def count(self, action: Action, outcome: ItemOutcome = ItemOutcome.DONE) -> int:
        """How many items with `action` ended with `outcome`."""
        return sum(1 for i in self.items if i.action is action and i.outcome is outcome)

    @property
    def estimated_credits(self) -> int:
        """Event credits the updates sent during the apply are estimated to have cost."""
        return estimated_credits(self.updates_before, self.updates_sent)

    def summary(self, *, elapsed: float | None = None, sent: ClientStats | None = None) -> str:
        """One line for a person: what was done, what was not, and what it cost.

        The time and the requests are the apply's (`elapsed`, `sent`) unless given: a
        caller that planned too passes those of the whole run.
        """
        done = Counter(i.action for i in self.items if i.outcome is ItemOutcome.DONE)
        parts = [
            f"{done[Action.CREATE]} created",
            f"{done[Action.UPDATE]} updated",
            f"{done[Action.DELETE]} deleted",
        ]
        if done[Action.ADOPT]:
            parts.append(f"{done[Action.ADOPT]} adopted")
        parts.append(f"{done[Action.UNCHANGED]} unchanged")
        blocked = self.count(Action.BLOCKED, ItemOutcome.SKIPPED)
        kept = self.count(Action.KEEP, ItemOutcome.SKIPPED)
        parts.append(f"{blocked} blocked")
        if kept:
            parts.append(f"{kept} kept")
        parts.append(f"{len(self.failed)} failed")
        not_sent = len(self.not_sent)
        if not_sent:  # said once here, not once per item
            parts[-1] += (
                f"; {not_sent} update(s) not sent: the account ran out of event credits (402)"
            )
        again = self.decide_after
        if again is not None:
            parts.append(f"{len(self.waiting)} waiting (run again after {iso_utc(again)})")
        credits = self.estimated_credits
        seconds = self.elapsed if elapsed is None else elapsed
        requests = (self.sent if sent is None else sent).summary()
        return (
            f"sync: {', '.join(parts)}; {self.updates_sent} update(s) sent, estimated "
            f"{credits} event credit{'' if credits == 1 else 's'}, in {seconds:.1f} s: "
            f"{requests}"
        )
