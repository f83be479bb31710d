"""The state file's format: its SQLite schema, and opening a file safely. No sync logic.

`open_database()` connects, refuses a database that is not a state file (another
application's, or one of a newer schema), switches it to WAL mode, creates the schema
in a new file and upgrades the file of an earlier version (`_STEPS`). The schema is
spelled here only; `_state.py` reads and writes its rows.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Final

from .._timestamp import iso_utc
from ._errors import StateFileError

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "now", "open_database", "read_meta"]

#: The version a new file starts at: `_SCHEMA` below, before any of `_STEPS`.
_FIRST_VERSION: Final = 1
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

#: The upgrades of the schema, in order: step n takes a file from version n to n + 1.
#: A new file gets `_SCHEMA` and then every step, so each column is spelled once. A
#: file of an earlier version is upgraded when it is opened (the earlier asyncgroups
#: then refuses it, as it refuses any newer schema).
_STEPS: Final[tuple[str, ...]] = (
    # 1 -> 2: when a create's POST was sent, when it timed out, and from when an
    # account listing can prove that it made nothing (`_creates.py`).
    """
    ALTER TABLE pending_creates ADD COLUMN sent_at TEXT;
    ALTER TABLE pending_creates ADD COLUMN timed_out_at TEXT;
    ALTER TABLE pending_creates ADD COLUMN decide_after TEXT;
    """,
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
        db = sqlite3.connect(path, isolation_level=None)
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


def _prepare(db: sqlite3.Connection, path: Path) -> None:
    try:
        db.execute("PRAGMA busy_timeout=10000")
        app_id, tables = _identify(db)
        if tables and app_id != APPLICATION_ID:
            raise StateFileError(
                f"{path} is a SQLite database, but not an asyncgroups sync state "
                "file; give --state a new file name (it is created on first use)"
            )
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StateFileError(
                f"{path}: SQLite could not switch the file to WAL mode (got "
                f"{mode!r}); keep the state file on a local disk"
            )
        # NORMAL: in WAL mode a commit survives the process being killed at any
        # point; only the intents of creates (`new_baseline`) are synced to disk too.
        db.execute("PRAGMA synchronous=NORMAL")
        if not tables:
            _create_schema(db, path)
        if _version(db, path) < SCHEMA_VERSION:
            _upgrade(db, path)
    except sqlite3.DatabaseError as err:
        raise StateFileError(f"{path} is not a usable state file: {err}") from err


def _version(db: sqlite3.Connection, path: Path) -> int:
    """The file's schema version; a missing or newer one is a `StateFileError`."""
    version = read_meta(db, "schema_version")
    if version is None or not version.isdigit():
        raise StateFileError(f"{path}: the state file has no schema version")
    if int(version) > SCHEMA_VERSION:
        raise StateFileError(
            f"{path} was written by a newer asyncgroups (schema {version}, this "
            f"one knows {SCHEMA_VERSION}); upgrade asyncgroups to use it"
        )
    return int(version)


def _upgrade(db: sqlite3.Connection, path: Path) -> None:
    """Run the steps the file lacks, in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have upgraded it while this one waited for the write lock.
        for step in _STEPS[_version(db, path) - _FIRST_VERSION :]:
            for statement in step.split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute(
            "UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION),)
        )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _identify(db: sqlite3.Connection) -> tuple[int, int]:
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    return int(app_id), int(tables)


def _create_schema(db: sqlite3.Connection, path: Path) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have created it while this one waited for the write lock.
        app_id, tables = _identify(db)
        if not tables:
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.executemany(
                "INSERT INTO meta (name, value) VALUES (?, ?)",
                [
                    ("schema_version", str(_FIRST_VERSION)),  # then `_upgrade`
                    ("state_id", str(uuid.uuid4())),
                    ("generation", "0"),
                    ("created_at", now()),
                    ("next_baseline", "1"),
                ],
            )
        elif app_id != APPLICATION_ID:
            raise StateFileError(f"{path} is not an asyncgroups sync state file")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
