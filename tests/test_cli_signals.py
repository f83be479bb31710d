"""SIGTERM, what `docker stop`, systemd and Kubernetes send, ends a run as Ctrl-C does.

Real processes against a slow fake API: the signal arrives mid-run, the command says
how to resume, exits 143 (128 + SIGTERM), prints every outcome it recorded (the
journal, the sync state) and nothing else, and what it leaves on disk lets the next run
finish with every key done exactly once. Also for a process started as a background
job of a script is (`cmd &`: SIGINT ignored, so asyncio has no Ctrl-C handler to lend).
"""

from __future__ import annotations

import asyncio
import collections
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from cli_support import fake_api, start_python_m

from asyncgroups.sync import SyncState
from asyncgroups.testing import FakeGroupsServer, Faults


class _Stop(NamedTuple):
    """How a run is stopped, and how it must end."""

    signum: signal.Signals
    sigint_ignored: bool
    code: int
    last_line: str


_SIGTERM = _Stop(signal.SIGTERM, False, 143, "asyncgroups: error: terminated (SIGTERM)")
_SIGTERM_IN_BACKGROUND = _SIGTERM._replace(sigint_ignored=True)
_CTRL_C = _Stop(signal.SIGINT, False, 130, "asyncgroups: error: interrupted")


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeGroupsServer]:
    async with fake_api(monkeypatch) as fake:
        yield fake


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def _stopped(process: asyncio.subprocess.Process, stop: _Stop) -> tuple[str, str]:
    process.send_signal(stop.signum)
    out, err = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == stop.code, err.decode()
    assert "Traceback" not in err.decode()
    assert "Task exception" not in err.decode()
    assert err.decode().splitlines()[-1] == stop.last_line
    return out.decode(), err.decode()


@pytest.mark.parametrize(
    "stop",
    [_SIGTERM, _SIGTERM_IN_BACKGROUND, _CTRL_C],
    ids=["sigterm", "sigterm-sigint-ignored", "ctrl-c"],
)
async def test_bulk_delete_interrupted_says_how_to_resume_and_the_rerun_finishes_each_key_once(
    server: FakeGroupsServer, tmp_path: Path, stop: _Stop
) -> None:
    keys = [server.add_group(f"G{n}") for n in range(40)]
    listing = tmp_path / "keys.txt"
    listing.write_text("\n".join(keys) + "\n")
    journal = tmp_path / "journal.jsonl"
    server.faults = Faults(latency=0.03)
    argv = ["--concurrency", "2", "bulk-delete", "--input", str(listing)]
    argv += ["--journal", str(journal), "--yes"]
    process = await start_python_m(*argv, sigint_ignored=stop.sigint_ignored)
    while not journal.exists() or journal.read_text().count("\n") < 4:
        await asyncio.sleep(0.02)

    out, err = await _stopped(process, stop)

    assert err.splitlines()[-2] == (
        f"bulk-delete: interrupted; {journal} keeps every delete that finished: run the same "
        "command again to resume (keys already done are skipped, not sent again)"
    )
    before = _lines(journal)
    journaled = collections.Counter(record["outcome"] for record in before)
    (summary,) = [json.loads(line) for line in out.splitlines()]  # the one summary line
    assert summary == {
        "deleted": journaled["deleted"],
        "missing": journaled["missing"],
        "failed": journaled["failed"],
        "skipped": 0,
    }
    done_before = {r["prokey"] for r in before}
    assert 4 <= len(done_before) < len(keys)
    server.faults = Faults()
    server.reset_stats()

    rerun = await start_python_m(*argv)
    out_again, err_again = await asyncio.wait_for(rerun.communicate(), 20)

    assert rerun.returncode == 0, err_again.decode()
    resent = {r.path.rsplit("/", 1)[-1] for r in server.requests if r.method == "DELETE"}
    assert not resent & done_before  # journaled keys are never sent again
    assert server.groups == {}
    outcomes = collections.defaultdict(list)
    for record in _lines(journal):
        outcomes[record["prokey"]].append(record["outcome"])
    assert set(outcomes) == set(keys)
    assert all(kinds.count("deleted") <= 1 for kinds in outcomes.values())
    # At most the deletes in flight at SIGTERM went through unjournaled: a 404 now.
    assert sum(kinds == ["missing"] for kinds in outcomes.values()) <= 2
    summary = json.loads(out_again.decode())
    assert summary["skipped"] == len(done_before)


@pytest.mark.parametrize(
    "stop", [_SIGTERM, _SIGTERM_IN_BACKGROUND], ids=["sigterm", "sigterm-sigint-ignored"]
)
async def test_sync_apply_sigterm_prints_each_item_recorded_and_the_rerun_creates_each_once(
    server: FakeGroupsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: _Stop
) -> None:
    monkeypatch.setenv("ASYNCGROUPS_RATE_LIMIT", "100000")
    records = [{"key": f"k{n}", "name": f"Group {n}"} for n in range(60)]
    desired = tmp_path / "desired.jsonl"
    desired.write_text("".join(json.dumps(record) + "\n" for record in records))
    argv = ["--concurrency", "4", "sync", "--desired", str(desired)]
    state = tmp_path / "s.db"
    argv += ["--state", str(state), "--apply", "--yes"]
    server.faults = Faults(latency=0.02)
    process = await start_python_m(*argv, sigint_ignored=stop.sigint_ignored)
    while len(server.groups) < 8:
        await asyncio.sleep(0.01)

    out, err = await _stopped(process, stop)

    assert "sync: interrupted;" in err.splitlines()[-2]
    assert "run the same command again to resume" in err.splitlines()[-2]
    done = [json.loads(line) for line in out.splitlines()]
    assert done
    assert {(r["action"], r["outcome"]) for r in done} == {("create", "done")}
    with SyncState(state) as recorded:  # each item the state recorded was printed
        assert {r["key"]: r["prokey"] for r in done} == {
            key: row.prokey for key, row in recorded.rows().items()
        }
    await asyncio.sleep(0.05)  # the creates in flight at SIGTERM finish on the server
    server.faults = Faults()

    rerun = await start_python_m(*argv)
    out_again, err_again = await asyncio.wait_for(rerun.communicate(), 20)

    assert rerun.returncode == 0, err_again.decode()
    *rest, summary = [json.loads(line) for line in out_again.decode().splitlines()]
    assert summary["failed"] == 0
    assert not {r["key"] for r in rest} & {r["key"] for r in done}
    names = sorted(group["name"] for group in server.groups.values())
    assert names == sorted(record["name"] for record in records)  # none created twice
