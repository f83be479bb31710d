"""What the commands share: how a key ended, one-line failures, keys checked, questions.

Small and dependency-light on purpose (the library's public names, `_settings.ENV`,
`_exits` and `_io`), so any command module may import it without pulling in another
command.
"""

from __future__ import annotations

import ssl
import sys
from typing import Final, Literal

from .. import (
    AuthenticationError,
    ConnectError,
    ValidationError,
    validate_prokey,
)
from ._exits import CommandError, UsageError
from ._io import UnprintableError, ask, is_terminal
from ._settings import ENV

__all__ = [
    "JOURNALED",
    "KeyOutcome",
    "cannot_print",
    "check_keys",
    "confirm",
    "confirm_delete",
    "describe",
    "shown_key",
]

#: The most of an input line a message repeats as its key (a binary file's "line" can
#: run to kilobytes; the error itself names the bad key, shortened, anyway).
_SHOWN_KEY: Final = 60

#: How one key of a command's work ended. `ok` is a read (or other work) that succeeded,
#: `deleted` a delete that did; a progress bar counts both as `ok`. `skipped` keys were
#: not sent (already done per the journal, or a duplicate).
KeyOutcome = Literal["ok", "deleted", "missing", "failed", "skipped"]
#: The outcomes a bulk-delete journal records (the words of its file format).
JOURNALED: Final[frozenset[KeyOutcome]] = frozenset({"deleted", "missing", "failed"})


def describe(error: BaseException) -> str:
    """One line about a failure, with a hint where the fix is on the user's side."""
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, AuthenticationError):
        if error.hint:  # said once, with the flag to check, not twice
            text = text.replace(f" ({error.hint})", "")
        return (
            f"{text} (the API key was not accepted: it may be wrong or expired; check "
            f"--api-key / ${ENV['api_key']})"
        )
    untrusted = isinstance(error.__cause__, ssl.SSLCertVerificationError)
    if isinstance(error, ConnectError) and untrusted:
        return f"{text} (a private CA? pass --ca-file or set ${ENV['ca_file']})"
    return text


def cannot_print(key: str, error: UnprintableError) -> str:
    """The failure line of a key whose group could not be encoded."""
    return f"failed: {key}: the group cannot be printed: {error}"


def check_keys(prokeys: list[str]) -> list[str]:
    """The keys, each checked to be a prokey; the first bad one is a `UsageError`."""
    try:
        return [validate_prokey(key) for key in prokeys]
    except ValidationError as err:
        raise UsageError(str(err)) from None


def confirm(question: str, *, yes: bool, action: str, nothing: str) -> None:
    """Go on only with `--yes` or a "y" typed on a terminal.

    Without `--yes`, stdin that is not a terminal is a `UsageError` (a script must say
    `--yes`; the message says it refuses to `action`), and any answer but y/yes is a
    `CommandError` saying `nothing`. Called before (or between) event loops, so Ctrl-C
    at the question interrupts at once.
    """
    if yes:
        return
    if not is_terminal(sys.stdin):
        raise UsageError(f"refusing to {action} without --yes: stdin is not a terminal to ask on")
    if not ask(question):
        raise CommandError(f"not confirmed: {nothing}")


def confirm_delete(what: str, *, yes: bool) -> None:
    """`confirm` a delete of `what` (and the events linked to it)."""
    confirm(
        f"Delete {what} and every event linked to them?",
        yes=yes,
        action="delete",
        nothing="nothing was deleted",
    )


def shown_key(key: str) -> str:
    """`key` as a message shows it: whole when it is of a sane length, else cut short."""
    return key if len(key) <= _SHOWN_KEY else key[: _SHOWN_KEY - 1] + "…"
