"""The client limiter: in-flight cap, rate spacing, cool-down. Time is moved, not slept."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Awaitable
from typing import TYPE_CHECKING

import pytest
from conftest import settle

from asyncgroups import ClientLimiter, Limiter
from asyncgroups._limiter import SPACING_MARGIN, CappedLimiter

if TYPE_CHECKING:
    from conftest import FakeClock


def _start(aw: Awaitable[None]) -> asyncio.Task[None]:
    async def run() -> None:
        await aw

    return asyncio.create_task(run())


# Config -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_in_flight", "rate"),
    [(0, None), (-1, None), (1, 0.0), (1, -2.0), (1, math.inf), (1, math.nan)],
)
def test_client_limiter_rejects_bad_config(max_in_flight: int, rate: float | None) -> None:
    with pytest.raises(ValueError, match="must be"):
        ClientLimiter(max_in_flight, rate)


def test_client_limiter_satisfies_the_limiter_protocol() -> None:
    assert isinstance(ClientLimiter(1), Limiter)


# In-flight cap ----------------------------------------------------------------------


async def test_limiter_caps_requests_in_flight() -> None:
    limiter = ClientLimiter(2)
    await limiter.acquire()
    await limiter.acquire()
    third = _start(limiter.acquire())
    await settle()
    assert not third.done()
    assert limiter.in_flight == 2

    limiter.release()
    await settle()
    assert third.done()
    assert limiter.in_flight == 2
    limiter.release()
    limiter.release()
    assert limiter.in_flight == 0


async def test_limiter_hands_free_slots_out_in_arrival_order() -> None:
    limiter = ClientLimiter(1)
    await limiter.acquire()
    order: list[int] = []

    async def take(n: int) -> None:
        await limiter.acquire()
        order.append(n)

    tasks = [asyncio.create_task(take(n)) for n in range(3)]
    await settle()
    for _ in range(3):
        limiter.release()
        await settle()
    assert order == [0, 1, 2]
    await asyncio.gather(*tasks)


# Rate -------------------------------------------------------------------------------


async def test_limiter_spaces_requests_by_the_rate(clock: FakeClock) -> None:
    limiter = ClientLimiter(10, rate=4.0)  # one every 0.25 s, and the jitter margin
    start = clock.now
    passed: list[float] = []

    async def request() -> None:
        await limiter.acquire()
        passed.append(clock.now - start)
        limiter.release()

    tasks = [asyncio.create_task(request()) for _ in range(4)]
    await settle()
    for _ in range(100):
        await clock.advance(0.01)
    await asyncio.gather(*tasks)
    turn = 0.25 * (1 + SPACING_MARGIN)
    assert passed == pytest.approx([0.0, turn, 2 * turn, 3 * turn], abs=0.0101)


async def test_limiter_never_lets_more_than_the_rate_into_one_second(clock: FakeClock) -> None:
    # 80 a second, asked for by 300 waiters at once: any one-second window of the
    # times they pass holds at most 80, with room for the server's clock to differ.
    limiter = ClientLimiter(300, rate=80.0)
    start = clock.now
    passed: list[float] = []

    async def request() -> None:
        await limiter.acquire()
        passed.append(clock.now - start)

    tasks = [asyncio.create_task(request()) for _ in range(300)]
    await settle()
    while not all(task.done() for task in tasks):
        await clock.advance(0.001)
    assert len(passed) == 300
    for i in range(len(passed) - 80):
        assert passed[i + 80] - passed[i] >= 1.0  # so [t, t + 1) never holds 81


async def test_limiter_rate_does_not_save_up_a_burst_while_idle(clock: FakeClock) -> None:
    limiter = ClientLimiter(10, rate=2.0)  # one every 0.5 s
    await limiter.acquire()
    limiter.release()
    await clock.advance(60)  # a long quiet spell

    await limiter.acquire()  # the first after the pause goes at once ...
    second = _start(limiter.acquire())
    await clock.advance(0.5)
    assert not second.done()  # ... but the next still waits its turn
    await clock.advance(0.5 * SPACING_MARGIN + 0.001)
    assert second.done()


async def test_limiter_without_rate_never_waits_for_time(clock: FakeClock) -> None:
    limiter = ClientLimiter(5)
    for _ in range(5):
        await limiter.acquire()
    assert clock.now == 1000.0


async def test_limiter_cancelled_wait_gives_its_slot_back(clock: FakeClock) -> None:
    limiter = ClientLimiter(2, rate=1.0)
    await limiter.acquire()
    waiting = _start(limiter.acquire())  # holds the second slot while it waits for its turn
    await settle()
    assert limiter.in_flight == 2
    waiting.cancel()
    await settle()
    assert waiting.cancelled()
    assert limiter.in_flight == 1


# Cool-down --------------------------------------------------------------------------


async def test_limiter_cool_down_holds_new_acquires(clock: FakeClock) -> None:
    limiter = ClientLimiter(10)
    limiter.cool_down(5.0)
    assert limiter.paused_for() == 5.0

    held = _start(limiter.acquire())
    await clock.advance(4.9)
    assert not held.done()
    assert limiter.paused_for() == pytest.approx(0.1)
    await clock.advance(0.2)
    assert held.done()
    assert limiter.paused_for() == 0.0


async def test_limiter_cool_down_holds_every_caller(clock: FakeClock) -> None:
    limiter = ClientLimiter(10)
    limiter.cool_down(1.0)
    held = [_start(limiter.acquire()) for _ in range(3)]
    await clock.advance(0.5)
    assert not any(t.done() for t in held)
    await clock.advance(0.6)
    assert all(t.done() for t in held)


async def test_limiter_cool_down_is_never_shortened(clock: FakeClock) -> None:
    limiter = ClientLimiter(1)
    limiter.cool_down(5.0)
    limiter.cool_down(1.0)
    assert limiter.paused_for() == 5.0
    limiter.cool_down(8.0)
    assert limiter.paused_for() == 8.0


@pytest.mark.parametrize("seconds", [0.0, -3.0])
async def test_limiter_cool_down_of_nothing_does_not_pause(
    clock: FakeClock, seconds: float
) -> None:
    limiter = ClientLimiter(1)
    limiter.cool_down(seconds)
    assert limiter.paused_for() == 0.0
    await limiter.acquire()


async def test_limiter_cool_down_applies_to_a_request_waiting_for_its_rate_turn(
    clock: FakeClock,
) -> None:
    limiter = ClientLimiter(10, rate=1.0)
    await limiter.acquire()
    waiting = _start(limiter.acquire())  # its turn is at +1 s
    await clock.advance(0.5)
    limiter.cool_down(2.0)  # a 429 arrives: nothing new before +2.5 s
    await clock.advance(0.6)
    assert not waiting.done()
    await clock.advance(1.5)
    assert waiting.done()


async def test_limiter_spaces_the_requests_held_by_a_cool_down_at_the_rate(
    clock: FakeClock,
) -> None:
    limiter = ClientLimiter(32, rate=10.0)
    started = clock.now
    done_at: dict[int, float] = {}

    async def take(n: int) -> None:
        await limiter.acquire()
        done_at[n] = clock.now - started

    tasks = [asyncio.create_task(take(n)) for n in range(6)]
    await settle()
    limiter.cool_down(1.0)  # a 429 while the queue waits for its rate turns
    for _ in range(40):
        await clock.advance(0.05)
    await asyncio.gather(*tasks)
    after = sorted(t for t in done_at.values() if t >= 1.0)
    assert after, "the held requests went out after the pause"
    gaps = [b - a for a, b in itertools.pairwise(after)]
    # one interval apart, never a burst at the end of the pause
    assert all(gap >= 0.1 - 1e-9 for gap in gaps)


# The rate counts when a request really went out -------------------------------------


async def test_limiter_counts_a_late_connection_when_it_went_out(clock: FakeClock) -> None:
    # Two a second. The first request's connection takes 0.9 s (a slow TLS handshake),
    # so it reaches the server at 0.9; the third may not go before 1.9, though its
    # evenly spaced turn would be at about 1.01.
    limiter = ClientLimiter(10, rate=2.0)
    start = clock.now
    went: dict[str, float] = {}

    async def request(name: str, connecting: float) -> None:
        await limiter.acquire(reporting=True)
        ready_at = clock.now + connecting
        while clock.now < ready_at:
            await asyncio.sleep(0)
        limiter.connected()
        went[name] = clock.now - start

    tasks = [asyncio.create_task(request(name, 0.9 if name == "a" else 0.0)) for name in "abc"]
    while len(went) < 3 and clock.now - start < 5:
        await clock.advance(0.01)
    await asyncio.gather(*tasks)
    assert went["a"] == pytest.approx(0.9, abs=0.021)
    assert went["b"] == pytest.approx(0.505, abs=0.021)
    assert went["c"] == pytest.approx(went["a"] + 1 + SPACING_MARGIN, abs=0.021)


async def test_limiter_does_not_count_a_request_that_never_went_out(clock: FakeClock) -> None:
    # A request that could not connect never reached the server: the next one waits
    # only for the even spacing, not for the one-second window.
    limiter = ClientLimiter(10, rate=1.0)
    await limiter.acquire(reporting=True)
    limiter.release()  # no connected(): the connection failed
    second = _start(limiter.acquire(reporting=True))
    await clock.advance(1.0 + SPACING_MARGIN + 0.001)
    assert second.done()
    limiter.connected()
    limiter.release()


async def test_limiter_without_reports_counts_a_request_as_sent_on_acquire(
    clock: FakeClock,
) -> None:
    # What the Limiter protocol's callers get (a borrowed session, a custom pipeline).
    limiter = ClientLimiter(10, rate=1.0)
    await limiter.acquire()
    limiter.release()
    second = _start(limiter.acquire())
    await clock.advance(1.0)
    assert not second.done()
    await clock.advance(SPACING_MARGIN + 0.001)
    assert second.done()


# The client's own cap in front of another limiter --------------------------------


class _Recording:
    """A limiter that only counts, for `CappedLimiter`; `fail` makes acquire raise."""

    def __init__(self) -> None:
        self.acquired = self.released = 0
        self.cooled: list[float] = []
        self.fail: Exception | None = None

    async def acquire(self) -> None:
        if self.fail is not None:
            raise self.fail
        self.acquired += 1

    def release(self) -> None:
        self.released += 1

    def cool_down(self, seconds: float) -> None:
        self.cooled.append(seconds)


async def test_capped_limiter_caps_in_flight_and_passes_the_rest_on() -> None:
    inner = _Recording()
    capped = CappedLimiter(inner, 2)
    await capped.acquire()
    await capped.acquire()
    third = _start(capped.acquire())
    await settle()
    assert not third.done()
    assert (inner.acquired, capped.in_flight) == (2, 2)  # the slot first, then the pacing

    capped.release()
    await settle()
    assert third.done()
    assert (inner.acquired, inner.released) == (3, 1)
    capped.cool_down(1.5)
    assert inner.cooled == [1.5]


async def test_capped_limiter_gives_the_slot_back_when_the_inner_limiter_raises() -> None:
    inner = _Recording()
    inner.fail = RuntimeError("store down")
    capped = CappedLimiter(inner, 1)
    with pytest.raises(RuntimeError, match="store down"):
        await capped.acquire()
    assert capped.in_flight == 0
    inner.fail = None
    await capped.acquire()  # the one slot is free again
    assert capped.in_flight == 1


def test_capped_limiter_rejects_a_cap_below_one() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        CappedLimiter(_Recording(), 0)
