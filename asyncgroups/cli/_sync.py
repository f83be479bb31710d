"""sync: make the account match a desired set of groups, from a JSON Lines file or stdin.

`--plan` (the default) first lists the account (a plan must prove the key can read
it), then prints the plan as JSON Lines and a summary on stderr, with what the plan cost,
and changes nothing. `--apply` takes the state file's lock, plans, asks (unless
`--yes`), applies with a progress bar, and streams one JSON line per item as it ends,
then the skipped (blocked, kept) items and a summary line, whose time and requests are
the whole run's. On a terminal the plan's reads show a bar too. The work is
`asyncgroups.sync`'s; this module only talks to the user (the plan it makes, in
`_sync_plan.py`).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from .. import GroupsClient
from ..sync import (
    WRITE_ACTIONS,
    Action,
    DesiredGroup,
    DesiredStateError,
    ItemOutcome,
    OutOfCreditsError,
    Plan,
    StateAccountError,
    StateFileError,
    StateLockedError,
    SyncProgress,
    SyncReport,
    SyncState,
    apply,
    plan_record,
    read_desired,
    result_record,
)
from ._common import confirm, describe
from ._exits import FAILED, OK, WAITING, CommandError, UsageError
from ._io import JsonLines, is_terminal, open_output, say
from ._progress import Bar, progress_bar
from ._settings import Settings, make_client
from ._signals import run_loop
from ._sync_plan import Cost, make_plan, show_blocked, why_refused

__all__ = ["cmd_sync", "question", "report_summary"]

#: Problems of the desired file shown one per line before the command gives up.
_SHOWN_PROBLEMS: Final = 50


def _read_desired(path: str) -> list[DesiredGroup]:
    """The desired records of `path` (`-`: stdin); any problem is a `UsageError`."""
    if path == "-":
        if is_terminal(sys.stdin):
            raise UsageError(
                "--desired - reads JSON Lines from stdin, but stdin is a terminal: pipe them "
                "in (... | asyncgroups sync --desired - ...) or pass --desired FILE"
            )
        return _parse(sys.stdin, "<stdin>")
    try:
        with open(path, encoding="utf-8") as lines:
            return _parse(lines, path)
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from None


def _parse(lines: Iterable[str], source: str) -> list[DesiredGroup]:
    try:
        return read_desired(lines, source=source)
    except DesiredStateError as err:
        for problem in err.problems[:_SHOWN_PROBLEMS]:
            say(f"invalid: {problem}")
        more = len(err.problems) - _SHOWN_PROBLEMS
        if more > 0:
            say(f"invalid: … and {more} more")
        raise UsageError(
            f"{len(err.problems)} problem(s) in the desired groups of {source}; nothing was sent"
        ) from None
    except UnicodeDecodeError as err:
        raise UsageError(f"{source} is not UTF-8 text: {err}") from None


def _open_state(path: str) -> SyncState:
    try:
        return SyncState(path)
    except StateFileError as err:
        raise UsageError(str(err)) from None



def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    """`sync --desired FILE|- --state FILE [--refresh MODE] [--prune] [--max-deletes N]
    [--allow-vanished] [--adopt-by-name] [--plan|--apply] [--yes] [--rebind-state]`."""
    cost = Cost()
    desired = _read_desired(args.desired)
    if args.apply and not args.yes and args.desired == "-":
        raise UsageError(
            "refusing to apply without --yes: the desired groups come from stdin, so there "
            "is no terminal to ask on"
        )
    if args.rebind_state and not args.apply:
        raise UsageError("--rebind-state rewrites the state file, so it goes with --apply")
    make_client(settings)  # a missing API key or a bad URL is reported before anything else
    try:
        if not args.apply:
            return _show_plan(args, settings, desired, cost)
        with _open_state(args.state) as state:
            try:
                with state.locked():
                    if args.rebind_state:
                        _rebind(state, make_client(settings).base_url)
                    return _apply(args, settings, desired, state, cost)
            except StateLockedError as err:
                raise CommandError(str(err)) from None
    except StateAccountError as err:
        raise UsageError(f"{err} (--rebind-state, with --apply)") from None


def _rebind(state: SyncState, base_url: str) -> None:
    """Bind the state to the account at `base_url`, saying so (the user asked for it)."""
    before = state.rebind(base_url)
    if before != state.base_url:
        say(f"sync: {state.path} now belongs to the account at {state.base_url} (was {before})")


def _show_plan(
    args: argparse.Namespace, settings: Settings, desired: list[DesiredGroup], cost: Cost
) -> int:
    """Print the plan; change nothing, not even the local disk.

    Without a state file yet (a first run), the plan is made against an empty state
    in a temporary directory, so `--plan` never creates the file it was given.
    """
    with contextlib.ExitStack() as stack:
        path = Path(args.state)
        if not path.exists():
            path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "empty.db"
        state = stack.enter_context(_open_state(str(path)))
        the_plan = make_plan(args, settings, desired, state, cost)
    with open_output(None) as out:
        for item in the_plan.items:
            out.write(plan_record(item))
    show_blocked(the_plan)
    say(the_plan.summary())
    say(f"plan made {cost.summary()}")
    refusal = why_refused(the_plan, args)
    if refusal is not None:
        say(f"--apply would refuse this plan: {refusal}")
    return OK


#: The changes a question names, in the order it names them: singular and plural.
_CHANGES: Final = (
    (Action.CREATE, "create", "creates"),
    (Action.ADOPT, "adoption", "adoptions"),
    (Action.UPDATE, "update", "updates"),
    (Action.DELETE, "delete", "deletes"),
)


def question(counts: Mapping[Action, int], credits: int, base_url: str) -> str:
    """What `--apply` asks before it changes the account: where, what, and at what cost."""
    parts = [
        f"{count:,} {one if count == 1 else many}"
        for action, one, many in _CHANGES
        if (count := counts.get(action, 0))
    ]
    deletes = (
        " (deleting a group deletes every event linked to it)" if counts.get(Action.DELETE) else ""
    )
    return (
        f"Apply to the account at {base_url}: {', '.join(parts)}{deletes}, for an estimated "
        f"{credits:,} event credit{'' if credits == 1 else 's'}?"
    )


def _apply(
    args: argparse.Namespace,
    settings: Settings,
    desired: list[DesiredGroup],
    state: SyncState,
    cost: Cost,
) -> int:
    """Plan under the lock, ask, apply with a bar; the lock is held from plan to end.

    A plan the guards refuse (too many deletes, every owned group gone) ends here in
    one line, exit 2, before any write: the desired set or the state is suspect, so
    not even its creates and updates are sent.
    """
    the_plan = make_plan(args, settings, desired, state, cost)
    refusal = why_refused(the_plan, args)
    if refusal is not None:
        raise UsageError(f"refusing to apply: {refusal}; nothing was sent")
    show_blocked(the_plan)
    say(the_plan.summary())
    client = make_client(settings)
    if the_plan.has_changes:
        _ask(the_plan, client.base_url, args, cost)
    report = _carry_out(client, the_plan, state, args, settings, cost)
    say(report.summary(elapsed=cost.elapsed, sent=cost.sent))
    if report.failed:
        return FAILED
    return WAITING if report.waiting else OK


def _ask(the_plan: Plan, base_url: str, args: argparse.Namespace, cost: Cost) -> None:
    """Ask before changing the account (unless `--yes`); the answer's wait is not cost."""
    counts = collections.Counter(item.action for item in the_plan.items)
    # Asked between two event loops, so Ctrl-C at the question interrupts at once.
    with cost.paused():
        confirm(
            question(counts, the_plan.estimated_credits, base_url),
            yes=args.yes,
            action="apply the plan",
            nothing="nothing was changed",
        )


def _carry_out(
    client: GroupsClient,
    the_plan: Plan,
    state: SyncState,
    args: argparse.Namespace,
    settings: Settings,
    cost: Cost,
) -> SyncReport:
    """Apply the plan under a bar, one JSON line per item as it ends, then the skipped
    items and the summary line."""
    total = sum(1 for item in the_plan.items if item.action in WRITE_ACTIONS)
    # The output opens inside the bar, so a bar on a terminal scrolls the lines above it.
    with progress_bar("sync", total) as bar, open_output(None, flush_each=True) as out:

        async def run() -> SyncReport:
            async with client:
                return await apply(
                    client,
                    the_plan,
                    state,
                    concurrency=settings.concurrency,
                    on_progress=_streamer(out, bar),
                    max_deletes=args.max_deletes,
                    allow_vanished=args.allow_vanished,
                )

        try:
            report = run_loop(run())
        except KeyboardInterrupt:
            say(
                f"sync: interrupted; {state.path} keeps every item finished: run the same "
                "command again to resume (nothing is created twice)"
            )
            raise
        cost.add(client)
        for result in report.items:
            if result.outcome is ItemOutcome.SKIPPED:  # blocked or kept: no work to stream
                out.write(result_record(result))
        out.write(report_summary(report))
    return report


def _streamer(out: JsonLines, bar: Bar) -> Callable[[SyncProgress], None]:
    """The apply's progress callback: each item's line goes out the moment it ends (and
    is flushed), so a run cut short still shows every change it made."""

    def on_progress(progress: SyncProgress) -> None:
        last = progress.last
        out.write(result_record(last))
        if last.outcome is ItemOutcome.FAILED:
            if not isinstance(last.error, OutOfCreditsError):  # the summary counts those
                bar.log(f"failed: {last.key}: {describe(last.error or Exception())}")
            bar.advance("failed")
        elif last.outcome is ItemOutcome.WAITING:
            bar.log(f"{last.key}: {last.note}")
            bar.advance("skipped")
        else:
            bar.advance("ok")

    return on_progress


def report_summary(report: SyncReport) -> dict[str, Any]:
    """The summary line of an apply, as a JSON-able dict."""
    return {
        "created": report.count(Action.CREATE),
        "adopted": report.count(Action.ADOPT),
        "updated": report.count(Action.UPDATE),
        "deleted": report.count(Action.DELETE),
        "unchanged": report.count(Action.UNCHANGED),
        "blocked": report.count(Action.BLOCKED, ItemOutcome.SKIPPED),
        "kept": report.count(Action.KEEP, ItemOutcome.SKIPPED),
        "failed": len(report.failed),
        "waiting": len(report.waiting),
        "updates_sent": report.updates_sent,
        "estimated_credits": report.estimated_credits,
    }
