"""`Deadlines`: the pipeline's per-attempt timeout, with asyncio.timeout()'s semantics."""

from __future__ import annotations

import asyncio

import pytest

from asyncgroups._deadline import Deadlines


def _deadlines(seconds: float) -> Deadlines:
    return Deadlines(seconds, asyncio.get_running_loop())


async def test_deadline_lets_a_quick_block_finish() -> None:
    deadlines = _deadlines(1.0)
    with deadlines.watch():
        await asyncio.sleep(0)
    assert deadlines.running == 0


async def test_deadline_turns_a_slow_block_into_timeout_error() -> None:
    deadlines = _deadlines(0.01)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError) as caught, deadlines.watch():
        await asyncio.sleep(5)
    assert loop.time() - started >= 0.01
    assert isinstance(caught.value.__cause__, asyncio.CancelledError)
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # the cancellation was taken back
    assert deadlines.running == 0
    await asyncio.sleep(0)  # and the task goes on normally


async def test_deadline_times_out_only_the_slow_blocks() -> None:
    deadlines = _deadlines(0.05)

    async def block(duration: float) -> str:
        try:
            with deadlines.watch():
                await asyncio.sleep(duration)
        except TimeoutError:
            return "timeout"
        return "ok"

    results = await asyncio.gather(*(block(d) for d in (0, 0.01, 5, 0, 5, 0.02)))
    assert results == ["ok", "ok", "timeout", "ok", "timeout", "ok"]
    assert deadlines.running == 0


async def test_deadline_counts_from_each_blocks_own_start() -> None:
    """The single timer, set for an earlier block that ended, waits again for the next."""
    deadlines = _deadlines(0.05)
    loop = asyncio.get_running_loop()
    with deadlines.watch():
        pass
    await asyncio.sleep(0.03)
    started = loop.time()
    with pytest.raises(TimeoutError), deadlines.watch():
        await asyncio.sleep(5)
    assert loop.time() - started >= 0.05


async def test_deadline_passes_an_outside_cancellation_through() -> None:
    deadlines = _deadlines(5.0)

    async def victim() -> None:
        with deadlines.watch():
            await asyncio.sleep(5)

    task = asyncio.create_task(victim())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadlines.running == 0


async def test_deadline_keeps_an_outside_cancellation_that_races_the_expiry() -> None:
    deadlines = _deadlines(5.0)
    task = asyncio.current_task()
    assert task is not None

    async def expire_and_cancel() -> None:
        with deadlines.watch():
            next(iter(deadlines._running))._expire()  # the deadline passes...
            task.cancel()  # ...and someone else cancels the task as well
            await asyncio.sleep(0)

    with pytest.raises(asyncio.CancelledError):
        await expire_and_cancel()
    assert task.uncancel() == 0


async def test_deadline_outlives_no_block() -> None:
    deadlines = _deadlines(0.01)
    for _ in range(3):
        with deadlines.watch():
            await asyncio.sleep(0)
    await asyncio.sleep(0.03)  # the timer fires, finds nothing running, and stops
    assert deadlines._handle is None
    assert deadlines.running == 0


def test_deadline_needs_a_task() -> None:
    loop = asyncio.new_event_loop()
    try:
        deadlines = Deadlines(1.0, loop)
        with pytest.raises(RuntimeError, match="inside a task"):
            deadlines.watch()
    finally:
        loop.close()


async def test_deadline_transient_stops_its_timer_when_its_last_block_leaves() -> None:
    loop = asyncio.get_running_loop()
    kept, transient = Deadlines(60.0, loop), Deadlines(60.0, loop, transient=True)
    for deadlines in (kept, transient):
        with deadlines.watch(), deadlines.watch():
            await asyncio.sleep(0)
    assert kept._handle is not None  # waits to fire: the next block may reuse it
    assert transient._handle is None  # nothing left to time out, nothing holds it


async def test_deadline_transient_still_times_out_a_slow_block() -> None:
    deadlines = Deadlines(0.01, asyncio.get_running_loop(), transient=True)
    with pytest.raises(TimeoutError), deadlines.watch():
        await asyncio.sleep(5)
    assert deadlines.running == 0
