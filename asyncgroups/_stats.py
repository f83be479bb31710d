"""Counters a client keeps about what it sent."""

from __future__ import annotations

import attrs

__all__ = ["ClientStats"]


@attrs.define(slots=True)
class ClientStats:
    """What one client has sent so far; read it, don't write it.

    `estimated_credits` follows the API's rule that every 5th update costs the account
    one event credit.
    """

    #: Attempts sent on the wire, retries included.
    requests: int = 0
    #: Attempts that were retries of an earlier failed one.
    retries: int = 0
    #: Successful PATCHes.
    updates_sent: int = 0
    #: 429 replies that paused the whole client, or stopped it (`Throttle`).
    cool_downs: int = 0

    @property
    def estimated_credits(self) -> int:
        """Event credits the updates sent so far are estimated to have cost."""
        return self.updates_sent // 5
