"""The shared limiter's cost: what pacing through Redis adds to each request.

Two measures against a `redis-server` started here on a free port (loopback, no
persistence) and the static benchmark server:

- **round trips**: `acquire()` + `release()` in a loop, one task, with the local
  `ClientLimiter` (no rate) and with `RedisLimiter` (a rate too high to ever wait):
  microseconds per request, which for Redis is one script call over loopback;
- **get_many**: the same bulk read at concurrency 32 through a plain client
  (`rate_limit=None`) and through `GroupsClient(limiter=RedisLimiter(...))` at a
  rate too high to bind: requests per second, client CPU per request, and the wall
  time the shared limiter adds per request.

Skipped, with the reason in the results and the table, when redis-py or redis-server
is missing. It runs in this process, after the other scenarios.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from . import _suite, _workloads

#: A rate no benchmark reaches: the shared schedule then never makes a request wait.
UNBOUND_RATE = 1_000_000.0


def skip_reason() -> str | None:
    """Why the measure cannot run here, or None."""
    if importlib.util.find_spec("redis") is None:
        return 'redis-py is not installed (pip install -e ".[bench]")'
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (Debian: apt-get install redis-server)"
    return None


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on 127.0.0.1: its URL while the block runs."""
    executable = shutil.which("redis-server")
    assert executable is not None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="asyncgroups-bench-redis-") as tmp:
        proc = subprocess.Popen(
            [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_ping(port, proc)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_for_ping(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(
            ("127.0.0.1", port), timeout=0.5
        ) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return
        time.sleep(0.02)
    raise RuntimeError("redis-server did not answer within 10 s")


async def _round_trips(make: Callable[[], Any], n: int) -> float:
    """Microseconds per acquire + release, one task, after a short warm-up."""
    limiter = make()
    try:
        for _ in range(50):
            await limiter.acquire()
            limiter.release()
        started = time.perf_counter()
        for _ in range(n):
            await limiter.acquire()
            limiter.release()
        return (time.perf_counter() - started) / n * 1e6
    finally:
        if hasattr(limiter, "aclose"):
            await limiter.aclose()


async def _get_many(base_url: str, redis_url: str | None, n: int) -> dict[str, float]:
    """One timed `get_many` of `n` keys at concurrency 32, after a warm-up batch."""
    from asyncgroups import GroupsClient
    from asyncgroups.contrib.redis import RedisLimiter

    limiter = RedisLimiter(redis_url, name="bench", rate=UNBOUND_RATE) if redis_url else None
    client = GroupsClient(
        _workloads.API_KEY, base_url=base_url, max_connections=32, rate_limit=None,
        limiter=limiter,
    )
    try:
        async with client:
            await client.groups.get_many(_workloads.keys(200, start=n), concurrency=32)
            cpu, wall = time.process_time(), time.perf_counter()
            result = await client.groups.get_many(_workloads.keys(n), concurrency=32)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if len(result.ok) != n:
            raise RuntimeError(f"get_many read {len(result.ok)} of {n} keys")
        return {"rps": n / wall, "cpu_us": cpu / n * 1e6, "wall_us": wall / n * 1e6}
    finally:
        if limiter is not None:
            await limiter.aclose()


def measure(
    *, quick: bool, requests: int | None, say: Callable[[str], None], rounds: int | None = None
) -> dict[str, Any]:
    """Run both measures; the summary the results file keeps under `shared_limit`."""
    reason = skip_reason()
    if reason is not None:
        say(f"  shared-limit skipped: {reason}")
        return {"skipped": reason}
    from asyncgroups import ClientLimiter
    from asyncgroups.contrib.redis import RedisLimiter

    trips = 300 if quick else 5000
    n = requests or (300 if quick else 5000)
    rounds = rounds or (1 if quick else 5)
    loopback = _suite.scenarios(quick=quick)["loopback"]
    local_us: list[float] = []
    shared_us: list[float] = []
    plain: list[dict[str, float]] = []
    shared: list[dict[str, float]] = []
    with redis_server() as redis_url, _suite.server(loopback) as (base_url, _):
        for round_ in range(rounds):
            local_us.append(asyncio.run(_round_trips(lambda: ClientLimiter(1), trips)))
            shared_us.append(
                asyncio.run(
                    _round_trips(
                        lambda: RedisLimiter(redis_url, name="trips", rate=UNBOUND_RATE), trips
                    )
                )
            )
            # Alternate which goes first, so neither always meets a warmer machine.
            order = [None, redis_url] if round_ % 2 == 0 else [redis_url, None]
            for url in order:
                (shared if url else plain).append(asyncio.run(_get_many(base_url, url, n)))
            say(
                f"  shared-limit round {round_ + 1}/{rounds}: "
                f"{shared_us[-1]:.0f} µs per Redis round trip, get_many "
                f"{shared[-1]['rps']:,.0f} vs {plain[-1]['rps']:,.0f} req/s"
            )

    def median(runs: list[dict[str, float]], field: str) -> float:
        return statistics.median(r[field] for r in runs)

    return {
        "round_trips": trips,
        "requests": n,
        "concurrency": 32,
        "rounds": rounds,
        "acquire_us": {
            "local": statistics.median(local_us),
            "redis": statistics.median(shared_us),
        },
        "get_many": {
            "plain": {f: median(plain, f) for f in ("rps", "cpu_us", "wall_us")},
            "redis": {f: median(shared, f) for f in ("rps", "cpu_us", "wall_us")},
            "ratio": statistics.median(
                s["rps"] / p["rps"] for s, p in zip(shared, plain, strict=True)
            ),
            "added_wall_us": median(shared, "wall_us") - median(plain, "wall_us"),
            "added_cpu_us": median(shared, "cpu_us") - median(plain, "cpu_us"),
        },
    }


def table(summary: dict[str, Any] | None) -> str:
    """The shared limiter's lines of the printed report."""
    if summary is None:
        return ""
    if "skipped" in summary:
        return f"\nshared limit (RedisLimiter): skipped: {summary['skipped']}"
    if "error" in summary:
        return f"\nshared limit (RedisLimiter): FAILED: {summary['error']}"
    acquire = summary["acquire_us"]
    many = summary["get_many"]
    return "\n".join(
        [
            "",
            f"shared limit (RedisLimiter, local redis-server), median of {summary['rounds']} "
            "round(s):",
            f"  acquire+release, one task: local ClientLimiter {acquire['local']:.1f} µs, "
            f"RedisLimiter {acquire['redis']:.1f} µs (one script call)",
            f"  get_many {summary['requests']:,} keys, concurrency 32: plain "
            f"{many['plain']['rps']:,.0f} req/s ({many['plain']['cpu_us']:.0f} µs CPU/req), "
            f"through Redis {many['redis']['rps']:,.0f} req/s "
            f"({many['redis']['cpu_us']:.0f} µs CPU/req): {many['ratio']:.2f}x, "
            f"+{many['added_wall_us']:.0f} µs wall and +{many['added_cpu_us']:.0f} µs "
            "client CPU per request",
        ]
    )
