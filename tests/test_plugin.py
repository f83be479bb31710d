"""The pytest plugin, run as a user's project would run it (pytester, subprocesses).

Each inner run is a fresh `python -m pytest` in a temporary project that has
asyncgroups installed (so the `pytest11` entry point loads the plugin) and
`filterwarnings = error`, so an unclosed server, client or session fails it.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import socket
import uuid

import pytest

from asyncgroups import GroupsClient, NewGroup, NotFoundError

seen = {}


async def test_create_then_read(groups_client, fake_groups_server):
    key = await groups_client.groups.create(NewGroup("Team"))
    assert (await groups_client.groups.get(key)).name == "Team"
    assert fake_groups_server.groups[key]["name"] == "Team"
    seen["server"], seen["client"] = fake_groups_server, groups_client


async def test_fixtures_are_fresh_and_the_old_ones_closed(groups_client, fake_groups_server):
    assert fake_groups_server is not seen["server"]
    assert not fake_groups_server.groups
    assert seen["client"].closed
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", seen["server"].port), timeout=1).close()


async def test_client_retries_an_injected_503(groups_client, fake_groups_server):
    key = fake_groups_server.add_group("Team")
    fake_groups_server.inject(status=503, times=2, method="GET")
    assert (await groups_client.groups.get(key)).name == "Team"
    assert [r.fault for r in fake_groups_server.requests] == ["503", "503", None]


async def test_missing_group_is_not_found(groups_client):
    with pytest.raises(NotFoundError):
        await groups_client.groups.get(str(uuid.uuid4()))


@pytest.mark.fake_groups_server(shape="object", credits=0, api_key="marked")
async def test_marker_configures_the_server(groups_client, fake_groups_server):
    assert (fake_groups_server.shape, fake_groups_server.credits) == ("object", 0)
    key = fake_groups_server.add_group("Team", events=1)
    group = await groups_client.groups.get(key)
    assert group.event_prokeys == fake_groups_server.groups[key]["events"]
    assert fake_groups_server.requests[0].headers["Authorization"] == "marked"


@pytest.mark.fake_groups_server(tls=True)
async def test_tls_server_gets_a_trusting_client(groups_client, fake_groups_server):
    assert fake_groups_server.url.startswith("https://")
    assert await groups_client.groups.list() == []


async def test_the_client_is_a_groups_client(groups_client):
    assert isinstance(groups_client, GroupsClient)
"""

OVERRIDE_TESTS = """
import pytest_asyncio

from asyncgroups.testing import FakeGroupsServer


@pytest_asyncio.fixture
async def fake_groups_server():
    async with FakeGroupsServer(api_key="custom", shape="object") as server:
        yield server


async def test_client_follows_an_overridden_server(groups_client, fake_groups_server):
    key = fake_groups_server.add_group("Team")
    assert (await groups_client.groups.get(key)).name == "Team"
    assert fake_groups_server.requests[0].headers["Authorization"] == "custom"
"""

STRICT_TESTS = """
import pytest

from asyncgroups import NewGroup


@pytest.mark.asyncio
async def test_fixtures_work_in_strict_mode(groups_client, fake_groups_server):
    key = await groups_client.groups.create(NewGroup("Team"))
    assert list(fake_groups_server.groups) == [key]


def test_sync_tests_are_untouched():
    assert True
"""

NO_ASYNCIO_TESTS = """
import json
import urllib.request

import pytest


def test_unrelated_tests_still_run():
    assert 1 + 1 == 2


@pytest.mark.fake_groups_server(shape="object")
def test_threaded_fake_serves_a_sync_test(fake_groups_server_in_thread):
    server = fake_groups_server_in_thread
    key = server.add_group("Team")
    headers = {"Authorization": server.api_key}
    request = urllib.request.Request(f"{server.url}/group/{key}", headers=headers)
    with urllib.request.urlopen(request, timeout=2) as reply:
        assert json.loads(reply.read())["name"] == "Team"  # shape="object": a bare object


def test_fixture_explains_what_to_install(fake_groups_server):
    pass
"""

# Shadows the installed pytest-asyncio (pytester puts the project first on sys.path), so
# importing it fails as if it were not installed; `-p no:asyncio` skips its entry point.
NOT_INSTALLED = """
raise ModuleNotFoundError("No module named 'pytest_asyncio'", name="pytest_asyncio")
"""


def ini(mode: str | None, addopts: str = "") -> str:
    lines = ["[pytest]", "filterwarnings = error", f"addopts = -p no:cacheprovider {addopts}"]
    if mode is not None:
        lines += [f"asyncio_mode = {mode}", "asyncio_default_fixture_loop_scope = function"]
    return "\n".join(lines) + "\n"


def test_plugin_fixtures_work_in_auto_mode(pytester: pytest.Pytester) -> None:
    pytester.makeini(ini("auto"))
    pytester.makepyfile(test_user=USER_TESTS, test_override=OVERRIDE_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=8)


def test_plugin_fixtures_work_in_strict_mode(pytester: pytest.Pytester) -> None:
    pytester.makeini(ini("strict", addopts="--strict-markers"))
    pytester.makepyfile(test_strict=STRICT_TESTS)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)


def test_marker_is_registered_for_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makeini(ini("strict"))
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.fake_groups_server(**kwargs):*"])


def test_plugin_without_pytest_asyncio_fails_only_its_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makeini(ini(None))
    pytester.makepyfile(test_user=NO_ASYNCIO_TESTS)
    pytester.mkpydir("pytest_asyncio").joinpath("__init__.py").write_text(NOT_INSTALLED)
    result = pytester.runpytest_subprocess("-p", "no:asyncio", "test_user.py")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*need pytest-asyncio: pip install pytest-asyncio*"])
    result.stdout.no_fnmatch_line("*Traceback*")
