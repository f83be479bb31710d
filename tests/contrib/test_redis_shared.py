"""The shared limiter against a real redis-server, with clients reading a fake API.

Each test uses a limiter name of its own, so tests on the session's Redis never share a
schedule. Rates are low (tens a second) so each test runs in a second or two.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from conftest import local_client, steady_clock

from asyncgroups import ClientStateError, GroupsClient, LimiterUnavailableError, RateLimitError
from asyncgroups.contrib.redis import RedisLimiter
from asyncgroups.testing import FakeGroupsServer

from .conftest import RedisServer


def _name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def _most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    return max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))


def _arrivals(server: FakeGroupsServer) -> list[float]:
    return sorted(r.received_at for r in server.requests)


@contextlib.asynccontextmanager
async def _shared_client(
    server: FakeGroupsServer, url: str, name: str, **options: object
) -> AsyncIterator[GroupsClient]:
    """A client for `server` whose rate and cool-down come from Redis at `url`."""
    limiter = RedisLimiter(url, name=name, **options)  # type: ignore[arg-type]
    async with limiter, local_client(server, limiter=limiter, rate_limit=None) as client:
        yield client


async def test_two_clients_on_one_name_never_exceed_the_shared_rate(
    redis_server: RedisServer,
) -> None:
    rate = 40.0
    name = _name()
    async with FakeGroupsServer() as server:
        keys = [server.add_group(f"g{n}") for n in range(60)]
        with steady_clock():
            async with (
                _shared_client(server, redis_server.url, name, rate=rate) as first,
                _shared_client(server, redis_server.url, name, rate=rate) as second,
            ):
                started = time.monotonic()
                results = await asyncio.gather(
                    first.groups.get_many(keys[:30], concurrency=16),
                    second.groups.get_many(keys[30:], concurrency=16),
                )
                took = time.monotonic() - started

        assert all(len(r.ok) == 30 for r in results)
        assert first.stats.requests == second.stats.requests == 30
        arrivals = _arrivals(server)
        assert _most_in_one_second(arrivals) <= rate * 1.1
        # One schedule for both, evenly spaced: 59 gaps of 1/40 s (and the 1% margin).
        assert took >= 59 / rate
        assert arrivals[-1] - arrivals[0] < 59 / rate * 1.2


async def test_a_429_met_by_one_client_pauses_every_client_of_the_name(
    redis_server: RedisServer,
) -> None:
    rate = 60.0
    name = _name()
    async with FakeGroupsServer() as server:
        keys = [server.add_group(f"g{n}") for n in range(56)]
        with steady_clock():
            async with (
                _shared_client(server, redis_server.url, name, rate=rate) as first,
                _shared_client(server, redis_server.url, name, rate=rate) as second,
            ):
                job = asyncio.gather(
                    first.groups.get_many(keys[:28], concurrency=16),
                    second.groups.get_many(keys[28:], concurrency=16),
                )
                await asyncio.sleep(0.4)  # both well under way, slots reserved ahead
                server.inject(status=429, retry_after=1)
                results = await job

        assert all(len(r.ok) == 28 for r in results)
        assert first.stats.cool_downs + second.stats.cool_downs == 1
        (limited,) = [r for r in server.requests if r.fault == "429"]
        hit = limited.received_at
        # Requests already on their way when the 429 was answered may land just after it;
        # after that, nothing from either client until the pause's end, a second later.
        during = [t for t in _arrivals(server) if hit + 0.05 < t < hit + 0.98]
        assert during == []
        after = [t for t in _arrivals(server) if t >= hit + 0.98]
        assert after, "traffic resumes after the pause"
        # ...evenly spaced again, not in a burst of everything that waited.
        assert _most_in_one_second(after) <= rate * 1.1


async def test_a_stop_is_each_clients_own_and_sends_nothing_until_the_moment(
    redis_server: RedisServer,
) -> None:
    name = _name()
    async with FakeGroupsServer() as server:
        keys = [server.add_group(f"g{n}") for n in range(200)]
        server.inject(status=429, retry_after=120, times=len(keys))  # over max_retry_after
        async with (
            _shared_client(server, redis_server.url, name, rate=50.0) as first,
            _shared_client(server, redis_server.url, name, rate=50.0) as second,
        ):
            result = await first.groups.get_many(keys, concurrency=8)
            sent_by_first = len(server.requests)
            # Not shared through Redis: the other client meets the 429 once, itself.
            for _ in range(3):
                with pytest.raises(RateLimitError) as info:
                    await second.groups.get(keys[0])
                assert info.value.client_stopped
        assert len(server.requests) == sent_by_first + 1

    assert len(result.failed) == 200
    assert all(isinstance(e, RateLimitError) for e in result.failed.values())
    assert sent_by_first <= 8  # the first wave at most: the client stopped at the first reply


async def test_another_name_is_not_held_by_the_first(
    redis_server: RedisServer, sleeps: list[float]
) -> None:
    async with (
        RedisLimiter(redis_server.url, name=_name(), rate=2.0) as slow,
        RedisLimiter(redis_server.url, name=_name(), rate=1000.0) as fast,
    ):
        await slow.acquire()
        waiting = [asyncio.create_task(slow.acquire()) for _ in range(5)]  # 2.5 s of slots
        slow.cool_down(5.0)
        while sum(wait > 1 for wait in sleeps) < len(waiting):
            await asyncio.sleep(0)  # until each waiter sleeps through the pause

        sleeps.clear()
        for _ in range(20):
            await fast.acquire()
            fast.release()
        assert sum(sleeps) < 0.5  # its own 1 ms slots, not the other name's pause


        assert not any(task.done() for task in waiting)
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)


async def test_waiting_for_the_shared_limit_does_not_count_against_the_timeout(
    redis_server: RedisServer,
) -> None:
    async with FakeGroupsServer() as server:
        keys = [server.add_group(f"g{n}") for n in range(8)]
        async with RedisLimiter(redis_server.url, name=_name(), rate=10.0) as limiter:
            client = GroupsClient(
                server.api_key, base_url=server.url, limiter=limiter, timeout=0.2, retry=None
            )
            async with client:
                started = time.monotonic()
                result = await client.groups.get_many(keys, concurrency=8)
                took = time.monotonic() - started

        assert len(result.ok) == 8  # the last waited about 0.7 s for its slot: no timeout
        assert took > 0.65


async def test_client_cap_still_bounds_requests_in_flight(redis_server: RedisServer) -> None:
    async with FakeGroupsServer() as server:
        keys = [server.add_group(f"g{n}") for n in range(30)]
        server.inject(delay=0.05, times=30)
        async with _shared_client(server, redis_server.url, _name(), rate=10_000.0) as client:
            assert client.max_connections == 32
            limited = local_client(
                server, limiter=client.limiter, rate_limit=None, max_connections=3
            )
            async with limited:
                result = await limited.groups.get_many(keys, concurrency=30)
        assert len(result.ok) == 30
        assert server.peak_in_flight == 3


async def test_redis_down_fails_calls_with_a_typed_error_and_sends_nothing(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = own_redis.url
    async with FakeGroupsServer() as server:
        keys = [server.add_group(f"g{n}") for n in range(200)]
        async with _shared_client(
            server, url, _name(), rate=1000.0, retry_interval=0.2
        ) as client:
            await client.groups.get(keys[0])
            own_redis.stop()
            sent = len(server.requests)

            with pytest.raises(LimiterUnavailableError) as info:
                await client.groups.get(keys[1])
            assert info.value.backend == "Redis"
            assert info.value.location == url
            assert f"Redis at {url}" in str(info.value)
            assert "no request was sent" in str(info.value)

            # A bulk call stops at once: every key failed with that error, none sent;
            # past its first wave, without asking Redis again.
            result = await client.groups.get_many(keys)
            assert len({id(error) for error in result.failed.values()}) <= 32
            assert len(result.failed) == 200
            assert all(isinstance(e, LimiterUnavailableError) for e in result.failed.values())
            assert len(server.requests) == sent

            own_redis.start()
            await asyncio.sleep(0.25)  # past retry_interval: Redis is tried again
            again = await client.groups.get_many(keys)
            assert len(again.ok) == 200

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([m for m in warnings if "cannot be reached" in m]) == 1
    assert len([m for m in warnings if "reachable again" in m]) == 1


async def test_limiter_error_never_shows_the_redis_password(own_redis: RedisServer) -> None:
    url = own_redis.url.replace("redis://", "redis://app:sekret@")
    own_redis.stop()
    async with RedisLimiter(url, name=_name()) as limiter:
        with pytest.raises(LimiterUnavailableError) as info:
            await limiter.acquire()
    text = str(info.value)
    assert "sekret" not in text
    assert "redis://app:***@127.0.0.1" in text
    assert "sekret" not in repr(info.value.__cause__) + str(info.value.__context__)


async def test_fallback_keeps_the_job_going_at_the_local_rate_and_returns_to_redis(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    name = _name()
    fallback = 20.0
    async with FakeGroupsServer() as server:
        keys = [server.add_group(f"g{n}") for n in range(50)]
        stopped = restarted = 0.0
        outcomes = 0
        async with _shared_client(
            server, own_redis.url, name, rate=500.0, fallback_rate=fallback, retry_interval=0.2
        ) as client, contextlib.aclosing(
            client.groups.iter_many(keys, concurrency=8)
        ) as stream:
            async for outcome in stream:
                assert outcome.ok
                outcomes += 1
                if outcomes == 10:
                    own_redis.stop()
                    stopped = time.monotonic()
                elif outcomes == 30:
                    own_redis.start()
                    restarted = time.monotonic()
        ended = time.monotonic()

        assert outcomes == 50
        during = [t for t in _arrivals(server) if stopped + 0.05 < t < restarted]
        assert len(during) >= 15
        assert _most_in_one_second(during) <= fallback * 1.1
        # Back on the shared schedule (500/s): the last 20 did not take 1 s at 20/s.
        assert ended - restarted < 0.7

        check = aioredis.Redis.from_url(own_redis.url)
        async with check:
            assert await check.exists(f"asyncgroups:{{{name}}}:next") == 1

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    down = [m for m in warnings if "cannot be reached" in m]
    assert len(down) == 1
    assert "local limit of 20 requests/s" in down[0]
    assert len([m for m in warnings if "reachable again" in m]) == 1


def test_limiter_belongs_to_one_event_loop_until_closed(redis_server: RedisServer) -> None:
    limiter = RedisLimiter(redis_server.url, name=_name(), rate=1000.0)
    first = asyncio.new_event_loop()
    try:
        first.run_until_complete(limiter.acquire())

        async def elsewhere() -> None:
            await limiter.acquire()

        with pytest.raises(ClientStateError, match="another event loop"):
            asyncio.run(elsewhere())
        first.run_until_complete(limiter.aclose())
    finally:
        first.close()

    async def use_and_close() -> None:
        await limiter.acquire()  # closed before: it connects anew in this loop
        await limiter.aclose()

    asyncio.run(use_and_close())


async def test_a_quick_redis_restart_is_not_an_outage(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeGroupsServer() as server:
        keys = [server.add_group(f"g{n}") for n in range(200)]
        async with _shared_client(server, own_redis.url, _name(), rate=2000.0) as client:
            warm = await client.groups.get_many(keys[:64], concurrency=16)
            assert len(warm.ok) == 64  # 16 pooled connections to this Redis
            own_redis.stop()
            own_redis.start()  # answering again before the next request
            result = await client.groups.get_many(keys, concurrency=16)

    assert len(result.ok) == 200, result.failed
    assert not [r for r in caplog.records if "cannot be reached" in r.getMessage()]


async def test_returning_from_the_fallback_does_not_send_its_queue_on_top_of_the_shared_rate(
    own_redis: RedisServer,
) -> None:
    rate, fallback = 100.0, 50.0
    async with FakeGroupsServer() as server:
        keys = [server.add_group(f"g{n}") for n in range(260)]
        restarted = 0.0
        async with _shared_client(
            server, own_redis.url, _name(), rate=rate, fallback_rate=fallback, retry_interval=0.1
        ) as client, contextlib.aclosing(
            client.groups.iter_many(keys, concurrency=32)
        ) as stream:
            done = 0
            async for outcome in stream:
                assert outcome.ok
                done += 1
                if done == 20:
                    own_redis.stop()  # 32 requests then queue up to 0.64 s ahead locally
                elif done == 60:
                    own_redis.start()
                    restarted = time.monotonic()

    after = [t for t in _arrivals(server) if t >= restarted]
    assert len(after) >= 150
    assert _most_in_one_second(after) <= rate * 1.1


async def test_a_schedule_flushed_mid_job_is_not_exceeded(redis_server: RedisServer) -> None:
    rate = 50.0
    name = _name()
    async with FakeGroupsServer() as server:
        keys = [server.add_group(f"g{n}") for n in range(120)]
        with steady_clock():
            async with (
                _shared_client(server, redis_server.url, name, rate=rate) as first,
                _shared_client(server, redis_server.url, name, rate=rate) as second,
                aioredis.Redis.from_url(redis_server.url) as admin,
            ):
                job = asyncio.gather(
                    first.groups.get_many(keys[:60], concurrency=16),
                    second.groups.get_many(keys[60:], concurrency=16),
                )
                await asyncio.sleep(0.5)  # 32 slots reserved up to 0.64 s ahead
                # The schedule is gone, as after a restart without persistence.
                await admin.delete(*(f"asyncgroups:{{{name}}}:{k}" for k in ("next", "rate")))
                results = await job

    assert all(len(r.ok) == 60 for r in results)
    assert _most_in_one_second(_arrivals(server)) <= rate * 1.1


async def test_limiters_of_one_name_at_different_rates_keep_to_the_lowest(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    slow, fast = 40.0, 400.0
    name = _name()
    async with FakeGroupsServer() as server:
        keys = [server.add_group(f"g{n}") for n in range(70)]
        with steady_clock():
            async with (
                _shared_client(server, redis_server.url, name, rate=slow) as first,
                _shared_client(server, redis_server.url, name, rate=fast) as second,
            ):
                await first.groups.get(keys[0])  # the slow one is heard from first
                results = await asyncio.gather(
                    first.groups.get_many(keys[1:35], concurrency=16),
                    second.groups.get_many(keys[35:], concurrency=16),
                )

    assert all(len(r.ok) >= 34 for r in results)
    assert _most_in_one_second(_arrivals(server)) <= slow * 1.1
    warned = [r.getMessage() for r in caplog.records if "lowest rate wins" in r.getMessage()]
    assert len(warned) == 1
    assert "below this limiter's 400" in warned[0]


async def test_a_crawling_limiter_that_dies_holds_the_others_back_two_seconds_at_most(
    redis_server: RedisServer, sleeps: list[float]
) -> None:
    name = _name()
    async with (
        RedisLimiter(redis_server.url, name=name, rate=1.0) as crawling,
        RedisLimiter(redis_server.url, name=name, rate=200.0) as other,
    ):
        # Twenty requests of a process at 1/s ask for slots; then the process dies.
        asking = [asyncio.create_task(crawling.acquire()) for _ in range(20)]
        await asyncio.sleep(0.2)
        for task in asking:
            task.cancel()
        await asyncio.gather(*asking, return_exceptions=True)

        sleeps.clear()
        for _ in range(5):
            await other.acquire()
            other.release()
        # The waits the limiter chose: not the twenty seconds the crawler's requests
        # would have reserved.
        assert sum(sleeps) < 3.5
