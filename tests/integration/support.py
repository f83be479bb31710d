"""What the integration tests of sync share beyond `conftest.py`: resuming an apply."""

from __future__ import annotations

from collections.abc import Iterable

from asyncgroups import GroupsClient
from asyncgroups.sync import DesiredGroup, SyncReport, SyncState, apply, plan

__all__ = ["resume"]


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
