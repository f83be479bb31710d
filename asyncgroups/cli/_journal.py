"""The bulk-delete journal: one JSON line per outcome, so a re-run resumes where one ended.

Each line is `{"prokey", "outcome", "error", "timestamp"}` with `outcome` one of
`deleted`, `missing` or `failed`. A line is written and flushed as soon as its delete
ends, so a killed run loses nothing it finished; a re-run skips keys whose last record
is `deleted` or `missing` and retries `failed` ones. A crash can leave the last line
cut short: it is dropped (its delete is simply tried again, and a 404 then reports it
`missing`). A broken line anywhere else means the file is not what this tool wrote, and
nothing is guessed.
"""

from __future__ import annotations

import json
import os
from typing import IO, Final, Self

from .._filelock import try_lock
from .._timestamp import iso_utc
from ._common import JOURNALED, KeyOutcome
from ._exits import UsageError

__all__ = ["DONE", "Journal", "JournalState", "read_journal"]

#: Outcomes that end a key's work: a re-run skips it.
DONE: Final[frozenset[KeyOutcome]] = frozenset({"deleted", "missing"})


class JournalState:
    """What an existing journal says: the keys done, and where its intact part ends."""

    __slots__ = ("done", "end", "records", "torn")

    def __init__(self) -> None:
        #: Keys whose last record is `deleted` or `missing`.
        self.done: set[str] = set()
        #: Byte offset just after the last intact line.
        self.end = 0
        #: Intact records read.
        self.records = 0
        #: True when a cut-short last line was found (and is to be dropped).
        self.torn = False


def read_journal(path: str) -> JournalState:
    """Read the journal at `path` (a missing file is an empty journal), streaming."""
    state = JournalState()
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return state
    except OSError as err:
        raise UsageError(f"cannot read the journal {path}: {err.strerror or err}") from None
    with stream:
        bad_line = 0
        offset = 0
        for number, raw in enumerate(stream, start=1):
            if bad_line:  # an intact line after a broken one: not a torn tail
                raise UsageError(
                    f"the journal {path} is damaged at line {bad_line} (not a journal "
                    "record); fix or remove that line, or use another journal"
                )
            offset += len(raw)
            complete = raw.endswith(b"\n")
            record = _parse(raw) if complete else None
            if record is None:
                if complete and not raw.strip(b"\x00 \t\r\n"):
                    state.end = offset  # a blank line carries nothing
                elif complete:
                    # A whole line that is no record: another file, never a torn write.
                    raise UsageError(
                        f"the journal {path} is damaged at line {number} (not a journal "
                        "record); is it the right file? Fix or remove that line, or use "
                        "another journal"
                    )
                else:
                    bad_line = number  # cut short by a crash: torn if it is the last
                    state.torn = True
                continue
            key, outcome = record
            state.records += 1
            state.end = offset
            if outcome in DONE:
                state.done.add(key)
            else:
                state.done.discard(key)
    return state


def _parse(raw: bytes) -> tuple[str, str] | None:
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    key, outcome = record.get("prokey"), record.get("outcome")
    if not isinstance(key, str) or outcome not in JOURNALED:
        return None
    return key, outcome


class Journal:
    """An open journal, appended to line by line; the file is locked while open.

    Use `Journal.open(path)`; `record()` writes and flushes one outcome.
    """

    __slots__ = ("_stream", "done", "path", "resumed", "torn")

    def __init__(self, path: str, stream: IO[bytes], state: JournalState) -> None:
        self.path = path
        self._stream = stream
        #: Keys a re-run skips: done before, or during this run.
        self.done = state.done
        #: How many intact records the journal held when opened.
        self.resumed = state.records
        #: True when a torn last line was dropped on opening.
        self.torn = state.torn

    @classmethod
    def open(cls, path: str) -> Journal:
        """Open (or create) the journal at `path` for appending, dropping a torn last line.

        Another run holding the same journal is a `UsageError`, so two runs never
        interleave their records.
        """
        try:
            stream = open(path, "a+b")  # noqa: SIM115 - owned by the Journal
        except OSError as err:
            raise UsageError(f"cannot open the journal {path}: {err.strerror or err}") from None
        try:
            _lock(stream, path)
            state = read_journal(path)
            if stream.seek(0, os.SEEK_END) != state.end:
                stream.truncate(state.end)  # drop the torn tail: the next line starts clean
        except BaseException:
            stream.close()
            raise
        return cls(path, stream, state)

    def record(self, prokey: str, outcome: KeyOutcome, error: str | None = None) -> None:
        """Append one outcome and flush it to the OS, so a killed process keeps it.

        Only `deleted`, `missing` and `failed` are records; anything else is a bug
        (`ValueError`), never a line the next run could not read.
        """
        if outcome not in JOURNALED:
            raise ValueError(f"a journal records {sorted(JOURNALED)}, not {outcome!r}")
        line = {
            "prokey": prokey,
            "outcome": outcome,
            "error": error,
            "timestamp": iso_utc(),
        }
        self._stream.write(json.dumps(line).encode() + b"\n")
        self._stream.flush()
        if outcome in DONE:
            self.done.add(prokey)

    def close(self) -> None:
        """Sync the file to disk and release it; calling it again does nothing."""
        if self._stream.closed:
            return
        try:
            self._stream.flush()
            os.fsync(self._stream.fileno())
        finally:
            self._stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _lock(stream: IO[bytes], path: str) -> None:
    try:
        locked = try_lock(stream)
    except OSError:
        return  # a file system without locks: carry on unlocked
    if not locked:
        raise UsageError(
            f"the journal {path} is in use by another asyncgroups run; wait for it to end"
        )
