"""The apply lock: an exclusive, non-blocking OS lock on the state's database file itself.

The lock is taken on the database file (`_filelock`: `flock` on POSIX), not on a file
beside the path as typed, so it is one lock however the file is reached: through a
symlink, a hard link or a bind mount. The operating system drops it when its process
ends, however it ends, so a crash never leaves a stale lock behind.

A process opens one descriptor per database file, shared by all its `SyncState`s of
that file, and closes it after the last of them: closing any descriptor of a file
drops every POSIX lock the process holds on it, and SQLite's own locks are POSIX locks.
Inside the process the lock has one holder at a time, as between processes.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import IO

from .._filelock import try_lock, unlock
from ._errors import StateFileError

__all__ = ["ApplyLock"]


class _File:
    """This process's descriptor of one database file, and which `ApplyLock` holds it."""

    __slots__ = ("file", "holder", "users")

    def __init__(self, path: Path) -> None:
        self.file: IO[bytes] = open(path, "rb", buffering=0)  # noqa: SIM115 - shared, kept
        self.users = 0
        self.holder: ApplyLock | None = None


_GUARD = threading.Lock()
#: The open database files of this process, by (device, inode).
_FILES: dict[tuple[int, int | str], _File] = {}


def _forget_after_fork() -> None:
    """A forked child shares its parent's descriptors, and so the locks taken on them:
    it closes its copies (the parent's lock stays the parent's) and opens its own."""
    for shared in _FILES.values():
        with contextlib.suppress(OSError):
            shared.file.close()
    _FILES.clear()


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(after_in_child=_forget_after_fork)


class ApplyLock:
    """One `SyncState`'s share in the lock of its database file; `close()` when done."""

    __slots__ = ("_closed", "_held", "_key", "_path", "_pid")

    def __init__(self, path: Path) -> None:
        info = os.stat(path)  # follows symlinks: the file itself
        # A file system without inode numbers (0) falls back to the file's real path.
        self._key = (info.st_dev, info.st_ino or os.path.realpath(path))
        self._path = path
        self._pid = os.getpid()
        self._held = False
        self._closed = False
        with _GUARD:
            shared = _FILES.get(self._key)
            if shared is None:
                shared = _FILES[self._key] = _File(path)
            shared.users += 1

    @property
    def held(self) -> bool:
        """True while this share holds the lock (never in a child forked meanwhile)."""
        return self._held and self._pid == os.getpid()

    def acquire(self) -> bool:
        """Take the lock; False when another process, or another share, holds it.

        An `OSError` (a file system without locks) reaches the caller.
        """
        with _GUARD:
            shared = self._shared()
            if shared is None:
                raise StateFileError(
                    f"the state file {self._path} was opened in another process (this one "
                    "was forked from it, or the state was closed): open it again here"
                )
            if shared.holder is not None:
                return shared.holder is self
            if not try_lock(shared.file):
                return False
            shared.holder = self
            self._held = True
            return True

    def release(self) -> None:
        """Let go of the lock, if this share holds it."""
        with _GUARD:
            shared = self._shared()
            if shared is not None and shared.holder is self:
                shared.holder = None
                with contextlib.suppress(OSError):
                    unlock(shared.file)
            self._held = False

    def close(self) -> None:
        """Release, and close the descriptor if this was its last share."""
        self.release()
        with _GUARD:
            shared = self._shared()
            if shared is None:
                return
            self._closed = True
            shared.users -= 1
            if shared.users <= 0:
                del _FILES[self._key]
                shared.file.close()

    def _shared(self) -> _File | None:
        """This process's descriptor, or None once closed or in a child forked meanwhile."""
        if self._closed or self._pid != os.getpid():
            return None
        return _FILES.get(self._key)
