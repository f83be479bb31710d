"""`--shared-limit` and `$ASYNCGROUPS_SHARED_LIMIT`: one rate for several command runs."""

from __future__ import annotations

import asyncio
import bisect
import errno
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TextIO

import pytest
import redis.asyncio as aioredis
from cli_support import cli, fake_api, python_m, start_python_m
from conftest import shows_password

from asyncgroups.testing import FakeGroupsServer

from .conftest import RedisServer
from .test_redis_config import BAD_URLS_WITH_A_PASSWORD


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeGroupsServer]:
    async with fake_api(monkeypatch) as fake:
        yield fake


def _keys_file(server: FakeGroupsServer, tmp_path: Path, count: int, name: str) -> Path:
    listing = tmp_path / name
    listing.write_text("\n".join(server.add_group(f"{name}-{n}") for n in range(count)))
    return listing


def _most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    return max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))


@pytest.mark.parametrize(
    "url", ["http://cache:6379", "redis://:sekret@cache:port/0", "redis://", "cache"]
)
async def test_shared_limit_with_a_bad_url_is_a_usage_error_before_any_request(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str
) -> None:
    listing = _keys_file(server, tmp_path, 3, "keys")
    run = await cli(capsys, "bulk-get", "--input", str(listing), "--shared-limit", url)
    assert run.code == 2
    assert run.err_lines[-1].startswith("asyncgroups: error: --shared-limit: ")
    assert "sekret" not in run.err
    assert server.requests == []


async def test_shared_limit_variable_with_a_bad_url_names_the_variable(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASYNCGROUPS_SHARED_LIMIT", "redis://:sekret@cache:6379/x")
    run = await cli(capsys, "bulk-get", "--input", str(_keys_file(server, tmp_path, 2, "k")))
    assert run.code == 2
    assert "ASYNCGROUPS_SHARED_LIMIT: " in run.err
    assert "redis://:***@cache:6379/x" in run.err
    assert "sekret" not in run.err


@pytest.mark.parametrize("url", BAD_URLS_WITH_A_PASSWORD)
async def test_shared_limit_refuses_a_bad_url_without_showing_its_password(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str
) -> None:
    listing = _keys_file(server, tmp_path, 1, "keys")
    run = await cli(capsys, "bulk-get", "--input", str(listing), "--shared-limit", url)
    assert run.code == 2
    assert not shows_password(run.err + run.out), run.err
    assert server.requests == []


@pytest.mark.parametrize("how", ["option", "variable"])
async def test_shared_limit_process_shows_no_piece_of_a_password(
    server: FakeGroupsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    url = BAD_URLS_WITH_A_PASSWORD[0]
    argv = ["bulk-get", "--input", str(_keys_file(server, tmp_path, 1, "keys"))]
    if how == "option":
        argv += ["--shared-limit", url]
    else:
        monkeypatch.setenv("ASYNCGROUPS_SHARED_LIMIT", url)
    run = await python_m(*argv)
    assert run.code == 2
    assert "Traceback" not in run.err
    assert not shows_password(run.err + run.out), run.err
    assert server.requests == []


@pytest.mark.parametrize(
    ("rate", "said"),
    [
        ("none", "needs a --rate-limit, not none"),
        ("0.01", "--rate-limit must be at least 1 request a second, not 0.01"),
    ],
)
async def test_shared_limit_needs_a_rate_of_at_least_one_a_second(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    rate: str,
    said: str,
) -> None:
    listing = _keys_file(server, tmp_path, 2, "keys")
    run = await cli(
        capsys,
        "bulk-get",
        "--input",
        str(listing),
        "--rate-limit",
        rate,
        "--shared-limit",
        "redis://127.0.0.1:6379/0",
    )
    assert run.code == 2
    assert said in run.err
    assert server.requests == []


async def test_shared_limit_without_redis_py_says_what_to_install(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis now fails
    monkeypatch.delitem(sys.modules, "asyncgroups.contrib.redis", raising=False)
    listing = _keys_file(server, tmp_path, 2, "keys")
    run = await cli(
        capsys, "bulk-get", "--input", str(listing), "--shared-limit", "redis://127.0.0.1/0"
    )
    assert run.code == 2
    assert run.err_lines == [
        "asyncgroups: error: --shared-limit needs redis-py: pip install 'asyncgroups[redis]'"
    ]
    assert server.requests == []


async def test_shared_limit_unreachable_stops_the_run_naming_redis_without_its_password(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    own_redis: RedisServer,
) -> None:
    own_redis.stop()
    url = own_redis.url.replace("redis://", "redis://app:sekret@")
    listing = _keys_file(server, tmp_path, 50, "keys")
    run = await cli(
        capsys, "bulk-get", "--input", str(listing), "--shared-limit", url, "--rate-limit", "100"
    )
    assert run.code == 1
    assert f"Redis at redis://app:***@127.0.0.1:{own_redis.port}/0" in run.err
    assert "no request was sent" in run.err
    assert "sekret" not in run.err
    assert server.requests == []


async def test_sync_plan_takes_its_rate_from_the_shared_limit(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = redis_server.url.replace("/0", "/3")  # a database of its own: the default name
    monkeypatch.setenv("ASYNCGROUPS_SHARED_LIMIT", url)
    desired = tmp_path / "desired.jsonl"
    desired.write_text('{"key": "a", "name": "A"}\n')
    monkeypatch.setenv("ASYNCGROUPS_RATE_LIMIT", "500")
    run = await cli(capsys, "sync", "--desired", str(desired), "--state", str(tmp_path / "s"))
    assert run.code == 0, run.err
    assert server.requests  # the listing
    check = aioredis.Redis.from_url(url)
    async with check:
        assert await check.exists("asyncgroups:{asyncgroups}:next") == 1


async def test_two_command_processes_together_keep_to_the_shared_rate(
    server: FakeGroupsServer, tmp_path: Path, redis_server: RedisServer
) -> None:
    url = redis_server.url.replace("/0", "/4")  # a database of its own: the default name
    rate = 40
    listings = [_keys_file(server, tmp_path, 30, name) for name in ("first", "second")]
    # Each reads its keys from a pipe that is fed only once both have opened theirs, so
    # neither starts ahead of the other by however long the other took to start.
    pipes = [tmp_path / f"{listing.name}.pipe" for listing in listings]
    for pipe in pipes:
        os.mkfifo(pipe)
    runs = [
        await start_python_m(
            "bulk-get",
            "--input",
            str(pipe),
            "--concurrency",
            "16",
            "--rate-limit",
            str(rate),
            "--shared-limit",
            url,
        )
        for pipe in pipes
    ]
    writers = await asyncio.gather(*(asyncio.to_thread(_open_writer, pipe) for pipe in pipes))
    for writer, listing in zip(writers, listings, strict=True):
        with writer:
            writer.write(listing.read_text())
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in runs)), 30)

    assert [p.returncode for p in runs] == [0, 0], [err.decode() for _, err in outputs]
    assert [len(out.splitlines()) for out, _ in outputs] == [30, 30]
    arrivals = sorted(r.received_at for r in server.requests)
    assert len(arrivals) == 60
    assert _most_in_one_second(arrivals) <= rate * 1.1
    # The two ran side by side for most of it, not one after the other.
    first_keys = set(listings[0].read_text().split())
    first = [r.received_at for r in server.requests if r.path.rsplit("/", 1)[1] in first_keys]
    second = [r.received_at for r in server.requests if r.path.rsplit("/", 1)[1] not in first_keys]
    overlap = min(max(first), max(second)) - max(min(first), min(second))
    assert overlap > 0.5


def _open_writer(pipe: Path) -> TextIO:
    """`pipe` open for writing, once its reader has opened it (30 s at most)."""
    deadline = time.monotonic() + 30
    while True:
        try:  # without a reader yet, a non-blocking open fails with ENXIO
            fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as err:
            if err.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "w")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("command", [["list"], ["bulk-get", "--input", "KEYS"]])
async def test_shared_limit_unreachable_is_said_once_without_a_retry_promise(
    server: FakeGroupsServer, tmp_path: Path, command: list[str]
) -> None:
    listing = _keys_file(server, tmp_path, 20, "keys")
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    argv = [str(listing) if arg == "KEYS" else arg for arg in command]

    run = await python_m("--shared-limit", url, "--rate-limit", "100", *argv)

    assert run.code == 1
    said = [line for line in run.err_lines if "cannot be reached" in line]
    assert len(said) == 1, run.err
    assert f"Redis at {url}" in said[0]
    assert "WARNING" not in run.err
    assert "tried again" not in run.err
    assert "Traceback" not in run.err
    assert server.requests == []


@pytest.mark.parametrize("command", ["bulk-get", "bulk-delete"])
async def test_shared_limit_unreachable_fails_the_keys_never_tried_as_not_tried(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    listing = _keys_file(server, tmp_path, 40, "keys")
    outcomes = tmp_path / "outcomes.jsonl"
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    kept = ["--failed", str(outcomes)]
    if command == "bulk-delete":
        kept = ["--journal", str(outcomes), "--yes"]
    options = ["--shared-limit", url, "--rate-limit", "100", "--concurrency", "4"]

    run = await cli(capsys, *options, command, "--input", str(listing), *kept)

    assert run.code == 1
    records = [json.loads(line) for line in outcomes.read_text().splitlines()]
    assert sorted(r["prokey"] for r in records) == sorted(listing.read_text().split())
    untried = [r for r in records if r["error"].startswith("not tried: the shared rate limit")]
    assert 40 - 4 <= len(untried) < 40  # the keys in flight met it; the rest never left
    [said] = [line for line in run.err_lines if line.startswith("failed: ")]
    assert said.endswith(f"({len(untried)} of them not tried: the run stopped sending)")
    assert server.requests == []
