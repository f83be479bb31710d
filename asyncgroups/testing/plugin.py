"""pytest fixtures for code that uses asyncgroups: a fake server and a client bound to it.

Registered through the `pytest11` entry point, so installing asyncgroups makes them
available in every test suite:

- `fake_groups_server`: a started `FakeGroupsServer`, closed after the test. Configure
  it with `@pytest.mark.fake_groups_server(shape="object", credits=5, ...)` (the
  marker's keyword arguments go to `FakeGroupsServer`), or override the fixture.
- `fake_groups_server_in_thread`: the same, started with `in_thread()` on a loop of its
  own in a background thread, for synchronous tests (FastAPI's `TestClient`); a plain
  fixture that needs no pytest-asyncio, configured by the same marker.
- `groups_client`: a `GroupsClient` for that server with quick retries
  (`RetryPolicy(backoff_base=0.01, backoff_max=0.1)`) and no rate limit
  (`rate_limit=None`: a local fake needs no pacing), closed after the test.

Both are function-scoped async fixtures on the function-scoped event loop
(pytest-asyncio `loop_scope="function"`): use them from tests that run on the default,
per-test loop. They need pytest-asyncio (auto or strict mode; in strict mode mark the
tests `@pytest.mark.asyncio`). Without it this module still loads, so pytest keeps
working, and requesting a fixture fails with an install hint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import pytest

if TYPE_CHECKING:
    from asyncgroups import GroupsClient
    from asyncgroups.testing import FakeGroupsServer

_asyncio: ModuleType | None
try:
    import pytest_asyncio as _asyncio
except ImportError:  # the fixtures then explain what to install
    _asyncio = None

__all__ = ["fake_groups_server", "fake_groups_server_in_thread", "groups_client"]

_MARKER = "fake_groups_server"
_INSTALL_HINT = (
    "the asyncgroups fixtures (fake_groups_server, groups_client) are async and need "
    'pytest-asyncio: pip install pytest-asyncio (or pip install "asyncgroups[testing]")'
)

_F = TypeVar("_F", bound=Callable[..., Any])


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker, so `--strict-markers` suites may use it."""
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**kwargs): keyword arguments for the FakeGroupsServer of the "
        "fake_groups_server fixture (faults=, shape=, credits=, seed=, tls=, ...)",
    )


def _async_fixture(function: _F) -> _F:
    """Make `function` a pytest-asyncio fixture on the function loop, or a clear failure."""
    if _asyncio is None:

        def missing() -> NoReturn:
            pytest.fail(_INSTALL_HINT, pytrace=False)

        missing.__doc__ = function.__doc__
        return pytest.fixture(name=function.__name__)(missing)  # type: ignore[return-value]
    try:
        fixture: _F = _asyncio.fixture(function, loop_scope="function")
    except TypeError:  # pytest-asyncio < 0.24 has no loop_scope: its loop is per test
        fixture = _asyncio.fixture(function)
    return fixture


def _marked_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The keyword arguments of the test's `fake_groups_server` marker, if any."""
    marker = request.node.get_closest_marker(_MARKER)
    return dict(marker.kwargs) if marker is not None else {}


@_async_fixture
async def fake_groups_server(request: pytest.FixtureRequest) -> AsyncIterator[FakeGroupsServer]:
    """A started fake Groups API server, closed after the test (function-scoped)."""
    from asyncgroups.testing import FakeGroupsServer

    async with FakeGroupsServer(**_marked_options(request)) as server:
        yield server


@pytest.fixture
def fake_groups_server_in_thread(request: pytest.FixtureRequest) -> Iterator[FakeGroupsServer]:
    """A fake server on its own loop in a background thread, for synchronous tests."""
    from asyncgroups.testing import FakeGroupsServer

    with FakeGroupsServer(**_marked_options(request)).in_thread() as server:
        yield server


@_async_fixture
async def groups_client(fake_groups_server: FakeGroupsServer) -> AsyncIterator[GroupsClient]:
    """A `GroupsClient` bound to `fake_groups_server` with fast retries, closed after the test."""
    from asyncgroups import GroupsClient, RetryPolicy

    server = fake_groups_server
    tls = server.url.startswith("https:")
    async with GroupsClient(
        api_key=server.api_key,
        base_url=server.url,
        retry=RetryPolicy(backoff_base=0.01, backoff_max=0.1),
        rate_limit=None,  # a local fake needs no pacing; the service does (80/s)
        ssl_context=server.ssl_context() if tls else None,
    ) as client:
        yield client
