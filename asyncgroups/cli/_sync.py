"""sync: make the account match a desired set of groups, from a JSON Lines file or stdin.

`--plan` (the default) first lists the account (a plan must prove the key can read
it), then prints the plan as JSON Lines and a summary on stderr, with what the plan cost,
and changes nothing. `--apply` takes the state file's lock, plans, asks (unless
`--yes`), applies with a progress bar, and streams one JSON line per item as it ends,
then the skipped (blocked, kept) items and a summary line, whose time and requests are
the whole run's. On a terminal the plan's reads show a bar too. The work is
`asyncgroups.sync`'s; this module only talks to the user.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from .. import AsyncGroupsError, BulkProgress, ClientStats, GroupsClient
from ..sync import (
    WRITE_ACTIONS,
    Action,
    DesiredGroup,
    DesiredStateError,
    ItemOutcome,
    MassDeleteError,
    OutOfCreditsError,
    Plan,
    Refresh,
    StateAccountError,
    StateFileError,
    StateLockedError,
    SyncError,
    SyncProgress,
    SyncReport,
    SyncState,
    VanishedGroupsError,
    apply,
    plan,
    plan_record,
    read_desired,
    result_record,
)
from ._common import KeyOutcome, confirm, describe
from ._exits import FAILED, OK, WAITING, CommandError, UsageError
from ._io import is_terminal, open_output, say
from ._progress import Bar, progress_bar
from ._settings import Settings, make_client
from ._signals import run_loop

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


class _Cost:
    """What the run has cost so far: the seconds it worked (not those a question
    waited for an answer), and the requests of every client it made."""

    __slots__ = ("_paused", "_started", "sent")

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._paused = 0.0
        self.sent = ClientStats()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Leave the time spent in the block out (a person answering a question)."""
        started = time.monotonic()
        try:
            yield
        finally:
            self._paused += time.monotonic() - started

    def add(self, client: GroupsClient) -> None:
        """Count what `client` sent (once it is done)."""
        self.sent = self.sent + client.stats

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started - self._paused

    def summary(self) -> str:
        return f"in {self.elapsed:.1f} s: {self.sent.summary()}"


class _ReadBar:
    """The bar of the plan's reads, drawn from the first group read on: a plan that
    reads none (refresh listing or none) draws none. Off a terminal, nothing."""

    __slots__ = ("_bar", "_stack")

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack
        self._bar: Bar | None = None

    def __call__(self, progress: BulkProgress) -> None:
        bar = self._bar
        if bar is None:
            bar = self._bar = self._stack.enter_context(progress_bar("reading groups"))
        bar.expect(progress.total)
        counts: tuple[tuple[KeyOutcome, int], ...] = (
            ("ok", progress.done - progress.missing - progress.failed),
            ("missing", progress.missing),
            ("failed", progress.failed),
        )
        for kind, count in counts:
            for _ in range(count - bar.counts[kind]):
                bar.advance(kind)


def _make_plan(
    args: argparse.Namespace,
    settings: Settings,
    desired: list[DesiredGroup],
    state: SyncState,
    cost: _Cost,
) -> Plan:
    """Plan with a client of its own, a bar for its reads, and its requests counted."""
    client = make_client(settings)
    with contextlib.ExitStack() as bars:
        the_plan = run_loop(_plan(client, desired, state, args, _ReadBar(bars)))
    cost.add(client)
    return the_plan


async def _plan(
    client: GroupsClient,
    desired: list[DesiredGroup],
    state: SyncState,
    args: argparse.Namespace,
    bar: _ReadBar,
) -> Plan:
    state.check_account(client.base_url)  # before any request: the wrong account is one line
    async with client:
        if args.refresh != Refresh.LISTING:  # a listing refresh is the proof itself
            await _prove_access(client)
        try:
            return await plan(
                client,
                desired,
                state,
                prune=args.prune,
                refresh=args.refresh,
                adopt_by_name=args.adopt_by_name,
                on_progress=bar,
            )
        except SyncError:
            raise
        except AsyncGroupsError as err:
            raise _unreadable(err) from None


async def _prove_access(client: GroupsClient) -> None:
    """Read the account's first page, so a plan never rests on an account it cannot read.

    A fresh state owns nothing and would send no request at all: a wrong key, an
    expired one or an unreachable API would still print "4 to create" and exit 0, and
    a known state would show every item "blocked: 401". Either is one line, exit 1.
    One page proves the key and the URL; the rest of the account is not needed here.
    """
    try:
        async with contextlib.aclosing(client.groups.iter_list()) as pages:
            await anext(pages, None)
    except AsyncGroupsError as err:
        raise _unreadable(err) from None


def _unreadable(error: AsyncGroupsError) -> CommandError:
    return CommandError(f"cannot read the account, so nothing was planned: {describe(error)}")


def _refusal(the_plan: Plan, args: argparse.Namespace) -> str | None:
    """Why `--apply` refuses this plan before sending anything, in one line; or None."""
    error = the_plan.refusal(max_deletes=args.max_deletes, allow_vanished=args.allow_vanished)
    return None if error is None else _refusal_text(error, args)


def _refusal_text(error: SyncError, args: argparse.Namespace) -> str:
    if isinstance(error, VanishedGroupsError):
        which = f"all {error.owned} groups {args.state} owns"
        if error.checked < error.owned:  # some not looked for, or their read failed
            which = (
                f"all {error.checked} of the {error.owned} groups {args.state} owns that "
                "the plan could check"
            )
        return (
            f"{which} are gone from the account: is "
            "it the state of another account (--api-key, --base-url), or was the account "
            "emptied? If they were really deleted, --allow-vanished creates them all again"
        )
    assert isinstance(error, MassDeleteError)
    basis = "by --max-deletes" if args.max_deletes is not None else error.basis
    return (
        f"the plan deletes {error.deletes} groups, and every event linked to them, more "
        f"than the {error.allowed} allowed ({basis}); check the desired groups, or pass "
        f"--max-deletes {error.deletes} if these deletes are meant"
    )


def _show_blocked(the_plan: Plan) -> None:
    for item in the_plan.blocked:
        say(f"blocked: {item.key}: {item.reason}")


def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    """`sync --desired FILE|- --state FILE [--refresh MODE] [--prune] [--max-deletes N]
    [--allow-vanished] [--adopt-by-name] [--plan|--apply] [--yes] [--rebind-state]`."""
    cost = _Cost()
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
    args: argparse.Namespace, settings: Settings, desired: list[DesiredGroup], cost: _Cost
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
        the_plan = _make_plan(args, settings, desired, state, cost)
    with open_output(None) as out:
        for item in the_plan.items:
            out.write(plan_record(item))
    _show_blocked(the_plan)
    say(the_plan.summary())
    say(f"plan made {cost.summary()}")
    refusal = _refusal(the_plan, args)
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
    cost: _Cost,
) -> int:
    """Plan under the lock, ask, apply with a bar; the lock is held from plan to end.

    A plan the guards refuse (too many deletes, every owned group gone) ends here in
    one line, exit 2, before any write: the desired set or the state is suspect, so
    not even its creates and updates are sent.
    """
    the_plan = _make_plan(args, settings, desired, state, cost)
    refusal = _refusal(the_plan, args)
    if refusal is not None:
        raise UsageError(f"refusing to apply: {refusal}; nothing was sent")
    _show_blocked(the_plan)
    say(the_plan.summary())
    client = make_client(settings)
    if the_plan.has_changes:
        counts = collections.Counter(item.action for item in the_plan.items)
        # Asked between two event loops, so Ctrl-C at the question interrupts at once.
        with cost.paused():
            confirm(
                question(counts, the_plan.estimated_credits, client.base_url),
                yes=args.yes,
                action="apply the plan",
                nothing="nothing was changed",
            )
    total = sum(1 for item in the_plan.items if item.action in WRITE_ACTIONS)
    # The output opens inside the bar, so a bar on a terminal scrolls the lines above it.
    with progress_bar("sync", total) as bar, open_output(None, flush_each=True) as out:

        def on_progress(progress: SyncProgress) -> None:
            # Each item's line goes out the moment it ends (and is flushed): a run cut
            # short still shows every change it made.
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

        async def run() -> SyncReport:
            async with client:
                return await apply(
                    client,
                    the_plan,
                    state,
                    concurrency=settings.concurrency,
                    on_progress=on_progress,
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
    say(report.summary(elapsed=cost.elapsed, sent=cost.sent))
    if report.failed:
        return FAILED
    return WAITING if report.waiting else OK


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
