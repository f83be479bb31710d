"""The SQLite state file: schema, WAL, transactions and the apply lock (local files only)."""

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

from asyncgroups.sync import StateFileError, StateLockedError, SyncState, _schema
from asyncgroups.sync._schema import APPLICATION_ID, SCHEMA_VERSION

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


def test_state_file_is_created_in_wal_mode_with_a_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "sync.db"
    with SyncState(path) as state:
        assert state.generation == 0
        assert state.rows() == {}
        state_id = state.state_id
    with raw(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
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
        _schema._create_schema(db, path)
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
