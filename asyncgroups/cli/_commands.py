"""The single-shot commands: get, list, create, update, delete.

Each takes the parsed arguments and the global settings, runs its own event loop, and
returns an exit code; anything asked on the terminal is asked before the loop starts.
Keys given on the command line are checked before anything is sent, so a typo is a
usage error (exit 2), not a half-done run.
"""

from __future__ import annotations

import argparse
import re
from typing import Any, Final

from .. import BulkResult, Group, GroupPatch, GroupSummary, NewGroup, ValidationError
from ._common import cannot_print, check_keys, confirm_delete, describe
from ._exits import FAILED, OK, UsageError
from ._io import JsonLines, UnprintableError, open_output, say
from ._settings import Settings, make_client
from ._signals import run_loop
from ._subcommands import CLEARABLE

__all__ = [
    "cmd_create",
    "cmd_delete",
    "cmd_get",
    "cmd_list",
    "cmd_update",
    "in_options",
    "write_or_report",
]


def cmd_get(args: argparse.Namespace, settings: Settings) -> int:
    """`get PROKEY...`: one JSON object per group, in the order given."""
    keys = check_keys(args.prokeys)
    client = make_client(settings)

    async def run() -> BulkResult[Group]:
        async with client:
            return await client.groups.get_many(keys, concurrency=settings.concurrency)

    result = run_loop(run())
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


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    """`list`: one JSON object per group summary."""
    client = make_client(settings)

    async def run() -> list[GroupSummary]:
        async with client:
            return await client.groups.list()

    summaries = run_loop(run())
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
        "landingpage": args.landingpage,
        "public_event_overview": args.public_event_overview,
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

    key = run_loop(run())
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

    updated = run_loop(run())
    with open_output(None) as out:
        out.write({"prokey": key, "updated": updated})
    return OK


def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    """`delete PROKEY...`: one `{"prokey", "outcome"}` line per key, in the order given."""
    keys = list(dict.fromkeys(check_keys(args.prokeys)))
    client = make_client(settings)  # a missing API key is reported before the question
    confirm_delete(f"{len(keys)} group(s)", yes=args.yes)

    async def run() -> BulkResult[None]:
        async with client:
            return await client.groups.delete_many(keys, concurrency=settings.concurrency)

    result = run_loop(run())
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
