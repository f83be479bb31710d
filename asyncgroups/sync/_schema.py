"""The state file's format: its SQLite schema, opening a file, upgrading it. No sync logic.

`open_database()` connects, refuses a database that is not a state file (another
application's, or one of a newer schema), creates the schema in a new file and adds
what an older file lacks (`_STEPS`). It only reads, except for those two, which one
process makes in one transaction that first checks no other made them meanwhile: any
number of processes may open a file at once, a new one included. `upgrade()` takes an
older file out of WAL mode; that needs the file alone, so it runs under the apply
lock. The schema is spelled here only; `_state.py` reads and writes its rows.

A state file is one file: a rollback journal (`journal_mode=DELETE`), not WAL, so each
commit is in the database file itself before it returns, and a copy of that file alone
(a CI cache, a backup) holds everything committed. Every commit is synced to disk
(`SYNC_WRITE`), so the file stays whole through a power cut; the writes a power cut
must not undo (a create's note) also sync the journal's removal (`SYNC_DURABLE`).
"""

from __future__ import annotations

import sqlite3
import uuid
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

#: The version a new file starts at: `_SCHEMA` below, before any of `_STEPS`.
_FIRST_VERSION: Final = 1
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

#: The upgrades of the schema, in order: step n takes a file from version n to n + 1,
#: adding the columns it names (table, column, type) where they are missing. A new
#: file gets `_SCHEMA` and then every step, so each column is spelled once.
_STEPS: Final[tuple[tuple[tuple[str, str, str], ...], ...]] = (
    # 1 -> 2: when a create's POST was sent, when it timed out, and from when an
    # account listing can prove that it made nothing (`_creates.py`). Version 2 is also
    # a single file (no WAL, `upgrade`), and `meta` may hold `base_url`, the account the
    # state belongs to, which an asyncgroups that knows only 1 would ignore.
    (
        ("pending_creates", "sent_at", "TEXT"),
        ("pending_creates", "timed_out_at", "TEXT"),
        ("pending_creates", "decide_after", "TEXT"),
    ),
)

#: The version of the schema with every step; a file with a newer one is refused.
SCHEMA_VERSION: Final = _FIRST_VERSION + len(_STEPS)


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
    """Take the file out of WAL mode, as older versions wrote it. Needs the apply lock.

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


def _add_steps(db: sqlite3.Connection, path: Path) -> None:
    """Add what the file's version lacks, in one transaction, and record the version."""
    db.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have upgraded it while this one waited for the write lock.
        version = _checked_version(_identity(db).version, path)
        for step in _STEPS[version - _FIRST_VERSION :]:
            for table, column, kind in step:
                _add_column(db, table, column, kind)
        db.execute(
            "UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION),)
        )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _add_column(db: sqlite3.Connection, table: str, column: str, kind: str) -> None:
    columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    if column not in columns:
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


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
    try:
        if _checked_version(found.version, path) < SCHEMA_VERSION:
            _add_steps(db, path)
    except sqlite3.DatabaseError as err:
        raise StateFileError(f"{path} is not a usable state file: {err}") from err


def _checked_version(version: str | None, path: Path) -> int:
    """The file's schema version; a missing or newer one is a `StateFileError`."""
    if version is None or not version.isdigit():
        raise StateFileError(f"{path}: the state file has no schema version")
    if int(version) > SCHEMA_VERSION:
        raise StateFileError(
            f"{path} was written by a newer asyncgroups (schema {version}, this "
            f"one knows {SCHEMA_VERSION}); upgrade asyncgroups to use it"
        )
    return int(version)


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
            for step in _STEPS:
                for table, column, kind in step:
                    _add_column(db, table, column, kind)
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
