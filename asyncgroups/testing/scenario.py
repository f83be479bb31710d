"""Scenarios: real bulk work against a FakeGroupsServer with faults on, and the proof of it.

A scenario is a sequence of steps; each works through the real client (its bulk
operations, or `asyncgroups.sync`) against the fake's account, then checks what it
reported against what the server holds. `asyncgroups demo` is one, and the project's
own tests use the same fault presets and `check_sync`::

    from asyncgroups.testing.scenario import BULK_FAULTS, check_sync, failed_claims

    server.faults = BULK_FAULTS
    report = await apply(client, the_plan, state)
    assert failed_claims(check_sync(report, state, server)) == []

Creates run with only the rate limit on: a create is not idempotent, and a reply lost
after the server acted would leave a group the client never heard of. Reads meet 5xx
pages, dropped connections, replies lost after the server acted, and 429s with
Retry-After. Progress goes to an optional `ProgressFactory` (the command line passes
its progress bar); nothing here prints.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Final, Literal, Protocol

import attrs

from .. import AsyncGroupsError, Group, GroupsClient, NewGroup, NotFoundError, RetryPolicy
from ._checks import Check, Finding, failed_claims
from ._faults import Faults
from ._server import FakeGroupsServer
from ._sync_round import SyncRound, check_sync

__all__ = [
    "BULK_FAULTS",
    "CREATE_FAULTS",
    "SCENARIO_RETRY",
    "Check",
    "Finding",
    "Progress",
    "ProgressFactory",
    "Scenario",
    "Step",
    "StepResult",
    "SyncRound",
    "check_sync",
    "create_groups",
    "failed_claims",
    "faults_seen",
    "read_groups",
    "run_step",
    "sync_apply",
    "sync_plan",
    "sync_rerun",
]

#: What creates meet: only the rate limit, whose 429 proves the server did not act.
CREATE_FAULTS: Final = Faults(latency=0.001, rate_limit=1200.0, burst=150.0, retry_after=0.1)
#: What reads, deletes and a sync round meet.
BULK_FAULTS: Final = Faults(
    latency=0.001,
    jitter=0.003,
    error_rate=0.03,
    reset_rate=0.01,
    lost_reply_rate=0.01,
    rate_limit=1200.0,
    burst=150.0,
    retry_after=0.1,
)
#: Quick retries, so a scenario spends its time working rather than waiting.
SCENARIO_RETRY: Final = RetryPolicy(max_attempts=6, backoff_base=0.01, backoff_max=0.2)
#: Keys that never existed, mixed into the read: one per this many groups.
UNKNOWN_EVERY: Final = 100


class Progress(Protocol):
    """Where a step reports each finished key, and a line worth keeping (a failure)."""

    def advance(self, kind: Literal["ok", "missing", "failed"]) -> None:
        """Count one finished key."""

    def log(self, line: str) -> None:
        """Keep one line (printed above a bar, say)."""


#: Makes the `Progress` of one stretch of work: its name and how many keys it has.
ProgressFactory = Callable[[str, int], AbstractContextManager[Progress]]


class _Silent:
    """The default `Progress`: counts nothing, keeps nothing."""

    def advance(self, kind: Literal["ok", "missing", "failed"]) -> None:
        """Count nothing."""

    def log(self, line: str) -> None:
        """Keep nothing."""


@contextlib.contextmanager
def _silent(description: str, total: int) -> Iterator[Progress]:
    yield _Silent()


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


@attrs.define
class Scenario:
    """The state the steps share: the server, the client, and what earlier steps learned."""

    server: FakeGroupsServer
    client: GroupsClient
    concurrency: int
    groups: int
    rng: random.Random
    workdir: Path
    #: Where steps report progress (default: nowhere).
    progress: ProgressFactory = _silent
    #: How a failure is written in a logged line (the command line adds its hints).
    describe: Callable[[BaseException], str] = _one_line
    #: Keys of the groups created, in creation order.
    created: list[str] = attrs.Factory(list)
    #: Keys that never existed, mixed into the read.
    unknown: list[str] = attrs.Factory(list)
    #: The sync round's desired groups, state file, plan and report.
    sync: SyncRound = attrs.Factory(SyncRound)


#: A step: its title, and what it runs.
Step = tuple[str, Callable[[Scenario], Awaitable[Finding]]]


async def _pool(items: Iterable[int], work: Callable[[int], Awaitable[None]], size: int) -> None:
    """Run `work` on every item with at most `size` running at once.

    Only creates need it: the library has no bulk create on purpose (a create is not
    idempotent), so its bulk operations cannot do this job.
    """
    pending = iter(items)

    async def worker() -> None:
        for item in pending:
            await work(item)

    async with asyncio.TaskGroup() as group:
        for _ in range(size):
            group.create_task(worker())


async def create_groups(scenario: Scenario) -> Finding:
    """Create the groups through the client; prove the server holds exactly those."""
    server, client = scenario.server, scenario.client
    server.faults = CREATE_FAULTS
    failed = 0
    with scenario.progress("create", scenario.groups) as bar:

        async def create(number: int) -> None:
            nonlocal failed
            try:
                key = await client.groups.create(NewGroup(f"Demo group {number:05d}"))
            except AsyncGroupsError as err:
                failed += 1
                bar.log(f"create failed: {scenario.describe(err)}")
                bar.advance("failed")
            else:
                scenario.created.append(key)
                bar.advance("ok")

        await _pool(range(1, scenario.groups + 1), create, scenario.concurrency)
    held = server.groups
    created = scenario.created
    names = collections.Counter(fields["name"] for fields in held.values())
    return Finding(
        f"created {len(created):,} groups ({failed} failed)",
        [
            Check(
                f"the server holds exactly the {len(created):,} groups the client created",
                set(held) == set(created) and len(held) == len(created),
            ),
            Check("no group was created twice", all(n == 1 for n in names.values())),
        ],
    )


def _with_unknown(scenario: Scenario) -> list[str]:
    """The created keys with some that never existed mixed in (remembered as `unknown`)."""
    scenario.unknown = [
        str(uuid.UUID(int=scenario.rng.getrandbits(128), version=4))
        for _ in range(max(1, len(scenario.created) // UNKNOWN_EVERY))
    ]
    keys = list(scenario.created)
    for key in scenario.unknown:
        keys.insert(scenario.rng.randrange(len(keys) + 1), key)
    return keys


async def read_groups(scenario: Scenario) -> Finding:
    """Read every group plus some keys that never existed; prove every key is accounted for."""
    scenario.server.faults = BULK_FAULTS
    keys = _with_unknown(scenario)
    ok: dict[str, Group] = {}
    missing: list[str] = []
    failed: dict[str, str] = {}
    reads = scenario.client.groups.iter_many(keys, concurrency=scenario.concurrency)
    with scenario.progress("bulk-get", len(keys)) as bar:
        async with contextlib.aclosing(reads) as outcomes:
            async for outcome in outcomes:
                if outcome.error is None and outcome.value is not None:
                    ok[outcome.prokey] = outcome.value
                    bar.advance("ok")
                elif isinstance(outcome.error, NotFoundError):
                    missing.append(outcome.prokey)
                    bar.advance("missing")
                else:
                    failed[outcome.prokey] = scenario.describe(outcome.error or Exception())
                    bar.log(f"failed: {outcome.prokey}: {failed[outcome.prokey]}")
                    bar.advance("failed")
    held = scenario.server.groups
    sets = [set(ok), set(missing), set(failed)]
    unknown = set(scenario.unknown)
    return Finding(
        f"read {len(keys):,} keys: {len(ok):,} ok, {len(missing):,} missing, "
        f"{len(failed):,} failed",
        [
            Check(
                "every key is in exactly one of ok / missing / failed",
                sum(map(len, sets)) == len(keys) and set().union(*sets) == set(keys),
            ),
            Check(
                f"missing are exactly the {len(unknown)} keys that never existed",
                set(missing) <= unknown and unknown <= set(missing) | set(failed),
            ),
            Check(
                "every group read matches the server's copy",
                all(group.name == held[key]["name"] for key, group in ok.items()),
            ),
        ],
    )


async def sync_plan(scenario: Scenario) -> Finding:
    """Plan a declarative sync of a third as many groups; prove planning changed nothing."""
    scenario.server.faults = BULK_FAULTS
    count = max(1, scenario.groups // 3)
    return await scenario.sync.plan_step(
        scenario.server, scenario.client, scenario.workdir, count
    )


async def sync_apply(scenario: Scenario) -> Finding:
    """Apply the plan, creates included, under faults; prove report, state and server agree."""
    return await scenario.sync.apply_step(scenario.server, scenario.client)


async def sync_rerun(scenario: Scenario) -> Finding:
    """Run the same sync again; prove it has nothing left to do and sends nothing."""
    return await scenario.sync.rerun_step(scenario.server, scenario.client)


def faults_seen(server: FakeGroupsServer, since: int = 0) -> collections.Counter[str]:
    """The faults the server's recorded requests met from `since` on, by kind (all 5xx: `5xx`)."""
    seen: collections.Counter[str] = collections.Counter()
    for request in server.requests[since:]:
        label = request.fault
        if label is None or label == "delay":
            continue
        seen["5xx" if label[0] == "5" else label] += 1
    return seen


@attrs.frozen
class StepResult:
    """What one step found, and what it cost: requests, retries, 429 cool-downs, faults."""

    finding: Finding
    requests: int
    retries: int
    cool_downs: int
    faults: collections.Counter[str]
    seconds: float


async def run_step(scenario: Scenario, step: Step) -> StepResult:
    """Run one step and measure it from the client's stats and the server's records."""
    _, run = step
    stats = scenario.client.stats
    first = len(scenario.server.requests)
    requests, retries, cool_downs = stats.requests, stats.retries, stats.cool_downs
    started = time.monotonic()
    finding = await run(scenario)
    return StepResult(
        finding=finding,
        requests=stats.requests - requests,
        retries=stats.retries - retries,
        cool_downs=stats.cool_downs - cool_downs,
        faults=faults_seen(scenario.server, first),
        seconds=time.monotonic() - started,
    )
