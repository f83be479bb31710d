"""The state file's format: its SQLite schema, opening a file, upgrading it. No sync logic.

`open_database()` connects, refuses a database that is not a state file (another
application's, or one of a newer schema), and creates the schema in a new file. It only
reads, except for that creation, which one process makes in one transaction that first
checks no other made it meanwhile: any number of processes may open a file at once, a
new one included. `upgrade()` makes an older file current; it writes, so it runs under
the apply lock. The schema is spelled here only; `_state.py` reads and writes its rows.

A state file is one file: a rollback journal (`journal_mode=DELETE`), not WAL, so each
commit is in the database file itself before it returns, and a copy of that file alone
(a CI cache, a backup) holds everything committed. Every commit is synced to disk
(`SYNC_WRITE`), so the file stays whole through a power cut; the writes a power cut
must not undo (a create's note) also sync the journal's removal (`SYNC_DURABLE`).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final, NamedTuple

from .._timestamp import iso_utc
from ._errors import StateFileError, StateLockedError

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "SYNC_DURABLE",
    "SYNC_WRITE",
    "now",
    "open_database",
    "read_meta",
    "upgrade",
]

#: The version of the schema below; a file with a newer one is refused, not guessed at.
#: 2: a single file (no WAL), and `meta` may hold `base_url`, the account the state
#: belongs to, which an asyncgroups that knows only 1 would ignore.
SCHEMA_VERSION: Final = 2
#: What turns a file of version N into N + 1 (besides leaving WAL mode, in `upgrade`).
_MIGRATIONS: Final[Mapping[int, Sequence[str]]] = {1: ()}
#: Seconds a connection waits for another one's transaction to end before giving up.
BUSY_TIMEOUT: Final = 10.0
#: `PRAGMA synchronous` of every write, and of the writes a power cut must not undo.
SYNC_WRITE: Final = "FULL"
SYNC_DURABLE: Final = "EXTRA"
#: `PRAGMA application_id` of a state file ("AGS1"), so an unrelated database is refused.
APPLICATION_ID: Final = 0x41475331

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS groups (
    key        TEXT PRIMARY KEY,
    prokey     TEXT NOT NULL UNIQUE,
    origin     TEXT NOT NULL CHECK (origin IN ('created', 'adopted')),
    fields     TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_creates (
    key        TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    fields     TEXT NOT NULL,
    baseline   INTEGER NOT NULL,
    started_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS baselines (
    baseline INTEGER NOT NULL,
    prokey   TEXT NOT NULL,
    PRIMARY KEY (baseline, prokey)
) WITHOUT ROWID;
"""


def now() -> str:
    """The current time as the state file stores it (UTC, ISO 8601, milliseconds).

    Files written before keep reading: the offset stays `+00:00`, not `Z`.
    """
    return iso_utc(utc="+00:00")


def open_database(path: Path) -> sqlite3.Connection:
    """Open the state file at `path` (created with its schema when new), checked.

    Raises `StateFileError` when it cannot be opened or is not a usable state file.
    """
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT)
    except sqlite3.Error as err:
        raise StateFileError(f"cannot open the state file {path}: {err}") from err
    try:
        _prepare(db, path)
    except BaseException:
        db.close()
        raise
    return db


def read_meta(db: sqlite3.Connection, name: str) -> str | None:
    """One value of the `meta` table, or None."""
    row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


def upgrade(db: sqlite3.Connection, path: Path) -> None:
    """Make the file current: out of WAL mode, at `SCHEMA_VERSION`. Needs the apply lock.

    Leaving WAL mode needs the only connection to the file: while another process (or
    another `SyncState`) has it open, this raises `StateLockedError`.
    """
    try:
        mode = str(db.execute("PRAGMA journal_mode=DELETE").fetchone()[0])
    except sqlite3.OperationalError:
        mode = "wal"
    if mode.lower() != "delete":
        raise StateLockedError(
            f"the state file {path} is open elsewhere (another process, or another "
            "SyncState), and this first apply with this asyncgroups must have it alone to "
            "make it a single file (it is in WAL mode, as older versions wrote it); run "
            "again once it is closed"
        )
    version = int(read_meta(db, "schema_version") or SCHEMA_VERSION)
    if version == SCHEMA_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for step in range(version, SCHEMA_VERSION):
            for statement in _MIGRATIONS[step]:
                db.execute(statement)
        db.execute(
            "UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION),)
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class _Found(NamedTuple):
    """What a file holds, read in one transaction: another process may be creating it."""

    application_id: int
    tables: int
    version: str | None


def _prepare(db: sqlite3.Connection, path: Path) -> None:
    try:
        db.execute(f"PRAGMA synchronous={SYNC_WRITE}")
        found = _identify(db)
        if not found.tables:
            _create_schema(db)
            found = _identify(db)
    except sqlite3.DatabaseError as err:
        raise StateFileError(f"{path} is not a usable state file: {err}") from err
    if found.application_id != APPLICATION_ID:
        raise StateFileError(
            f"{path} is a SQLite database, but not an asyncgroups sync state "
            "file; give --state a new file name (it is created on first use)"
        )
    if found.version is None or not found.version.isdigit():
        raise StateFileError(f"{path}: the state file has no schema version")
    if int(found.version) > SCHEMA_VERSION:
        raise StateFileError(
            f"{path} was written by a newer asyncgroups (schema {found.version}, this "
            f"one knows {SCHEMA_VERSION}); upgrade asyncgroups to use it"
        )


def _identify(db: sqlite3.Connection) -> _Found:
    db.execute("BEGIN")
    try:
        return _identity(db)
    finally:
        db.execute("COMMIT")


def _identity(db: sqlite3.Connection) -> _Found:
    app_id = int(db.execute("PRAGMA application_id").fetchone()[0])
    tables = int(db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
    ours = app_id == APPLICATION_ID and tables
    return _Found(app_id, tables, read_meta(db, "schema_version") if ours else None)


def _create_schema(db: sqlite3.Connection) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have created it while this one waited for the write lock.
        if not _identity(db).tables:
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.executemany(
                "INSERT INTO meta (name, value) VALUES (?, ?)",
                [
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("state_id", str(uuid.uuid4())),
                    ("generation", "0"),
                    ("created_at", now()),
                    ("next_baseline", "1"),
                ],
            )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
