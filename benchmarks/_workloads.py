"""The client side of the benchmarks: one client's workload, in a child process.

Every measurement runs here, in a child process the runner starts, in one of two modes:

- **fresh** (`python -m benchmarks._workloads JOB`): one timed round in a new process, so
  the run inherits no heap, imports, garbage or warm pool, and `ru_maxrss` is its own
  peak. The timed region is what a one-off job pays: opening the client, every request,
  closing it (and the event loop's set-up and teardown).
- **warm** (`python -m benchmarks._workloads --warm JOB`): one process per client that
  opens the client once, runs one untimed warm-up round (lazy imports, generated
  converters, the pool's connections), then times one round each time the runner writes
  `round` on its stdin, printing one result line per round, until `stop` or end of input.
  The timed region is the requests alone, as in a long-lived service that reads batch
  after batch through one client. The runner interleaves the rounds of several warm
  children, so before each timed round an untimed priming batch of `concurrency`
  requests re-opens any pooled connection that its keep-alive timeout closed while the
  child waited: every timed warm round starts from a warm pool.

Keys are generated and garbage collected before the clock starts (except for streaming,
where the lazy generator is the point). Each batch of a warm child reads keys it has not
read before, so no cache keyed by URL makes a later round look cheaper than a real one.
Result lines start with `RESULT `; a failed warm round prints `RESULT {"error": ...}`
and the child carries on, so the runner reports the failure next to the round.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import resource
import ssl
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Final

from ._floor import open_raw_sockets

#: The API key the benchmark clients send (the static server ignores it).
API_KEY: Final = "benchmark-key"

#: Client name -> what it stands for, in table order.
CLIENTS: Final = {
    "asyncgroups": "asyncgroups get_many",
    "asyncgroups-iter": "asyncgroups iter_many",
    "asyncgroups-json": "asyncgroups get_many, without orjson (json)",
    "aiohttp-workers": "raw aiohttp (one session, N workers, one key iterator)",
    "aiohttp": "raw aiohttp (one session, semaphore, gather)",
    "httpx": "httpx AsyncClient (same limits)",
    "aiohttp-per-request": "aiohttp, a new session per request",
    "raw-sockets": "raw sockets, no HTTP library (the floor: latency-bound only)",
}

#: Modules each client needs, imported before the clock starts.
_IMPORTS: Final = {
    "asyncgroups": "asyncgroups",
    "asyncgroups-iter": "asyncgroups",
    "asyncgroups-json": "asyncgroups",
    "aiohttp-workers": "aiohttp",
    "aiohttp": "aiohttp",
    "httpx": "httpx",
    "aiohttp-per-request": "aiohttp",
    "raw-sockets": "asyncio",
}

#: Modules a client's child must run without, hidden before anything imports them:
#: asyncgroups then reads replies with the standard library's `json`, as it does where
#: the `speedups` extra is not installed.
_BLOCKED: Final = {"asyncgroups-json": ("orjson",)}

#: What a result line starts with (anything else a library prints is not ours).
RESULT_PREFIX: Final = "RESULT "


def key(i: int) -> str:
    """The `i`-th benchmark prokey: distinct and UUID-shaped, so the client accepts it."""
    return f"{i:08x}-bbbb-4ee3-99bb-6144c6a3aaaa"


def keys(n: int, start: int = 0) -> Iterator[str]:
    """`n` distinct prokeys from the `start`-th on, lazily."""
    return (key(i) for i in range(start, start + n))


def _ssl_context(cafile: str | None) -> ssl.SSLContext | None:
    return ssl.create_default_context(cafile=cafile) if cafile else None


# One client: an async context manager (opening and closing what the client pools) that
# yields a function reading one batch of keys and returning how many replies it read
# and decoded successfully.
ReadBatch = Callable[[Iterable[str]], Awaitable[int]]
ClientFactory = Callable[[dict[str, Any]], AbstractAsyncContextManager[ReadBatch]]


@contextlib.asynccontextmanager
async def _groups_client(job: dict[str, Any]) -> AsyncIterator[Any]:
    from asyncgroups import GroupsClient

    async with GroupsClient(
        API_KEY,
        base_url=job["base_url"],
        max_connections=job["concurrency"],
        rate_limit=None,  # a local server: measure the client, not the service's 80/s
        ssl_context=_ssl_context(job["cafile"]),
    ) as client:
        yield client


@contextlib.asynccontextmanager
async def open_asyncgroups(job: dict[str, Any]) -> AsyncIterator[ReadBatch]:
    async with _groups_client(job) as client:

        async def read(batch: Iterable[str]) -> int:
            result = await client.groups.get_many(batch)
            return len(result.ok)

        yield read


@contextlib.asynccontextmanager
async def open_asyncgroups_json(job: dict[str, Any]) -> AsyncIterator[ReadBatch]:
    """`get_many` as installed without orjson (the child hides it: `_BLOCKED`)."""
    from asyncgroups import _convert

    if _convert.loads is not json.loads:
        raise RuntimeError("orjson is still in use: this child must run without it")
    async with open_asyncgroups(job) as read:
        yield read


@contextlib.asynccontextmanager
async def open_asyncgroups_iter(job: dict[str, Any]) -> AsyncIterator[ReadBatch]:
    async with _groups_client(job) as client:

        async def read(batch: Iterable[str]) -> int:
            ok = 0
            async for outcome in client.groups.iter_many(batch):
                ok += outcome.ok
            return ok

        yield read


@contextlib.asynccontextmanager
async def open_aiohttp_workers(job: dict[str, Any]) -> AsyncIterator[ReadBatch]:
    """The reference: the loop an experienced aiohttp user writes for a bulk read.

    One pooled session (the API key set once, on the session), `concurrency` worker
    tasks pulling keys from one shared iterator: no task or semaphore per key, and keys
    are read lazily, as workers free up.
    """
    import aiohttp

    base, limit = job["base_url"], job["concurrency"]
    connector = aiohttp.TCPConnector(limit=limit, ssl=_ssl_context(job["cafile"]) or True)
    async with aiohttp.ClientSession(
        connector=connector, headers={"Authorization": API_KEY}
    ) as session:

        async def read(batch: Iterable[str]) -> int:
            pending = iter(batch)
            out: list[Any] = []

            async def worker() -> None:
                for prokey in pending:
                    async with session.get(f"{base}/group/{prokey}") as resp:
                        resp.raise_for_status()
                        out.append(await resp.json())

            # A TaskGroup, not gather: one failed request cancels the other workers
            # instead of leaving them reading the rest of the batch in the background.
            async with asyncio.TaskGroup() as workers:
                for _ in range(limit):
                    workers.create_task(worker())
            return sum(isinstance(body, list) for body in out)

        yield read


@contextlib.asynccontextmanager
async def open_aiohttp(job: dict[str, Any]) -> AsyncIterator[ReadBatch]:
    """The common hand loop: one session, a semaphore, and a task per key in `gather`."""
    import aiohttp

    base, limit = job["base_url"], job["concurrency"]
    connector = aiohttp.TCPConnector(limit=limit, ssl=_ssl_context(job["cafile"]) or True)
    headers = {"Authorization": API_KEY}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def read(batch: Iterable[str]) -> int:
            semaphore = asyncio.Semaphore(limit)

            async def one(prokey: str) -> bool:
                async with (
                    semaphore,
                    session.get(f"{base}/group/{prokey}", headers=headers) as resp,
                ):
                    resp.raise_for_status()
                    return isinstance(await resp.json(), list)

            results = await asyncio.gather(*(one(k) for k in batch))
            return sum(results)

        yield read


@contextlib.asynccontextmanager
async def open_httpx(job: dict[str, Any]) -> AsyncIterator[ReadBatch]:
    import httpx

    base, limit = job["base_url"], job["concurrency"]
    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
    verify: ssl.SSLContext | bool = _ssl_context(job["cafile"]) or True
    headers = {"Authorization": API_KEY}
    async with httpx.AsyncClient(limits=limits, verify=verify, timeout=30.0) as client:

        async def read(batch: Iterable[str]) -> int:
            semaphore = asyncio.Semaphore(limit)

            async def one(prokey: str) -> bool:
                async with semaphore:
                    resp = await client.get(f"{base}/group/{prokey}", headers=headers)
                    resp.raise_for_status()
                    return isinstance(resp.json(), list)

            results = await asyncio.gather(*(one(k) for k in batch))
            return sum(results)

        yield read


@contextlib.asynccontextmanager
async def open_aiohttp_per_request(job: dict[str, Any]) -> AsyncIterator[ReadBatch]:
    """The naive pattern: `async with aiohttp.ClientSession()` around every request.

    Nothing is pooled, so there is nothing to open: warm mode saves it only the imports.
    """
    import aiohttp

    base = job["base_url"]
    ssl_context = _ssl_context(job["cafile"]) or True
    headers = {"Authorization": API_KEY}

    async def read(batch: Iterable[str]) -> int:
        semaphore = asyncio.Semaphore(job["concurrency"])

        async def one(prokey: str) -> bool:
            async with (
                semaphore,
                aiohttp.ClientSession() as session,
                session.get(f"{base}/group/{prokey}", headers=headers, ssl=ssl_context) as resp,
            ):
                resp.raise_for_status()
                return isinstance(await resp.json(), list)

        results = await asyncio.gather(*(one(k) for k in batch))
        return sum(results)

    yield read


CLIENT_FACTORIES: Final[dict[str, ClientFactory]] = {
    "asyncgroups": open_asyncgroups,
    "asyncgroups-iter": open_asyncgroups_iter,
    "asyncgroups-json": open_asyncgroups_json,
    "aiohttp-workers": open_aiohttp_workers,
    "aiohttp": open_aiohttp,
    "httpx": open_httpx,
    "aiohttp-per-request": open_aiohttp_per_request,
    "raw-sockets": lambda job: open_raw_sockets(job, API_KEY),
}


async def probe_latency(job: dict[str, Any]) -> float:
    """The server's own latency: the median of sequential requests on one connection.

    With nothing else in flight this is what one request costs end to end (the server's
    delay, its timer's rounding, loopback and parsing), so `concurrency / probe` is the
    best any client can reach.
    """
    import aiohttp

    connector = aiohttp.TCPConnector(limit=1, ssl=_ssl_context(job["cafile"]) or True)
    times = []
    async with aiohttp.ClientSession(connector=connector) as session:
        for prokey in keys(job["requests"]):
            start = time.perf_counter()
            async with session.get(f"{job['base_url']}/group/{prokey}") as resp:
                await resp.read()
            times.append(time.perf_counter() - start)
    return statistics.median(times[1:] or times)  # the first one also connects


def _result(job: dict[str, Any], mode: str, ok: int, elapsed: float, cpu: float) -> dict[str, Any]:
    count = job["requests"]
    peak_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {
        "client": job["client"],
        "mode": mode,
        "requests": count,
        "ok": ok,
        "seconds": elapsed,
        "rps": count / elapsed if elapsed > 0 else 0.0,
        "cpu_seconds": cpu,
        "peak_rss_mb": peak_bytes / 1e6,
    }


def measure_fresh(job: dict[str, Any]) -> dict[str, Any]:
    """One timed round in this (new) process: open the client, read every key, close."""
    factory = CLIENT_FACTORIES[job["client"]]
    importlib.import_module(_IMPORTS[job["client"]])
    count = job["requests"]
    # Streaming reads keys from a generator; the others get a list made before timing.
    batch: Iterable[str] = keys(count) if job.get("lazy") else list(keys(count))

    async def run() -> int:
        async with factory(job) as read:
            return await read(batch)

    gc.collect()
    cpu_start = time.process_time()
    start = time.perf_counter()
    ok = asyncio.run(run())
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    return _result(job, "fresh", ok, elapsed, cpu)


def describe(err: BaseException) -> str:
    """`Type: message` of `err`, or of the first error inside an exception group."""
    while isinstance(err, BaseExceptionGroup) and err.exceptions:
        err = err.exceptions[0]
    return f"{type(err).__name__}: {err}"


def _emit(payload: dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(payload), flush=True)


async def serve_warm(job: dict[str, Any]) -> None:
    """Open the client once, warm it up, then time one round per `round` command."""
    factory = CLIENT_FACTORIES[job["client"]]
    count, concurrency = job["requests"], job["concurrency"]
    loop = asyncio.get_running_loop()
    next_key = 0

    def fresh_keys(n: int) -> list[str]:
        nonlocal next_key
        batch = list(keys(n, next_key))
        next_key += n
        return batch

    async with factory(job) as read:
        ok = await read(fresh_keys(count))  # the warm-up round: not timed
        if ok != count:
            raise RuntimeError(f"warm-up round: {ok} of {count} replies ok")
        _emit({"ready": True})
        while True:
            # Wait with the loop running, so the pool's timers behave as in a service.
            command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if command in ("", "stop"):
                break
            if command != "round":
                _emit({"error": f"unknown command {command!r}"})
                continue
            try:
                primed = await read(fresh_keys(concurrency))  # untimed: re-warm the pool
                if primed != concurrency:
                    raise RuntimeError(f"priming batch: {primed} of {concurrency} replies ok")
                batch = fresh_keys(count)
                gc.collect()
                cpu_start = time.process_time()
                start = time.perf_counter()
                ok = await read(batch)
                elapsed = time.perf_counter() - start
                cpu = time.process_time() - cpu_start
            except Exception as err:  # reported to the runner next to its round
                _emit({"error": describe(err)})
                continue
            _emit(_result(job, "warm", ok, elapsed, cpu))


def main() -> None:
    args = sys.argv[1:]
    warm = args[:1] == ["--warm"]
    job = json.loads(args[-1])
    for name in _BLOCKED.get(job.get("client", ""), ()):
        sys.modules[name] = None  # type: ignore[assignment]  # `import name` now fails
    try:
        if job.get("probe"):
            _emit({"latency_s": asyncio.run(probe_latency(job))})
        elif warm:
            asyncio.run(serve_warm(job))
        else:
            _emit(measure_fresh(job))
    except Exception as err:
        # One readable line for the runner (the traceback still goes to stderr).
        _emit({"error": describe(err)})
        raise


if __name__ == "__main__":
    main()
