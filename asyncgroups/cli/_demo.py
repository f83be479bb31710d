"""demo: a bulk run against a local fake of the API with faults on, and the proof of it.

No account and no network: a FakeGroupsServer on 127.0.0.1 answers. The demo is a
sequence of steps (`STEPS`); each one works through the real client and the same bulk
code as the `bulk-get` / `bulk-delete` commands, then checks what it reported against
what the server holds. Adding a round is adding a step.

Creates run with only the rate limit on: a create is not idempotent, and a reply lost
after the server acted would leave a group the client never heard of. The create step
proves none was duplicated or lost by comparing the server's groups with the keys the
client got back. Reads and deletes then meet 5xx pages, dropped connections, replies
lost after the server acted, and 429s with Retry-After.

The last round is a declarative sync (`asyncgroups.sync`, the `sync` command's code):
plan a desired set, apply it under those same faults (creates included: a sync looks up
a create whose reply was lost instead of sending it again), then run it again and find
nothing left to do.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Final

import attrs

from .. import AsyncGroupsError, Group, GroupsClient, NewGroup, NotFoundError, Outcome, RetryPolicy
from ..testing import FakeGroupsServer, Faults
from ._args import Settings
from ._bulk import delete_journaled, read_many
from ._common import KeyOutcome, describe
from ._exits import FAILED, OK
from ._io import open_output, say
from ._journal import Journal, read_journal
from ._progress import progress_bar
from ._sync import SyncRound

__all__ = ["STEPS", "Check", "Demo", "Finding", "Step", "cmd_demo"]

#: What creates meet: only the rate limit, whose 429 proves the server did not act.
CREATE_FAULTS: Final = Faults(latency=0.001, rate_limit=1200.0, burst=150.0, retry_after=0.1)
#: What reads and deletes meet.
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
#: Quick retries, so the demo spends its time working rather than waiting.
DEMO_RETRY: Final = RetryPolicy(max_attempts=6, backoff_base=0.01, backoff_max=0.2)
#: Keys that never existed, mixed into the read: one per this many groups.
UNKNOWN_EVERY: Final = 100
#: The first delete run is interrupted once this share of its keys is journaled.
INTERRUPT_AT: Final = 0.4

_FAULT_NAMES: Final = {
    "5xx": "5xx pages",
    "reset": "dropped connections",
    "lost_reply": "lost replies",
    "429": "429s",
}


@attrs.frozen
class Check:
    """One claim the demo proves against the server's state."""

    claim: str
    holds: bool


@attrs.define
class Finding:
    """What a step did (one line) and the checks it proved."""

    said: str
    checks: list[Check] = attrs.Factory(list)


@attrs.define
class Demo:
    """The state the steps share: the server, the client, and what earlier steps learned."""

    server: FakeGroupsServer
    client: GroupsClient
    concurrency: int
    groups: int
    rng: random.Random
    workdir: Path
    #: Keys of the groups created, in creation order.
    created: list[str] = attrs.Factory(list)
    #: Keys that never existed, mixed into the read.
    unknown: list[str] = attrs.Factory(list)
    #: The sync round's desired groups, state file, plan and report.
    sync: SyncRound = attrs.Factory(SyncRound)

    @property
    def journal(self) -> str:
        """The bulk-delete journal the delete steps share."""
        return str(self.workdir / "bulk-delete.journal")


#: A step: its title, and what it runs.
Step = tuple[str, Callable[[Demo], Awaitable[Finding]]]


async def _pool(items: Iterable[int], work: Callable[[int], Awaitable[None]], size: int) -> None:
    """Run `work` on every item with at most `size` running at once."""
    pending = iter(items)

    async def worker() -> None:
        for item in pending:
            await work(item)

    async with asyncio.TaskGroup() as group:
        for _ in range(size):
            group.create_task(worker())


async def create_groups(demo: Demo) -> Finding:
    """Create the groups through the client; prove the server holds exactly those."""
    demo.server.faults = CREATE_FAULTS
    failed = 0
    with progress_bar("create", demo.groups) as bar:

        async def create(number: int) -> None:
            nonlocal failed
            try:
                key = await demo.client.groups.create(NewGroup(f"Demo group {number:05d}"))
            except AsyncGroupsError as err:
                failed += 1
                bar.log(f"create failed: {describe(err)}")
                bar.advance("failed")
            else:
                demo.created.append(key)
                bar.advance("ok")

        await _pool(range(1, demo.groups + 1), create, demo.concurrency)
    held = demo.server.groups
    names = collections.Counter(fields["name"] for fields in held.values())
    return Finding(
        f"created {len(demo.created):,} groups ({failed} failed)",
        [
            Check(
                f"the server holds exactly the {len(demo.created):,} groups the client created",
                set(held) == set(demo.created) and len(held) == len(demo.created),
            ),
            Check("no group was created twice", all(n == 1 for n in names.values())),
        ],
    )


async def bulk_get(demo: Demo) -> Finding:
    """Read every group plus some keys that never existed; prove every key is accounted for."""
    demo.server.faults = BULK_FAULTS
    demo.unknown = [
        str(uuid.UUID(int=demo.rng.getrandbits(128), version=4))
        for _ in range(max(1, len(demo.created) // UNKNOWN_EVERY))
    ]
    keys = list(demo.created)
    for key in demo.unknown:
        keys.insert(demo.rng.randrange(len(keys) + 1), key)
    ok: dict[str, Group] = {}
    missing: list[str] = []
    failed: dict[str, str] = {}
    with progress_bar("bulk-get", len(keys)) as bar:

        def report(outcome: Outcome[Group]) -> None:
            if outcome.error is None and outcome.value is not None:
                ok[outcome.prokey] = outcome.value
                bar.advance("ok")
            elif isinstance(outcome.error, NotFoundError):
                missing.append(outcome.prokey)
                bar.advance("missing")
            else:
                failed[outcome.prokey] = describe(outcome.error or Exception())
                bar.log(f"failed: {outcome.prokey}: {failed[outcome.prokey]}")
                bar.advance("failed")

        await read_many(demo.client, keys, concurrency=demo.concurrency, report=report)
    held = demo.server.groups
    sets = [set(ok), set(missing), set(failed)]
    return Finding(
        f"read {len(keys):,} keys: {len(ok):,} ok, {len(missing):,} missing, "
        f"{len(failed):,} failed",
        [
            Check(
                "every key is in exactly one of ok / missing / failed",
                sum(map(len, sets)) == len(keys) and set().union(*sets) == set(keys),
            ),
            Check(
                f"missing are exactly the {len(demo.unknown)} keys that never existed",
                set(missing) <= set(demo.unknown)
                and set(demo.unknown) <= set(missing) | set(failed),
            ),
            Check(
                "every group read matches the server's copy",
                all(group.name == held[key]["name"] for key, group in ok.items()),
            ),
        ],
    )


async def bulk_delete_interrupted(demo: Demo) -> Finding:
    """Start deleting everything, then stop abruptly midway, as Ctrl-C or a crash would."""
    threshold = max(1, int(len(demo.created) * INTERRUPT_AT))
    reached = asyncio.Event()
    with (
        Journal.open(demo.journal) as journal,
        progress_bar("bulk-delete", len(demo.created)) as bar,
    ):

        def report(key: str, kind: KeyOutcome, error: str | None) -> None:
            bar.advance(kind)
            if bar.counts["ok"] + bar.counts["missing"] + bar.counts["failed"] >= threshold:
                reached.set()

        run = asyncio.create_task(
            delete_journaled(
                demo.client, demo.created, journal, concurrency=demo.concurrency, report=report
            )
        )
        stopper = asyncio.create_task(reached.wait())
        await asyncio.wait([run, stopper], return_when=asyncio.FIRST_COMPLETED)
        run.cancel()
        stopper.cancel()
        await asyncio.wait([run, stopper])
    done = read_journal(demo.journal)
    return Finding(
        f"interrupted after {done.records:,} outcomes were journaled ({len(done.done):,} done)",
        [
            Check(
                "the journal kept every outcome reported", done.records == sum(bar.counts.values())
            )
        ],
    )


async def bulk_delete_resumed(demo: Demo) -> Finding:
    """Re-run the delete with the same journal; prove no done key is sent again."""
    before = read_journal(demo.journal).done
    first_request = len(demo.server.requests)
    outcomes: dict[str, KeyOutcome] = {}
    with (
        Journal.open(demo.journal) as journal,
        progress_bar("bulk-delete", len(demo.created)) as bar,
    ):

        def report(key: str, kind: KeyOutcome, error: str | None) -> None:
            outcomes[key] = kind
            if kind == "failed":
                bar.log(f"failed: {key}: {error}")
            bar.advance(kind)

        await delete_journaled(
            demo.client, demo.created, journal, concurrency=demo.concurrency, report=report
        )
    sent = {
        r.path.rsplit("/", 1)[-1]
        for r in demo.server.requests[first_request:]
        if r.method == "DELETE"
    }
    counts = collections.Counter(outcomes.values())
    gone = {key for key, kind in outcomes.items() if kind != "failed"}
    failed = {key for key, kind in outcomes.items() if kind == "failed"}
    held = set(demo.server.groups)
    return Finding(
        f"resumed: {counts['skipped']:,} skipped, {counts['deleted']:,} deleted, "
        f"{counts['missing']:,} missing (already gone: their earlier delete's reply was "
        "lost, or it was in flight at the interruption), "
        f"{counts['failed']:,} failed",
        [
            Check(
                f"the {len(before):,} keys done before were skipped, none sent again",
                {k for k, kind in outcomes.items() if kind == "skipped"} == before
                and not sent & before,
            ),
            Check(
                "every created key ended deleted, missing or failed",
                set(outcomes) == set(demo.created) and gone | failed == set(demo.created),
            ),
            Check("the server holds none of the deleted or missing keys", not held & gone),
            Check("any group left on the server is one whose delete failed", held <= failed),
        ],
    )


def _finding(found: tuple[str, list[tuple[str, bool]]]) -> Finding:
    said, claims = found
    return Finding(said, [Check(claim, holds) for claim, holds in claims])


async def sync_plan(demo: Demo) -> Finding:
    """Plan a declarative sync of a third as many groups; prove planning changed nothing."""
    demo.server.faults = BULK_FAULTS
    count = max(1, demo.groups // 3)
    return _finding(await demo.sync.plan_step(demo.server, demo.client, demo.workdir, count))


async def sync_apply(demo: Demo) -> Finding:
    """Apply the plan, creates included, under faults; prove report, state and server agree."""
    return _finding(await demo.sync.apply_step(demo.server, demo.client))


async def sync_rerun(demo: Demo) -> Finding:
    """Run the same sync again; prove it has nothing left to do and sends nothing."""
    return _finding(await demo.sync.rerun_step(demo.server, demo.client))


#: The demo, in order. Each step sees what the earlier ones left in `Demo`.
STEPS: tuple[Step, ...] = (
    ("create", create_groups),
    ("bulk-get", bulk_get),
    ("bulk-delete, interrupted midway", bulk_delete_interrupted),
    ("bulk-delete, resumed from its journal", bulk_delete_resumed),
    ("sync: plan a desired set of groups", sync_plan),
    ("sync: apply it, creates included, under faults", sync_apply),
    ("sync: run it again", sync_rerun),
)


def _faults_seen(server: FakeGroupsServer, since: int) -> collections.Counter[str]:
    seen: collections.Counter[str] = collections.Counter()
    for request in server.requests[since:]:
        label = request.fault
        if label is None or label == "delay":
            continue
        seen["5xx" if label[0] == "5" else label] += 1
    return seen


async def run_demo(settings: Settings, groups: int, seed: int) -> dict[str, object]:
    """Run every step and report on stderr; return the numbers and whether all checks held."""
    started = time.monotonic()
    steps: list[dict[str, object]] = []
    holds = True
    with tempfile.TemporaryDirectory(prefix="asyncgroups-demo-") as workdir:
        async with (
            FakeGroupsServer(seed=seed) as server,
            GroupsClient(
                server.api_key,
                base_url=server.url,
                timeout=settings.timeout,
                max_connections=settings.concurrency,
                # A local fake needs no pacing (its own 429s are part of the show).
                rate_limit=settings.rate_limit if settings.rate_limit_given else None,
                retry=DEMO_RETRY,
            ) as client,
        ):
            say(f"demo: a fake Groups API on {server.url}, {groups:,} groups, faults on")
            demo = Demo(
                server=server,
                client=client,
                concurrency=settings.concurrency,
                groups=groups,
                rng=random.Random(seed),
                workdir=Path(workdir),
            )
            stats = client.stats
            for number, (title, step) in enumerate(STEPS, start=1):
                say(f"[{number}/{len(STEPS)}] {title}")
                first = len(server.requests)
                requests, retries, cool_downs = stats.requests, stats.retries, stats.cool_downs
                step_started = time.monotonic()
                finding = await step(demo)
                elapsed = time.monotonic() - step_started
                sent = stats.requests - requests
                faults = _faults_seen(server, first)
                say(f"      {finding.said}")
                say(
                    f"      {sent:,} requests, {stats.retries - retries:,} retries, "
                    f"{stats.cool_downs - cool_downs:,} 429 cool-downs, "
                    f"{sent / max(elapsed, 1e-6):,.0f} requests/s, {elapsed:.1f} s"
                )
                if faults:
                    met = ", ".join(f"{n:,} {_FAULT_NAMES.get(k, k)}" for k, n in faults.items())
                    say(f"      faults met: {met}")
                for check in finding.checks:
                    say(f"      {'ok  ' if check.holds else 'FAIL'} {check.claim}")
                    holds = holds and check.holds
                steps.append(
                    {
                        "step": title,
                        "requests": sent,
                        "retries": stats.retries - retries,
                        "cool_downs": stats.cool_downs - cool_downs,
                        "faults": dict(faults),
                        "seconds": round(elapsed, 3),
                        "proof": all(c.holds for c in finding.checks),
                    }
                )
            totals = {
                "requests": stats.requests,
                "retries": stats.retries,
                "cool_downs": stats.cool_downs,
            }
    seconds = time.monotonic() - started
    say(
        f"demo: {totals['requests']:,} requests ({totals['retries']:,} retries, "
        f"{totals['cool_downs']:,} 429 cool-downs) in {seconds:.1f} s, "
        f"{totals['requests'] / max(seconds, 1e-6):,.0f} requests/s; "
        + ("every check held: nothing lost, nothing done twice" if holds else "A CHECK FAILED")
    )
    return {
        "groups": groups,
        **totals,
        "seconds": round(seconds, 3),
        "steps": steps,
        "proof": holds,
    }


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """`demo [--groups N]`: exit 0 when every check held."""
    report = asyncio.run(run_demo(settings, args.groups, args.seed))
    with open_output(None) as out:
        out.write(report)
    return OK if report["proof"] else FAILED
