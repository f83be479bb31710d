"""The shared schedule's store: one Lua script in Redis, and the one way to call it.

`RedisLimiter` (in `redis.py`) decides when a request may go; this module only talks to
Redis: it connects (lazily, in the event loop of first use), runs the script within
`timeout`, and turns every failure into `Unreachable`, its reason in words without
credentials.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from .._mask import SecretMasker, redact_url, url_secrets
from ..errors import ClientStateError

__all__ = ["HORIZON_US", "MICROS", "SharedSchedule", "Unreachable"]

MICROS: Final = 1_000_000

#: How long a limiter's rate binds the others of its name after its last request: the
#: slowest rate asked for within it is the one every limiter of the name keeps to.
_RATE_MEMORY_MS: Final = 2000

#: How far ahead of now a slot may be reserved (microseconds). A request whose slot
#: would lie further ahead reserves nothing and asks again later, so a process that
#: is killed (or set to a crawl) holds back the others by at most this and one interval.
HORIZON_US: Final = 1_000_000

#: The schedule, atomically. KEYS: the schedule's next free slot, the cool-down's end
#: (both in microseconds of Redis's clock), the slowest interval asked for lately, and
#: the schedule's epoch (when it began). ARGV[1] is what to do: `take` a slot (ARGV[2]:
#: this limiter's interval) and answer {microseconds to wait for it, the interval in
#: force, the epoch}; `confirm` a slot taken earlier in epoch ARGV[4] ({0, 0, epoch}
#: unless a cool-down began meanwhile or the schedule was made anew since, by a
#: restart or a flush: then a new slot, so the slots of a lost schedule never go out
#: beside a new one's); `pause` everyone for ARGV[2] microseconds, the schedule
#: restarting at its end. A slot further ahead than ARGV[5] microseconds is not
#: reserved: the answer's fourth number is then 1, and its wait is how long until
#: asking again makes sense. The slowest interval of any limiter of the name
#: heard from within `_RATE_MEMORY_MS` is the one used, so limiters set to different
#: rates together keep to the lowest. Keys expire a second after they stop mattering.
#: Numbers are written with %.0f: Lua's own tostring keeps 14 digits, too few for
#: microseconds since 1970.
_SCRIPT: Final = """
if redis.replicate_commands then redis.replicate_commands() end -- Redis < 5: TIME, then writes
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local mode = ARGV[1]
local amount = tonumber(ARGV[2])
local pause = tonumber(redis.call('GET', KEYS[2]) or '0')
local function keep(key, value)
  redis.call('SET', key, string.format('%.0f', value), 'PX',
             string.format('%.0f', math.ceil((value - now) / 1000) + 1000))
end
if mode == 'pause' then
  local till = now + amount
  if till > pause then
    keep(KEYS[2], till)
    pause = till
  end
  local next_slot = tonumber(redis.call('GET', KEYS[1]) or '0')
  if next_slot < pause then
    keep(KEYS[1], pause)
  end
  return {0, 0, 0, 0}
end
local epoch = redis.call('GET', KEYS[4])
if mode == 'confirm' and pause <= now and epoch == ARGV[4] then
  return {0, 0, 0, 0}
end
if not epoch or redis.call('EXISTS', KEYS[1]) == 0 then
  epoch = string.format('%.0f', now)
end
local interval = amount
local slowest = tonumber(redis.call('GET', KEYS[3]) or '0')
if slowest > interval then
  interval = slowest
else
  redis.call('SET', KEYS[3], string.format('%.0f', amount), 'PX', ARGV[3])
end
local at = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'), pause)
local horizon = tonumber(ARGV[5])
if at - now > horizon then
  return {at - now - horizon, interval, epoch, 1}
end
keep(KEYS[1], at + interval)
redis.call('SET', KEYS[4], epoch, 'PX', redis.call('PTTL', KEYS[1]))
return {at - now, interval, epoch, 0}
"""


def _describe_client(client: aioredis.Redis) -> str:
    """Where a borrowed client connects, as a URL without credentials."""
    kwargs: dict[str, Any] = client.connection_pool.connection_kwargs
    db = kwargs.get("db", 0)
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={db}"
    scheme = "rediss" if "SSL" in client.connection_pool.connection_class.__name__ else "redis"
    host = str(kwargs.get("host", "localhost"))
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{kwargs.get('port', 6379)}/{db}"


class Unreachable(Exception):
    """One Redis call failed: `reason` says how, in words without credentials."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SharedSchedule:
    """The script of one schedule `name`, bound to a Redis client (made from a URL, or
    borrowed and never closed)."""

    __slots__ = ("_client", "_keys", "_loop", "_script", "_url", "location", "timeout")

    def __init__(self, redis: str | aioredis.Redis, name: str, timeout: float) -> None:
        self._client: aioredis.Redis | None
        self._url: str | None
        if isinstance(redis, aioredis.Redis):
            self._url, self._client = None, redis
            self.location = _describe_client(redis)
        else:
            self._url, self._client = redis, None
            self.location = redact_url(redis)
        self.timeout = timeout
        # A hash tag ({name}): on a Redis Cluster every key lives on one node, as the
        # script needs.
        self._keys = tuple(
            f"asyncgroups:{{{name}}}:{key}" for key in ("next", "pause", "rate", "epoch")
        )
        self._script: Callable[..., Awaitable[Any]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def aclose(self) -> None:
        """Close the client made from a URL (a borrowed one stays open); safe again."""
        client, self._script, self._loop = self._client, None, None
        if self._url is not None and client is not None:
            self._client = None
            await client.aclose()

    async def call(self, mode: str, amount: int, epoch: str = "") -> tuple[int, int, str, bool]:
        """Run the script once, within `timeout`: (microseconds to wait, the interval in
        force (0: unchanged), the schedule's epoch, whether a slot was reserved).

        Raises `Unreachable` when Redis fails.
        """
        script = self._script
        if script is None or asyncio.get_running_loop() is not self._loop:
            script = self._connect()
        reply = await self._run(script, (mode, amount, _RATE_MEMORY_MS, epoch, HORIZON_US))
        wait, interval, given = int(reply[0]), int(reply[1]), reply[2]
        if interval == 0:  # a confirmed slot, or a pause: the epoch stays as it was
            return wait, 0, epoch, True
        given_epoch = given.decode() if isinstance(given, bytes) else str(given)
        return wait, interval, given_epoch, not int(reply[3])

    async def _run(self, script: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> Any:
        refused: RedisConnectionError | None = None
        try:
            async with asyncio.timeout(self.timeout):
                pause = 0.01
                while True:
                    try:
                        return await script(keys=self._keys, args=args)
                    except RedisConnectionError as err:
                        # A pooled connection that a Redis restart broke fails once and is
                        # dropped, and a restarting Redis refuses for a moment: either may
                        # be over within `timeout`, so try again until it is spent.
                        refused = err
                        await asyncio.sleep(pause)
                        pause = min(pause * 2, 0.1)
        except TimeoutError:
            why = f": {self._reason(refused)}" if refused is not None else ""
            raise Unreachable(f"no answer within {self.timeout:g}s{why}") from None
        except (RedisError, OSError) as err:
            raise Unreachable(self._reason(err)) from None

    def _reason(self, err: BaseException) -> str:
        """What went wrong, in words: redis-py's text, the password masked (a Redis or a
        proxy echoing the AUTH command shows it) before its spaces are folded."""
        text = SecretMasker(self._secrets()).mask(str(err))
        text = " ".join(text.split()).rstrip(".") or type(err).__name__
        return f"{type(err).__name__}: {text}"

    def _secrets(self) -> list[str]:
        """The password this schedule authenticates with: its URL's, or the borrowed
        client's."""
        if self._url is not None:
            return url_secrets(self._url)
        if self._client is None:
            return []
        password = self._client.connection_pool.connection_kwargs.get("password")
        return [str(password)] if password else []

    def _connect(self) -> Callable[..., Awaitable[Any]]:
        """The script bound to the client: made now (in this loop) from the URL if needed."""
        loop = asyncio.get_running_loop()
        if self._loop is not None and loop is not self._loop:
            raise ClientStateError(
                "this RedisLimiter was used in another event loop; aclose() it there, or "
                "make one limiter per event loop"
            )
        client = self._client
        if client is None:
            assert self._url is not None
            client = aioredis.Redis.from_url(
                self._url,
                socket_connect_timeout=self.timeout,
                socket_timeout=self.timeout,
                retry=Retry(NoBackoff(), 0),  # a failed call is an outage, not a retry
            )
            self._client = client
        self._loop = loop
        self._script = cast(Callable[..., Awaitable[Any]], client.register_script(_SCRIPT))
        return self._script
