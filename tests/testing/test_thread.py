"""`FakeGroupsServer.in_thread()`: the fake on a loop of its own, for synchronous tests.

Driven the way a synchronous test drives it: blocking HTTP calls from the test's thread
(`urllib`), with seeding and faults set from that thread meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from asyncgroups.testing import FakeGroupsServer
from asyncgroups.testing._store import Store

#: A blocking call that takes longer than this means the fake does not answer.
TIMEOUT = 2.0


def _get(server: FakeGroupsServer, path: str) -> tuple[int, Any]:
    url, key = server.url + path, server.api_key
    request = urllib.request.Request(url, headers={"Authorization": key})  # noqa: S310 - http
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as reply:  # noqa: S310 - http
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, None


def test_in_thread_answers_blocking_calls_from_the_test_thread() -> None:
    with FakeGroupsServer(shape="object").in_thread() as server:
        key = server.add_group("Team", events=1)
        status, body = _get(server, f"/group/{key}")
        assert status == 200
        assert body["name"] == "Team"
        assert [r.path for r in server.requests] == [f"/v1/group/{key}"]
        assert server.groups[key]["name"] == "Team"


def test_in_thread_yields_the_server_itself_and_stops_it_on_exit() -> None:
    fake = FakeGroupsServer()
    threads = threading.active_count()
    with fake.in_thread() as server:
        assert server is fake
        port = server.port
    assert threading.active_count() == threads
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()


def test_in_thread_faults_armed_from_the_test_thread_fire() -> None:
    with FakeGroupsServer().in_thread() as server:
        key = server.add_group()
        server.inject(status=503, method="GET")
        assert _get(server, f"/group/{key}")[0] == 503
        assert _get(server, f"/group/{key}")[0] == 200
        assert server.pending_injections == []


def test_in_thread_runs_the_test_thread_s_calls_on_the_server_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[str] = []
    link = Store.link_event

    def watched(store: Store, group_prokey: str) -> str:
        threads.append(threading.current_thread().name)
        return link(store, group_prokey)

    monkeypatch.setattr(Store, "link_event", watched)
    with FakeGroupsServer().in_thread() as server:
        key = server.add_group(events=1)
        server.link_event(key)
    assert threads == ["FakeGroupsServer", "FakeGroupsServer"]


def test_in_thread_says_why_it_could_not_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = FakeGroupsServer(port=port)
        with pytest.raises(OSError, match="address already in use"), server.in_thread():
            pass


async def test_in_thread_serves_an_async_test_too() -> None:
    with FakeGroupsServer().in_thread() as server:
        key = server.add_group("Team")
        status, body = await asyncio.to_thread(_get, server, f"/group/{key}")
    assert (status, body[0]["name"]) == (200, "Team")
