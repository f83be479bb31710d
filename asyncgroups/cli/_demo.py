"""demo: a bulk run against a local fake of the API with faults on, and the proof of it.

No account and no network: a FakeGroupsServer on 127.0.0.1 answers. The scenario and
its checks are `asyncgroups.testing.scenario`'s (create, read, a declarative sync under
faults, and its re-run); this module adds the two steps that prove the command line's
own bulk-delete journal (a run stopped midway, then resumed without repeating work),
and renders every step on stderr and the totals as one JSON line. Adding a round is
adding a step to `STEPS`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import tempfile
import time
from pathlib import Path
from typing import Final

from .. import AsyncGroupsError, GroupsClient
from ..testing import FakeGroupsServer
from ..testing.scenario import (
    SCENARIO_RETRY,
    Check,
    Finding,
    Scenario,
    Step,
    StepResult,
    create_groups,
    read_groups,
    run_step,
    sync_apply,
    sync_plan,
    sync_rerun,
)
from ._bulk import delete_journaled
from ._common import KeyOutcome, describe
from ._exits import FAILED, OK
from ._io import open_output, say
from ._journal import Journal, read_journal
from ._progress import progress_bar
from ._settings import Settings
from ._signals import run_loop

__all__ = ["STEPS", "cmd_demo", "run_demo"]

#: The first delete run is interrupted once this share of its keys is journaled.
INTERRUPT_AT: Final = 0.4

_FAULT_NAMES: Final = {
    "5xx": "5xx pages",
    "reset": "dropped connections",
    "lost_reply": "lost replies",
    "429": "429s",
}


def _journal(scenario: Scenario) -> str:
    """The bulk-delete journal the delete steps share."""
    return str(scenario.workdir / "bulk-delete.journal")


async def bulk_delete_interrupted(scenario: Scenario) -> Finding:
    """Start deleting everything, then stop abruptly midway, as Ctrl-C or a crash would."""
    threshold = max(1, int(len(scenario.created) * INTERRUPT_AT))
    reached = asyncio.Event()
    with (
        Journal.open(_journal(scenario)) as journal,
        progress_bar("bulk-delete", len(scenario.created)) as bar,
    ):

        def report(key: str, kind: KeyOutcome, error: AsyncGroupsError | None) -> None:
            bar.advance(kind)
            if bar.counts["ok"] + bar.counts["missing"] + bar.counts["failed"] >= threshold:
                reached.set()

        run = asyncio.create_task(
            delete_journaled(
                scenario.client,
                scenario.created,
                journal,
                concurrency=scenario.concurrency,
                report=report,
            )
        )
        stopper = asyncio.create_task(reached.wait())
        await asyncio.wait([run, stopper], return_when=asyncio.FIRST_COMPLETED)
        run.cancel()
        stopper.cancel()
        await asyncio.wait([run, stopper])
    done = read_journal(_journal(scenario))
    return Finding(
        f"interrupted after {done.records:,} outcomes were journaled ({len(done.done):,} done)",
        [
            Check(
                "the journal kept every outcome reported", done.records == sum(bar.counts.values())
            )
        ],
    )


async def bulk_delete_resumed(scenario: Scenario) -> Finding:
    """Re-run the delete with the same journal; prove no done key is sent again."""
    server, created = scenario.server, scenario.created
    before = read_journal(_journal(scenario)).done
    first_request = len(server.requests)
    outcomes: dict[str, KeyOutcome] = {}
    with (
        Journal.open(_journal(scenario)) as journal,
        progress_bar("bulk-delete", len(created)) as bar,
    ):

        def report(key: str, kind: KeyOutcome, error: AsyncGroupsError | None) -> None:
            outcomes[key] = kind
            if error is not None:
                bar.log(f"failed: {key}: {describe(error)}")
            bar.advance(kind)

        await delete_journaled(
            scenario.client, created, journal, concurrency=scenario.concurrency, report=report
        )
    sent = {
        r.path.rsplit("/", 1)[-1] for r in server.requests[first_request:] if r.method == "DELETE"
    }
    counts = collections.Counter(outcomes.values())
    gone = {key for key, kind in outcomes.items() if kind != "failed"}
    failed = {key for key, kind in outcomes.items() if kind == "failed"}
    held = set(server.groups)
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
                set(outcomes) == set(created) and gone | failed == set(created),
            ),
            Check("the server holds none of the deleted or missing keys", not held & gone),
            Check("any group left on the server is one whose delete failed", held <= failed),
        ],
    )


#: The demo, in order. Each step sees what the earlier ones left in the `Scenario`.
STEPS: tuple[Step, ...] = (
    ("create", create_groups),
    ("bulk-get", read_groups),
    ("bulk-delete, interrupted midway", bulk_delete_interrupted),
    ("bulk-delete, resumed from its journal", bulk_delete_resumed),
    ("sync: plan a desired set of groups", sync_plan),
    ("sync: apply it, creates included, under faults", sync_apply),
    ("sync: run it again", sync_rerun),
)


def _client(settings: Settings, server: FakeGroupsServer) -> GroupsClient:
    """The demo's client: the global options, quick retries, and pacing only if asked."""
    return GroupsClient(
        server.api_key,
        base_url=server.url,
        timeout=settings.timeout,
        max_connections=settings.concurrency,
        # A local fake needs no pacing (its own 429s are part of the show).
        rate_limit=settings.rate_limit if settings.rate_limit_given else None,
        retry=SCENARIO_RETRY,
    )


def _show(title: str, result: StepResult) -> dict[str, object]:
    """Say what one step did, what it cost and what it proved; return its JSON record."""
    finding, sent, elapsed = result.finding, result.requests, result.seconds
    say(f"      {finding.said}")
    say(
        f"      {sent:,} requests, {result.retries:,} retries, "
        f"{result.cool_downs:,} 429 cool-downs, "
        f"{sent / max(elapsed, 1e-6):,.0f} requests/s, {elapsed:.1f} s"
    )
    if result.faults:
        met = ", ".join(f"{n:,} {_FAULT_NAMES.get(k, k)}" for k, n in result.faults.items())
        say(f"      faults met: {met}")
    for check in finding.checks:
        say(f"      {'ok  ' if check.holds else 'FAIL'} {check.claim}")
    return {
        "step": title,
        "requests": sent,
        "retries": result.retries,
        "cool_downs": result.cool_downs,
        "faults": dict(result.faults),
        "seconds": round(elapsed, 3),
        "proof": finding.holds,
    }


async def _run_steps(
    settings: Settings, groups: int, seed: int, workdir: Path
) -> tuple[list[dict[str, object]], dict[str, int]]:
    """Run every step against a fresh fake; return their records and the client's totals."""
    async with (
        FakeGroupsServer(seed=seed) as server,
        _client(settings, server) as client,
    ):
        say(f"demo: a fake Groups API on {server.url}, {groups:,} groups, faults on")
        scenario = Scenario(
            server=server,
            client=client,
            concurrency=settings.concurrency,
            groups=groups,
            rng=random.Random(seed),
            workdir=workdir,
            progress=progress_bar,
            describe=describe,
        )
        steps = []
        for number, step in enumerate(STEPS, start=1):
            say(f"[{number}/{len(STEPS)}] {step[0]}")
            steps.append(_show(step[0], await run_step(scenario, step)))
        stats = client.stats
        return steps, {
            "requests": stats.requests,
            "retries": stats.retries,
            "cool_downs": stats.cool_downs,
        }


async def run_demo(settings: Settings, groups: int, seed: int) -> dict[str, object]:
    """Run every step and report on stderr; return the numbers and whether all checks held."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="asyncgroups-demo-") as workdir:
        steps, totals = await _run_steps(settings, groups, seed, Path(workdir))
    holds = all(step["proof"] for step in steps)
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
    report = run_loop(run_demo(settings, args.groups, args.seed))
    with open_output(None) as out:
        out.write(report)
    return OK if report["proof"] else FAILED
