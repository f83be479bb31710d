"""An open state file: its SQLite connection, the apply lock held on it, and the
transactions and `meta` values `SyncState` builds on. No sync logic.

A read that meets a damaged file raises `StateFileError`; a write is one transaction,
in the file and synced to disk when it returns, and needs the apply lock. The lock is
the database file's own OS lock (`_lock.py`); taking it records its holder in `meta`,
so that an apply refused can name it, and makes a file of an older asyncgroups current
(`_schema.upgrade`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ._errors import StateFileError, StateLockedError
from ._lock import ApplyLock
from ._schema import SYNC_DURABLE, SYNC_WRITE, now, open_database, read_meta, upgrade

__all__ = ["StateDatabase"]


class StateDatabase:
    """One state file, opened: what a `SyncState` reads and writes through."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_depth = 0
        db = open_database(path)
        try:
            self._lock = ApplyLock(path)
        except OSError as err:
            db.close()
            raise StateFileError(f"cannot open the state file {path}: {err}") from err
        self._db: sqlite3.Connection | None = db

    @property
    def closed(self) -> bool:
        """True once `close()` was called."""
        return self._db is None

    def close(self) -> None:
        """Release the lock (if held) and close the database; calling it again does nothing."""
        if self.holds_lock:
            self._unlock()
        self._lock_depth = 0
        db, self._db = self._db, None
        if db is not None:
            db.close()
        # After the database: the lock's descriptor must outlive SQLite's (`_lock.py`).
        self._lock.close()

    @property
    def holds_lock(self) -> bool:
        """True while this object holds the apply lock."""
        return not self.closed and self._lock.held

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the apply lock for the block, taken once however deeply nested
        (`SyncState.locked` says what a caller sees)."""
        db = self.connection()
        if self._lock_depth == 0:
            self._lock_file(db)
        self._lock_depth += 1
        try:
            yield
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0:
                self._unlock()

    def _lock_file(self, db: sqlite3.Connection) -> None:
        try:
            taken = self._lock.acquire()
        except OSError as err:
            raise StateFileError(f"cannot lock the state file {self.path}: {err}") from err
        if not taken:
            raise StateLockedError(
                f"the state file {self.path} is in use by another apply{self._holder()}; "
                "wait for it to finish. (The lock belongs to that process and ends with "
                "it: there is nothing to clean up.)"
            )
        try:
            try:
                upgrade(db, self.path)
            except sqlite3.Error as err:
                raise StateFileError(f"cannot upgrade the state file {self.path}: {err}") from err
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": now()}
            self.set_meta("apply_holder", json.dumps(holder))
        except BaseException:
            self._lock.release()
            raise

    def _unlock(self) -> None:
        with contextlib.suppress(StateFileError):
            self.set_meta("apply_holder", None)
        self._lock.release()

    def _holder(self) -> str:
        """ " (pid 123 on host, since …)", or "" when the holder cannot be read."""
        try:
            info = json.loads(self.meta("apply_holder") or "")
            return f" (pid {int(info['pid'])} on {info['host']}, since {info['since']})"
        except (sqlite3.Error, StateFileError, ValueError, KeyError, TypeError):
            return ""

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """A damaged file (a table missing, a locked database) is a `StateFileError`."""
        try:
            yield
        except sqlite3.Error as err:
            raise StateFileError(f"cannot read the state file {self.path}: {err}") from err

    def meta(self, name: str) -> str | None:
        """The `meta` value called `name`, or None when there is none."""
        return read_meta(self.connection(), name)

    def connection(self) -> sqlite3.Connection:
        """The open connection; once closed, a `StateFileError`."""
        if self._db is None:
            raise StateFileError(f"the state file {self.path} was closed")
        return self._db

    @contextlib.contextmanager
    def write(
        self, *, change: bool = True, durable: bool = False
    ) -> Iterator[sqlite3.Connection]:
        """One transaction, in the file when it returns; a `change` raises the generation.

        Every commit is synced to disk; a `durable` one also outlives a power cut
        (`_schema.SYNC_DURABLE`).
        """
        db = self.connection()
        if not self.holds_lock:
            raise StateFileError(
                "writing the state needs its apply lock: use `with state.locked():`"
            )
        try:
            if durable:
                db.execute(f"PRAGMA synchronous={SYNC_DURABLE}")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                if change:
                    db.execute(
                        "UPDATE meta SET value = CAST(value AS INTEGER) + 1"
                        " WHERE name = 'generation'"
                    )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as err:  # a full disk, a file removed underneath, …
            raise StateFileError(f"cannot write the state file {self.path}: {err}") from err
        finally:
            if durable:
                with contextlib.suppress(sqlite3.Error):
                    db.execute(f"PRAGMA synchronous={SYNC_WRITE}")

    def set_meta(self, name: str, value: str | None) -> None:
        """Set (or, with None, remove) a `meta` value that is no part of the state."""
        with self.write(change=False) as db:
            db.execute("DELETE FROM meta WHERE name = ?", (name,))
            if value is not None:
                db.execute("INSERT INTO meta (name, value) VALUES (?, ?)", (name, value))
