"""One exclusive, non-blocking file lock for the package's own files: no I/O beyond it.

The bulk-delete journal and the sync state file each refuse a second run on the same
file. Both take the lock here, so both behave alike on every platform: `fcntl.flock`
on POSIX, `msvcrt.locking` of one byte on Windows. The operating system drops the
lock when its process ends, however it ends, so a crash never leaves one behind.
`flock` and SQLite's own (POSIX record) locks never meet, so the state's database file
itself can carry the lock.

Windows locks are mandatory: a locked byte cannot be read through another handle,
even by the same process. The byte locked there lies far past any data (and past
SQLite's own lock bytes, at 1 GiB), so the journal and the state's database are still
read and written while it is held.
"""

from __future__ import annotations

import contextlib
import sys
from typing import IO, Any, Final

__all__ = ["try_lock", "unlock"]

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt
    import os

    #: The byte Windows locks: beyond any file this package writes (locking past the
    #: end of a file is allowed, and does not grow it).
    _LOCK_BYTE: Final = 2**62

    def _at_lock_byte(file: IO[Any], mode: int) -> None:
        """Run `msvcrt.locking` on the lock byte, leaving the file's position as it was."""
        file.flush()
        fd = file.fileno()
        here = os.lseek(fd, 0, os.SEEK_CUR)
        os.lseek(fd, _LOCK_BYTE, os.SEEK_SET)
        try:
            msvcrt.locking(fd, mode, 1)
        finally:
            os.lseek(fd, here, os.SEEK_SET)

    def try_lock(file: IO[Any]) -> bool:
        """Lock `file` for this process; False when another process holds it."""
        try:
            _at_lock_byte(file, msvcrt.LK_NBLCK)
        except OSError:
            return False
        return True

    def unlock(file: IO[Any]) -> None:
        """Release a lock `try_lock` took (closing the file releases it too)."""
        with contextlib.suppress(OSError):
            _at_lock_byte(file, msvcrt.LK_UNLCK)

else:
    import fcntl

    def try_lock(file: IO[Any]) -> bool:
        """Lock `file` for this process; False when another process holds it.

        Any other `OSError` (a file system without locks) reaches the caller, which
        decides whether to go on unlocked.
        """
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def unlock(file: IO[Any]) -> None:
        """Release a lock `try_lock` took (closing the file releases it too)."""
        fcntl.flock(file.fileno(), fcntl.LOCK_UN)
