"""The apply lock: an exclusive, non-blocking OS file lock on `<state>.lock`.

The operating system drops the lock when its process exits, however it exits, so a
crash never leaves a stale lock behind; the file only records who holds it (pid, host,
since when), for the message a second apply gets.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import IO

from .._filelock import try_lock, unlock
from ._errors import StateLockedError
from ._schema import now

__all__ = ["LockFile"]


class LockFile:
    """An exclusive, non-blocking lock on a sidecar file, released when the process ends."""

    __slots__ = ("_file", "_path")

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: IO[str] | None = None

    def acquire(self, state_path: Path) -> None:
        file = open(self._path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
        try:
            if not try_lock(file):
                raise StateLockedError(
                    f"the state file {state_path} is in use by another apply"
                    f"{_holder(self._path)}; wait for it to finish. (The lock belongs to "
                    "that process and ends with it: there is nothing to clean up.)"
                )
            file.seek(0)
            file.truncate()
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": now()}
            file.write(json.dumps(holder))
            file.flush()
        except BaseException:
            file.close()
            raise
        self._file = file

    def release(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.seek(0)
                file.truncate()
                file.flush()
            unlock(file)
            file.close()


def _holder(path: Path) -> str:
    """ " (pid 123 on host, since …)", or "" when the holder cannot be read."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return f" (pid {int(info['pid'])} on {info['host']}, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""
