"""The sync state file under real processes: one lock however the file is reached, the
file alone after `kill -9`, and the account a state belongs to (real sockets, the fake)."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from conftest import local_client

from asyncgroups.sync import (
    DesiredGroup,
    StateAccountError,
    StateFileError,
    SyncState,
    apply,
    plan,
)
from asyncgroups.sync._schema import APPLICATION_ID
from asyncgroups.testing import FakeGroupsServer, Faults

from .support import resume

_CHILD = """
import asyncio, sys
from asyncgroups import GroupsClient, RetryPolicy
from asyncgroups.sync import DesiredGroup, SyncError, SyncState, apply, plan

async def main(url, key, path, n, wait):
    desired = [DesiredGroup(f"id-{i}", f"Group {i}") for i in range(n)]
    retry = RetryPolicy(backoff_base=0.001, backoff_max=0.01)
    async with GroupsClient(key, base_url=url, retry=retry, rate_limit=None) as client:
        with SyncState(path) as state:
            the_plan = await plan(client, desired, state)
            if wait:
                print("planned", flush=True)
                await asyncio.to_thread(sys.stdin.readline)
            try:
                report = await apply(
                    client, the_plan, state, concurrency=4,
                    on_progress=lambda p: print(p.done, flush=True),
                )
            except SyncError as err:
                print(type(err).__name__, flush=True)
                return
    print("applied", report.ok, flush=True)

asyncio.run(main(*sys.argv[1:4], int(sys.argv[4]), sys.argv[5] == "wait"))
"""


async def _start(
    server: FakeGroupsServer, path: Path, n: int, *, wait: bool
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD,
        server.url,
        server.api_key,
        str(path),
        str(n),
        "wait" if wait else "go",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )


def _names(server: FakeGroupsServer) -> collections.Counter[str]:
    return collections.Counter(g["name"] for g in server.groups.values())


def _desired(n: int) -> list[DesiredGroup]:
    return [DesiredGroup(f"id-{i}", f"Group {i}") for i in range(n)]


@pytest.mark.skipif(sys.platform == "win32", reason="hard links and symlinks need privileges")
async def test_sync_applies_through_a_symlink_and_a_hard_link_create_each_group_once(
    tmp_path: Path,
) -> None:
    n = 20
    path = tmp_path / "jobs" / "groups.sync.db"
    path.parent.mkdir()
    SyncState(path).close()
    (tmp_path / "current.db").symlink_to(path)
    (tmp_path / "backup").mkdir()
    os.link(path, tmp_path / "backup" / "groups.sync.db")
    reached = [path, tmp_path / "current.db", tmp_path / "backup" / "groups.sync.db"]
    async with FakeGroupsServer(faults=Faults(latency=0.01)) as server:
        children = [await _start(server, where, n, wait=True) for where in reached]
        try:
            for child in children:  # each one planned against the same empty state ...
                assert child.stdout is not None
                assert await asyncio.wait_for(child.stdout.readline(), 20) == b"planned\n"
            for child in children:  # ... and all apply at once
                assert child.stdin is not None
                child.stdin.write(b"go\n")
            outputs = [await asyncio.wait_for(c.communicate(), 30) for c in children]
        finally:
            for child in children:
                if child.returncode is None:
                    child.kill()
                    await child.wait()
        ends = sorted(out.decode().splitlines()[-1] for out, _ in outputs)
        assert ends[-1] == "applied True"
        assert set(ends[:-1]) <= {"StateLockedError", "StalePlanError"}, ends
        assert _names(server) == {f"Group {i}": 1 for i in range(n)}


async def test_sync_resumes_from_the_state_file_alone_after_kill_9(tmp_path: Path) -> None:
    n = 60
    path = tmp_path / "run" / "sync.db"
    path.parent.mkdir()
    alone = tmp_path / "cache" / "sync.db"
    alone.parent.mkdir()
    async with FakeGroupsServer(faults=Faults(latency=0.005, jitter=0.005)) as server:
        child = await _start(server, path, n, wait=False)
        try:
            assert child.stdout is not None
            while True:  # kill it, with no chance to clean up, after 15 recorded creates
                line = await asyncio.wait_for(child.stdout.readline(), 20)
                assert line, "the child ended before it was killed"
                assert not line.startswith(b"applied"), "the child finished first"
                if int(line) >= 15:
                    child.send_signal(signal.SIGKILL)
                    break
            await child.wait()
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
        alone.write_bytes(path.read_bytes())  # what a CI cache keeps: this file, nothing beside
        await asyncio.sleep(0.05)  # the creates the server had taken finish
        assert 15 <= len(server.groups) < n
        async with local_client(server) as client:
            with SyncState(alone) as state:
                assert len(state.rows()) >= 15
                report = await resume(client, _desired(n), state)
                rows = state.rows()
        assert report.ok, report.failed
        assert _names(server) == {f"Group {i}": 1 for i in range(n)}
        by_name = {group["name"]: prokey for prokey, group in server.groups.items()}
        assert {key: row.prokey for key, row in rows.items()} == {
            f"id-{i}": by_name[f"Group {i}"] for i in range(n)
        }


async def test_sync_state_of_one_account_is_refused_for_another_before_any_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    async with FakeGroupsServer() as production, FakeGroupsServer() as staging:
        async with local_client(production) as client:
            with SyncState(path) as state:
                assert state.base_url is None  # bound by its first apply
                first = await plan(client, _desired(5), state)
                assert (await apply(client, first, state)).ok
                assert state.base_url == production.url
        async with local_client(production) as at_production, local_client(staging) as client:
            with SyncState(path) as state:
                with pytest.raises(StateAccountError) as info:
                    await plan(client, _desired(5), state)
                stale = await plan(at_production, [*_desired(5), DesiredGroup("x", "X")], state)
                with pytest.raises(StateAccountError):
                    await apply(client, stale, state)  # a plan made for production
                assert state.base_url == production.url
        assert staging.requests == []
        assert len(production.groups) == 5
        assert str(info.value) == (
            f"the state file {path} belongs to the account at {production.url}, not "
            f"{staging.url}: give --state a new file for that account (one state file per "
            "account), or rebind this one if the account itself moved to "
            f"{staging.url}"
        )
        assert (info.value.state_url, info.value.client_url) == (production.url, staging.url)


async def test_sync_state_rebound_to_a_moved_account_goes_on_without_duplicates(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    async with FakeGroupsServer() as old, FakeGroupsServer() as new:
        async with local_client(old) as client:
            with SyncState(path) as state:
                assert (await apply(client, await plan(client, _desired(3), state), state)).ok
        for prokey, group in old.groups.items():  # the account moved to another URL
            fields = {k: v for k, v in group.items() if k not in ("events", "name")}
            new.add_group(group["name"], prokey=prokey, **fields)
        async with local_client(new) as client:
            with SyncState(path) as state:
                with pytest.raises(StateFileError, match="apply lock"):
                    state.rebind(new.url)
                with state.locked():
                    assert state.rebind(new.url + "/") == old.url
                assert state.base_url == new.url
                again = await plan(client, _desired(3), state)
                assert not again.has_changes
                assert (await apply(client, again, state)).ok
        assert [r for r in new.requests if r.method != "GET"] == []


def _old_state_file(path: Path) -> None:
    """A state file as asyncgroups wrote it before the account binding: schema 1, WAL."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA application_id={APPLICATION_ID}")
    db.executescript(
        """
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE groups (key TEXT PRIMARY KEY, prokey TEXT NOT NULL UNIQUE,
            origin TEXT NOT NULL CHECK (origin IN ('created', 'adopted')),
            fields TEXT NOT NULL, updated_at TEXT NOT NULL);
        CREATE TABLE pending_creates (key TEXT PRIMARY KEY, name TEXT NOT NULL,
            fields TEXT NOT NULL, baseline INTEGER NOT NULL, started_at TEXT NOT NULL);
        CREATE TABLE baselines (baseline INTEGER NOT NULL, prokey TEXT NOT NULL,
            PRIMARY KEY (baseline, prokey)) WITHOUT ROWID;
        INSERT INTO meta VALUES ('schema_version', '1'), ('generation', '0'),
            ('state_id', '5f0c2c1e-3a1b-4c9e-9d1e-0f4a8e7b6c5d'),
            ('created_at', '2026-01-01T00:00:00.000+00:00'), ('next_baseline', '1');
        """
    )
    db.close()


async def test_sync_old_state_file_is_bound_and_made_a_single_file_by_its_first_apply(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    _old_state_file(path)
    async with FakeGroupsServer() as server, local_client(server) as client:
        with SyncState(path) as state:
            assert state.base_url is None
            the_plan = await plan(client, _desired(3), state)
            assert state.generation == 0  # planning changed nothing
            assert (await apply(client, the_plan, state)).ok
            assert state.base_url == server.url
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        version = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        assert version == ("2",)
    finally:
        db.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]
