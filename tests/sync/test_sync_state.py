"""The SQLite state file: schema, one file, transactions and the apply lock (local files)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncgroups import ValidationError
from asyncgroups.sync import (
    StalePlanError,
    StateAccountError,
    StateFileError,
    StateLockedError,
    SyncState,
    _schema,
)
from asyncgroups.sync._schema import APPLICATION_ID, SCHEMA_VERSION
from asyncgroups.sync._state import account_url

P1 = "31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa"
P2 = "31a17cce-cccc-4ee3-99bb-6144c6a3bbbb"
T0 = "2027-01-15T08:00:00.000+00:00"
T2 = "2027-01-15T08:02:00.000+00:00"


@contextlib.contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to look inside the file, closed afterwards."""
    db = sqlite3.connect(path)
    try:
        yield db
    finally:
        db.close()


def test_state_file_is_created_as_one_file_with_a_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "sync.db"
    with SyncState(path) as state:
        assert state.generation == 0
        assert state.rows() == {}
        state_id = state.state_id
    with raw(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        version = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)
    with SyncState(path) as again:
        assert again.state_id == state_id  # reopening keeps the file's identity


def test_state_rows_survive_reopening_and_every_write_raises_the_generation(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sync.db"
    with SyncState(path) as state, state.locked():
        state.record("a", P1, {"name": "A"}, "created")
        state.record("b", P2, {"name": "B"}, "adopted")
        state.set_fields("a", {"name": "A2", "internal_note": None})
        assert state.generation == 3
    with SyncState(path) as state:
        rows = state.rows()
        assert list(rows) == ["a", "b"]
        assert rows["a"].prokey == P1
        assert dict(rows["a"].fields) == {"name": "A2", "internal_note": None}
        assert rows["b"].origin == "adopted"
        assert state.owned_prokeys() == {P1, P2}


def test_state_record_replaces_the_row_and_drops_the_pending_create(tmp_path: Path) -> None:
    with SyncState(tmp_path / "s.db") as state, state.locked():
        state.record("a", P1, {"name": "A"}, "created")
        baseline = state.new_baseline([P2], [("a", "A", {"name": "A"})])
        assert list(state.pending()) == ["a"]
        assert state.pending()["a"].baseline == baseline
        state.record("a", P2, {"name": "A"}, "created")  # re-created after drift
        assert state.pending() == {}
        assert state.rows()["a"].prokey == P2


def test_state_forget_keeps_a_row_that_names_another_group(tmp_path: Path) -> None:
    with SyncState(tmp_path / "s.db") as state, state.locked():
        state.record("a", P2, {"name": "A"}, "created")
        state.forget("a", P1)
        assert "a" in state.rows()
        state.forget("a", P2)
        assert state.rows() == {}


def test_state_drops_baselines_no_pending_create_needs(tmp_path: Path) -> None:
    with SyncState(tmp_path / "s.db") as state, state.locked():
        first = state.new_baseline([P1], [("a", "A", {"name": "A"})])
        second = state.new_baseline([P1, P2])
        assert second > first
        assert state.baseline(first) == {P1}  # still needed by the pending create
        state.forget_pending("a")
        third = state.new_baseline([])
        assert state.baseline(first) == frozenset()
        assert state.baseline(second) == frozenset()
        assert state.baseline(third) == frozenset()


def test_state_writes_need_the_lock(tmp_path: Path) -> None:
    with SyncState(tmp_path / "s.db") as state:
        with pytest.raises(StateFileError, match="apply lock"):
            state.record("a", P1, {"name": "A"}, "created")
        assert state.rows() == {}


def test_state_lock_refuses_a_second_holder_and_names_the_first(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SyncState(path) as first, SyncState(path) as second:
        with first.locked():
            with first.locked():  # the same object may nest
                assert first.holds_lock
            assert first.holds_lock
            with pytest.raises(StateLockedError) as info, second.locked():
                pass
            assert f"pid {os.getpid()}" in str(info.value)
            assert str(path) in str(info.value)
        assert not first.holds_lock
        with second.locked():  # free again once released
            assert second.holds_lock


async def test_state_lock_held_by_another_process_ends_when_it_is_killed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    SyncState(path).close()
    script = (
        "import sys, time\n"
        "from asyncgroups.sync import SyncState\n"
        "state = SyncState(sys.argv[1])\n"
        "with state.locked():\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(path), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"locked\n"
        with SyncState(path) as state:
            with pytest.raises(StateLockedError, match=f"pid {proc.pid}"), state.locked():
                pass
            proc.send_signal(signal.SIGKILL)  # no clean-up runs: the OS drops the lock
            await proc.wait()
            with state.locked():
                assert state.holds_lock
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_state_refuses_a_database_that_is_not_a_state_file(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with raw(path) as db:
        db.execute("CREATE TABLE users (id INTEGER)")
        db.commit()
    with pytest.raises(StateFileError, match="not an asyncgroups sync state file"):
        SyncState(path)


def test_state_refuses_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a database at all" * 100)
    with pytest.raises(StateFileError, match="not a usable state file"):
        SyncState(path)


def test_state_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SyncState(path).close()
    with raw(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
        db.commit()
    with pytest.raises(StateFileError, match="newer asyncgroups"):
        SyncState(path)


def test_state_of_schema_1_is_upgraded_on_opening_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with raw(path) as db:  # a file as the first released schema wrote it
        db.isolation_level = None
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        db.executescript(_schema._SCHEMA)
        db.executemany(
            "INSERT INTO meta (name, value) VALUES (?, ?)",
            [("schema_version", "1"), ("state_id", "s1"), ("generation", "0")],
        )
        db.execute(
            "INSERT INTO pending_creates (key, name, fields, baseline, started_at)"
            " VALUES ('a', 'A', '{\"name\": \"A\"}', 1, 't')"
        )
        assert db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone() == (
            "1",
        )
    with SyncState(path) as state:
        (pending,) = state.pending().values()
        assert (pending.key, pending.sent_at, pending.decide_after) == ("a", None, None)
        with state.locked():
            state.mark_sent("a", T0)
            state.mark_undecided("a", T2, T0)
        pending = state.pending()["a"]
        assert (pending.sent_at, pending.timed_out_at, pending.decide_after) == (T0, T0, T2)
    with raw(path) as db:
        version = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)
    SyncState(path).close()  # opening an upgraded file again changes nothing


def test_state_close_is_idempotent_and_final(tmp_path: Path) -> None:
    state = SyncState(tmp_path / "s.db")
    with state.locked():
        pass
    state.close()
    state.close()
    assert state.closed
    assert "closed" in repr(state)
    with pytest.raises(StateFileError, match="closed"):
        state.rows()


def test_state_write_failure_is_a_state_file_error_and_rolls_back(tmp_path: Path) -> None:
    with SyncState(tmp_path / "s.db") as state, state.locked():
        state.record("a", P1, {"name": "A"}, "created")
        generation = state.generation
        with pytest.raises(StateFileError, match="cannot write the state file"):
            state.record("b", P1, {"name": "B"}, "created")  # P1 is owned by "a" already
        assert list(state.rows()) == ["a"]
        assert state.generation == generation


@pytest.mark.parametrize(
    "damage",
    ["UPDATE groups SET fields = '{broken'", "DROP TABLE pending_creates"],
)
def test_state_damaged_file_is_a_state_file_error_not_a_traceback(
    tmp_path: Path, damage: str
) -> None:
    path = tmp_path / "sync.db"
    with SyncState(path) as state, state.locked():
        state.record("a", "fe598303-ef68-4e1f-8992-642d4270829c", {"name": "A"}, "created")
    db = sqlite3.connect(path)
    db.execute(damage)
    db.commit()
    db.close()
    with SyncState(path) as state:
        with pytest.raises(StateFileError):
            state.snapshot()
        with pytest.raises(StateFileError):
            state.rows() if "fields" in damage else state.pending()


def _link(kind: str, target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if kind == "symlink":
        link.symlink_to(target)
    else:
        os.link(target, link)


@pytest.mark.parametrize("kind", ["symlink", "hard link"])
def test_state_lock_is_one_lock_however_the_file_is_reached(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "jobs" / "groups.sync.db"
    path.parent.mkdir()
    SyncState(path).close()
    other = tmp_path / "releases" / "current.db"
    _link(kind, path, other)
    with (
        SyncState(path) as first,
        SyncState(other) as second,
        first.locked(),
        pytest.raises(StateLockedError, match=f"pid {os.getpid()}"),
        second.locked(),
    ):
        pass


_HOLD_LOCK = (
    "import sys\n"
    "from asyncgroups.sync import SyncState\n"
    "state = SyncState(sys.argv[1])\n"
    "with state.locked():\n"
    "    print('locked', flush=True)\n"
    "    sys.stdin.read()\n"
)


@pytest.mark.skipif(sys.platform == "win32", reason="hard links and symlinks need privileges")
async def test_state_lock_held_by_another_process_through_a_link_refuses_the_other_paths(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs" / "groups.sync.db"
    path.parent.mkdir()
    SyncState(path).close()
    symlink, hard = tmp_path / "current" / "s.db", tmp_path / "backup" / "s.db"
    _link("symlink", path, symlink)
    _link("hard link", path, hard)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLD_LOCK,
        str(symlink),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"locked\n"
        for reached in (path, hard, symlink):
            with (
                SyncState(reached) as state,
                pytest.raises(StateLockedError, match=f"pid {proc.pid}"),
                state.locked(),
            ):
                pass
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 10)
    with SyncState(hard) as state, state.locked():  # released with its holder
        assert state.holds_lock


_OPEN_AT_ONCE = """
import os, sys
from asyncgroups.sync import StateFileError, SyncState

directory, processes, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
failed = 0
for number in range(rounds):
    path = os.path.join(directory, f"s{number}.db")
    go, start = os.pipe()
    children = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            os.close(start)
            os.read(go, 1)  # every child waits here; closing `start` wakes all at once
            try:
                SyncState(path).close()
            except StateFileError as err:
                os.write(2, f"{err}\\n".encode())
                os._exit(1)
            os._exit(0)
        children.append(pid)
    os.close(go)
    os.close(start)
    for pid in children:
        failed += os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0
print(failed)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="forks its processes")
async def test_state_new_file_opened_by_many_processes_at_once_opens_in_every_one(
    tmp_path: Path,
) -> None:
    processes, rounds = 12, 15
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _OPEN_AT_ONCE,
        str(tmp_path),
        str(processes),
        str(rounds),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert (out.decode().strip(), err.decode()) == ("0", "")
    for number in range(rounds):
        with SyncState(tmp_path / f"s{number}.db") as state:
            assert state.generation == 0
            assert state.rows() == {}


def _beside(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p != path)


def test_state_file_alone_holds_every_write_at_once(tmp_path: Path) -> None:
    path = tmp_path / "run" / "s.db"
    path.parent.mkdir()
    copy = tmp_path / "copies" / "s.db"
    copy.parent.mkdir()

    def copied() -> SyncState:
        copy.write_bytes(path.read_bytes())  # the file named by --state, nothing beside it
        return SyncState(copy)

    with SyncState(path) as state:
        with copied() as alone:
            assert alone.state_id == state.state_id
        with state.locked():
            baseline = state.new_baseline([P2], [("a", "A", {"name": "A"})])
            assert _beside(path) == []
            with copied() as alone:
                assert list(alone.pending()) == ["a"]
                assert alone.baseline(baseline) == {P2}
            state.record("a", P1, {"name": "A"}, "created")
            with copied() as alone:
                assert alone.pending() == {}
                assert alone.rows()["a"].prokey == P1
                assert alone.generation == state.generation
    assert _beside(path) == []


_FORKED_CHILD_TRIES_THE_LOCK = """
import os, sys
from asyncgroups.sync import StateLockedError, SyncState

state = SyncState(sys.argv[1])  # open, not locked, when the process forks
held, tell = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(tell)
    os.read(held, 1)  # until the parent holds the lock
    assert not state.holds_lock
    with SyncState(sys.argv[1]) as mine:
        try:
            with mine.locked():
                os._exit(1)
        except StateLockedError:
            os._exit(0)
os.close(held)
with state.locked():
    os.write(tell, b"!")
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="forks")
async def test_state_lock_taken_by_a_parent_after_forking_refuses_the_child(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SyncState(path).close()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _FORKED_CHILD_TRIES_THE_LOCK,
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert (out.decode().strip(), proc.returncode) == ("0", 0), err.decode()


@pytest.mark.parametrize(
    ("given", "account"),
    [
        ("https://api.add-to-calendar-pro.com/v1", "https://api.add-to-calendar-pro.com/v1"),
        ("HTTPS://API.Add-To-Calendar-Pro.com:443/v1/", "https://api.add-to-calendar-pro.com/v1"),
        ("https://api.add-to-calendar-pro.com./v1", "https://api.add-to-calendar-pro.com/v1"),
        ("http://127.0.0.1:80/v1", "http://127.0.0.1/v1"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        ("https://[::1]:8443/api/V1", "https://[::1]:8443/api/V1"),
        ("https://staging.example.com", "https://staging.example.com"),
    ],
)
def test_account_url_spells_one_account_one_way(given: str, account: str) -> None:
    assert account_url(given) == account


@pytest.mark.parametrize(
    "given",
    [
        "ftp://example.com/v1",
        "https:///v1",
        "https://user:secret@example.com/v1",
        "https://example.com/v1?key=secret",
        "https://example.com:99999/v1",
    ],
)
def test_account_url_refuses_what_is_no_base_url(given: str) -> None:
    with pytest.raises(ValidationError) as info:
        account_url(given)
    assert "secret" not in str(info.value)


def test_state_apply_start_binds_checks_and_raises_the_generation_at_once(
    tmp_path: Path,
) -> None:
    url = "https://api.example.com/v1"
    with SyncState(tmp_path / "s.db") as state:
        state_id = state.state_id
        with state.applying(state_id=state_id, generation=0, base_url=url + "/") as snap:
            assert (snap.generation, state.generation) == (1, 1)
            assert state.base_url == url
        refused = [
            (StalePlanError, state_id, 0, url),  # a plan is good for one apply
            (StalePlanError, "another", 1, url),
            (StateAccountError, state_id, 1, "https://b.example"),
        ]
        for error, plan_state, generation, client_url in refused:
            with (
                pytest.raises(error),
                state.applying(state_id=plan_state, generation=generation, base_url=client_url),
            ):
                pass
        assert (state.generation, state.base_url, state.holds_lock) == (1, url, False)


def test_state_rebind_needs_the_lock_and_a_base_url(tmp_path: Path) -> None:
    with SyncState(tmp_path / "s.db") as state:
        with pytest.raises(StateFileError, match="apply lock"):
            state.rebind("https://b.example/v1")
        with state.locked():
            with pytest.raises(ValidationError, match="credentials"):
                state.rebind("https://u:p@b.example/v1")
            assert state.rebind("https://b.example/v1") is None
            assert state.rebind("https://c.example/v1") == "https://b.example/v1"
            assert state.generation == 2  # plans made before are stale
        state.check_account("https://C.example/v1/")
        with pytest.raises(StateAccountError):
            state.check_account("https://b.example/v1")


def _wal_state_file(path: Path) -> None:
    """A state file as an older asyncgroups left it: WAL mode, schema 1."""
    SyncState(path).close()
    with raw(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("UPDATE meta SET value = '1' WHERE name = 'schema_version'")
        db.commit()


def test_state_of_an_older_version_is_read_as_it_is_and_upgraded_under_the_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    _wal_state_file(path)
    with SyncState(path) as state, raw(path) as other:
        assert state.rows() == {}
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        with pytest.raises(StateLockedError, match="must have it alone"), state.locked():
            pass
        assert not state.holds_lock
    with SyncState(path) as state, state.locked():
        pass
    with raw(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        version = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)
        holder = db.execute("SELECT value FROM meta WHERE name = 'apply_holder'").fetchone()
        assert holder is None  # released: nobody holds it
