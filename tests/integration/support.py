"""What the integration tests of sync share beyond `conftest.py`: resuming an apply."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from asyncgroups import GroupsClient
from asyncgroups.sync import DesiredGroup, SyncReport, SyncState, apply, plan

__all__ = ["MovedClock", "resume"]


class MovedClock:
    """An apply's wall clock, moved by the test instead of waiting (epoch seconds).

    It starts at 2027-01-15T08:00:00Z unless told `now`.
    """

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def past(self, moment: datetime | None) -> None:
        """Move to a second after `moment` (a report's `decide_after`), if that is later."""
        if moment is not None:
            self.now = max(self.now, moment.timestamp() + 1)

    def __call__(self) -> float:
        return self.now


async def resume(
    client: GroupsClient, desired: Iterable[DesiredGroup], state: SyncState
) -> SyncReport:
    """Plan and apply after an interruption, then once more after the landing window of
    the creates it cut off in flight, which wait for it (by a moved clock, no sleep).

    A create cut off between its "sent" note and its POST leaving, or while the server
    worked on it, may still land: the first apply reports it waiting (the lost-create
    protocol, step 5), and only an apply after `decide_after` decides it.
    """
    desired = list(desired)
    report = await apply(client, await plan(client, desired, state), state)
    assert not report.failed, report.failed
    again = report.decide_after
    if again is None:
        return report
    cut_off = "sent and never answered (an interrupted apply?) may still land"
    assert all(cut_off in (item.note or "") for item in report.waiting), report.waiting
    later = again.timestamp() + 1
    return await apply(client, await plan(client, desired, state), state, clock=lambda: later)
