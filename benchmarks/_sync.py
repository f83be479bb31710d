"""What sync costs an account: the requests of each kind of run, and their time at 80/s.

Against the service every request spends one eightieth of the account's second, so a
sync's cost is its requests: at the default (and documented) rate limit of 80 a second
the wall time of a large run is requests / 80, whatever the machine. Measured for N
groups (10,000; `--requests` overrides, `--quick` 300) against the testing kit's
`FakeGroupsServer` in this process, unpaced (`rate_limit=None`, so the whole measure
takes seconds), through the library's `plan` and `apply` on one client:

- a first apply (every group created);
- a no-op re-run in each refresh mode (`full`, `listing`, `none`);
- a change of 1% of the records (their `internal_note`) in each refresh mode.

Each row holds what the client sent (`ClientStats`: reads of one group, pages of the
listing, writes), the time those requests take at 80/s, and the wall time measured
here against the unpaced fake (client and fake share this process). The command
(`asyncgroups sync`) sends one request more in the `full` and `none` modes: the page
that proves the key can read the account.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

#: Groups of the full measure.
GROUPS: Final = 10_000
#: Groups of a `--quick` run.
QUICK_GROUPS: Final = 300
#: The API's documented rate limit, and the client's default: requests a second.
RATE: Final = 80.0
#: The refresh modes, in the order the table shows them.
MODES: Final = ("full", "listing", "none")


def _desired(n: int, notes: dict[int, str] | None = None) -> list[Any]:
    """N records; `notes` replaces the note of some of them (a change since last time)."""
    from asyncgroups.sync import DesiredGroup

    notes = notes or {}
    return [
        DesiredGroup(f"id-{i}", f"Group {i}", internal_note=notes.get(i, f"note {i}"))
        for i in range(n)
    ]


def _steps(n: int) -> list[tuple[str, str, list[Any]]]:
    """(run, refresh mode, desired records) of every run, in order. Each 1% change
    changes records no earlier run changed, and keeps the earlier changes."""
    share = max(1, n // 100)
    steps = [("first apply", "full", _desired(n))]
    steps += [("no-op re-run", mode, _desired(n)) for mode in MODES]
    notes: dict[int, str] = {}
    for number, mode in enumerate(MODES):
        notes.update((i, f"changed ({mode})") for i in range(number * share, (number + 1) * share))
        steps.append(("1% changed", mode, _desired(n, dict(notes))))
    return steps


async def _runs(n: int, state_path: Path, say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every run, in order, each against the account the run before it left."""
    from asyncgroups import ClientStats, GroupsClient
    from asyncgroups.sync import SyncState, apply, plan
    from asyncgroups.testing import FakeGroupsServer

    rows: list[dict[str, Any]] = []
    async with FakeGroupsServer(record=False) as server:
        client = GroupsClient(server.api_key, base_url=server.url, rate_limit=None)
        async with client:
            with SyncState(state_path) as state:
                for run, mode, desired in _steps(n):
                    before = ClientStats() + client.stats
                    started = time.perf_counter()
                    the_plan = await plan(client, desired, state, refresh=mode)
                    report = await apply(client, the_plan, state)
                    wall = time.perf_counter() - started
                    if not report.ok:
                        raise RuntimeError(f"{run} ({mode}): {len(report.failed)} item(s) failed")
                    sent = client.stats - before
                    rows.append(_row(run, mode, sent, wall, report.updates_sent))
                    say(f"  sync {run}, refresh {mode}: {sent.summary()}, {wall:.1f} s unpaced")
    return rows


def _row(run: str, mode: str, sent: Any, wall: float, updates: int) -> dict[str, Any]:
    return {
        "run": run,
        "refresh": mode,
        "requests": sent.requests,
        "reads": sent.reads,
        "pages": sent.pages,
        "writes": sent.writes,
        "updates": updates,
        "seconds_at_80_per_s": sent.requests / RATE,
        "measured_seconds": wall,
    }


def measure(*, quick: bool, groups: int | None, say: Callable[[str], None]) -> dict[str, Any]:
    """Run every step; the summary the results file keeps under `sync`."""
    n = groups or (QUICK_GROUPS if quick else GROUPS)
    with tempfile.TemporaryDirectory(prefix="asyncgroups-bench-sync-") as tmp:
        rows = asyncio.run(_runs(n, Path(tmp) / "sync.db", say))
    return {"groups": n, "rate": RATE, "runs": rows}


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def table(summary: dict[str, Any] | None) -> str:
    """The Markdown table of the printed report (the Performance page's, too)."""
    if summary is None:
        return ""
    if "error" in summary:
        return f"\nsync: FAILED: {summary['error']}"
    lines = [
        "",
        f"sync of {summary['groups']:,} groups (library plan + apply; the command adds one "
        "page in full and none modes):",
        "",
        "| run | refresh | requests | reads | pages | writes | at 80/s | measured, unpaced fake |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary["runs"]:
        lines.append(
            f"| {row['run']} | {row['refresh']} | {row['requests']:,} | {row['reads']:,} | "
            f"{row['pages']:,} | {row['writes']:,} | {_duration(row['seconds_at_80_per_s'])} | "
            f"{row['measured_seconds']:.1f} s |"
        )
    return "\n".join(lines)
