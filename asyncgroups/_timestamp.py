"""One ISO 8601 formatter for the timestamps the package writes: pure, no I/O.

The journal, the sync state file and JSON output each write UTC times. They share this
function so a time reads the same everywhere; the spellings files already depend on
are kept through its options (the sync state file writes `+00:00`, the rest `Z`).
The fake server (`asyncgroups.testing`) keeps its own: it plays the service's format.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso_utc"]


def iso_utc(
    moment: datetime | None = None, *, keep_microseconds: bool = False, utc: str = "Z"
) -> str:
    """`moment` (default: now) as ISO 8601 in UTC, to the millisecond, ending in `utc`.

    An aware time is converted to UTC; a naive one is written as it is, without a zone.
    `keep_microseconds` writes six digits when the milliseconds would drop some.
    """
    if moment is None:
        moment = datetime.now(UTC)
    aware = moment.tzinfo is not None
    if aware:
        moment = moment.astimezone(UTC)
    precise = keep_microseconds and moment.microsecond % 1000 != 0
    text = moment.replace(tzinfo=None).isoformat(
        timespec="microseconds" if precise else "milliseconds"
    )
    return text + utc if aware else text
