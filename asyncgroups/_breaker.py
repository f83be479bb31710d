"""When a bulk call stops sending: the `Breaker`, bookkeeping only, no I/O.

A bulk call that cannot be served at all (a refused key, a dead URL, a server that
never answers, a client the server's 429s stopped) should end with its first wave, not
fail 20,000 keys one slow request at a time.
"""

from __future__ import annotations

import asyncio
from typing import Final

from .errors import (
    APIError,
    AsyncGroupsError,
    AuthenticationError,
    LimiterUnavailableError,
    RateLimitError,
    RequestTimeout,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
)

__all__ = ["FAILURES_TO_STOP", "TIMEOUTS_TO_STOP", "Breaker"]


#: Keys whose every attempt timed out, none of the call's answered yet, that stop it.
TIMEOUTS_TO_STOP: Final = 5
#: Keys whose every attempt the server failed (5xx, a dropped connection, a broken
#: reply), none of the call's served yet, that stop it.
FAILURES_TO_STOP: Final = 5


class Breaker:
    """Notices when a bulk call cannot be served at all, so it stops sending.

    These outcomes trip it:

    - a 401: the key is refused, and every further request would be refused too;
    - a shared limiter that cannot reach its store (`LimiterUnavailableError`): nothing
      may be sent without it, and trying 20,000 keys against a dead Redis would only
      fail them slowly;
    - a key whose every attempt failed to connect while no key of this call has reached
      the server yet (a dead base URL, DNS or the network down);
    - the `TIMEOUTS_TO_STOP`th (5th) key whose every attempt timed out while no key of
      this call has been answered yet: a server that takes connections and never
      answers. One slow key proves little; five in a row with nothing else back, at
      three attempts each, are fifteen attempts that all ran out;
    - the `FAILURES_TO_STOP`th (5th) key whose every attempt the server failed (a 5xx,
      a connection dropped, a broken reply) while no key of this call has been served
      yet (a success, or an answer such as 404 that settles the key): a server that
      is down behind its proxy, or closes every connection;
    - a `RateLimitError` that stopped the client (`client_stopped`: a `Retry-After`
      over `max_retry_after`, or the third 429 in a row, as `Throttle` says), whatever
      came before: nothing will be sent until the server's moment.

    After that, each key not yet tried fails without a request, with the same error
    (`cause`): 5,000 keys against a dead URL cost about a second, not minutes. While
    keys have timed out and nothing has come back, no new key is sent until the keys
    in flight tell which it is (`in_doubt`), so the call ends with its first wave.
    Once a reply has come back, later connect failures and timeouts are passing
    trouble and the call carries on. Bookkeeping only: it never does I/O.
    """

    __slots__ = (
        "_news",
        "cause",
        "failures",
        "in_flight",
        "reached",
        "served",
        "skipped",
        "timeouts",
    )

    def __init__(self) -> None:
        #: The error every key not yet tried fails with, once tripped.
        self.cause: AsyncGroupsError | None = None
        #: True once any request of this call was answered or at least connected.
        self.reached = False
        #: Keys failed with `cause` without a request.
        self.skipped = 0
        #: Keys whose attempts all timed out before anything was reached.
        self.timeouts = 0
        #: True once any key of this call was served (succeeded, or settled by a 4xx).
        self.served = False
        #: Keys whose attempts the server all failed before anything was served.
        self.failures = 0
        #: Keys sent and not ended yet.
        self.in_flight = 0
        self._news: asyncio.Event | None = None  # set when a key in flight ends

    @property
    def in_doubt(self) -> bool:
        """True while keys have timed out, nothing has come back, and some are in flight.

        A key sent now would most likely run out of time too, so it waits (`news`) while
        this holds: the keys already out decide first; an answer clears the doubt, the
        fifth timeout trips the breaker.
        """
        return bool(self.timeouts and not self.reached and self.cause is None and self.in_flight)

    async def news(self) -> None:
        """Wait until a key in flight ends."""
        if self._news is None:
            self._news = asyncio.Event()
        await self._news.wait()

    def landed(self) -> None:
        """One key that was sent has ended (observed or not): wake whoever waits."""
        self.in_flight -= 1
        if self._news is not None:
            self._news.set()
            self._news = None

    def observe(self, error: AsyncGroupsError | None) -> None:
        """Take note of how one key ended (None: it succeeded)."""
        if self.cause is not None or isinstance(error, ValidationError):
            return  # tripped already, or nothing was sent
        if error is None:
            self.reached = self.served = True
        elif isinstance(error, AuthenticationError | LimiterUnavailableError) or (
            isinstance(error, RateLimitError) and error.client_stopped
        ):
            self._trip(error)
        elif isinstance(error, TransportError) and error.never_connected:
            if not self.reached:
                self._trip(error)
        elif isinstance(error, RequestTimeout):
            # A timeout may have been spent connecting: alone it proves nothing either way.
            if not self.reached:
                self.timeouts += 1
                if self.timeouts >= TIMEOUTS_TO_STOP:
                    self._trip(error)
        else:
            self.reached = True
            self._count_failure(error)

    def _count_failure(self, error: AsyncGroupsError) -> None:
        if not isinstance(error, ServerError | TransportError | UnexpectedResponseError):
            self.served = True
        elif not self.served:
            self.failures += 1
            if self.failures >= FAILURES_TO_STOP:
                self._trip(error)

    def skip(self) -> AsyncGroupsError | None:
        """The error to fail the next untried key with, or None to send it."""
        if self.cause is not None:
            self.skipped += 1
        return self.cause

    def _trip(self, error: AsyncGroupsError) -> None:
        self.cause = error
        error.add_note(
            f"asyncgroups: {_why_stopped(error)}, so this bulk call stopped sending; every "
            "key it had not tried yet failed with this same error"
        )


def _why_stopped(error: AsyncGroupsError) -> str:
    """What a bulk call's stop means, in words, by the error that tripped its breaker."""
    if isinstance(error, RateLimitError):
        return "the server's 429 replies stopped this client"
    if isinstance(error, ServerError | UnexpectedResponseError) or (
        isinstance(error, TransportError)
        and not error.never_connected
        and not isinstance(error, RequestTimeout)
    ):
        return f"the server failed every attempt of {FAILURES_TO_STOP} keys and served none"
    if isinstance(error, APIError):
        return "the API key was refused"
    if isinstance(error, LimiterUnavailableError):
        return "the shared rate limit could not be reached"
    if isinstance(error, RequestTimeout) and not error.never_connected:
        return f"none of {TIMEOUTS_TO_STOP} keys got an answer within the timeout"
    return "the API could not be reached"
