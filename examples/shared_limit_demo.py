"""Measure what the API sees from several uvicorn workers, with and without a shared limit.

It starts a FakeGroupsServer (once without a limit, once enforcing the service's 80
requests/s with 429s, as the real one does), then runs each FastAPI example in N uvicorn
worker processes and keeps them busy with lookups for a few seconds:

- `examples.fastapi_app`: every worker's client keeps to 80/s on its own;
- `examples.fastapi_shared_limit`: every worker's client takes its rate from Redis.

For each it prints the requests per second the server received (on average and in its
busiest second) and how many it answered 429. Needs a Redis and the `fastapi` and
`redis` extras:

    redis-server --port 6379 --save '' &
    python examples/shared_limit_demo.py --redis redis://127.0.0.1:6379/0 --workers 4
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import importlib.util
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from asyncgroups.testing import FakeGroupsServer, Faults

ROOT = Path(__file__).resolve().parent.parent
APPS = {"own limit per worker": "examples.fastapi_app:app",
        "one shared limit": "examples.fastapi_shared_limit:app"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def _workers(app: str, workers: int, env: dict[str, str]) -> AsyncIterator[list[str]]:
    """`workers` uvicorn processes serving `app`: their URLs once each answers.

    One process per port rather than `--workers N` behind one socket, so the load can
    be spread over them evenly (the kernel may hand one worker most connections); for
    the limits, N processes are N processes either way.
    """
    ports = [_free_port() for _ in range(workers)]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning",
            cwd=ROOT,
            env={**os.environ, **env},
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        async with aiohttp.ClientSession() as http:
            for url in urls:
                for _ in range(200):
                    with contextlib.suppress(aiohttp.ClientError):
                        async with http.get(f"{url}/docs"):
                            break
                    await asyncio.sleep(0.05)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            await proc.wait()


async def _load(urls: list[str], keys: list[str], seconds: float, callers: int) -> None:
    """`callers` callers, spread over `urls`, each asking for lookups of 40 keys, back
    to back, for `seconds`."""
    stop = time.monotonic() + seconds

    async def caller(n: int, http: aiohttp.ClientSession) -> None:
        url = urls[n % len(urls)]
        while time.monotonic() < stop:
            batch = [keys[(n * 40 + i) % len(keys)] for i in range(40)]
            async with http.post(f"{url}/groups:lookup", json={"prokeys": batch}) as resp:
                await resp.read()

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        await asyncio.gather(*(caller(n, http) for n in range(callers)))


async def _measure(
    app: str,
    server: FakeGroupsServer,
    keys: list[str],
    env: dict[str, str],
    args: argparse.Namespace,
) -> str:
    async with _workers(app, args.workers, env) as urls:
        server.reset_stats()
        started = time.monotonic()
        await _load(urls, keys, args.seconds, callers=4 * args.workers)
        ended = started + args.seconds
        # While the load ran (lookups still in flight at its end finish later).
        times = sorted(r.received_at for r in server.requests if started <= r.received_at < ended)
        limited = sum(1 for r in server.requests if r.fault == "429")
    busiest = max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))
    return (
        f"{len(times) / args.seconds:6.1f} req/s on average, {busiest:3d} in the busiest "
        f"second, {limited:3d} answered 429"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    missing = [m for m in ("uvicorn", "fastapi", "redis") if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(
            f"this demo needs {', '.join(missing)}: pip install -e \".[fastapi,redis]\""
        )

    for enforce in (False, True):
        faults = Faults(rate_limit=80.0, retry_after=1.0) if enforce else None
        server_kind = "server enforcing 80/s" if enforce else "server without a limit"
        async with FakeGroupsServer(faults=faults) as server:
            keys = [server.add_group(f"group {n}") for n in range(400)]
            env = {
                "ASYNCGROUPS_BASE_URL": server.url,
                "ASYNCGROUPS_API_KEY": server.api_key,
                "ASYNCGROUPS_SHARED_LIMIT": args.redis,
            }
            for label, app in APPS.items():
                line = await _measure(app, server, keys, env, args)
                print(f"{args.workers} workers, {label:>20}, {server_kind}: {line}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
