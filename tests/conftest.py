"""Fixtures shared by the unit tests: a clean environment, aioresponses, a local web app.

The integration tests (`tests/integration/`) use `asyncgroups.testing` instead; nothing
here depends on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aioresponses import aioresponses

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
    "ASYNCGROUPS_CONCURRENCY",
    "ASYNCGROUPS_RATE_LIMIT",
    "ASYNCGROUPS_TIMEOUT",
)


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
