"""The client-wide limiter: a cap on requests in flight, a rate limit, a shared cool-down.

Every request of one client passes through one limiter, whatever call sent it, so three
bulk jobs and a web handler on the same client share one cap. The pipeline only sees the
small `Limiter` protocol, so a fleet of workers sharing one account plugs in a shared
implementation (`asyncgroups.contrib.redis.RedisLimiter`) without touching the pipeline;
`CappedLimiter` puts the client's own in-flight cap in front of such a limiter.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import math
from typing import Final, Protocol, runtime_checkable

from ._config import check_number

__all__ = ["SPACING_MARGIN", "CappedLimiter", "ClientLimiter", "Limiter"]

#: How much wider than `1 / rate` requests are spaced, and than a second the window is
#: (the rate rule: `ClientLimiter`).
SPACING_MARGIN: Final = 0.01


@runtime_checkable
class Limiter(Protocol):
    """What the request pipeline needs from a limiter: the one seam for other backends.

    The pipeline calls `acquire()` before each attempt, outside the attempt's timeout
    (waiting here never counts against `timeout`), then sends, then calls `release()`
    exactly once, whatever the outcome; a 429 calls `cool_down(seconds)`, unless it
    stops the client instead (`asyncgroups._retry.Throttle`). An `acquire` that raises
    (an `AsyncGroupsError` such as `LimiterUnavailableError`) fails the call with that
    error: nothing is sent and `release` is not called. `release` and
    `cool_down` are plain functions called on the event loop: they must not block or
    raise (a backend that must tell a server schedules that as a task).
    """

    async def acquire(self) -> None:
        """Wait for a slot to send one request (cap, rate and cool-down all allowing)."""

    def release(self) -> None:
        """Give back the slot taken by `acquire`, once the reply has been read."""

    def cool_down(self, seconds: float) -> None:
        """Hold every new request for `seconds` (the server answered 429)."""


class CappedLimiter:
    """A client's own in-flight cap in front of another limiter that paces the requests.

    `GroupsClient(limiter=...)` wraps any limiter that is not a `ClientLimiter` in one,
    so a shared limiter (`RedisLimiter`) decides the rate and the cool-down while the
    client still never has more than `max_in_flight` requests out (nor waits inside
    aiohttp's pool, which would count against `timeout`). The slot is taken first: a
    shared limiter's reservation is then made only once the request can really go.
    """

    __slots__ = ("_semaphore", "inner", "max_in_flight")

    def __init__(self, inner: Limiter, max_in_flight: int) -> None:
        """Raises `ValidationError` (a `ValueError`) for a cap below 1."""
        check_number("max_in_flight", max_in_flight, integer=True, minimum=1)
        #: The limiter that paces the requests (rate, cool-down).
        self.inner = inner
        #: Most requests in flight at once.
        self.max_in_flight = max_in_flight
        self._semaphore = asyncio.Semaphore(max_in_flight)

    @property
    def in_flight(self) -> int:
        """Slots taken right now."""
        return self.max_in_flight - self._semaphore._value

    async def acquire(self) -> None:
        await self._semaphore.acquire()
        try:
            await self.inner.acquire()
        except BaseException:
            self._semaphore.release()
            raise

    def release(self) -> None:
        try:
            self.inner.release()
        finally:
            self._semaphore.release()

    def cool_down(self, seconds: float) -> None:
        self.inner.cool_down(seconds)

    def __repr__(self) -> str:
        return f"CappedLimiter({self.inner!r}, max_in_flight={self.max_in_flight})"


class _Sent:
    """One request under the rate limit: when it reached the server, once that is known."""

    __slots__ = ("at", "known")

    def __init__(self, at: float | None) -> None:
        #: Loop time it went out (None: not known yet); -inf: it never did.
        self.at = at
        self.known = asyncio.Event()
        if at is not None:
            self.known.set()

    def settle(self, at: float) -> None:
        if self.at is None:
            self.at = at
            self.known.set()


#: The request the current task holds a slot for (set by `acquire`).
_current: contextvars.ContextVar[_Sent | None] = contextvars.ContextVar(
    "asyncgroups_sent", default=None
)


class ClientLimiter:
    """The default limiter: a semaphore, an evenly spaced rate, and a cool-down deadline.

    The rate rule, the one place it is written down (`RedisLimiter` keeps the first
    half of it across processes): no one-second window at the server may see more
    than `rate` requests of this client, however many tasks are waiting. Two steps
    keep it, and each is needed:

    1. Even spacing: requests leave `1 / rate` seconds apart, widened by
       `SPACING_MARGIN` (1%), in the order they asked (a generic cell rate algorithm).
       A steady stream never bursts, and 81 requests in a row at 80 span 1.01 s, so a
       few milliseconds of network jitter cannot squeeze one more into a second.
    2. The window: a request goes only once the `rate`-th request before it went out
       more than `1 + SPACING_MARGIN` seconds ago, counting the moment each really went
       out (`connected()`, which the pipeline reports once the connection is ready,
       after any TLS handshake). Spacing alone is not enough: a request that waits for
       a new connection reaches the server late and bunches up with those sent on
       pooled ones (104 in one second at 80, against a TLS server whose new connections
       take 0.3 s: `test_default_rate_holds_at_the_server_when_new_connections_are_slow`).
       A request acquired without `reporting` counts as sent when `acquire` returns.

    A cool-down (`cool_down`) holds every request until it ends, and the spacing then
    starts again from its end. Time comes from the running loop's clock, so tests can
    move it.
    """

    __slots__ = (
        "_interval",
        "_next_at",
        "_paused_until",
        "_semaphore",
        "_sent",
        "_window",
        "max_in_flight",
        "rate",
    )

    def __init__(self, max_in_flight: int, rate: float | None = None) -> None:
        """Raises `ValidationError` (a `ValueError`) for a cap below 1 or a bad rate."""
        check_number("max_in_flight", max_in_flight, integer=True, minimum=1)
        if rate is not None:
            check_number("rate", rate)
        #: Most requests in flight at once.
        self.max_in_flight = max_in_flight
        #: Requests per second, or None for no rate limit.
        self.rate = rate
        self._interval = (1.0 + SPACING_MARGIN) / rate if rate else 0.0
        self._semaphore = asyncio.Semaphore(max_in_flight)
        self._next_at = -math.inf
        self._paused_until = -math.inf
        # Requests a one-second window may hold, and the last that many sent.
        self._window = math.floor(rate) if rate else 0
        self._sent: collections.deque[_Sent] = collections.deque()

    @property
    def counts_sends(self) -> bool:
        """True when the rate limit would use `connected()` reports (it has a rate)."""
        return self._window > 0

    @property
    def in_flight(self) -> int:
        """Slots taken right now."""
        return self.max_in_flight - self._semaphore._value

    async def acquire(self, *, reporting: bool = False) -> None:
        """Wait for a slot (cap, rate and cool-down all allowing).

        With `reporting`, the caller promises to call `connected()` once the request
        really goes out (the pipeline does, from aiohttp's connection hooks); the rate
        then counts that moment. Otherwise the request counts as sent on return.
        """
        await self._semaphore.acquire()
        try:
            await self._wait_turn()
            if self._window:
                await self._wait_window(reporting=reporting)
        except BaseException:
            self._semaphore.release()
            raise

    def connected(self) -> None:
        """The request this task acquired for with `reporting` goes out now.

        A request so acquired and released without it never reached the server, and
        does not count against the rate.
        """
        sent = _current.get()
        if sent is not None:
            sent.settle(asyncio.get_running_loop().time())

    def release(self) -> None:
        sent = _current.get()
        if sent is not None:
            sent.settle(-math.inf)
            _current.set(None)
        self._semaphore.release()

    def cool_down(self, seconds: float) -> None:
        if seconds > 0:
            until = asyncio.get_running_loop().time() + seconds
            self._paused_until = max(self._paused_until, until)
            # The rate's schedule restarts at the end of the pause, so the requests
            # that waited through it leave one interval apart, not in a burst.
            if self._interval:
                self._next_at = max(self._next_at, self._paused_until)

    def paused_for(self) -> float:
        """Seconds left of the current cool-down (0 when none)."""
        return max(0.0, self._paused_until - asyncio.get_running_loop().time())

    async def _wait_window(self, *, reporting: bool) -> None:
        """Wait until the `rate`-th request before this one went out a second ago."""
        loop = asyncio.get_running_loop()
        sent = self._sent
        while len(sent) >= self._window:
            oldest = sent[0]
            if oldest.at is None:
                await oldest.known.wait()
                continue
            wait = oldest.at + 1.0 + SPACING_MARGIN - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if sent and sent[0] is oldest:
                sent.popleft()
        mine = _Sent(None if reporting else loop.time())
        sent.append(mine)
        _current.set(mine if reporting else None)

    async def _wait_turn(self) -> None:
        loop = asyncio.get_running_loop()
        reserved = not self._interval
        while True:
            now = loop.time()
            if now < self._paused_until:
                await asyncio.sleep(self._paused_until - now)
                reserved = not self._interval  # a slot taken before the pause is void
                continue
            if not reserved:
                at = max(now, self._next_at)
                self._next_at = at + self._interval
                reserved = True
                if at > now:
                    await asyncio.sleep(at - now)
                    continue
            return
