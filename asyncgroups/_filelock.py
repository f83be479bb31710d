"""One exclusive, non-blocking file lock for the package's own files: no I/O beyond it.

The bulk-delete journal and the sync state file each refuse a second run on the same
file. Both take the lock here, so both behave alike on every platform: `fcntl.flock`
on POSIX, `msvcrt.locking` of the first byte on Windows. The operating system drops
the lock when its process ends, however it ends, so a crash never leaves one behind.
"""

from __future__ import annotations

import contextlib
import sys
from typing import IO, Any

__all__ = ["try_lock", "unlock"]

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def try_lock(file: IO[Any]) -> bool:
        """Lock `file` for this process; False when another process holds it."""
        file.seek(0)
        try:
            msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def unlock(file: IO[Any]) -> None:
        """Release a lock `try_lock` took (closing the file releases it too)."""
        file.seek(0)
        with contextlib.suppress(OSError):
            msvcrt.locking(file.fileno(), msvcrt.LK_UNLCK, 1)

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
