"""SIGTERM, what `docker stop`, systemd and Kubernetes send, ends a run as Ctrl-C does.

Real processes against a slow fake API: the signal arrives mid-run, the command says
how to resume, exits 143 (128 + SIGTERM), and what it leaves on disk (the journal, the
sync state) lets the next run finish with every key done exactly once.
"""

from __future__ import annotations

import asyncio
import collections
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import fake_api, start_python_m

from asyncgroups.testing import FakeGroupsServer, Faults

TERMINATED = "asyncgroups: error: terminated (SIGTERM)"


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeGroupsServer]:
    async with fake_api(monkeypatch) as fake:
        yield fake


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def _terminated(process: asyncio.subprocess.Process) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 143, err.decode()
    assert "Traceback" not in err.decode()
    assert err.decode().splitlines()[-1] == TERMINATED
    return out.decode(), err.decode()


async def test_bulk_delete_sigterm_says_how_to_resume_and_the_rerun_finishes_each_key_once(
    server: FakeGroupsServer, tmp_path: Path
) -> None:
    keys = [server.add_group(f"G{n}") for n in range(40)]
    listing = tmp_path / "keys.txt"
    listing.write_text("\n".join(keys) + "\n")
    journal = tmp_path / "journal.jsonl"
    server.faults = Faults(latency=0.03)
    argv = ["--concurrency", "2", "bulk-delete", "--input", str(listing)]
    argv += ["--journal", str(journal), "--yes"]
    process = await start_python_m(*argv)
    while not journal.exists() or journal.read_text().count("\n") < 4:
        await asyncio.sleep(0.02)

    out, err = await _terminated(process)

    assert err.splitlines()[-2] == (
        f"bulk-delete: interrupted; {journal} keeps every delete that finished: run the same "
        "command again to resume (keys already done are skipped, not sent again)"
    )
    assert out == ""
    before = _lines(journal)
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


async def test_sync_apply_sigterm_says_how_to_resume_and_the_rerun_creates_each_group_once(
    server: FakeGroupsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASYNCGROUPS_RATE_LIMIT", "100000")
    records = [{"key": f"k{n}", "name": f"Group {n}"} for n in range(60)]
    desired = tmp_path / "desired.jsonl"
    desired.write_text("".join(json.dumps(record) + "\n" for record in records))
    argv = ["--concurrency", "4", "sync", "--desired", str(desired)]
    argv += ["--state", str(tmp_path / "s.db"), "--apply", "--yes"]
    server.faults = Faults(latency=0.02)
    process = await start_python_m(*argv)
    while len(server.groups) < 8:
        await asyncio.sleep(0.01)

    out, err = await _terminated(process)

    assert "sync: interrupted;" in err.splitlines()[-2]
    assert "run the same command again to resume" in err.splitlines()[-2]
    done = [json.loads(line) for line in out.splitlines()]
    assert done
    assert {(r["action"], r["outcome"]) for r in done} == {("create", "done")}
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
