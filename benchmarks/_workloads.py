"""The client side of the benchmarks: one workload, one client, in a fresh process.

Each measurement runs here, in a child process of its own, so no run inherits another's
heap, imports, garbage or warm connection pool, and `ru_maxrss` is the run's own peak.
The child reads one JSON job from its argument and prints one JSON result line.

The timed region is what a user's job pays: opening the client, every request, and
closing it. Keys are generated before the clock starts (except for streaming, where the
lazy generator is the point).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import resource
import ssl
import statistics
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Final

#: The API key the benchmark clients send (the static server ignores it).
API_KEY: Final = "benchmark-key"

#: Client name -> what it stands for, in table order.
CLIENTS: Final = {
    "asyncgroups": "asyncgroups get_many",
    "asyncgroups-iter": "asyncgroups iter_many",
    "aiohttp": "raw aiohttp (one session, semaphore, gather)",
    "httpx": "httpx AsyncClient (same limits)",
    "aiohttp-per-request": "aiohttp, a new session per request",
}


def key(i: int) -> str:
    """The `i`-th benchmark prokey: distinct and UUID-shaped, so the client accepts it."""
    return f"{i:08x}-bbbb-4ee3-99bb-6144c6a3aaaa"


def keys(n: int) -> Iterator[str]:
    """`n` distinct prokeys, lazily."""
    return (key(i) for i in range(n))


def _ssl_context(cafile: str | None) -> ssl.SSLContext | None:
    return ssl.create_default_context(cafile=cafile) if cafile else None


# Each workload returns how many replies it read and decoded successfully.
Workload = Callable[[dict[str, Any]], Coroutine[Any, Any, int]]


async def run_asyncgroups(job: dict[str, Any]) -> int:
    from asyncgroups import GroupsClient

    async with GroupsClient(
        API_KEY,
        base_url=job["base_url"],
        max_connections=job["concurrency"],
        rate_limit=None,  # a local server: measure the client, not the service's 80/s
        ssl_context=_ssl_context(job["cafile"]),
    ) as client:
        result = await client.groups.get_many(job["keys"])
    return len(result.ok)


async def run_asyncgroups_iter(job: dict[str, Any]) -> int:
    from asyncgroups import GroupsClient

    ok = 0
    async with GroupsClient(
        API_KEY,
        base_url=job["base_url"],
        max_connections=job["concurrency"],
        rate_limit=None,  # a local server: measure the client, not the service's 80/s
        ssl_context=_ssl_context(job["cafile"]),
    ) as client:
        async for outcome in client.groups.iter_many(job["keys"]):
            ok += outcome.ok
    return ok


async def run_aiohttp(job: dict[str, Any]) -> int:
    """The reference: what a careful user writes by hand with aiohttp."""
    import aiohttp

    base, limit = job["base_url"], job["concurrency"]
    semaphore = asyncio.Semaphore(limit)
    connector = aiohttp.TCPConnector(limit=limit, ssl=_ssl_context(job["cafile"]) or True)
    headers = {"Authorization": API_KEY}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(prokey: str) -> bool:
            async with (
                semaphore,
                session.get(f"{base}/group/{prokey}", headers=headers) as resp,
            ):
                resp.raise_for_status()
                return isinstance(await resp.json(), list)

        results = await asyncio.gather(*(one(k) for k in job["keys"]))
    return sum(results)


async def run_httpx(job: dict[str, Any]) -> int:
    import httpx

    base, limit = job["base_url"], job["concurrency"]
    semaphore = asyncio.Semaphore(limit)
    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
    verify: ssl.SSLContext | bool = _ssl_context(job["cafile"]) or True
    headers = {"Authorization": API_KEY}
    async with httpx.AsyncClient(limits=limits, verify=verify, timeout=30.0) as client:

        async def one(prokey: str) -> bool:
            async with semaphore:
                resp = await client.get(f"{base}/group/{prokey}", headers=headers)
                resp.raise_for_status()
                return isinstance(resp.json(), list)

        results = await asyncio.gather(*(one(k) for k in job["keys"]))
    return sum(results)


async def run_aiohttp_per_request(job: dict[str, Any]) -> int:
    """The naive pattern: `async with aiohttp.ClientSession()` around every request."""
    import aiohttp

    base = job["base_url"]
    semaphore = asyncio.Semaphore(job["concurrency"])
    ssl_context = _ssl_context(job["cafile"]) or True
    headers = {"Authorization": API_KEY}

    async def one(prokey: str) -> bool:
        async with (
            semaphore,
            aiohttp.ClientSession() as session,
            session.get(f"{base}/group/{prokey}", headers=headers, ssl=ssl_context) as resp,
        ):
            resp.raise_for_status()
            return isinstance(await resp.json(), list)

    results = await asyncio.gather(*(one(k) for k in job["keys"]))
    return sum(results)


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


WORKLOADS: Final[dict[str, Workload]] = {
    "asyncgroups": run_asyncgroups,
    "asyncgroups-iter": run_asyncgroups_iter,
    "aiohttp": run_aiohttp,
    "httpx": run_httpx,
    "aiohttp-per-request": run_aiohttp_per_request,
}


#: Modules each client needs, imported before the clock starts.
_IMPORTS: Final = {
    "asyncgroups": "asyncgroups",
    "asyncgroups-iter": "asyncgroups",
    "aiohttp": "aiohttp",
    "httpx": "httpx",
    "aiohttp-per-request": "aiohttp",
}


def measure(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job in this process; return its measurements."""
    workload = WORKLOADS[job["client"]]
    importlib.import_module(_IMPORTS[job["client"]])
    count = job["requests"]
    # Streaming reads keys from a generator; the others get a list made before timing.
    job = {**job, "keys": keys(count) if job.get("lazy") else list(keys(count))}
    cpu_start = time.process_time()
    start = time.perf_counter()
    ok = asyncio.run(workload(job))
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    peak_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {
        "client": job["client"],
        "requests": count,
        "ok": ok,
        "seconds": elapsed,
        "rps": count / elapsed if elapsed > 0 else 0.0,
        "cpu_seconds": cpu,
        "peak_rss_mb": peak_bytes / 1e6,
    }


def main() -> None:
    job = json.loads(sys.argv[1])
    if job.get("probe"):
        print(json.dumps({"latency_s": asyncio.run(probe_latency(job))}), flush=True)
    else:
        print(json.dumps(measure(job)), flush=True)


if __name__ == "__main__":
    main()
