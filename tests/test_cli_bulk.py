"""Bulk runs against an API that cannot serve, in real processes: said once, nothing lost.

A closed port, a refused key, a black hole: every key fails alike. stderr says each
cause once with its count (well under 20 lines whatever the number of keys), and each
key's outcome is in a file exactly once: `--failed` / `--missing` of bulk-get, the
journal of bulk-delete.
"""

from __future__ import annotations

import asyncio
import collections
import json
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cli_support import Run, fake_api, python_m

from asyncgroups.testing import FakeGroupsServer

N = 500


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _once_each(path: Path, keys: list[str]) -> list[dict[str, object]]:
    """The file's records, after checking that they name every key exactly once."""
    records = _records(path)
    counts = collections.Counter(str(record["prokey"]) for record in records)
    assert counts == collections.Counter(keys)
    return records


@pytest.fixture
def keys(tmp_path: Path) -> tuple[list[str], Path]:
    listed = [str(uuid.UUID(int=n + 1)) for n in range(N)]
    listing = tmp_path / "keys.txt"
    listing.write_text("\n".join(listed) + "\n")
    return listed, listing


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeGroupsServer]:
    async with fake_api(monkeypatch) as fake:
        yield fake


@pytest.fixture
def closed_port(monkeypatch: pytest.MonkeyPatch) -> str:
    port = _closed_port()
    monkeypatch.setenv("ASYNCGROUPS_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("ASYNCGROUPS_API_KEY", "k")
    monkeypatch.setenv("ASYNCGROUPS_RATE_LIMIT", "none")
    return f"could not connect to 127.0.0.1:{port}: connection refused"


def _said_once(run: Run, cause: str) -> None:
    assert len(run.err_lines) < 20, run.err
    [line] = [line for line in run.err_lines if cause in line]
    assert line.startswith(f"failed: {N} keys: {cause}")
    assert "Traceback" not in run.err


async def test_bulk_get_against_a_closed_port_says_the_cause_once_and_lists_every_key(
    closed_port: str, keys: tuple[list[str], Path], tmp_path: Path
) -> None:
    listed, listing = keys
    failed = tmp_path / "failed.jsonl"

    run = await python_m("bulk-get", "--input", str(listing), "--failed", str(failed))

    assert run.code == 1
    _said_once(run, closed_port)
    assert "of them not tried: the run stopped sending" in run.err
    assert run.err_lines[-1].endswith(f"failed keys are in {failed}")
    errors = collections.Counter(str(record["error"]) for record in _once_each(failed, listed))
    assert errors[f"not tried: {closed_port}"] > N / 2  # the rest tried, and refused
    assert all(closed_port in error for error in errors)
    assert run.out == ""


async def test_bulk_delete_against_a_closed_port_journals_every_key_once(
    closed_port: str, keys: tuple[list[str], Path], tmp_path: Path
) -> None:
    listed, listing = keys
    journal = tmp_path / "journal.jsonl"

    run = await python_m(
        "bulk-delete", "--input", str(listing), "--journal", str(journal), "--yes"
    )

    assert run.code == 1
    _said_once(run, closed_port)
    records = _once_each(journal, listed)
    assert {record["outcome"] for record in records} == {"failed"}
    assert json.loads(run.out) == {"deleted": 0, "missing": 0, "failed": N, "skipped": 0}


async def test_bulk_get_with_a_refused_key_says_it_once_and_lists_every_key(
    server: FakeGroupsServer, keys: tuple[list[str], Path], tmp_path: Path
) -> None:
    listed, listing = keys
    failed = tmp_path / "failed.jsonl"

    run = await python_m(
        "--api-key", "wrong", "bulk-get", "--input", str(listing), "--failed", str(failed)
    )

    assert run.code == 1
    _said_once(run, "401 ")
    assert "the API key was not accepted" in run.err
    _once_each(failed, listed)
    assert len(server.requests) < 40  # the keys in flight, not one request per key


async def test_bulk_delete_with_a_refused_key_journals_every_key_once_and_deletes_nothing(
    server: FakeGroupsServer, keys: tuple[list[str], Path], tmp_path: Path
) -> None:
    listed, listing = keys
    journal = tmp_path / "journal.jsonl"

    run = await python_m(
        *("--api-key", "wrong", "bulk-delete", "--input", str(listing)),
        *("--journal", str(journal), "--yes"),
    )

    assert run.code == 1
    _said_once(run, "401 ")
    assert {record["outcome"] for record in _once_each(journal, listed)} == {"failed"}
    assert len(server.requests) < 40


async def test_bulk_get_counts_missing_keys_and_lists_them_in_a_file(
    server: FakeGroupsServer, keys: tuple[list[str], Path], tmp_path: Path
) -> None:
    listed, listing = keys
    present = server.add_group("Here")
    with listing.open("a") as more:
        more.write(present + "\n")
    missing = tmp_path / "missing.jsonl"

    run = await python_m("bulk-get", "--input", str(listing), "--missing", str(missing))

    assert run.code == 1
    [summary] = run.err_lines
    assert summary.startswith(f"bulk-get: 1 ok, {N} not found in ")
    assert summary.endswith(f"keys not found are in {missing}")
    assert _once_each(missing, listed) == [{"prokey": key} for key in _order(missing)]
    assert [group["prokey"] for group in run.objects] == [present]


def _order(path: Path) -> list[str]:
    return [str(record["prokey"]) for record in _records(path)]


async def test_bulk_get_without_files_says_where_the_keys_would_go(
    server: FakeGroupsServer, keys: tuple[list[str], Path]
) -> None:
    listed, listing = keys
    listing.write_text("\n".join(listed[:5]) + "\n")

    run = await python_m("bulk-get", "--input", str(listing))

    assert run.code == 1
    [summary] = run.err_lines
    assert summary.endswith("pass --missing FILE to list the keys not found")


async def test_bulk_get_against_a_black_hole_says_the_timeout_once(
    keys: tuple[list[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed, listing = keys
    listing.write_text("\n".join(listed[:50]) + "\n")
    accepted: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # takes the request and never answers

    hole = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = hole.sockets[0].getsockname()[1]
    monkeypatch.setenv("ASYNCGROUPS_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("ASYNCGROUPS_API_KEY", "k")
    monkeypatch.setenv("ASYNCGROUPS_RATE_LIMIT", "none")
    failed = tmp_path / "failed.jsonl"
    try:
        run = await python_m(
            *("--timeout", "0.1", "--concurrency", "50", "bulk-get"),
            *("--input", str(listing), "--failed", str(failed)),
        )
    finally:
        for writer in accepted:
            writer.close()
        hole.close()
        await hole.wait_closed()

    assert run.code == 1
    assert len(run.err_lines) < 20, run.err
    [line] = [line for line in run.err_lines if "no complete reply" in line]
    assert line.startswith("failed: 50 keys: no complete reply within 0.1s")
    _once_each(failed, listed[:50])
