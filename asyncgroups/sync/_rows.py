"""The state's records as values (an owned group's row, a pending create, a snapshot of
both), and reading them from the state file's tables. Pure but for the reads it is given
a connection for; `_state.py` decides when to read, in which transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

import attrs

from ._errors import StateFileError

__all__ = ["Origin", "PendingCreate", "StateRow", "StateSnapshot", "read_pending", "read_rows"]

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
    #: When that POST failed in a way that may still land (a timeout, a connection
    #: dropped after sending, a gateway's 502 or 504: it may still be running on the
    #: server), if it did.
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


def read_rows(db: sqlite3.Connection) -> dict[str, StateRow]:
    """Every owned group, by key, in the order they were first recorded."""
    query = "SELECT key, prokey, origin, fields, updated_at FROM groups ORDER BY rowid"
    return {
        key: StateRow(key, prokey, origin, _fields(fields), updated)
        for key, prokey, origin, fields, updated in db.execute(query)
    }


def read_pending(db: sqlite3.Connection) -> dict[str, PendingCreate]:
    """Every pending create, by key, in the order their intents were stored."""
    query = (
        "SELECT key, name, fields, baseline, started_at, sent_at, timed_out_at,"
        " decide_after FROM pending_creates ORDER BY rowid"
    )
    return {
        key: PendingCreate(key, name, _fields(fields), baseline, started, *outcome)
        for key, name, fields, baseline, started, *outcome in db.execute(query)
    }
