"""Each command's parser: one function per command adds it and its options, in the order
`--help` lists them (`ADD_COMMANDS`). The global options, and the parser they are added
to, are `_args`'.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Final

from .. import GroupStatus, Subscription
from ._values import host, number, port, positive_float, positive_int, whole_number

__all__ = ["ADD_COMMANDS", "CLEARABLE", "REFRESH_MODES", "Command"]

#: The fields `update --clear` can set to null, by their option names.
CLEARABLE: Final = {
    "internal-note": "internal_note",
    "cal-url": "subscription_cal_url",
    "layout": "layout",
    "cta": "cta",
    "cta-block": "cta_block",
    "landingpage": "landingpage",
    "public-event-overview": "public_event_overview",
}

#: The values of `asyncgroups.sync.Refresh`, the default first: spelt here so that
#: parsing any command does not load the sync package (a test keeps them equal).
REFRESH_MODES: Final = ("full", "listing", "none")


def _field_options(parser: argparse.ArgumentParser, *, create: bool) -> None:
    """The group field options shared by create and update."""
    parser.add_argument("--name", required=create, help="the group's name")
    parser.add_argument("--internal-note", metavar="TEXT", help="a note only your team sees")
    parser.add_argument(
        "--subscription",
        choices=[s.value for s in Subscription],
        help='calendar subscription; "external" needs --cal-url',
    )
    parser.add_argument(
        "--cal-url", metavar="URL", help="the external calendar (http(s), usually .ics)"
    )
    parser.add_argument("--layout", metavar="ID", help="the id of a style template")
    parser.add_argument(
        "--cta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show the call-to-action block (--no-cta hides it)",
    )
    parser.add_argument("--cta-block", metavar="ID", help="the id of a CTA block")
    parser.add_argument("--landingpage", metavar="ID", help="the id of a landing-page template")
    parser.add_argument(
        "--public-event-overview",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="make the group's button list all its events",
    )


def _input_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-i",
        "--input",
        required=True,
        metavar="FILE",
        help="keys, one per line: bare, or JSON Lines objects with a prokey (or id), as "
        "list prints them; blank lines and # comments skipped; - reads stdin",
    )


def _fault_options(parser: argparse.ArgumentParser) -> None:
    faults = parser.add_argument_group("faults (all off by default)")
    faults.add_argument("--latency", type=number, default=0.0, metavar="S", help="delay per reply")
    faults.add_argument(
        "--jitter", type=number, default=0.0, metavar="S", help="extra random delay"
    )
    faults.add_argument(
        "--error-rate", type=number, default=0.0, metavar="P", help="share answered 500/502/503"
    )
    faults.add_argument(
        "--reset-rate", type=number, default=0.0, metavar="P", help="share dropped unanswered"
    )
    faults.add_argument(
        "--lost-reply-rate",
        type=number,
        default=0.0,
        metavar="P",
        help="share acted on, then dropped unanswered",
    )
    faults.add_argument(
        "--malformed-rate", type=number, default=0.0, metavar="P", help="share answered bad JSON"
    )
    faults.add_argument(
        "--rate-limit",
        dest="server_rate_limit",
        type=positive_float,
        metavar="RPS",
        help="answer 429 above this many requests per second",
    )
    faults.add_argument("--burst", type=positive_float, metavar="N", help="rate limit bucket size")
    faults.add_argument(
        "--retry-after", type=number, default=1.0, metavar="S", help="Retry-After sent with 429"
    )


#: Adds one command's parser: its name and its one-line help.
Command = Callable[[str, str], argparse.ArgumentParser]

def _add_get(command: Command) -> None:
    get = command("get", "print groups as JSON Lines")
    get.add_argument("prokeys", nargs="+", metavar="PROKEY")


def _add_list(command: Command) -> None:
    command("list", "print a summary of every group of the account")


def _add_create(command: Command) -> None:
    create = command("create", "create a group; prints its prokey")
    _field_options(create, create=True)


def _add_update(command: Command) -> None:
    update = command("update", "change a group's fields; only the fields given are sent")
    update.add_argument("prokey", metavar="PROKEY")
    _field_options(update, create=False)
    update.add_argument(
        "--status", choices=[s.value for s in GroupStatus], help="publish or unpublish"
    )
    update.add_argument(
        "--clear",
        action="append",
        default=[],
        choices=sorted(CLEARABLE),
        metavar="FIELD",
        help=f"set a field to null (repeatable): {', '.join(sorted(CLEARABLE))}",
    )
    update.add_argument(
        "--skip-unchanged",
        action="store_true",
        help="read the group first and send only fields that differ (saves credits)",
    )


def _add_delete(command: Command) -> None:
    delete = command("delete", "delete groups and every event linked to them")
    delete.add_argument("prokeys", nargs="+", metavar="PROKEY")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask")


def _add_bulk_get(command: Command) -> None:
    bulk_get = command("bulk-get", "read many groups, keys from a file or stdin")
    _input_option(bulk_get)
    bulk_get.add_argument(
        "-o", "--output", metavar="FILE", help="write the groups here (default: stdout)"
    )
    bulk_get.add_argument(
        "--failed",
        metavar="FILE",
        help='list each failed key here, one JSON line {"prokey", "error"} (stderr only '
        "counts them by cause); the file reads back as --input to try them again",
    )
    bulk_get.add_argument(
        "--missing",
        metavar="FILE",
        help='list each key not found here, one JSON line {"prokey"} (stderr only counts '
        "them)",
    )


def _add_bulk_delete(command: Command) -> None:
    bulk_delete = command("bulk-delete", "delete many groups, keys from a file or stdin, resumable")
    _input_option(bulk_delete)
    bulk_delete.add_argument(
        "--journal",
        required=True,
        metavar="FILE",
        help="outcomes are appended here; a re-run with it skips keys already done",
    )
    bulk_delete.add_argument("-y", "--yes", action="store_true", help="do not ask")
    bulk_delete.add_argument(
        "--dry-run", action="store_true", help="print what would be deleted; delete nothing"
    )


def _add_fake_server(command: Command) -> None:
    server = command("fake-server", "run a fake Groups API locally until Ctrl-C or SIGTERM")
    server.add_argument(
        "--host", type=host, default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    server.add_argument(
        "--port", type=port, default=8080, help="port to bind, 0 for any (default 8080)"
    )
    server.add_argument(
        "--api-key",
        dest="server_api_key",
        default="test-key",
        metavar="KEY",
        help="the key it accepts (default test-key)",
    )
    server.add_argument(
        "--groups", type=whole_number, default=0, metavar="N", help="groups to pre-create"
    )
    server.add_argument(
        "--shape",
        choices=["list", "object"],
        default="list",
        help="read replies as the documented list (default) or the newer bare object",
    )
    server.add_argument(
        "--page-size",
        type=whole_number,
        metavar="N",
        help="groups per page of /group/all, 0 for no paging (default 800, as the service)",
    )
    server.add_argument("--seed", type=int, default=0, help="seed of keys and random faults")
    _fault_options(server)


def _add_sync(command: Command) -> None:
    sync = command(
        "sync", "make the account match desired groups: plan (default), or apply with --apply"
    )
    sync.add_argument(
        "--desired",
        required=True,
        metavar="FILE",
        help='desired groups, one JSON object per line ({"key": ..., "name": ..., ...}); '
        "- reads stdin",
    )
    sync.add_argument(
        "--state",
        required=True,
        metavar="FILE",
        help="the sync state (SQLite), created on first use: keep it for the next run",
    )
    sync.add_argument(
        "--refresh",
        choices=REFRESH_MODES,
        default=REFRESH_MODES[0],
        help="what the plan reads to see changes made by hand: full reads each owned group "
        "it compares (default), listing only the account's listing (one request per 800 "
        "groups: sees deleted and renamed groups), none nothing",
    )
    sync.add_argument(
        "--prune",
        action="store_true",
        help="delete groups this state created or adopted that are no longer desired",
    )
    sync.add_argument(
        "--max-deletes",
        type=whole_number,
        metavar="N",
        help="allow --apply to delete up to N groups (default: none when the desired set "
        "is empty, else max(10, 10%% of the owned groups))",
    )
    sync.add_argument(
        "--allow-vanished",
        action="store_true",
        help="apply even when every group the state owns (5 or more) is gone from the "
        "account, creating them all again (never for a state meant for another account)",
    )
    sync.add_argument(
        "--adopt-by-name",
        action="store_true",
        help="take over an existing group named exactly like a new key (never a guess)",
    )
    mode = sync.add_mutually_exclusive_group()
    mode.add_argument(
        "--plan", action="store_true", help="print what would change; change nothing (default)"
    )
    mode.add_argument("--apply", action="store_true", help="make the changes")
    sync.add_argument("-y", "--yes", action="store_true", help="apply without asking")
    sync.add_argument(
        "--rebind-state",
        action="store_true",
        help="with --apply: the account moved to this base URL; bind the state file to it "
        "(for another account, give --state a new file instead)",
    )


def _add_demo(command: Command) -> None:
    demo = command("demo", "a bulk run against a local fake API with faults; no account needed")
    demo.add_argument(
        "--groups", type=positive_int, default=3000, metavar="N", help="groups (default 3000)"
    )
    demo.add_argument("--seed", type=int, default=1, help="seed of the faults (default 1)")


#: Each command's parser, in the order `--help` lists them.
ADD_COMMANDS: Final = (
    _add_get,
    _add_list,
    _add_create,
    _add_update,
    _add_delete,
    _add_bulk_get,
    _add_bulk_delete,
    _add_fake_server,
    _add_sync,
    _add_demo,
)
