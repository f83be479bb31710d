"""The Starlette/FastAPI integration and the example app, end to end over real sockets.

The app runs in-process behind httpx's ASGI transport; its lifespan is driven here the
way a server drives it (startup, requests, shutdown), and its GroupsClient talks to a
FakeGroupsServer on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from asyncgroups import GroupsClient, ValidationError
from asyncgroups.contrib.starlette import STATE_KEY, groups_client, groups_lifespan
from asyncgroups.testing import FakeGroupsServer, Faults

MISSING = "31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi_app.py"

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[Message]],
        Callable[[Message], Awaitable[None]],
    ],
    Awaitable[None],
]


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_app_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Imported as Python imports it: pydantic reads the module's names from sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.asynccontextmanager
async def lifespan_of(app: ASGIApp) -> AsyncIterator[dict[str, Any]]:
    """Run `app`'s lifespan as a server does; yield the lifespan state it filled."""
    state: dict[str, Any] = {}
    to_app: asyncio.Queue[Message] = asyncio.Queue()
    from_app: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.3"}, "state": state}

    async def serve() -> None:
        await app(scope, to_app.get, from_app.put)

    task = asyncio.create_task(serve())
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    if started["type"] != "lifespan.startup.complete":
        with contextlib.suppress(Exception):
            await task
        raise RuntimeError(started.get("message", "startup failed"))
    try:
        yield state
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        assert (await from_app.get())["type"] == "lifespan.shutdown.complete"
        await task


def with_lifespan_state(app: ASGIApp, state: dict[str, Any]) -> ASGIApp:
    """Give every request a copy of the lifespan state, as uvicorn and hypercorn do."""

    async def wrapped(
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "state": dict(state)}
        await app(scope, receive, send)

    return wrapped


class Clients:
    """A client factory that remembers every client it made."""

    def __init__(self, server: FakeGroupsServer, **options: Any) -> None:
        self.server = server
        self.options = {"rate_limit": None, **options}  # the local fake: no need to pace
        self.made: list[GroupsClient] = []

    def __call__(self) -> GroupsClient:
        client = GroupsClient(self.server.api_key, base_url=self.server.url, **self.options)
        self.made.append(client)
        return client


@pytest.fixture
async def server() -> AsyncIterator[FakeGroupsServer]:
    async with FakeGroupsServer() as fake:
        yield fake


@pytest.mark.parametrize("lifespan_state", [True, False], ids=["lifespan-state", "app-state"])
async def test_example_app_serves_groups_through_one_shared_client(
    server: FakeGroupsServer, lifespan_state: bool
) -> None:
    keys = [server.add_group(f"Group {n}", events=n % 2) for n in range(10)]
    server.faults = Faults(latency=0.02)  # slow enough for requests to overlap
    clients = Clients(server, max_connections=8)
    app = load_example().create_app(clients)

    async with lifespan_of(app) as state:
        served = with_lifespan_state(app, state) if lifespan_state else app
        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            one = await http.get(f"/groups/{keys[1]}")
            many = await asyncio.gather(*(http.get(f"/groups/{key}") for key in keys * 2))
            lookup = await http.post(
                "/groups:lookup", json={"prokeys": [keys[0], keys[2], MISSING, "nope"]}
            )
        [client] = clients.made
        assert not client.closed
    assert client.closed

    assert one.status_code == 200
    assert one.json()["prokey"] == keys[1]
    assert one.json()["name"] == "Group 1"
    assert one.json()["event_prokeys"] == list(server.groups[keys[1]]["events"])
    assert [r.json()["prokey"] for r in many] == keys * 2
    assert lookup.status_code == 200
    found = lookup.json()
    assert [g["prokey"] for g in found["groups"]] == [keys[0], keys[2]]
    assert found["missing"] == [MISSING]
    assert list(found["failed"]) == ["nope"]
    # Every API request of every HTTP request went through the one client, at once.
    assert client.stats.requests == len(server.requests) == 1 + 20 + 3
    assert server.peak_in_flight > 1


async def test_example_app_maps_api_errors_to_http_statuses(server: FakeGroupsServer) -> None:
    key = server.add_group("Flaky")
    app = load_example().create_app(Clients(server, retry=None))

    async with lifespan_of(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            missing = await http.get(f"/groups/{MISSING}")
            malformed = await http.get("/groups/not-a-key")
            server.inject(status=503)
            outage = await http.get(f"/groups/{key}")
            server.inject(status=429, retry_after=7)
            limited = await http.get(f"/groups/{key}")
            too_many = await http.post("/groups:lookup", json={"prokeys": [key] * 501})

    assert missing.status_code == 404
    assert malformed.status_code == 422
    assert "is not a prokey" in malformed.json()["detail"]
    assert outage.status_code == 502
    assert limited.status_code == 503
    assert limited.headers["retry-after"] == "7"
    assert too_many.status_code == 422


async def test_example_app_502_says_plainly_that_the_api_cannot_be_reached() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    def dead() -> GroupsClient:
        return GroupsClient(
            "test-key", base_url=f"http://127.0.0.1:{port}/v1", retry=None, rate_limit=None
        )

    app = load_example().create_app(dead)
    async with lifespan_of(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            answer = await http.get(f"/groups/{MISSING}")
    assert answer.status_code == 502
    assert answer.json() == {"detail": "the groups API could not be reached"}


async def test_lifespan_composes_with_the_apps_own(server: FakeGroupsServer) -> None:
    key = server.add_group("Composed")
    seen: list[str] = []

    @contextlib.asynccontextmanager
    async def own(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        client = getattr(app.state, STATE_KEY)
        seen.append(f"startup, client open: {not client.closed}")
        yield {"greeting": "hello"}
        seen.append(f"shutdown, client open: {not client.closed}")

    async def endpoint(request: Request) -> JSONResponse:
        group = await groups_client(request).groups.get(request.path_params["key"])
        return JSONResponse({"name": group.name, "greeting": request.state.greeting})

    clients = Clients(server)
    app = Starlette(
        routes=[Route("/{key}", endpoint)], lifespan=groups_lifespan(clients, lifespan=own)
    )

    async with lifespan_of(app) as state:
        assert set(state) == {"greeting", STATE_KEY}
        transport = httpx.ASGITransport(app=with_lifespan_state(app, state))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            answer = await http.get(f"/{key}")

    assert answer.json() == {"name": "Composed", "greeting": "hello"}
    assert seen == ["startup, client open: True", "shutdown, client open: True"]
    assert clients.made[0].closed
    assert not hasattr(app.state, STATE_KEY)


async def test_a_bad_client_configuration_fails_the_startup() -> None:
    def no_key() -> GroupsClient:
        return GroupsClient()  # no api_key and no $ASYNCGROUPS_API_KEY

    app = Starlette(lifespan=groups_lifespan(no_key))

    with pytest.raises(RuntimeError, match="no API key"):
        async with lifespan_of(app):
            pass
    with pytest.raises(ValidationError):
        no_key()


async def test_groups_client_without_the_lifespan_says_what_to_do() -> None:
    async def endpoint(request: Request) -> JSONResponse:
        groups_client(request)
        return JSONResponse({})

    app = Starlette(routes=[Route("/", endpoint)])
    transport = httpx.ASGITransport(app=app)

    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        with pytest.raises(RuntimeError, match=r"lifespan=groups_lifespan\(\)"):
            await http.get("/")
