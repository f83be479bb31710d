"""Exit codes of the `asyncgroups` command, and the errors that end a command in one line.

A command raises `CommandError` (exit 1) or `UsageError` (exit 2) with a message that
fits on one line; `main` prints it to stderr as `asyncgroups: error: <message>`, never
as a traceback.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BROKEN_PIPE",
    "FAILED",
    "INTERRUPTED",
    "MEANINGS",
    "OK",
    "TERMINATED",
    "USAGE",
    "WAITING",
    "CommandError",
    "UsageError",
]

#: Everything asked for succeeded.
OK: Final = 0
#: At least one item failed (or the whole command did, after it started working).
FAILED: Final = 1
#: The command line, the input or the configuration was wrong; nothing was sent.
USAGE: Final = 2
#: Nothing failed, but some work cannot be decided yet: run again after the time the
#: command said (sysexits.h's EX_TEMPFAIL, "try again later").
WAITING: Final = 75
#: Ctrl-C (128 + SIGINT), as a shell reports it.
INTERRUPTED: Final = 130
#: SIGTERM (128 + 15), as a shell reports it: a container stop, `kill`, systemd. The run
#: ends as it does on Ctrl-C (same cleanup, same resume hint); only the code differs.
TERMINATED: Final = 143
#: stdout was closed by its reader (`| head`): 128 + SIGPIPE, as a shell reports it.
BROKEN_PIPE: Final = 141

#: Every exit code and what it tells a script, in the words `asyncgroups --help` lists.
MEANINGS: Final[tuple[tuple[int, str], ...]] = (
    (OK, "everything succeeded"),
    (
        FAILED,
        "something failed (a request; for get and bulk-get, a key not found too), the "
        "question was answered no, or sync --apply found its state file in use by another "
        "apply",
    ),
    (
        USAGE,
        "usage error: bad arguments, input or configuration, or a sync plan a safety guard "
        "refused (too many deletes, every owned group gone, a state file of another "
        "account); nothing was changed",
    ),
    (
        WAITING,
        "sync --apply: nothing failed, but a create may still land; run again after the "
        "time the summary says",
    ),
    (INTERRUPTED, "Ctrl-C"),
    (BROKEN_PIPE, "stdout's reader went away (| head)"),
    (TERMINATED, "SIGTERM, handled as Ctrl-C"),
)


class CommandError(Exception):
    """Ends the command: its message goes to stderr as one line, and `code` is returned."""

    code: int = FAILED


class UsageError(CommandError):
    """Bad arguments, input or configuration, found before anything was changed (exit 2)."""

    code = USAGE
