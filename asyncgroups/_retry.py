"""Retry decisions: which failures are retried, and how long to wait. Pure: no asyncio.

The clock and the randomness are passed in, so every decision can be tested as a table.
Each decision comes with the reason for it, which the pipeline logs in one DEBUG line
(`log_decision`) once it knows the wait.
"""

from __future__ import annotations

import email.utils
import enum
import logging
import math
from collections.abc import Callable, Set
from datetime import MAXYEAR, UTC
from typing import Any, Final

import attrs

from .errors import ValidationError

__all__ = [
    "STOP_AFTER_429S",
    "Failure",
    "RetryPolicy",
    "Throttle",
    "backoff",
    "log_decision",
    "parse_retry_after",
    "retry_decision",
    "retry_delay",
    "should_retry",
]

logger = logging.getLogger("asyncgroups")

#: Methods that may be repeated safely: repeating them cannot act twice.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT"})

DEFAULT_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class Failure(enum.Enum):
    """How an attempt failed on the wire (a status is passed as an int instead)."""

    #: The connection could not be made: the request provably never left.
    CONNECT = "connect"
    #: The connection broke after the request may have been sent.
    DISCONNECT = "disconnect"
    #: The attempt took longer than the timeout; the server may have acted.
    TIMEOUT = "timeout"
    #: A success status came with a body that is not JSON; the server may have acted.
    BAD_BODY = "bad body"
    #: The server's TLS certificate was not trusted: nothing was sent, and trying again
    #: would fail the same way.
    CERTIFICATE = "certificate"


def _as_statuses(value: Set[int]) -> frozenset[int]:
    try:
        statuses = frozenset(value)
    except TypeError:
        raise ValidationError(
            "retry_statuses must be a set of HTTP statuses", field="retry_statuses"
        ) from None
    for status in statuses:
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ValidationError(
                f"retry_statuses must hold HTTP statuses (100-599), not {status!r}",
                field="retry_statuses",
            )
    return statuses


def _whole(*, minimum: int) -> Callable[[object, attrs.Attribute[Any], Any], None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValidationError(
                f"{attribute.name} must be an integer of at least {minimum}, not {value!r}",
                field=attribute.name,
            )

    return check


def _seconds(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValidationError(
            f"{attribute.name} must be a finite number of seconds >= 0, not {value!r}",
            field=attribute.name,
        )


def _flag(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ValidationError(
            f"{attribute.name} must be True or False, not {value!r}", field=attribute.name
        )


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How failed attempts are retried.

    GET and DELETE retry on `retry_statuses`, timeouts and connection errors. POST and
    PATCH retry only where the server provably did not act: a 429, or a failure to
    connect (a POST retried after a 503 could create a duplicate group).
    """

    #: Attempts in all, the first included (1 means never retry).
    max_attempts: int = attrs.field(default=3, validator=_whole(minimum=1))
    #: The first backoff in seconds; doubles on each retry.
    backoff_base: float = attrs.field(default=0.25, validator=_seconds)
    #: The longest backoff in seconds.
    backoff_max: float = attrs.field(default=20.0, validator=_seconds)
    #: Full jitter: wait a random time between 0 and the backoff.
    jitter: bool = attrs.field(default=True, validator=_flag)
    #: Statuses retried for GET and DELETE (POST and PATCH: only 429 of these).
    retry_statuses: frozenset[int] = attrs.field(
        default=DEFAULT_RETRY_STATUSES, converter=_as_statuses
    )
    #: A `Retry-After` longer than this is not waited for: the call raises at once, and
    #: the client sends nothing until that moment (`Throttle`).
    max_retry_after: float = attrs.field(default=60.0, validator=_seconds)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header, given in seconds or as an HTTP date.

    `now` is the current Unix time, used for dates. Returns None when the header is
    absent or cannot be read; never a negative number (a moment already past is 0).
    """
    if value is None or not value.strip():
        return None
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value.strip(), now)
    if seconds is None or not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


#: 10000-01-01T00:00:00Z, the first moment `datetime` cannot hold: a date past it is
#: read as this moment, thousands of years away and over any `max_retry_after`.
_YEAR_10000: Final = 253_402_300_800.0


def _seconds_until(text: str, now: float) -> float | None:
    """Seconds from `now` to the HTTP date `text`; None when it is not a date."""
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except OverflowError:  # a year past what a C int holds
        return _YEAR_10000 - now
    except ValueError:  # no date, no such day or offset, or a year past 9999
        parsed = email.utils.parsedate_tz(text)
        return _YEAR_10000 - now if parsed and parsed[0] > MAXYEAR else None
    if moment.tzinfo is None:  # "-0000": UTC, its source unknown (RFC 5322)
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() - now


def backoff(policy: RetryPolicy, attempt: int, *, rand: Callable[[], float]) -> float:
    """The wait before retry number `attempt` (1 for the first retry): exponential, capped.

    With jitter the wait is uniform in [0, cap) ("full jitter"), which spreads retries
    from many concurrent calls instead of synchronising them.
    """
    exponent = min(max(attempt - 1, 0), 60)
    cap = min(policy.backoff_max, policy.backoff_base * (2.0**exponent))
    return cap * rand() if policy.jitter else cap


def should_retry(
    policy: RetryPolicy | None,
    method: str,
    failure: int | Failure,
    attempt: int,
    *,
    retry_after: float | None = None,
) -> bool:
    """Whether a failed attempt number `attempt` (1-based) of `method` is tried again."""
    return retry_decision(policy, method, failure, attempt, retry_after=retry_after)[0]


def retry_decision(
    policy: RetryPolicy | None,
    method: str,
    failure: int | Failure,
    attempt: int,
    *,
    retry_after: float | None = None,
) -> tuple[bool, str]:
    """`should_retry`'s answer, and why in words (for the DEBUG line of the decision)."""
    if policy is None:
        return False, "retries are off"
    if failure is Failure.CERTIFICATE:
        return False, "the certificate is not trusted: a retry fails the same way"
    if attempt >= policy.max_attempts:
        return False, f"attempt {attempt} of {policy.max_attempts} was the last"
    if retry_after is not None and retry_after > policy.max_retry_after:
        longest = policy.max_retry_after
        return False, f"Retry-After {retry_after:g}s is over max_retry_after {longest:g}s"
    if failure is Failure.CONNECT:
        return True, "the connection could not be made, so nothing was sent"
    if failure == 429:
        if 429 in policy.retry_statuses:
            return True, "429 means the server did not act"
        return False, "status 429 is not in retry_statuses"
    if method not in IDEMPOTENT_METHODS:
        return False, f"{method} is not retried after {_name(failure)}: it may have acted"
    if isinstance(failure, Failure):
        return True, f"{_name(failure)} on an idempotent request"
    if failure in policy.retry_statuses:
        return True, f"status {failure} is retryable"
    return False, f"status {failure} is not retryable"


def log_decision(
    method: str, path: str, why: str, *, wait: float | None = None, attempt: int = 0, of: int = 0
) -> None:
    """Log one retry decision at DEBUG: the request, the wait when it is retried, and why.

    `wait` None means no retry. A path names at most a prokey, never the API key.
    """
    if not logger.isEnabledFor(logging.DEBUG):
        return
    if wait is None:
        logger.debug("no retry %s %s: %s", method, path, why)
    else:
        logger.debug(
            "retry %s %s in %.2fs after attempt %d of %d: %s", method, path, wait, attempt, of, why
        )


def retry_delay(
    policy: RetryPolicy, attempt: int, *, retry_after: float | None, rand: Callable[[], float]
) -> float:
    """The wait before the next attempt: the backoff, or the server's longer `Retry-After`.

    A `Retry-After` is honoured up to `max_retry_after`, but never shortens the
    backoff: a server that says "retry now" (0, a negative number, a date in the past)
    after a 429 or 503 still gets the pause the policy would give it.
    """
    wait = backoff(policy, attempt, rand=rand)
    if retry_after is not None:
        wait = max(wait, min(retry_after, policy.max_retry_after))
    return wait


#: 429s in a row, nothing served between them, that stop the client: the cool-downs of
#: the first two are waited out, the third is not.
STOP_AFTER_429S: Final = 3


class Throttle:
    """How one client answers the server's 429s: a cool-down, or a stop.

    A 429 pauses the whole client for the wait `retry_delay` chose (a cool-down), and
    then traffic resumes. Two cases stop the client instead, until the moment the server
    named: a `Retry-After` over `max_retry_after` (not waited for), and the third 429
    in a row with no request served between (`STOP_AFTER_429S`: waiting once more would
    only meet a fourth; a success or any other 4xx starts the count again, a 5xx or a
    lost connection does not). While stopped the client sends nothing: every request
    fails at once with a `RateLimitError` (`client_stopped`), and a bulk call stops. A
    429 read during a cool-down or a stop was sent before it began and belongs to it:
    it is not counted again. Pure: the loop's clock is passed in.
    """

    __slots__ = ("cooling_until", "in_a_row", "reason", "stopped_until", "stops")

    def __init__(self) -> None:
        #: When the latest cool-down ends (loop time).
        self.cooling_until = -math.inf
        #: When the current stop ends (loop time); -inf when there is none.
        self.stopped_until = -math.inf
        #: 429s counted since something was last served.
        self.in_a_row = 0
        #: Why the client stopped, for the errors of the requests it refuses.
        self.reason = ""
        #: Stops begun so far.
        self.stops = 0

    def note(self, failure: int | Failure | None) -> None:
        """Take note of an attempt that did not end in a 429 (None: it succeeded)."""
        if failure is None or (isinstance(failure, int) and failure < 500):
            self.in_a_row = 0

    def met_429(
        self, now: float, delay: float, retry_after: float | None, *, longest: float
    ) -> float | None:
        """Take note of a 429 read at `now`: the cool-down to take, or None: stopped.

        `delay` is the wait the retry policy chose, `retry_after` the server's own, and
        `longest` the policy's `max_retry_after`. 0 means no cool-down: no wait, or one
        longer than `longest` (a long backoff).
        """
        if now < self.stopped_until:
            if retry_after is not None:
                self.stopped_until = max(self.stopped_until, now + retry_after)
            return None
        if now >= self.cooling_until:
            self.in_a_row += 1
        if retry_after is not None and retry_after > longest:
            why = f"Retry-After {retry_after:g}s is over max_retry_after {longest:g}s"
            self._stop(now + retry_after, why)
            return None
        if self.in_a_row >= STOP_AFTER_429S:
            self._stop(now + delay, f"{self.in_a_row} replies in a row were 429")
            return None
        if not 0 < delay <= longest:
            return 0.0
        self.cooling_until = max(self.cooling_until, now + delay)
        return delay

    def stopped_for(self, now: float) -> float:
        """Seconds the client stays stopped from `now` (0 when it is not)."""
        left = self.stopped_until - now
        if left > 0:
            return left
        self.stopped_until = -math.inf  # over: the pipeline stops asking the clock
        return 0.0

    def _stop(self, until: float, why: str) -> None:
        self.stopped_until = until
        self.reason = why
        self.stops += 1


def _name(failure: int | Failure) -> str:
    return f"status {failure}" if isinstance(failure, int) else f"a {failure.value} failure"
