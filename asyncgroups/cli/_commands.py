"""The single-shot commands: get, list, create, update, delete.

Each takes the parsed arguments and the global settings, runs its own event loop, and
returns an exit code; anything asked on the terminal is asked before the loop starts.
Keys given on the command line are checked before anything is sent, so a typo is a
usage error (exit 2), not a half-done run.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from typing import Any, Final

from .. import (
    AsyncGroupsError,
    AuthenticationError,
    BulkResult,
    Group,
    GroupPatch,
    GroupSummary,
    NewGroup,
    ValidationError,
    validate_prokey,
)
from ._args import CLEARABLE, ENV, Settings, make_client
from ._exits import FAILED, OK, CommandError, UsageError
from ._io import JsonLines, UnprintableError, ask, is_terminal, open_output, say

__all__ = [
    "cannot_print",
    "cmd_create",
    "cmd_delete",
    "cmd_get",
    "cmd_list",
    "cmd_update",
    "confirm",
    "describe",
    "fatal",
    "in_options",
    "write_or_report",
]


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
    return text


def fatal(error: AsyncGroupsError) -> bool:
    """True for a failure every further request would repeat: the API key was refused."""
    return isinstance(error, AuthenticationError)


def check_keys(prokeys: list[str]) -> list[str]:
    """The keys, each checked to be a prokey; the first bad one is a `UsageError`."""
    try:
        return [validate_prokey(key) for key in prokeys]
    except ValidationError as err:
        raise UsageError(str(err)) from None


def cmd_get(args: argparse.Namespace, settings: Settings) -> int:
    """`get PROKEY...`: one JSON object per group, in the order given."""
    keys = check_keys(args.prokeys)
    client = make_client(settings)

    async def run() -> BulkResult[Group]:
        async with client:
            return await client.groups.get_many(keys, concurrency=settings.concurrency)

    result = asyncio.run(run())
    unprintable = 0
    with open_output(None) as out:
        for key, group in result.ok.items():
            unprintable += not write_or_report(out, key, group)
    for key in result.missing:
        say(f"not found: {key}")
    for key, error in result.failed.items():
        say(f"failed: {key}: {describe(error)}")
    return OK if not result.missing and not result.failed and not unprintable else FAILED


def write_or_report(out: JsonLines, key: str, model: Group | GroupSummary) -> bool:
    """Write one group's line; if it cannot be encoded, say so for its key instead.

    Returns False for such a key, so a reply the library accepted but JSON cannot show
    (an `extra` nested hundreds deep) fails that key only, never the whole command.
    """
    try:
        out.write(model)
    except UnprintableError as err:
        say(cannot_print(key, err))
        return False
    return True


def cannot_print(key: str, error: UnprintableError) -> str:
    """The failure line of a key whose group could not be encoded."""
    return f"failed: {key}: the group cannot be printed: {error}"


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    """`list`: one JSON object per group summary."""
    client = make_client(settings)

    async def run() -> list[GroupSummary]:
        async with client:
            return await client.groups.list()

    summaries = asyncio.run(run())
    unprintable = 0
    with open_output(None) as out:
        for summary in summaries:
            unprintable += not write_or_report(out, summary.prokey, summary)
    return FAILED if unprintable else OK


#: The option that sets each group field, for messages about what the user typed.
_OPTIONS: Final = {
    "name": "--name",
    "status": "--status",
    "subscription": "--subscription",
    **{field: f"--{option}" for option, field in CLEARABLE.items()},
}
#: A quoted value in a message (a name, a URL): left as it is, even if it reads "name".
_QUOTED: Final = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
_FIELD: Final = re.compile(r"\b(" + "|".join(sorted(_OPTIONS, key=len, reverse=True)) + r")\b")


def in_options(error: ValidationError) -> UsageError:
    """A model's `ValidationError` as a `UsageError` that names options, not fields.

    The model says `subscription_cal_url`; the user typed `--cal-url`, so that is what
    the message names. Quoted values in it are never rewritten.
    """
    parts = _QUOTED.split(str(error))  # the quoted values land at the odd indexes
    message = "".join(
        part if n % 2 else _FIELD.sub(lambda m: _OPTIONS[m.group()], part)
        for n, part in enumerate(parts)
    )
    return UsageError(message)


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    """The field options given on the command line, by model field name."""
    given = {
        "name": args.name,
        "internal_note": args.internal_note,
        "subscription": args.subscription,
        "subscription_cal_url": args.cal_url,
        "layout": args.layout,
        "cta": args.cta,
        "cta_block": args.cta_block,
        "status": getattr(args, "status", None),
    }
    return {name: value for name, value in given.items() if value is not None}


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    """`create --name ...`: prints `{"prokey": ...}`."""
    try:
        new = NewGroup(**_fields(args))
    except ValidationError as err:
        raise in_options(err) from None
    client = make_client(settings)

    async def run() -> str:
        async with client:
            return await client.groups.create(new)

    key = asyncio.run(run())
    with open_output(None) as out:
        out.write({"prokey": key})
    return OK


def _patch(args: argparse.Namespace) -> GroupPatch:
    fields = _fields(args)
    for option in dict.fromkeys(args.clear):
        name = CLEARABLE[option]
        if name in fields:
            raise UsageError(f"--clear {option} and --{option} contradict each other")
        fields[name] = None
    if not fields:
        raise UsageError(
            "nothing to change: give a field option (--name, --status, ...) or --clear FIELD"
        )
    try:
        return GroupPatch(**fields)
    except ValidationError as err:
        raise in_options(err) from None


def cmd_update(args: argparse.Namespace, settings: Settings) -> int:
    """`update PROKEY ...`: prints `{"prokey": ..., "updated": true/false}`."""
    (key,) = check_keys([args.prokey])
    patch = _patch(args)
    client = make_client(settings)

    async def run() -> bool:
        async with client:
            return await client.groups.update(key, patch, skip_unchanged=args.skip_unchanged)

    updated = asyncio.run(run())
    with open_output(None) as out:
        out.write({"prokey": key, "updated": updated})
    return OK


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


def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    """`delete PROKEY...`: one `{"prokey", "outcome"}` line per key, in the order given."""
    keys = list(dict.fromkeys(check_keys(args.prokeys)))
    client = make_client(settings)  # a missing API key is reported before the question
    confirm_delete(f"{len(keys)} group(s)", yes=args.yes)

    async def run() -> BulkResult[None]:
        async with client:
            return await client.groups.delete_many(keys, concurrency=settings.concurrency)

    result = asyncio.run(run())
    with open_output(None) as out:
        for key in keys:
            if key in result.failed:
                error = describe(result.failed[key])
                say(f"failed: {key}: {error}")
                out.write({"prokey": key, "outcome": "failed", "error": error})
            else:
                outcome = "missing" if key in result.missing else "deleted"
                out.write({"prokey": key, "outcome": outcome})
    return OK if result.all_ok else FAILED
