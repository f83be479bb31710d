"""What the integration tests share: a client for a local fake, without pacing."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator
from datetime import datetime

from asyncgroups import GroupsClient, RetryPolicy
from asyncgroups.sync import DesiredGroup, SyncReport, SyncState, apply, plan
from asyncgroups.testing import FakeGroupsServer

__all__ = ["NO_WAIT", "MovedClock", "local_client", "resume", "steady_clock"]

#: Three attempts, no backoff: retries happen, and the suite does not sleep for them.
NO_WAIT = RetryPolicy(max_attempts=3, backoff_base=0.0, backoff_max=0.0)


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


def local_client(server: FakeGroupsServer, **kwargs: object) -> GroupsClient:
    """A client for `server`: `NO_WAIT` retries and no rate limit unless given."""
    kwargs.setdefault("retry", NO_WAIT)
    kwargs.setdefault("rate_limit", None)  # the local fake: no need to pace
    return GroupsClient(server.api_key, base_url=server.url, **kwargs)  # type: ignore[arg-type]


@contextlib.contextmanager
def steady_clock() -> Iterator[None]:
    """No garbage collection meanwhile: a collection's pause would stamp the requests
    that arrived during it all at its end, and the fake's times would bunch up where
    the client's did not. For tests that read the fake's `received_at`."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
