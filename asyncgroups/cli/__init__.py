"""The `asyncgroups` command (also `python -m asyncgroups`).

stdout carries JSON Lines only; messages, prompts and progress go to stderr. The exit
codes are `_exits.MEANINGS` (which `--help` lists): 0 when everything succeeded, 1 when
anything failed, 2 on usage errors, 75 when sync must run again later, 130 on Ctrl-C,
143 on SIGTERM (handled as Ctrl-C is), 141 when stdout's reader went away. Every error
the user can fix is one line on stderr, never a traceback. The command uses only the
public API of asyncgroups (and `asyncgroups.testing` for `fake-server` and `demo`),
plus the two private helpers the package shares on purpose: `_filelock` (the journal's
lock, the same as the sync state's) and `_timestamp` (one ISO 8601 spelling).
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Final, TextIO

from .. import AsyncGroupsError
from ._args import parse
from ._exits import BROKEN_PIPE, FAILED, INTERRUPTED, OK, TERMINATED, USAGE, CommandError
from ._io import printable
from ._settings import ENV, Settings
from ._signals import sigterm_as_interrupt

__all__ = ["main"]

#: Each command's module and function, imported only when that command runs (so `get`
#: never loads the fake server, and `demo` never loads what it does not use).
_COMMANDS: Final = {
    "get": ("_commands", "cmd_get"),
    "list": ("_commands", "cmd_list"),
    "create": ("_commands", "cmd_create"),
    "update": ("_commands", "cmd_update"),
    "delete": ("_commands", "cmd_delete"),
    "bulk-get": ("_bulk", "cmd_bulk_get"),
    "bulk-delete": ("_bulk", "cmd_bulk_delete"),
    "fake-server": ("_fake_server", "cmd_fake_server"),
    "sync": ("_sync", "cmd_sync"),
    "demo": ("_demo", "cmd_demo"),
}


def _command(name: str) -> Callable[..., int]:
    module, function = _COMMANDS[name]
    command: Callable[..., int] = getattr(importlib.import_module(f"{__name__}.{module}"), function)
    return command


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Logs to whatever `sys.stderr` is at the time (a progress bar may redirect it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class _PrintableFormatter(logging.Formatter):
    """One line per record, control characters escaped: a log line may quote a server."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def _not_said_again(record: logging.LogRecord) -> bool:
    """False for the shared limit's "Redis cannot be reached" warning.

    The command stops at that `LimiterUnavailableError` (it has no fallback rate), and
    its error line says the same: the warning would say it twice and promise a retry
    the command never makes. `-v` keeps it.
    """
    if record.levelno != logging.WARNING:
        return True
    try:
        from ..contrib.redis import OUTAGE_RECORD
    except ImportError:  # without redis-py no limiter logged it
        return True
    return not getattr(record, OUTAGE_RECORD, False)


@contextlib.contextmanager
def _logging(verbose: int) -> Iterator[None]:
    """Library logs on stderr: warnings by default; -v every request and retry decision."""
    logger = logging.getLogger("asyncgroups")
    handler = _StderrHandler()
    handler.setFormatter(_PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    if verbose == 0:
        handler.addFilter(_not_said_again)
    level = logging.DEBUG if verbose > 0 else logging.WARNING
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _error(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"asyncgroups: error: {printable(message)}\n")
        sys.stderr.flush()


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _exit_code(code: object) -> int:
    if code is None:
        return OK
    return code if isinstance(code, int) else USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: `sys.argv[1:]`) and return its exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    with sigterm_as_interrupt() as termination:
        try:
            return _run(arguments)
        except KeyboardInterrupt:
            if termination.received:
                _error("terminated (SIGTERM)")
                return TERMINATED
            _error("interrupted")
            return INTERRUPTED


def _run(arguments: list[str]) -> int:
    """Parse and run one command; every error but an interrupt becomes its exit code."""
    try:
        try:
            args = parse(arguments)
        except SystemExit as done:  # --help and --version end the parse
            return _exit_code(done.code)
        settings = Settings(args)
        with _logging(settings.verbose):
            return _command(args.command)(args, settings)
    except CommandError as err:
        _error(str(err))
        return err.code
    except AsyncGroupsError as err:
        from ._common import describe

        _error(describe(err))
        return FAILED
    except BrokenPipeError:
        _silence_stdout()
        return BROKEN_PIPE
    except OSError as err:  # reading or writing a file failed: a full disk, say
        where = f" ({err.filename})" if err.filename else ""
        _error(f"{err.strerror or err}{where}")
        _silence_stdout()
        return FAILED
    except Exception as err:  # a bug, or a reply no rule foresaw: still one line
        _error(_unexpected(err, arguments))
        return FAILED


def _unexpected(error: Exception, arguments: Sequence[str]) -> str:
    """The one line for an exception nothing expected, without any API key in it.

    No traceback is shown (a user cannot act on one); the exception's type and text
    are enough to report it.
    """
    text = " ".join(str(error).split())
    for secret in _secrets(arguments):
        text = text.replace(secret, "***")
    detail = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return f"unexpected error ({detail}); this is a bug in asyncgroups, please report it"


def _secrets(arguments: Sequence[str]) -> Iterator[str]:
    """The API keys this run may hold: from the environment and from `--api-key`.

    argparse takes any unambiguous prefix (`--api KEY`, `--api-k=KEY`), so those count.
    """

    def is_key_option(name: str) -> bool:
        return name.startswith("--api") and "--api-key".startswith(name)

    key = os.environ.get(ENV["api_key"])
    if key:
        yield key
    for before, value in itertools.pairwise(arguments):
        if is_key_option(before) and value:
            yield value
    for argument in arguments:
        name, _, value = argument.partition("=")
        if is_key_option(name) and value:
            yield value
