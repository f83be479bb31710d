"""Counters a client keeps about what it sent."""

from __future__ import annotations

import attrs

__all__ = ["ClientStats"]


@attrs.define(slots=True)
class ClientStats:
    """What one client has sent so far; read it, don't write it.

    `estimated_credits` follows the API's rule that every 5th update costs the account
    one event credit. Every attempt on the wire counts once in `requests` and once in
    `reads`, `pages` or `writes`. `after - before` is what was sent in between.
    """

    #: Attempts sent on the wire, retries included.
    requests: int = 0
    #: Attempts that were retries of an earlier failed one.
    retries: int = 0
    #: Successful PATCHes.
    updates_sent: int = 0
    #: 429 replies that paused the whole client, or stopped it (`Throttle`).
    cool_downs: int = 0
    #: Attempts that read one group (`get`, `latest`).
    reads: int = 0
    #: Attempts that read a page of the account's listing (`GET /group/all`).
    pages: int = 0
    #: Attempts that wrote: POST, PATCH, DELETE.
    writes: int = 0

    @property
    def estimated_credits(self) -> int:
        """Event credits the updates sent so far are estimated to have cost."""
        return self.updates_sent // 5

    def __add__(self, other: ClientStats) -> ClientStats:
        return ClientStats(*(a + b for a, b in zip(_counts(self), _counts(other), strict=True)))

    def __sub__(self, other: ClientStats) -> ClientStats:
        return ClientStats(*(a - b for a, b in zip(_counts(self), _counts(other), strict=True)))

    def summary(self) -> str:
        """The requests in one line: "2,003 requests (2,000 reads, 3 pages)"."""
        if not self.requests:
            return "no requests"
        kinds = ", ".join(
            _count(n, noun)
            for n, noun in ((self.reads, "read"), (self.pages, "page"), (self.writes, "write"))
            if n
        )
        if self.retries:
            kinds += f"; {_count(self.retries, 'retry', 'retries')}"
        return f"{_count(self.requests, 'request')} ({kinds})"


def _counts(stats: ClientStats) -> tuple[int, ...]:
    return attrs.astuple(stats, recurse=False)


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
