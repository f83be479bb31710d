"""The sync state file: an embedded SQLite database (stdlib `sqlite3`, WAL mode).

It maps each desired `key` to the prokey of its group and the fields last applied, and
keeps the intent of every create that may be in flight, so an apply that crashes or is
interrupted loses nothing and the next one creates no duplicate. Every write is one
short transaction, committed before the next request that depends on it is sent.

Writes need the apply lock (`SyncState.locked()`): an OS file lock on `<state>.lock`
(`_lock.py`), dropped with its process, so a crash never leaves a stale lock behind.
The schema and the checks made on opening a file are in `_schema.py`. This module
stores the lost-create protocol's rows (baselines, pending creates); the protocol's
logic is in `_creates.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Literal, Self

import attrs

from ._errors import StateFileError, StateLockedError
from ._lock import LockFile
from ._schema import now, open_database, read_meta

__all__ = ["Origin", "PendingCreate", "StateRow", "StateSnapshot", "SyncState"]

#: How a group came to be owned by the state: made by a sync, or adopted by name.
Origin = Literal["created", "adopted"]


@attrs.frozen
class StateRow:
    """A group the state owns: its key, prokey, origin and the fields last applied."""

    key: str
    prokey: str
    origin: Origin
    #: The managed fields as last applied, as plain JSON values.
    fields: Mapping[str, Any]
    updated_at: str


@attrs.frozen
class PendingCreate:
    """A create that may have been sent and whose outcome is not known yet.

    `baseline` names the account listing taken before it was sent: a group that was not
    in that listing, that no row owns and that has this `name` may be what it made.
    """

    key: str
    name: str
    fields: Mapping[str, Any]
    baseline: int
    started_at: str
    #: When its POST was last handed to the client; None: it was never sent.
    sent_at: str | None = None
    #: When that POST timed out (it may still be running on the server), if it did.
    timed_out_at: str | None = None
    #: Until when it may still land: only a listing started after this can show that
    #: it made nothing (`_creates.py`). None: not known to be still running.
    decide_after: str | None = None


@attrs.frozen
class StateSnapshot:
    """Everything a plan needs from the state, read in one transaction."""

    state_id: str
    generation: int
    rows: Mapping[str, StateRow]
    pending: Mapping[str, PendingCreate]


def _fields(text: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as err:
        raise StateFileError(f"a stored field set is not valid JSON ({err}): {text!r:.80}") from err
    if not isinstance(value, dict):
        raise StateFileError(f"a stored field set is not a JSON object: {text[:80]!r}")
    return MappingProxyType(value)


class SyncState:
    """A sync state file, opened (and created with its schema when new).

    Use it as `with SyncState(path) as state:`; `close()` is idempotent. Reading needs
    no lock; writing (which `apply` does) needs `locked()`. Two processes, or two
    `SyncState` objects, cannot hold the lock of one file at once.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._lock: LockFile | None = None
        self._lock_depth = 0
        #: True while an `apply` runs on this object (the lock alone nests, so it
        #: cannot tell a second apply of the same object from the first one).
        self._applying = False
        self._db: sqlite3.Connection | None = open_database(self._path)

    # Lifecycle ----------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """Where the state file is."""
        return self._path

    @property
    def closed(self) -> bool:
        """True once `close()` was called."""
        return self._db is None

    def close(self) -> None:
        """Release the lock (if held) and close the database; calling it again does nothing."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
            self._lock_depth = 0
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("locked" if self.holds_lock else "open")
        return f"SyncState({str(self._path)!r}, {state})"

    # The apply lock -----------------------------------------------------------------

    @property
    def holds_lock(self) -> bool:
        """True while this object holds the apply lock."""
        return self._lock is not None

    @contextlib.contextmanager
    def locked(self) -> Iterator[Self]:
        """Hold the apply lock for the block; nested use by the same object is fine.

        Raises `StateLockedError` at once (it does not wait) when another process or
        another `SyncState` holds it, naming the holder's pid, host and start time.
        """
        self._check_open()
        if self._lock is None:
            lock = LockFile(Path(f"{self._path}.lock"))
            lock.acquire(self._path)
            self._lock = lock
        self._lock_depth += 1
        try:
            yield self
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0 and self._lock is not None:
                self._lock.release()
                self._lock = None

    @contextlib.contextmanager
    def applying(self) -> Iterator[Self]:
        """Hold the apply lock for one apply; a second apply at once is refused.

        The lock nests for one object (so a caller may hold it around its plan and
        apply), which would let two concurrent applies through the same object (two
        tasks sharing it) run together and send the same creates twice. This refuses
        the second with `StateLockedError`, as another process would be refused.
        """
        self._check_open()
        if self._applying:
            raise StateLockedError(
                f"the state file {self._path} is in use by another apply running in this "
                "process on the same SyncState; wait for it to finish"
            )
        with self.locked():
            self._applying = True
            try:
                yield self
            finally:
                self._applying = False

    # Reading ------------------------------------------------------------------------

    @property
    def state_id(self) -> str:
        """A random id given to the file when it was created (a plan remembers it)."""
        value = self._meta("state_id")
        assert value is not None
        return value

    @property
    def generation(self) -> int:
        """A counter raised by every write; a plan remembers the one it was made at."""
        return int(self._meta("generation") or 0)

    def snapshot(self) -> StateSnapshot:
        """The rows, the pending creates and the generation, as of one moment."""
        db = self._check_open()
        with self._reading():
            db.execute("BEGIN")
            try:
                snap = StateSnapshot(
                    state_id=self.state_id,
                    generation=self.generation,
                    rows=MappingProxyType(self._rows()),
                    pending=MappingProxyType(self._pending()),
                )
            finally:
                db.execute("COMMIT")
        return snap

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """A damaged file (a table missing, a locked database) is a `StateFileError`."""
        try:
            yield
        except sqlite3.Error as err:
            raise StateFileError(f"cannot read the state file {self._path}: {err}") from err

    def rows(self) -> dict[str, StateRow]:
        """Every owned group, by key."""
        with self._reading():
            return self._rows()

    def pending(self) -> dict[str, PendingCreate]:
        """Every create whose outcome is not known yet, by key."""
        with self._reading():
            return self._pending()

    def owned_prokeys(self) -> set[str]:
        """The prokeys of every group the state owns."""
        db = self._check_open()
        with self._reading():
            return {prokey for (prokey,) in db.execute("SELECT prokey FROM groups")}

    def baseline(self, baseline: int) -> frozenset[str]:
        """The prokeys of the account listing stored as `baseline`."""
        db = self._check_open()
        with self._reading():
            rows = db.execute("SELECT prokey FROM baselines WHERE baseline = ?", (baseline,))
            return frozenset(prokey for (prokey,) in rows)

    def _rows(self) -> dict[str, StateRow]:
        db = self._check_open()
        query = "SELECT key, prokey, origin, fields, updated_at FROM groups ORDER BY rowid"
        return {
            key: StateRow(key, prokey, origin, _fields(fields), updated)
            for key, prokey, origin, fields, updated in db.execute(query)
        }

    def _pending(self) -> dict[str, PendingCreate]:
        db = self._check_open()
        query = (
            "SELECT key, name, fields, baseline, started_at, sent_at, timed_out_at,"
            " decide_after FROM pending_creates ORDER BY rowid"
        )
        return {
            key: PendingCreate(key, name, _fields(fields), baseline, started, *outcome)
            for key, name, fields, baseline, started, *outcome in db.execute(query)
        }

    def _meta(self, name: str) -> str | None:
        return read_meta(self._check_open(), name)

    def _check_open(self) -> sqlite3.Connection:
        if self._db is None:
            raise StateFileError(f"the state file {self._path} was closed")
        return self._db

    # Writing (each call is one committed transaction) -------------------------------

    @contextlib.contextmanager
    def _write(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction; `durable` syncs it (and all before it) to disk on commit."""
        db = self._check_open()
        if self._lock is None:
            raise StateFileError(
                "writing the state needs its apply lock: use `with state.locked():`"
            )
        try:
            if durable:
                db.execute("PRAGMA synchronous=FULL")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute(
                    "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'generation'"
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as err:  # a full disk, a file removed underneath, …
            raise StateFileError(f"cannot write the state file {self._path}: {err}") from err
        finally:
            if durable:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("PRAGMA synchronous=NORMAL")

    def forget_pending(self, key: str) -> None:
        """Drop `key`'s create intent: it is known that the create made nothing."""
        with self._write() as db:
            db.execute("DELETE FROM pending_creates WHERE key = ?", (key,))

    def mark_sent(self, key: str, at: str) -> None:
        """Note that `key`'s create is being sent (at `at`): if nothing learns how it
        ended, it may still be running on the server when the next apply looks."""
        with self._write() as db:
            db.execute("UPDATE pending_creates SET sent_at = ? WHERE key = ?", (at, key))

    def mark_undecided(self, key: str, decide_after: str, timed_out_at: str | None = None) -> None:
        """Note that `key`'s create may still land until `decide_after` (its POST timed
        out at `timed_out_at`, or was cut off when an apply was interrupted)."""
        with self._write() as db:
            db.execute(
                "UPDATE pending_creates SET timed_out_at = coalesce(?, timed_out_at),"
                " decide_after = ? WHERE key = ?",
                (timed_out_at, decide_after, key),
            )

    def record(self, key: str, prokey: str, fields: Mapping[str, Any], origin: Origin) -> None:
        """Own `prokey` under `key` with `fields` applied (replacing any earlier row).

        Drops `key`'s create intent in the same transaction.
        """
        with self._write() as db:
            db.execute("DELETE FROM pending_creates WHERE key = ?", (key,))
            db.execute(
                "INSERT INTO groups (key, prokey, origin, fields, updated_at)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET prokey = excluded.prokey,"
                " origin = excluded.origin, fields = excluded.fields,"
                " updated_at = excluded.updated_at",
                (key, prokey, origin, json.dumps(dict(fields)), now()),
            )

    def set_fields(self, key: str, fields: Mapping[str, Any]) -> None:
        """Store `fields` as the fields last applied to `key`'s group."""
        with self._write() as db:
            db.execute(
                "UPDATE groups SET fields = ?, updated_at = ? WHERE key = ?",
                (json.dumps(dict(fields)), now(), key),
            )

    def forget(self, key: str, prokey: str) -> None:
        """Stop owning `key`'s group `prokey` (after it was deleted).

        A row that meanwhile names another group (an interrupted create of the same key,
        settled since) is kept: that group still exists and stays owned.
        """
        with self._write() as db:
            db.execute("DELETE FROM groups WHERE key = ? AND prokey = ?", (key, prokey))

    def new_baseline(
        self,
        prokeys: Iterable[str],
        intents: Iterable[tuple[str, str, Mapping[str, Any]]] = (),
    ) -> int:
        """Store an account listing as a new baseline, with creates about to be sent.

        `intents` are `(key, name, fields)` of creates that may be sent from now on;
        each becomes a pending create tied to this baseline. The transaction is synced
        to disk before this returns (the one write that must survive a power cut too: a
        create sent without its intent on disk could be made twice). Baselines no
        pending create refers to any more are dropped. Returns the baseline's number.
        """
        with self._write(durable=True) as db:
            (number,) = db.execute(
                "SELECT CAST(value AS INTEGER) FROM meta WHERE name = 'next_baseline'"
            ).fetchone()
            db.execute("UPDATE meta SET value = ? WHERE name = 'next_baseline'", (str(number + 1),))
            started = now()
            db.executemany(
                "INSERT OR REPLACE INTO pending_creates (key, name, fields, baseline, started_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    (key, name, json.dumps(dict(fields)), number, started)
                    for key, name, fields in intents
                ),
            )
            db.execute(
                "DELETE FROM baselines WHERE baseline NOT IN (SELECT baseline FROM pending_creates)"
            )
            db.executemany(
                "INSERT OR IGNORE INTO baselines (baseline, prokey) VALUES (?, ?)",
                ((number, prokey) for prokey in prokeys),
            )
        return int(number)
