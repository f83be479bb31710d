"""The command line's parser: the global options, then each command's (`_subcommands`).

Every mistake argparse finds becomes one line on stderr and exit 2 (argparse's own
two-line usage dump is replaced). The global options are accepted after the command
too. Their environment fallbacks are `_settings`'s; the value types are `_values`'.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence
from typing import Any, NoReturn

from .. import DEFAULT_RATE_LIMIT, __version__
from ._exits import MEANINGS, UsageError
from ._settings import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, ENV
from ._subcommands import ADD_COMMANDS
from ._values import positive_float, positive_int, rate

__all__ = ["build_parser", "parse"]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: `UsageError` instead of exit(2).

    It remembers its `add_argument` calls, so the global options can be repeated on
    every command (`asyncgroups list -v` as well as `asyncgroups -v list`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: The arguments of each `add_argument` call, in order (`--help` included).
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        self.calls.append((args, kwargs))
        return super().add_argument(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _accept_after_the_command(parser: _Parser, commands: list[argparse.ArgumentParser]) -> None:
    """Repeat the global options of `parser` on each command, where they may come too.

    Each copy has no default, so an option given before the command keeps its value
    unless given again after it (the later one wins). An option a command defines
    itself (fake-server's `--api-key` and `--rate-limit`) keeps the command's meaning.
    """
    for sub in commands:
        group = sub.add_argument_group("global options (also accepted before the command)")
        for args, kwargs in parser.calls:
            if kwargs.get("action") in ("help", "version"):
                continue
            try:
                group.add_argument(*args, **{**kwargs, "default": argparse.SUPPRESS})
            except argparse.ArgumentError:  # the command has an option of that name
                continue



def _global_options(parser: argparse.ArgumentParser) -> None:
    """The options every command takes (before the command, or after it)."""
    parser.add_argument("--version", action="version", version=f"asyncgroups {__version__}")
    parser.add_argument(
        "--api-key", metavar="KEY", help=f"the API key (default: ${ENV['api_key']}; prefer it)"
    )
    parser.add_argument(
        "--base-url", metavar="URL", help=f"the API's base URL (default: ${ENV['base_url']})"
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        metavar="N",
        help=f"requests in flight at most (default: ${ENV['concurrency']} or "
        f"{DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--rate-limit",
        type=rate,
        metavar="RPS",
        help=f"requests per second at most, or none (default: ${ENV['rate_limit']} or "
        f"{DEFAULT_RATE_LIMIT:g}, the service's documented limit)",
    )
    parser.add_argument(
        "--shared-limit",
        metavar="REDIS_URL",
        help=f"share the rate limit and 429 pauses with every other process using this "
        f"Redis (redis://host:6379/0; needs asyncgroups[redis]); --rate-limit is then the "
        f"rate of all of them together (default: ${ENV['shared_limit']}; prefer it for "
        f"a URL with a password)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        metavar="S",
        help=f"seconds per attempt (default: ${ENV['timeout']} or {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--ca-file",
        metavar="PATH",
        help="verify the API's TLS certificate against the CA certificates in this PEM "
        f"file instead of the system's (a private or corporate CA; default: "
        f"${ENV['ca_file']})",
    )
    parser.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow a plain http:// --base-url to a host that is not loopback (sends the "
        "API key unencrypted)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log every request and retry decision to stderr",
    )




class _EpilogFormatter(argparse.HelpFormatter):
    """Fills each line of a description or epilog on its own, so the exit codes stay a
    list: a line starting with a number is indented under its text."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for line in text.splitlines():
            code, _, meaning = line.partition(" ")
            if code.isdigit():
                lines.append(
                    textwrap.fill(
                        f"{code:<4} {meaning}",
                        width,
                        initial_indent=indent + "  ",
                        subsequent_indent=indent + "       ",
                    )
                )
            else:
                lines.append(textwrap.fill(line, width, initial_indent=indent))
        return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The `asyncgroups` parser: global options, then one subcommand."""
    parser = _Parser(
        prog="asyncgroups",
        description=(
            "Work with Add to Calendar PRO groups. JSON Lines on stdout, messages on "
            "stderr; the exit codes are listed below."
        ),
        epilog="exit codes:\n" + "\n".join(f"{code} {text}" for code, text in MEANINGS),
        formatter_class=_EpilogFormatter,
    )
    _global_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    made: list[argparse.ArgumentParser] = []

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(name, help=help, description=help)
        made.append(sub)
        return sub

    for add in ADD_COMMANDS:
        add(command)
    _accept_after_the_command(parser, made)
    return parser


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse `argv` (without the program name); mistakes raise `UsageError`."""
    return build_parser().parse_args(argv)
