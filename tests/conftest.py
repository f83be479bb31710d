"""What the tests share: constants, a client for a local server, a clean environment,
aioresponses, a local web app, and clocks.

Nothing here imports `asyncgroups.testing`: `local_client` takes a fake server, or the
URL of a small app of the `serve` fixture, alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web
from aioresponses import aioresponses

from asyncgroups import GroupsClient, RetryPolicy
from asyncgroups._mask import SecretMasker

if TYPE_CHECKING:
    from telemetry_support import Recorded

    from asyncgroups.testing import FakeGroupsServer

#: The API key the tests' clients send to small local apps.
API_KEY = "sk_live_0123456789abcdef"
#: A valid prokey.
KEY = "31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa"
#: Three attempts, no backoff: retries happen, and the suite does not sleep for them.
NO_WAIT = RetryPolicy(max_attempts=3, backoff_base=0.0, backoff_max=0.0, jitter=False)


def local_client(server: FakeGroupsServer | str, **kwargs: Any) -> GroupsClient:
    """A client for a local server: `NO_WAIT` retries and no rate limit unless given.

    `server` is a `FakeGroupsServer` (its URL and key), or the root URL of an app of the
    `serve` fixture (its API under `/v1`, the key `API_KEY`); `api_key=` overrides the key.
    """
    if isinstance(server, str):
        base_url, api_key = server + "/v1", API_KEY
    else:
        base_url, api_key = server.url, server.api_key
    kwargs.setdefault("api_key", api_key)
    kwargs.setdefault("retry", NO_WAIT)
    kwargs.setdefault("rate_limit", None)  # a local server: no need to pace
    return GroupsClient(base_url=base_url, **kwargs)


@contextlib.contextmanager
def steady_clock() -> Iterator[None]:
    """No garbage collection meanwhile: a collection's pause would stamp the requests
    that arrived during it all at its end, and the fake's times would bunch up where
    the client's did not. For tests that read the fake's `received_at`."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()

#: Environment variables that change what a client does; every test starts without them.
_ENV = (
    "ASYNCGROUPS_API_KEY",
    "ASYNCGROUPS_BASE_URL",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "REQUEST_METHOD",
    "ASYNCGROUPS_CA_FILE",
    "ASYNCGROUPS_CONCURRENCY",
    "ASYNCGROUPS_RATE_LIMIT",
    "ASYNCGROUPS_SHARED_LIMIT",
    "ASYNCGROUPS_TIMEOUT",
)


#: A password holding every character that ends a URL's user-info early (`/`, `#`, `?`,
#: `@`), between pieces no message holds by chance.
URL_PASSWORD = "Zq7/Xk9#Vm4?Wp2@Yt6"


def shows_password(text: str, password: str = URL_PASSWORD) -> bool:
    """True when `text` holds `password` in a spelling the masker knows, or any piece of
    it between the characters a URL parser cuts at (a tail shown as a path, say)."""
    pieces = [piece for piece in re.split(r"[/#?@%]", password) if piece]
    return SecretMasker([password]).leaks(text) or any(piece in text for piece in pieces)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


class _Response(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds responses without aiohttp 3.14's `stream_writer`.

    Upstream: pnuckowski/aioresponses#289. The stand-in only answers `output_size`,
    which is all `ClientResponse.__init__` reads from it for a request already sent.
    """

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


class MockAPI(aioresponses):
    """aioresponses, with responses that aiohttp 3.14 can build."""

    def add(self, url: Any, method: str = "GET", *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("response_class", _Response)
        super().add(url, method, *args, **kwargs)


@pytest.fixture
def mock_api() -> Iterator[MockAPI]:
    """Answer every aiohttp request from canned responses; unmatched URLs fail to connect."""
    mocked = MockAPI()
    with mocked:
        yield mocked


Serve = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Run aiohttp.web apps on 127.0.0.1 (random ports); returns each one's base URL."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in reversed(runners):
        await runner.cleanup()


class PeakInFlight:
    """A web app that records how many requests it held at once.

    The first `expect` requests wait for each other (up to 0.5 s), so a cap of
    `expect` is reached on purpose rather than by timing luck.
    """

    def __init__(self, expect: int, body: Any) -> None:
        self.expect = expect
        self.body = body
        self.in_flight = 0
        self.peak = 0
        self._full = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.in_flight == self.expect:
            self._full.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._full.wait(), 0.5)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        return web.json_response(self.body)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


class FakeClock:
    """Replace the running loop's clock; `advance` moves it and lets due timers fire."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        monkeypatch.setattr(asyncio.get_running_loop(), "time", lambda: self.now)

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        await settle()


async def settle() -> None:
    """Let every ready callback run (timers due on the fake clock included)."""
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
async def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The running loop's clock, frozen until the test moves it (`await clock.advance(s)`)."""
    return FakeClock(monkeypatch)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every delay anything asks `asyncio.sleep` for during the test, in order: what the
    code chose to wait, whatever the machine's speed."""
    asked: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: Any = None) -> Any:
        asked.append(delay)
        return await real_sleep(delay, result)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return asked


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    """OpenTelemetry providers of the test's own (none set globally), read in memory."""
    from telemetry_support import Recorded

    providers = Recorded()
    yield providers
    providers.shutdown()
