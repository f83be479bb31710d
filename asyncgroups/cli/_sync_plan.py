"""The plan `sync` makes, for `--plan` and before `--apply`: with a client of its own,
a bar for its reads, a proof that the key can read the account, and a plan the guards
refuse put in the command's words. What the run cost is counted here too (`Cost`).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator

from .. import AsyncGroupsError, BulkProgress, ClientStats, GroupsClient
from ..sync import (
    DesiredGroup,
    MassDeleteError,
    Plan,
    Refresh,
    SyncError,
    SyncState,
    VanishedGroupsError,
    plan,
)
from ._common import KeyOutcome, describe
from ._exits import CommandError
from ._io import say
from ._progress import Bar, progress_bar
from ._settings import Settings, make_client
from ._signals import run_loop

__all__ = ["Cost", "make_plan", "show_blocked", "why_refused"]


class Cost:
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


def make_plan(
    args: argparse.Namespace,
    settings: Settings,
    desired: list[DesiredGroup],
    state: SyncState,
    cost: Cost,
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


def why_refused(the_plan: Plan, args: argparse.Namespace) -> str | None:
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


def show_blocked(the_plan: Plan) -> None:
    for item in the_plan.blocked:
        say(f"blocked: {item.key}: {item.reason}")
