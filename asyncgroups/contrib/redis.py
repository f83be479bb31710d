"""One rate limit and one 429 cool-down for every process on an account, kept in Redis.

```python
from asyncgroups import GroupsClient
from asyncgroups.contrib.redis import RedisLimiter

async with RedisLimiter("redis://redis.internal:6379/0", rate=80.0) as limiter:
    async with GroupsClient(limiter=limiter) as client:   # in each worker, on each machine
        await client.groups.get_many(keys)
```

Every `RedisLimiter` on the same Redis with the same `name` shares one schedule: the
requests of all of them together leave evenly spaced at `rate` a second (1% wider: the
first half of the rate rule in `asyncgroups.ClientLimiter`'s docstring). The schedule
is a generic cell rate algorithm run by one Lua script on the Redis server
(`_redis_script`), atomically, on Redis's own clock (`TIME`), so the machines' clocks do not
matter and no two processes can race for a slot. One call reserves the next slot and
answers how long to wait for it; the process sleeps that long locally. A 429 met by any
of them is stored in Redis too: until its `Retry-After` moment the script hands out no
slot, every process pauses, and the schedule restarts at the pause's end (one interval
apart, not in a burst). A request that had reserved a slot before a pause and is still
waiting for it asks once more when it wakes, and waits for the pause's end if one came,
or takes a new slot if the schedule was lost meanwhile (a restart, a flush). Limiters of
one name set to different rates keep together to the lowest that any of them used in
the last two seconds.

When Redis cannot be reached (each call is bounded by `timeout`), `acquire` raises
`LimiterUnavailableError` and nothing is sent to the API; with `fallback_rate=` the
process keeps to that local rate instead, and logs one warning. Either way Redis is
tried again `retry_interval` seconds later, without a restart, and one line is logged
when it answers again; requests then waiting for a fallback slot take a shared one.
Needs the `redis` extra (redis-py with asyncio).
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Final, Self
from urllib.parse import urlsplit

from .._config import check_number
from .._limiter import SPACING_MARGIN
from .._mask import redact_url
from .._urls import MISPLACED_AT, misplaced_at
from ..errors import LimiterUnavailableError, ValidationError

try:
    import redis.asyncio as aioredis

    from ._redis_script import MICROS, SharedSchedule, Unreachable
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        'asyncgroups.contrib.redis needs redis-py: pip install "asyncgroups[redis]"'
    ) from err

__all__ = [
    "DEFAULT_NAME",
    "DEFAULT_RETRY_INTERVAL",
    "DEFAULT_TIMEOUT",
    "MIN_RATE",
    "OUTAGE_RECORD",
    "RedisLimiter",
    "check_redis_url",
    "redact_url",
]

logger = logging.getLogger("asyncgroups")

#: The name limiters share a schedule under unless told otherwise.
DEFAULT_NAME: Final = "asyncgroups"
#: Seconds one Redis call (connecting included) may take before Redis counts as down.
DEFAULT_TIMEOUT: Final = 0.5
#: Seconds after a failure before Redis is tried again.
DEFAULT_RETRY_INTERVAL: Final = 1.0
#: The lowest shared rate (requests a second): with one slot a second at most reserved
#: ahead, no limiter can hold the others of its name back by more than about 2 s.
MIN_RATE: Final = 1.0

#: The attribute set (True) on the one log record that says Redis went away, so a log
#: filter can tell it apart: `getattr(record, OUTAGE_RECORD, False)`.
OUTAGE_RECORD: Final = "asyncgroups_limiter_outage"

_SCHEMES: Final = ("redis", "rediss", "unix")
def check_redis_url(url: object) -> str:
    """`url` if redis-py can connect by it (`redis://`, `rediss://`, `unix://`), else
    `ValidationError` (field `redis`), its message showing the URL without a password."""
    if not isinstance(url, str):
        raise ValidationError(
            f"redis must be a Redis URL or a redis.asyncio.Redis client, not {type(url).__name__}",
            field="redis",
        )
    shown = redact_url(url)
    example = "like redis://localhost:6379/0"
    if misplaced_at(url):
        raise ValidationError(f"the Redis URL {MISPLACED_AT}: {shown!r}", field="redis")
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError on a port that is not a number
    except ValueError:
        raise ValidationError(
            f"not a Redis URL: {shown!r} ({example})", field="redis"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValidationError(
            f"a Redis URL starts with redis://, rediss:// or unix://, not {shown!r} ({example})",
            field="redis",
        )
    if scheme == "unix":
        if not parts.path:
            raise ValidationError(
                f"a unix:// Redis URL needs a socket path: {shown!r}", field="redis"
            )
        return url.strip()
    if not parts.hostname:
        raise ValidationError(f"the Redis URL has no host: {shown!r} ({example})", field="redis")
    if port == 0:
        raise ValidationError(f"the Redis URL's port is 0: {shown!r}", field="redis")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ValidationError(
            f"the Redis URL's database must be a number (/0, /1, ...): {shown!r}", field="redis"
        )
    return url.strip()


def _check_name(name: object) -> str:
    """`name` if it can name a shared schedule in a Redis key, else `ValidationError`."""
    if not isinstance(name, str) or not name:
        raise ValidationError("name must be a non-empty string", field="name")
    if len(name) > 200 or not all("!" <= ch <= "~" and ch not in "{}" for ch in name):
        raise ValidationError(
            "name must be at most 200 printable ASCII characters, without spaces or braces",
            field="name",
        )
    return name


class RedisLimiter:
    """A `Limiter` whose rate and cool-down are shared through Redis by every process.

    `redis` is a URL (`redis://[[user]:password@]host:6379/0`, `rediss://…`,
    `unix:///path?db=0`), connected to lazily in the event loop of first use and
    closed by `aclose()` (or leaving `async with`); or a `redis.asyncio.Redis` client,
    borrowed: used, never closed. `GroupsClient` does not close a limiter it was given
    (one limiter may serve several clients): close it yourself.

    All limiters on the same Redis and `name` share one schedule of `rate` requests a
    second and one cool-down; a different `name` is another, independent limit (use
    one per API account). `timeout` bounds each Redis call, connecting included (a URL
    client also gets it as its socket timeouts and does no retries of its own). When a
    call fails, `acquire` raises `LimiterUnavailableError` for the next
    `retry_interval` seconds, then tries Redis again; with `fallback_rate=`, it keeps
    this process to that many requests a second meanwhile instead (give each process
    its share of the account's rate). Invalid settings raise `ValidationError` at once,
    before any connection.

    A slot is reserved ahead (one round trip in the usual case), at most a second
    ahead, and is not given back when its request is cancelled or fails before going
    out: the schedule then runs slightly below `rate`, never above it. `rate` is at
    least `MIN_RATE`, so no limiter can hold the others of its name back by more than
    about two seconds. Waiting never counts against `timeout`.
    """

    __slots__ = (
        "_down_reason",
        "_down_until",
        "_fallback_interval",
        "_interval",
        "_local_next",
        "_paused_until",
        "_probe",
        "_schedule",
        "_slower_seen",
        "_tasks",
        "fallback_rate",
        "location",
        "name",
        "rate",
        "retry_interval",
        "timeout",
    )

    def __init__(
        self,
        redis: str | aioredis.Redis,
        *,
        name: str = DEFAULT_NAME,
        rate: float = 80.0,
        fallback_rate: float | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
    ) -> None:
        check_number("rate", rate, minimum=MIN_RATE)
        if fallback_rate is not None:
            check_number("fallback_rate", fallback_rate)
        check_number("timeout", timeout)
        check_number("retry_interval", retry_interval)
        #: The name the schedule is shared under.
        self.name = _check_name(name)
        #: Requests per second, all limiters of this name together.
        self.rate = float(rate)
        #: This process's own rate while Redis cannot be reached (None: raise instead).
        self.fallback_rate = float(fallback_rate) if fallback_rate is not None else None
        #: Seconds one Redis call may take.
        self.timeout = float(timeout)
        #: Seconds after a failure before Redis is tried again.
        self.retry_interval = float(retry_interval)
        if not isinstance(redis, aioredis.Redis):
            redis = check_redis_url(redis)
        self._schedule = SharedSchedule(redis, self.name, self.timeout)
        #: Where Redis is, as messages show it: never a password.
        self.location = self._schedule.location
        # Whole microseconds, rounded up: never a hair faster than the rate.
        self._interval = max(1, math.ceil((1.0 + SPACING_MARGIN) / self.rate * MICROS))
        self._fallback_interval = (
            (1.0 + SPACING_MARGIN) / self.fallback_rate if self.fallback_rate else 0.0
        )
        self._paused_until = -math.inf  # this process's view of a cool-down (loop time)
        self._local_next = -math.inf  # the fallback's own schedule (loop time)
        self._down_until = -math.inf  # Redis is not tried before then (loop time)
        self._down_reason: str | None = None  # why it is down; None while it answers
        self._probe: asyncio.Event | None = None
        self._slower_seen = False  # warned that another limiter of the name is slower
        self._tasks: set[asyncio.Task[None]] = set()

    # The Limiter protocol -------------------------------------------------------------

    async def acquire(self) -> None:
        """Wait for this request's slot in the shared schedule (and any cool-down).

        Raises `LimiterUnavailableError` when Redis cannot be reached and there is no
        `fallback_rate`.
        """
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if now < self._paused_until:
                await asyncio.sleep(self._paused_until - now)
                continue
            if self._down_reason is not None:
                probe = self._probe
                if probe is not None and self.fallback_rate is None:
                    await probe.wait()  # another request is asking Redis: its answer counts
                    continue
                if now < self._down_until or probe is not None:
                    if await self._local_turn(loop):
                        return
                    continue
            try:
                if await self._shared_turn(loop):
                    return
            except Unreachable as err:
                self._went_down(loop, err.reason)

    def release(self) -> None:
        """Nothing to give back: the slot was used when the request went."""

    def cool_down(self, seconds: float) -> None:
        """Pause this process now, and every other one through Redis (a task, at once)."""
        if not seconds > 0:
            return
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        if until > self._paused_until:
            self._paused_until = until
            self._local_next = max(self._local_next, until)
        if self._down_reason is None:
            task = loop.create_task(self._share_pause(seconds))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # Lifecycle ------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the Redis connections this limiter opened (a borrowed client stays open).

        Safe to call again; the limiter connects anew if it is used after it.
        """
        tasks = list(self._tasks)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._schedule.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        fallback = f", fallback_rate={self.fallback_rate:g}" if self.fallback_rate else ""
        return (
            f"RedisLimiter({self.location!r}, name={self.name!r}, rate={self.rate:g}{fallback})"
        )

    # Inside ---------------------------------------------------------------------------

    async def _shared_turn(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Take a slot from Redis and wait for it; False when a cool-down voided it."""
        # After an outage, one request at a time asks Redis whether it is back.
        probe = asyncio.Event() if self._down_reason is not None else None
        self._probe = probe or self._probe
        try:
            wait, epoch, reserved = await self._call("take", self._interval)
        finally:
            if probe is not None:
                self._probe = None
                probe.set()
        if self._down_reason is not None:
            logger.warning(
                "Redis at %s is reachable again; the shared rate limit %r "
                "applies again",
                self.location,
                self.name,
            )
            self._down_reason = None
        while not reserved or wait > 0:
            await asyncio.sleep(wait / MICROS)
            if loop.time() < self._paused_until:
                return False  # this process met a 429 meanwhile: wait for its end
            if not reserved:  # the schedule was too far ahead: ask for a slot now
                wait, epoch, reserved = await self._call("take", self._interval)
                continue
            # Another process may have met one: ask before going.
            wait, epoch, reserved = await self._call("confirm", self._interval, epoch)
        return True

    async def _local_turn(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Redis is down: raise, or wait for a slot of the local fallback schedule."""
        if self.fallback_rate is None:
            raise LimiterUnavailableError(
                self._unavailable_message(), backend="Redis", location=self.location
            )
        now = loop.time()
        at = max(now, self._local_next)
        self._local_next = at + self._fallback_interval
        if at > now:
            await asyncio.sleep(at - now)
            if self._down_reason is None:
                # Redis answered meanwhile: this slot is void, the shared schedule decides
                # (the local one's slots would go out on top of it).
                return False
        return loop.time() >= self._paused_until

    def _went_down(self, loop: asyncio.AbstractEventLoop, reason: str) -> None:
        """Note a failed call: no call to Redis for `retry_interval`; warn once per outage."""
        self._down_until = loop.time() + self.retry_interval
        if self._down_reason is None:
            then = (
                f"keeping to a local limit of {self.fallback_rate:g} requests/s"
                if self.fallback_rate is not None
                else "requests fail with LimiterUnavailableError (nothing is sent)"
            )
            logger.warning(
                "Redis at %s cannot be reached (%s); %s until it answers "
                "again (tried every %gs)",
                self.location,
                reason,
                then,
                self.retry_interval,
                # Marks the line a caller that stops at the first such error may leave
                # out, as the command line does: its error line says the same.
                extra={OUTAGE_RECORD: True},
            )
        self._down_reason = reason

    def _unavailable_message(self) -> str:
        # When Redis is tried again is the warning's to say: a caller that stops at
        # this error (the command line) would otherwise promise a retry it never makes.
        return (
            f"the shared rate limit {self.name!r} cannot be reached: Redis at "
            f"{self.location}: {self._down_reason}; no request was sent to the API"
        )

    async def _share_pause(self, seconds: float) -> None:
        try:
            await self._call("pause", math.ceil(seconds * MICROS))
        except Unreachable as err:
            # This process still pauses; the others meet the 429 themselves.
            logger.debug("could not share a cool-down through Redis: %s", err)

    async def _call(self, mode: str, amount: int, epoch: str = "") -> tuple[int, str, bool]:
        """Run the schedule's script: (microseconds to wait, the epoch, reserved)."""
        wait, interval, epoch, reserved = await self._schedule.call(mode, amount, epoch)
        if interval > self._interval and not self._slower_seen:
            self._slower_seen = True
            logger.warning(
                "the shared rate limit %r runs at %.4g requests/s, below this limiter's "
                "%g: another limiter of that name asked for less, and the lowest rate wins",
                self.name,
                (1.0 + SPACING_MARGIN) * MICROS / interval,
                self.rate,
            )
        return wait, epoch, reserved
