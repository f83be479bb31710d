"""Bulk operations and the client-wide limiter, over real sockets to the fake server."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from conftest import local_client

from asyncgroups import (
    BulkError,
    BulkProgress,
    GroupsClient,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    TransportError,
    ValidationError,
)
from asyncgroups.testing import FakeGroupsServer, Faults


def _client_tasks() -> set[asyncio.Task[object]]:
    """Tasks of this test and the client, leaving out the fake server's handlers."""
    return {t for t in asyncio.all_tasks() if "RequestHandler" not in repr(t.get_coro())}


def _missing_key() -> str:
    return str(uuid.uuid4())


async def test_get_many_sorts_a_mixed_batch_into_ok_missing_and_failed() -> None:
    async with FakeGroupsServer() as server:
        present = [server.add_group(name=f"g{i}") for i in range(5)]
        absent = [_missing_key() for _ in range(3)]
        keys = [present[0], absent[0], "../all", present[1], present[0], *present[2:], *absent[1:]]
        keys.append("not a key")
        seen: list[BulkProgress] = []
        async with local_client(server) as client:
            result = await client.groups.get_many(keys, on_progress=seen.append)

        assert list(result.ok) == present  # input order, duplicate once
        assert [g.name for g in result.ok.values()] == [f"g{i}" for i in range(5)]
        assert all(result.ok[k].prokey == k for k in present)
        assert result.missing == absent
        assert set(result.failed) == {"../all", "not a key"}
        assert all(isinstance(e, ValidationError) for e in result.failed.values())
        assert not result.all_ok
        # the invalid keys and the duplicate never reached the server
        gets = [r for r in server.requests if r.method == "GET"]
        assert len(gets) == len(present) + len(absent)
        assert seen[-1] == BulkProgress(done=10, total=10, failed=2, missing=3)
        assert [p.done for p in seen] == list(range(1, 11))
        with pytest.raises(BulkError) as info:
            result.raise_for_errors()
        assert len(info.value.exceptions) == 2


async def test_get_many_reads_keys_from_an_async_generator() -> None:
    async with FakeGroupsServer() as server:
        keys = [server.add_group(name=f"g{i}") for i in range(40)]

        async def produce() -> AsyncIterator[str]:
            for key in keys:
                await asyncio.sleep(0)
                yield key

        progress: list[BulkProgress] = []
        async with local_client(server) as client:
            result = await client.groups.get_many(
                produce(), concurrency=7, on_progress=progress.append
            )
        assert list(result.ok) == keys
        assert result.all_ok
        assert progress[-1].total is None  # an iterator has no known size


@pytest.mark.parametrize("op", ["get_many", "iter_many"])
async def test_bulk_call_raises_what_its_key_iterator_raised_after_the_keys_it_gave(
    op: str,
) -> None:
    async with FakeGroupsServer() as server:
        keys = [server.add_group(name=f"g{i}") for i in range(6)]

        def produce() -> Iterator[str]:
            yield from keys
            raise LookupError("the input broke")

        async def run(client: GroupsClient) -> None:
            if op == "get_many":
                await client.groups.get_many(produce(), concurrency=4)
            else:
                async for _ in client.groups.iter_many(produce(), concurrency=4):
                    pass

        async with local_client(server) as client:
            with pytest.raises(LookupError, match="the input broke"):
                await run(client)
        read = {r.path.rsplit("/", 1)[-1] for r in server.requests if r.method == "GET"}
        assert read == set(keys)  # every key it gave was read, once the input broke


async def test_iter_many_pulls_input_only_as_workers_free_up() -> None:
    async with FakeGroupsServer() as server:
        key = server.add_group(name="same")
        pulled = 0

        def produce() -> Iterator[str]:
            nonlocal pulled
            for _ in range(10_000):
                pulled += 1
                yield key

        consumed = 0
        async with local_client(server) as client:
            async for outcome in client.groups.iter_many(produce(), concurrency=4):
                assert outcome.ok
                consumed += 1
                # workers run ahead by at most their number plus the outcomes queued
                assert pulled <= consumed + 2 * 4 + 1
                if consumed == 50:
                    break
            assert pulled <= 50 + 2 * 4 + 1
            # the client is usable afterwards, with no slot left taken
            assert (await client.groups.get(key)).name == "same"
        assert client.limiter.in_flight == 0  # type: ignore[attr-defined]


async def test_iter_many_yields_every_input_key_including_duplicates() -> None:
    async with FakeGroupsServer() as server:
        key = server.add_group(name="a")
        missing = _missing_key()
        async with local_client(server) as client:
            outcomes = [o async for o in client.groups.iter_many([key, key, missing, "bad"])]
        assert sorted(o.prokey for o in outcomes) == sorted([key, key, missing, "bad"])
        by_key = {o.prokey: o for o in outcomes}
        assert by_key[missing].missing
        assert isinstance(by_key[missing].error, NotFoundError)
        assert isinstance(by_key["bad"].error, ValidationError)


async def test_concurrent_bulk_calls_share_the_client_wide_cap() -> None:
    async with FakeGroupsServer(faults=Faults(latency=0.005)) as server:
        keys = [server.add_group(name=f"g{i}") for i in range(60)]
        async with local_client(server, max_connections=5) as client:
            results = await asyncio.gather(
                client.groups.get_many(keys[:20], concurrency=20),
                client.groups.get_many(keys[20:40], concurrency=20),
                client.groups.get_many(keys[40:], concurrency=20),
                *(client.groups.get(k) for k in keys[:10]),
            )
        assert all(r.all_ok for r in results[:3])  # type: ignore[union-attr]
        assert server.peak_in_flight == 5


async def test_rate_limit_spaces_requests_across_calls() -> None:
    async with FakeGroupsServer() as server:
        keys = [server.add_group(name=f"g{i}") for i in range(21)]
        async with local_client(server, rate_limit=100.0) as client:
            started = time.monotonic()
            await asyncio.gather(
                client.groups.get_many(keys[:10]), client.groups.get_many(keys[10:])
            )
            elapsed = time.monotonic() - started
        # 21 requests evenly spaced at 100/s take at least 20 intervals
        assert elapsed >= 0.19
        assert len(server.requests) == 21


async def test_429_pauses_every_request_of_the_client_until_retry_after() -> None:
    sent_at: list[float] = []

    async def on_start(*_: object) -> None:
        sent_at.append(time.monotonic())

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with FakeGroupsServer() as server:
        keys = [server.add_group(name=f"g{i}") for i in range(12)]
        server.inject(status=429, retry_after=0.3, method="GET")
        async with local_client(server, trace_configs=[trace], max_connections=4) as client:
            first = asyncio.create_task(client.groups.get(keys[0]))
            # The clock starts when the client has read the 429, not when the server
            # sent it: the client may send in between, before it knows to pause.
            while client.stats.cool_downs == 0:
                await asyncio.sleep(0.001)
            limited_at = time.monotonic()
            # When the pause ends, read off the limiter (loop time is time.monotonic).
            resumes_at = limited_at + client.limiter.paused_for()
            result = await client.groups.get_many(keys[1:])
            await first
        assert result.all_ok
        assert client.stats.cool_downs == 1
        after = [t for t in sent_at if t > limited_at]
        assert after, "traffic resumed after the cool-down"
        assert min(after) >= resumes_at  # nothing went out during the pause
        assert resumes_at - sent_at[0] >= 0.25  # which lasted about the Retry-After (0.3 s)


async def test_cancelling_get_many_leaves_no_task_and_a_usable_client() -> None:
    async with FakeGroupsServer(faults=Faults(latency=0.5)) as server:
        keys = [server.add_group(name=f"g{i}") for i in range(20)]
        async with local_client(server, max_connections=4) as client:
            before = _client_tasks()
            task = asyncio.create_task(client.groups.get_many(keys))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert _client_tasks() <= before
            assert client.limiter.in_flight == 0  # type: ignore[attr-defined]
            server.faults = Faults()
            assert (await client.groups.get(keys[0])).name == "g0"


async def test_delete_with_a_lost_reply_is_retried_and_reported_missing() -> None:
    async with FakeGroupsServer() as server:
        keys = [server.add_group(name=f"g{i}") for i in range(3)]
        server.inject(lost_reply=True, method="DELETE", path=f"/group/{keys[1]}")
        async with local_client(server) as client:
            result = await client.groups.delete_many(keys)
        assert list(result.ok) == [keys[0], keys[2]]
        assert result.missing == [keys[1]]
        assert result.all_ok
        assert not server.groups


async def test_get_many_reports_a_persistent_server_error_as_failed() -> None:
    async with FakeGroupsServer() as server:
        good = server.add_group(name="good")
        bad = server.add_group(name="bad")
        server.inject(status=503, times=3, method="GET", path=f"/group/{bad}")
        async with local_client(server) as client:
            result = await client.groups.get_many([good, bad])
        assert list(result.ok) == [good]
        assert isinstance(result.failed[bad], ServerError)
        assert result.failed[bad].status == 503


async def test_bulk_delete_soak_accounts_for_every_key_and_agrees_with_the_server() -> None:
    faults = Faults(
        error_rate=0.10,
        reset_rate=0.015,
        lost_reply_rate=0.015,
        rate_limit=3000.0,
        burst=50,
        retry_after=0.02,
    )
    async with FakeGroupsServer(seed=7, record=False) as server:
        existing = [server.add_group(name=f"g{i}") for i in range(4500)]
        never = [_missing_key() for _ in range(500)]
        keys = existing + never
        server.faults = faults
        retry = RetryPolicy(max_attempts=6, backoff_base=0.001, backoff_max=0.02)
        async with local_client(server, retry=retry, max_connections=32) as client:
            result = await client.groups.delete_many(keys)

        accounted = [*result.ok, *result.missing, *result.failed]
        assert sorted(accounted) == sorted(keys)  # each key exactly once
        remaining = set(server.groups)
        # nothing reported deleted (or already gone) still exists
        assert not remaining & (set(result.ok) | set(result.missing))
        # whatever still exists was reported failed
        assert remaining <= set(result.failed)
        assert all(k in result.missing or k in result.failed for k in never)
        # a key fails only for the injected kinds of trouble, after every retry
        assert all(
            isinstance(e, ServerError | TransportError | RateLimitError)
            for e in result.failed.values()
        )
        assert client.stats.retries > 0
        assert len(result.ok) > 4000


async def test_iter_delete_many_streams_each_outcome_and_closing_cancels_the_rest() -> None:
    async with FakeGroupsServer() as server:
        keys = [server.add_group(name=f"g{i}") for i in range(3)]
        async with local_client(server) as client:
            stream = client.groups.iter_delete_many([*keys, keys[0]], concurrency=1)
            outcomes = [o async for o in stream]
            assert [o.prokey for o in outcomes] == [*keys, keys[0]]
            assert [o.ok for o in outcomes] == [True, True, True, False]
            assert outcomes[-1].missing  # the duplicate found its group gone

            more = [server.add_group(name=f"h{i}") for i in range(50)]
            server.faults = Faults(latency=0.05)
            async with contextlib.aclosing(
                client.groups.iter_delete_many(more, concurrency=4)
            ) as streaming:
                async for outcome in streaming:
                    assert outcome.ok
                    break
            assert client.limiter.in_flight == 0  # type: ignore[attr-defined]
            assert _client_tasks() == {asyncio.current_task()}
        # the deletes in flight when the stream closed were cancelled, not all 50 sent
        assert len(server.groups) > 40


async def test_a_huge_concurrency_starts_no_more_workers_than_there_are_keys() -> None:
    async with FakeGroupsServer() as server:
        key = server.add_group(name="g")
        async with local_client(server) as client:
            tasks_before = len(asyncio.all_tasks())
            peak = 0

            def watch(_: BulkProgress) -> None:
                nonlocal peak
                peak = max(peak, len(asyncio.all_tasks()) - tasks_before)

            result = await client.groups.get_many([key], concurrency=1_000_000, on_progress=watch)
            streamed = [o async for o in client.groups.iter_many([key], concurrency=1_000_000)]
        assert list(result.ok) == [key]
        assert [o.ok for o in streamed] == [True]
        assert peak <= 4  # a worker or two, and the server's handler


async def test_keys_of_other_types_are_failed_under_names_that_never_collide() -> None:
    async with FakeGroupsServer() as server:
        key = server.add_group(name="g")
        async with local_client(server) as client:
            result = await client.groups.get_many([1, "1", key, None])  # type: ignore[list-item]
        assert list(result.ok) == [key]
        assert list(result.failed) == ["<int 1>", "1", "<NoneType None>"]
        assert len(result) == 4


async def test_a_progress_callback_that_raises_stops_the_batch_and_is_not_called_again() -> None:
    async with FakeGroupsServer() as server:
        keys = [server.add_group(name=f"g{i}") for i in range(20)]
        calls = 0

        def explode(_: BulkProgress) -> None:
            nonlocal calls
            calls += 1
            raise RuntimeError("the callback broke")

        async with local_client(server) as client:
            with pytest.raises(RuntimeError, match="callback broke"):
                await client.groups.get_many(keys, concurrency=4, on_progress=explode)
            assert (await client.groups.get(keys[0])).name == "g0"
        assert calls == 1
        # pulling stopped at once: only the 4 reads in flight finished, then the one get
        assert len(server.requests) <= 4 + 1
