"""The FastAPI example under several workers: each its own app and client, one shared limit.

Two app instances stand for two worker processes (each with its own limiter and
client, as each uvicorn worker has); their lifespans run as a server runs them.
"""

from __future__ import annotations

import asyncio
import bisect
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import httpx
from integration.test_starlette import lifespan_of, with_lifespan_state

from asyncgroups.testing import FakeGroupsServer

from .conftest import RedisServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi_shared_limit.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_shared_limit_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Imported as Python imports it: pydantic reads the module's names from sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    return max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))


async def _lookup(app: object, state: dict[str, object], keys: list[str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=with_lifespan_state(app, state))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        return await http.post("/groups:lookup", json={"prokeys": keys}, timeout=10)


async def test_example_workers_together_keep_to_the_shared_rate(
    redis_server: RedisServer,
) -> None:
    example = load_example()
    rate = 40.0
    url = redis_server.url.replace("/0", "/5")  # a database of its own: the default name
    async with FakeGroupsServer() as server:
        keys = [server.add_group(f"g{n}") for n in range(50)]
        options = {"api_key": server.api_key, "base_url": server.url}
        workers = [example.create_app(url, rate=rate, **options) for _ in range(2)]
        async with lifespan_of(workers[0]) as first, lifespan_of(workers[1]) as second:
            answers = await asyncio.gather(
                _lookup(workers[0], first, keys[:25]), _lookup(workers[1], second, keys[25:])
            )

    assert [a.status_code for a in answers] == [200, 200]
    assert sum(len(a.json()["groups"]) for a in answers) == 50
    arrivals = sorted(r.received_at for r in server.requests)
    assert _most_in_one_second(arrivals) <= rate * 1.1
    assert arrivals[-1] - arrivals[0] >= 49 / rate * 0.95  # evenly spaced, give or take jitter


async def test_example_answers_503_while_redis_is_down(own_redis: RedisServer) -> None:
    example = load_example()
    async with FakeGroupsServer() as server:
        keys = [server.add_group(f"g{n}") for n in range(3)]
        app = example.create_app(own_redis.url, api_key=server.api_key, base_url=server.url)
        async with lifespan_of(app) as state:
            assert (await _lookup(app, state, keys)).status_code == 200
            own_redis.stop()
            down = await _lookup(app, state, keys)
        assert len(server.requests) == 3

    assert down.status_code == 503
    assert down.headers["retry-after"] == "1"
