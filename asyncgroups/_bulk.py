"""Bulk work over many prokeys: bounded concurrency, lazy input, every key accounted for.

Keys are pulled from any iterable or async iterable only as workers free up, so a
generator of a million keys never has more than about `concurrency` of them in flight.
The I/O happens only through the single-key operations; the bookkeeping here (results,
progress) is plain data.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
)
from typing import Any, Generic, TypeVar

import attrs

from ._breaker import Breaker
from .errors import AsyncGroupsError, BulkError, NotFoundError, ValidationError
from .models import validate_prokey

__all__ = [
    "BulkProgress",
    "BulkResult",
    "Keys",
    "Outcome",
    "ProgressCallback",
]

T = TypeVar("T")

#: What a bulk call takes: any iterable or async iterable of prokeys.
Keys = Iterable[str] | AsyncIterable[str]


@attrs.frozen
class Outcome(Generic[T]):
    """What happened to one key: a `value`, or an `error` (a 404 is `NotFoundError`)."""

    prokey: str
    value: T | None = None
    error: AsyncGroupsError | None = None

    @property
    def ok(self) -> bool:
        """True when the operation succeeded for this key."""
        return self.error is None

    @property
    def missing(self) -> bool:
        """True when the server has no group with this key (404)."""
        return isinstance(self.error, NotFoundError)


@attrs.frozen
class BulkProgress:
    """Where a bulk call stands, passed to `on_progress` after every key."""

    #: Keys finished so far, whatever their outcome.
    done: int
    #: Distinct keys in all when the input is a sized collection, else None.
    total: int | None
    failed: int
    missing: int


ProgressCallback = Callable[[BulkProgress], Awaitable[None] | None]


@attrs.define
class BulkResult(Generic[T]):
    """The outcome of a bulk call: every distinct input key is in exactly one of the three.

    `ok` and `missing` keep input order. `failed` maps each failed key to its error
    after retries (a key that failed validation holds a `ValidationError`).
    """

    ok: dict[str, T] = attrs.field(factory=dict)
    missing: list[str] = attrs.field(factory=list)
    failed: dict[str, AsyncGroupsError] = attrs.field(factory=dict)

    @property
    def all_ok(self) -> bool:
        """True when no key failed (missing keys are not failures)."""
        return not self.failed

    def __len__(self) -> int:
        return len(self.ok) + len(self.missing) + len(self.failed)

    def raise_for_errors(self) -> None:
        """Raise `BulkError` (an ExceptionGroup of the failures) when any key failed."""
        if self.failed:
            count = len(self.failed)
            raise BulkError(
                f"{count} of {len(self)} key(s) failed", list(self.failed.values())
            )

    def __repr__(self) -> str:
        return (
            f"BulkResult(ok={len(self.ok)}, missing={len(self.missing)}, "
            f"failed={len(self.failed)})"
        )


class _Collector(Generic[T]):
    """Gathers outcomes in any order and gives them back in input order."""

    __slots__ = ("_callback", "_failed", "_missing", "_ok", "_order", "_total", "done")

    def __init__(self, total: int | None, callback: ProgressCallback | None) -> None:
        self._total = total
        self._callback = callback
        self._order: dict[str, int] = {}
        self._ok: dict[str, T] = {}
        self._missing: list[str] = []
        self._failed: dict[str, AsyncGroupsError] = {}
        self.done = 0

    def claim(self, key: str) -> bool:
        """Record `key` as seen; False when it was seen already (a duplicate)."""
        if key in self._order:
            return False
        self._order[key] = len(self._order)
        return True

    def add(self, outcome: Outcome[T]) -> None:
        """Record one key's outcome (then `report` it, when there is a callback)."""
        key = outcome.prokey
        if outcome.error is None:
            self._ok[key] = outcome.value  # type: ignore[assignment]
        elif isinstance(outcome.error, NotFoundError):
            self._missing.append(key)
        else:
            self._failed[key] = outcome.error
        self.done += 1

    @property
    def reports(self) -> bool:
        """True when a progress callback waits for each outcome."""
        return self._callback is not None

    async def report(self) -> None:
        """Call the progress callback with where the call stands now."""
        progress = BulkProgress(
            done=self.done,
            total=self._total,
            failed=len(self._failed),
            missing=len(self._missing),
        )
        callback, self._callback = self._callback, None  # not again if it raises
        assert callback is not None
        result = callback(progress)
        if inspect.isawaitable(result):
            await result
        self._callback = callback

    def result(self) -> BulkResult[T]:
        order = self._order.__getitem__
        return BulkResult(
            ok={k: self._ok[k] for k in sorted(self._ok, key=order)},
            missing=sorted(self._missing, key=order),
            failed={k: self._failed[k] for k in sorted(self._failed, key=order)},
        )


def distinct_total(keys: Keys) -> int | None:
    """The number of distinct keys when the input is a collection, else None."""
    if isinstance(keys, Collection) and not isinstance(keys, str):
        try:
            return len(set(keys))
        except TypeError:  # unhashable items: they will fail validation anyway
            return len(keys)
    return None


def check_concurrency(concurrency: int | None, default: int) -> int:
    """`concurrency`, or `default` when it is None, checked to be a positive integer.

    Raises `ValidationError` (field `concurrency`) otherwise. Public so that code built
    on the client (`asyncgroups.sync`) checks the argument by the client's own rule.
    """
    if concurrency is None:
        return default
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValidationError(
            f"concurrency must be a positive integer, not {concurrency!r}", field="concurrency"
        )
    return concurrency


_END: Any = object()


class _KeySource:
    """Hands out input keys one at a time to many workers (an async iterator is locked).

    A plain iterable's keys are taken without the lock or a coroutine (`take`): nothing
    awaits while it is read, so no worker can find it half-read (saves 5k, 1.1%).
    """

    __slots__ = ("_aiter", "_iter", "_lock", "error", "exhausted", "plain")

    def __init__(self, keys: Keys) -> None:
        if isinstance(keys, str):
            raise ValidationError(
                "pass an iterable of prokeys, not a single string", field="prokeys"
            )
        self._iter: Iterator[str] = iter(())
        self._aiter: AsyncIterator[str] | None = None
        if isinstance(keys, AsyncIterable):
            self._aiter = aiter(keys)
        elif isinstance(keys, Iterable):
            self._iter = iter(keys)
        else:
            raise ValidationError(
                f"prokeys must be an iterable or async iterable, not {type(keys).__name__}",
                field="prokeys",
            )
        #: True for a plain iterable: read it with `take`, not `next`.
        self.plain = self._aiter is None
        self._lock = asyncio.Lock()
        self.exhausted = False
        #: An exception the input itself raised; re-raised once the work in flight ends.
        self.error: BaseException | None = None

    def take(self) -> Any:
        """The next key of a plain iterable, or `_END`."""
        if self.exhausted:
            return _END
        try:
            return next(self._iter)
        except StopIteration:
            self.exhausted = True
            return _END
        except Exception as err:
            self.fail(err)
            return _END

    async def next(self) -> Any:
        """The next key, or `_END`; an async iterator is read under the lock."""
        if self.plain:
            return self.take()
        if self.exhausted:
            return _END
        try:
            async with self._lock:
                if self.exhausted:
                    return _END
                assert self._aiter is not None
                return await anext(self._aiter)
        except StopAsyncIteration:
            self.exhausted = True
            return _END
        except Exception as err:
            self.fail(err)
            return _END

    def fail(self, err: BaseException) -> None:
        """Stop handing out keys; `err` is raised once the work in flight has ended."""
        self.exhausted = True
        if self.error is None:
            self.error = err


#: Keys failed without a request between two yields to the event loop.
_SKIPS_PER_YIELD = 256


def key_name(key: object) -> str:
    """How a result names an input key: itself, or a tagged repr for a key of another type.

    The tag keeps `1` and `"1"` apart, so no input key is ever folded into another.
    """
    return key if isinstance(key, str) else f"<{type(key).__name__} {key!r}>"


async def run_one(key: object, op: Callable[[str], Awaitable[T]], breaker: Breaker) -> Outcome[T]:
    """Run `op` for one key, turning an invalid key or a failure into an `Outcome`.

    Once `breaker` has tripped, a valid key fails with its cause without a request.
    """
    name = key_name(key)
    try:
        valid = validate_prokey(key)
    except ValidationError as err:
        return Outcome(name, error=err)
    while breaker.in_doubt:
        await breaker.news()
    if (cause := breaker.skip()) is not None:
        if breaker.skipped % _SKIPS_PER_YIELD == 0:
            await asyncio.sleep(0)  # draining a long input must not starve the loop
        return Outcome(name, error=cause)
    breaker.in_flight += 1
    try:
        try:
            outcome: Outcome[T] = Outcome(name, value=await op(valid))
        except AsyncGroupsError as err:
            outcome = Outcome(name, error=err)
        breaker.observe(outcome.error)
    finally:
        breaker.landed()
    return outcome


async def collect(
    keys: Keys,
    op: Callable[[str], Awaitable[T]],
    *,
    concurrency: int,
    on_progress: ProgressCallback | None,
) -> BulkResult[T]:
    """Run `op` once per distinct key with at most `concurrency` at once; gather a result."""
    source = _KeySource(keys)
    collector: _Collector[T] = _Collector(distinct_total(keys), on_progress)
    breaker = Breaker()
    started = 0

    def grow() -> None:
        """Start one more worker while under the cap: workers never outnumber the keys."""
        nonlocal started
        if started < concurrency and not source.exhausted:
            started += 1
            group.create_task(worker())

    async def worker() -> None:
        try:
            while (key := source.take() if source.plain else await source.next()) is not _END:
                grow()
                if collector.claim(key_name(key)):
                    collector.add(await run_one(key, op, breaker))
                    if collector.reports:
                        await collector.report()
        except Exception as err:  # not a key's failure: misuse, or the callback raised
            source.fail(err)

    async with asyncio.TaskGroup() as group:
        grow()
    if source.error is not None:
        raise source.error
    return collector.result()


async def stream(
    keys: Keys, op: Callable[[str], Awaitable[T]], *, concurrency: int
) -> AsyncGenerator[Outcome[T], None]:
    """Yield one `Outcome` per input key as each completes; memory stays O(concurrency).

    Closing the generator (`aclose()`, `contextlib.aclosing`, or its garbage collection
    after leaving `async for`) cancels the work in flight.
    """
    source = _KeySource(keys)
    outcomes: asyncio.Queue[Outcome[T] | None] = asyncio.Queue(maxsize=concurrency)
    breaker = Breaker()
    workers: list[asyncio.Task[None]] = []
    live = 0

    def grow() -> None:
        """Start one more worker while under the cap: workers never outnumber the keys."""
        nonlocal live
        if len(workers) < concurrency and not source.exhausted:
            live += 1
            workers.append(asyncio.create_task(worker()))

    async def worker() -> None:
        nonlocal live
        try:
            while (key := source.take() if source.plain else await source.next()) is not _END:
                grow()
                await outcomes.put(await run_one(key, op, breaker))
        except Exception as err:  # not a key's failure: misuse of the client, say
            source.fail(err)
        live -= 1
        if live == 0:
            await outcomes.put(None)

    grow()
    try:
        while (outcome := await outcomes.get()) is not None:
            yield outcome
        if source.error is not None:
            raise source.error
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
