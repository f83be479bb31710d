"""The sync state file: an embedded SQLite database (stdlib `sqlite3`), one file on disk.

It maps each desired `key` to the prokey of its group and the fields last applied, and
keeps the intent of every create that may be in flight, so an apply that crashes or is
interrupted loses nothing and the next one creates no duplicate. Every write is one
short transaction, synced to disk before the next request that depends on it is sent.

Writes need the apply lock (`SyncState.locked()`): an OS lock on the database file
itself (`_lock.py`), dropped with its process, so a crash never leaves a stale lock
behind. An apply starts with one transaction that checks the plan is still current and
the client's account is the state's (`applying`). The file's format, and the checks
made on opening it, are in `_schema.py`; its connection, transactions and lock in
`_database.py`; its records, and reading them, in `_rows.py`. This module stores the
lost-create protocol's rows (baselines, pending creates); the protocol's logic is in
`_creates.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Self

from .. import ValidationError
from ._database import StateDatabase
from ._errors import StalePlanError, StateAccountError, StateLockedError
from ._rows import Origin, PendingCreate, StateRow, StateSnapshot, read_pending, read_rows
from ._schema import now

__all__ = ["SyncState", "account_url"]

#: The ports a URL may leave out, by scheme.
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def account_url(base_url: str) -> str:
    """The account a base URL names, in one spelling: what a state file is bound to.

    Scheme and host in lower case, the default port and a trailing slash or dot left
    out. A URL that is not http(s) with a host, or that carries credentials, a query or
    a fragment (which a client's base URL never does), is a `ValidationError`.
    """
    if not isinstance(base_url, str):
        raise ValidationError("base_url must be a string", field="base_url")
    try:
        parts = urllib.parse.urlsplit(base_url.strip())
        port = parts.port
    except ValueError as err:
        raise ValidationError(f"base_url is not a URL: {err}", field="base_url") from err
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        raise ValidationError("base_url must be an http(s) URL with a host", field="base_url")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValidationError(
            "base_url must not carry credentials, a query or a fragment", field="base_url"
        )
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return urllib.parse.urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))


class SyncState:
    """A sync state file, opened (and created with its schema when new).

    Use it as `with SyncState(path) as state:`; `close()` is idempotent. Reading needs
    no lock; writing (which `apply` does) needs `locked()`. Two processes, or two
    `SyncState` objects, cannot hold the lock of one file at once.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._file = StateDatabase(Path(path))
        #: True while an `apply` runs on this object (the lock alone nests, so it
        #: cannot tell a second apply of the same object from the first one).
        self._applying = False

    # Lifecycle ----------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """Where the state file is."""
        return self._file.path

    @property
    def closed(self) -> bool:
        """True once `close()` was called."""
        return self._file.closed

    def close(self) -> None:
        """Release the lock (if held) and close the database; calling it again does nothing."""
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("locked" if self.holds_lock else "open")
        return f"SyncState({str(self.path)!r}, {state})"

    # The apply lock -----------------------------------------------------------------

    @property
    def holds_lock(self) -> bool:
        """True while this object holds the apply lock."""
        return self._file.holds_lock

    @contextlib.contextmanager
    def locked(self) -> Iterator[Self]:
        """Hold the apply lock for the block; nested use by the same object is fine.

        Raises `StateLockedError` at once (it does not wait) when another process or
        another `SyncState` holds it, naming the holder's pid, host and start time.
        The lock is the database file's, however it is reached (a symlink, a hard
        link). Taking it first makes a file of an older asyncgroups current.
        """
        with self._file.locked():
            yield self

    @contextlib.contextmanager
    def applying(self, *, state_id: str, generation: int, base_url: str) -> Iterator[StateSnapshot]:
        """Hold the apply lock for one apply of a plan; yields the state it starts from.

        One transaction starts the apply: it refuses a plan made for another state file
        or before the state last changed (`StalePlanError`), and a client of another
        account (`StateAccountError`; a state not bound yet is bound to the client's),
        then raises the generation, so a plan is good for one apply. The lock nests for
        one object (a caller may hold it around plan and apply), so a second apply
        through the same object at once (two tasks sharing it) is refused here with
        `StateLockedError`, as another process would be.
        """
        self._file.connection()
        if self._applying:
            raise StateLockedError(
                f"the state file {self.path} is in use by another apply running in this "
                "process on the same SyncState; wait for it to finish"
            )
        with self.locked():
            snapshot = self._start(state_id, generation, account_url(base_url))
            self._applying = True
            try:
                yield snapshot
            finally:
                self._applying = False

    def _start(self, state_id: str, generation: int, account: str) -> StateSnapshot:
        with self._file.write() as db:
            self._check_account(account)
            if self.state_id != state_id:
                raise StalePlanError(
                    f"this plan was made for another state file than {self.path}; make a "
                    "new plan"
                )
            if self.generation != generation:
                raise StalePlanError(
                    f"the state file {self.path} changed after this plan was made (another "
                    "apply ran, or one was interrupted); make a new plan and apply that"
                )
            if self.base_url is None:
                db.execute("INSERT INTO meta (name, value) VALUES ('base_url', ?)", (account,))
            rows, pending = read_rows(db), read_pending(db)
        return StateSnapshot(
            state_id=state_id,
            generation=generation + 1,
            rows=MappingProxyType(rows),
            pending=MappingProxyType(pending),
        )

    # The account ---------------------------------------------------------------------

    @property
    def base_url(self) -> str | None:
        """The base URL of the account the state belongs to; None before its first apply."""
        with self._file.reading():
            return self._file.meta("base_url")

    def check_account(self, base_url: str) -> None:
        """Refuse (`StateAccountError`) a state bound to another account than `base_url`'s.

        A state bound to none yet passes. `plan` and `apply` check it before any request.
        """
        with self._file.reading():
            self._check_account(account_url(base_url))

    def _check_account(self, account: str) -> None:
        bound = self._file.meta("base_url")
        if bound is not None and bound != account:
            raise StateAccountError(str(self.path), bound, account)

    def rebind(self, base_url: str) -> str | None:
        """Bind the state to the account at `base_url`: the account moved to that URL.

        Needs the apply lock. Returns the URL it was bound to (None if unbound). Plans
        made before are stale afterwards. Rebinding to another account, not a moved one,
        would make every group of the state again there: use a new state file instead.
        """
        account = account_url(base_url)
        with self._file.write() as db:
            before = self._file.meta("base_url")
            db.execute(
                "INSERT INTO meta (name, value) VALUES ('base_url', ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (account,),
            )
        return before

    # Reading ------------------------------------------------------------------------

    @property
    def state_id(self) -> str:
        """A random id given to the file when it was created (a plan remembers it)."""
        value = self._file.meta("state_id")
        assert value is not None
        return value

    @property
    def generation(self) -> int:
        """A counter raised by every write; a plan remembers the one it was made at."""
        return int(self._file.meta("generation") or 0)

    def snapshot(self) -> StateSnapshot:
        """The rows, the pending creates and the generation, as of one moment."""
        db = self._file.connection()
        with self._file.reading():
            db.execute("BEGIN")
            try:
                snap = StateSnapshot(
                    state_id=self.state_id,
                    generation=self.generation,
                    rows=MappingProxyType(read_rows(db)),
                    pending=MappingProxyType(read_pending(db)),
                )
            finally:
                db.execute("COMMIT")
        return snap

    def rows(self) -> dict[str, StateRow]:
        """Every owned group, by key."""
        with self._file.reading():
            return read_rows(self._file.connection())

    def pending(self) -> dict[str, PendingCreate]:
        """Every create whose outcome is not known yet, by key."""
        with self._file.reading():
            return read_pending(self._file.connection())

    def owned_prokeys(self) -> set[str]:
        """The prokeys of every group the state owns."""
        db = self._file.connection()
        with self._file.reading():
            return {prokey for (prokey,) in db.execute("SELECT prokey FROM groups")}

    def baseline(self, baseline: int) -> frozenset[str]:
        """The prokeys of the account listing stored as `baseline`."""
        db = self._file.connection()
        with self._file.reading():
            rows = db.execute("SELECT prokey FROM baselines WHERE baseline = ?", (baseline,))
            return frozenset(prokey for (prokey,) in rows)

    def forget_pending(self, key: str) -> None:
        """Drop `key`'s create intent: it is known that the create made nothing."""
        with self._file.write() as db:
            db.execute("DELETE FROM pending_creates WHERE key = ?", (key,))

    def mark_sent(self, key: str, at: str) -> None:
        """Note that `key`'s create is being sent (at `at`): if nothing learns how it
        ended, it may still be running on the server when the next apply looks."""
        with self._file.write() as db:
            db.execute("UPDATE pending_creates SET sent_at = ? WHERE key = ?", (at, key))

    def mark_undecided(self, key: str, decide_after: str, timed_out_at: str | None = None) -> None:
        """Note that `key`'s create may still land until `decide_after` (its POST failed
        at `timed_out_at` without an answer that settles it, or was cut off when an apply
        was interrupted)."""
        with self._file.write() as db:
            db.execute(
                "UPDATE pending_creates SET timed_out_at = coalesce(?, timed_out_at),"
                " decide_after = ? WHERE key = ?",
                (timed_out_at, decide_after, key),
            )

    def record(self, key: str, prokey: str, fields: Mapping[str, Any], origin: Origin) -> None:
        """Own `prokey` under `key` with `fields` applied (replacing any earlier row).

        Drops `key`'s create intent in the same transaction.
        """
        with self._file.write() as db:
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
        with self._file.write() as db:
            db.execute(
                "UPDATE groups SET fields = ?, updated_at = ? WHERE key = ?",
                (json.dumps(dict(fields)), now(), key),
            )

    def forget(self, key: str, prokey: str) -> None:
        """Stop owning `key`'s group `prokey` (after it was deleted).

        A row that meanwhile names another group (an interrupted create of the same key,
        settled since) is kept: that group still exists and stays owned.
        """
        with self._file.write() as db:
            db.execute("DELETE FROM groups WHERE key = ? AND prokey = ?", (key, prokey))

    def new_baseline(
        self,
        prokeys: Iterable[str],
        intents: Iterable[tuple[str, str, Mapping[str, Any]]] = (),
    ) -> int:
        """Store an account listing as a new baseline, with creates about to be sent.

        `intents` are `(key, name, fields)` of creates that may be sent from now on;
        each becomes a pending create tied to this baseline. The transaction is in the
        file and synced to disk before this returns, so that even a power cut cannot
        undo it: a create sent without its intent on disk could be made twice. Baselines
        no pending create refers to any more are dropped. Returns the baseline's number.
        """
        with self._file.write(durable=True) as db:
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
