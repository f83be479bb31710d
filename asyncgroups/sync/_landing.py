"""When a create whose POST failed may still land: step 5 of the lost-create protocol
(`_creates.py`), as rules and times. Pure: no I/O, and wall-clock time only as given.

A failure after the request may have reached the server may still make its group later
(`may_still_land`), for `landing_window` seconds; a row of the state file stores that
moment as text (`stored`), and `Undecided` is what an apply says about it meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

import attrs

from .. import AsyncGroupsError, ServerError
from .._timestamp import iso_utc
from ._rows import PendingCreate

__all__ = [
    "LANDING_FLOOR",
    "LANDING_TIMEOUTS",
    "SERVICE_5XX",
    "Clock",
    "Undecided",
    "landing_window",
    "may_still_land",
    "stored",
]

#: How many of the client's timeouts a create that failed may still land in (step 5).
LANDING_TIMEOUTS: Final = 5
#: The least time, in seconds, a create that failed may still land in (step 5).
LANDING_FLOOR: Final = 120.0
#: The 5xx statuses the service answers with itself, done working: those HTTP defines,
#: but a gateway's 502 and 504, which speak for a backend that may still be at work.
SERVICE_5XX: Final = frozenset({500, 501, 503, 505, 506, 507, 508, 510, 511})

#: Seconds since the epoch, now (`time.time`; a test passes one it can move).
Clock = Callable[[], float]


def landing_window(timeout: float) -> float:
    """Seconds a create whose POST failed may still land after the failure (step 5)."""
    return max(LANDING_TIMEOUTS * timeout, LANDING_FLOOR)


def may_still_land(err: AsyncGroupsError) -> bool:
    """Whether a create whose POST failed with `err` may still make its group later, so
    that only a listing after its landing window can show it made nothing (step 5)."""
    if not err.may_have_acted:
        return False
    return not (isinstance(err, ServerError) and err.status in SERVICE_5XX)


def stored(moment: float) -> str:
    """`moment` (epoch seconds) as the state file stores times."""
    return iso_utc(datetime.fromtimestamp(moment, UTC), utc="+00:00")


def _epoch(stored: str) -> float:
    return datetime.fromisoformat(stored).timestamp()


@attrs.frozen
class Undecided:
    """A create that may still land (step 5): when it can be decided, and why not now."""

    #: Epoch seconds: a listing started after this can show that it made nothing.
    decide_after: float
    #: Epoch seconds its POST failed at; None for one cut off by an interruption.
    failed_at: float | None = None
    #: How it failed, where this apply saw it (the row does not keep it).
    cause: str | None = None

    @classmethod
    def of(cls, pending: PendingCreate) -> Undecided | None:
        """What `pending`'s row says, if it may still land."""
        if pending.decide_after is None:
            return None
        failed = pending.timed_out_at
        return cls(_epoch(pending.decide_after), _epoch(failed) if failed else None)

    @property
    def when(self) -> datetime:
        """`decide_after` as an aware UTC time."""
        return datetime.fromtimestamp(self.decide_after, UTC)

    @property
    def shown(self) -> str:
        """`decide_after` as a person reads it (ISO 8601, UTC)."""
        return iso_utc(self.when)

    def note(self) -> str:
        """The report's line: why nothing was sent, and when an apply can decide."""
        if self.failed_at is not None:
            at = iso_utc(datetime.fromtimestamp(self.failed_at, UTC))
            what = f"a create that failed at {at}" + (f" ({self.cause})" if self.cause else "")
        else:
            what = "a create that was sent and never answered (an interrupted apply?)"
        return f"waiting: {what} may still land; nothing was sent; decided after {self.shown}"
