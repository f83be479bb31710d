"""`asyncgroups sync --refresh`, its progress on a terminal, and the summary's time and
requests: driven as a user would, against a FakeGroupsServer."""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from cli_support import cli, fake_api, python_m

from asyncgroups import ClientStats
from asyncgroups.cli._subcommands import REFRESH_MODES
from asyncgroups.sync import Refresh, SyncState
from asyncgroups.testing import FakeGroupsServer, RecordedRequest

LISTING = "/v1/group/all"


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeGroupsServer]:
    async with fake_api(monkeypatch) as fake:
        yield fake


def records(n: int) -> list[dict[str, str]]:
    return [{"key": f"crm-{i}", "name": f"Team {i}", "internal_note": f"n{i}"} for i in range(n)]


def desired_file(tmp_path: Path, rows: list[dict[str, str]]) -> str:
    path = tmp_path / "desired.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def owned_state(server: FakeGroupsServer, tmp_path: Path, rows: list[dict[str, str]]) -> str:
    """A state file owning a group of the fake for each row, as an apply leaves it."""
    path = tmp_path / "s.db"
    with SyncState(path) as state, state.locked():
        for row in rows:
            fields = {f: v for f, v in row.items() if f != "key"}
            state.record(row["key"], server.add_group(**fields), fields, "created")
    return str(path)


def sent(requests: Sequence[RecordedRequest]) -> ClientStats:
    """What the fake received, counted as a client counts what it sends."""
    pages = sum(1 for r in requests if r.method == "GET" and r.path == LISTING)
    reads = sum(1 for r in requests if r.method == "GET" and r.path != LISTING)
    writes = len(requests) - pages - reads
    return ClientStats(requests=len(requests), reads=reads, pages=pages, writes=writes)


def pages(requests: Sequence[RecordedRequest]) -> list[str | None]:
    return [r.query.get("page") for r in requests if r.path == LISTING]


async def test_sync_refresh_listing_plans_an_unchanged_account_of_1700_groups_from_3_pages(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = records(1_700)
    desired, state = desired_file(tmp_path, rows), owned_state(server, tmp_path, rows)

    run = await cli(capsys, "sync", "--desired", desired, "--state", state, "--refresh", "listing")

    assert run.code == 0, run.err
    assert {o["action"] for o in run.objects} == {"unchanged"}
    assert len(run.objects) == 1_700
    # the listing is the proof that the key can read the account: no page more
    assert pages(server.requests) == [None, "2", "3"]
    assert len(server.requests) == 3
    assert re.fullmatch(r"plan made in \d+\.\d s: 3 requests \(3 pages\)", run.err_lines[-1])


@pytest.mark.parametrize(
    ("refresh", "expected"),
    [
        ([], ClientStats(requests=4, reads=3, pages=1)),  # the proof's page, then each group
        (["--refresh", "full"], ClientStats(requests=4, reads=3, pages=1)),
        (["--refresh", "listing"], ClientStats(requests=2, pages=2)),  # its page, and the end
        (["--refresh", "none"], ClientStats(requests=1, pages=1)),  # only the proof
    ],
)
async def test_sync_refresh_decides_what_the_plan_reads(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    refresh: list[str],
    expected: ClientStats,
) -> None:
    rows = records(3)
    desired, state = desired_file(tmp_path, rows), owned_state(server, tmp_path, rows)

    run = await cli(capsys, "sync", "--desired", desired, "--state", state, *refresh)

    assert run.code == 0, run.err
    assert sent(server.requests) == expected
    assert run.err_lines[-1].endswith(f" s: {expected.summary()}")


def test_sync_refresh_offers_exactly_the_modes_of_the_library_default_first() -> None:
    assert tuple(mode.value for mode in Refresh) == REFRESH_MODES
    assert REFRESH_MODES[0] == Refresh.FULL


async def test_sync_refresh_refuses_an_unknown_mode_before_any_request(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    desired = desired_file(tmp_path, records(2))

    run = await cli(capsys, "sync", "--desired", desired, "--state", "s.db", "--refresh", "fast")

    assert run.code == 2
    assert "--refresh" in run.err
    assert "'fast'" in run.err
    assert server.requests == []


async def test_sync_refresh_listing_with_a_refused_key_exits_1_in_one_line(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    desired = desired_file(tmp_path, records(2))
    argv = ["sync", "--desired", desired, "--state", str(tmp_path / "s.db")]

    run = await cli(capsys, "--api-key", "wrong-key", *argv, "--refresh", "listing")

    assert run.code == 1
    [line] = run.err_lines
    assert line.startswith(
        "asyncgroups: error: cannot read the account, so nothing was planned: GET /group/all: 401"
    )
    assert len(server.requests) == 1


async def test_sync_apply_summary_counts_the_time_and_every_request_of_the_run(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = records(4)
    state = owned_state(server, tmp_path, rows)
    rows[1]["internal_note"] = "changed"
    rows.append({"key": "crm-new", "name": "Team new"})
    desired = desired_file(tmp_path, rows)

    run = await cli(capsys, "sync", "--desired", desired, "--state", state, "--apply", "-y")

    assert run.code == 0, run.err
    # the plan's page and 4 reads; the two listings the apply takes before its create
    # (a page each, and the empty one that ends it); the POST and the PATCH
    spent = sent(server.requests)
    assert spent == ClientStats(requests=11, reads=4, pages=1 + 2 * 2, writes=2)
    summary = run.err_lines[-1]
    assert summary.startswith("sync: 1 created, 1 updated, 0 deleted, 3 unchanged")
    assert re.search(r", in \d+\.\d s: 11 requests \(4 reads, 5 pages, 2 writes\)$", summary)


def plan_lines(state: str) -> list[str]:
    """The plan's stdout for the groups `state` owns, all unchanged, as a user sees it."""
    with SyncState(state) as opened:
        rows = opened.rows()
    return [
        json.dumps({"key": key, "action": "unchanged", "prokey": row.prokey})
        for key, row in rows.items()
    ]


async def test_sync_off_a_terminal_adds_nothing_to_stdout_and_draws_no_bar(
    server: FakeGroupsServer, tmp_path: Path
) -> None:
    rows = records(30)
    desired, state = desired_file(tmp_path, rows), owned_state(server, tmp_path, rows)

    planned = await python_m("sync", "--desired", desired, "--state", state)
    applied = await python_m("sync", "--desired", desired, "--state", state, "--apply")

    assert planned.code == 0, planned.err
    assert planned.out.splitlines() == plan_lines(state)
    assert applied.code == 0, applied.err
    assert [json.loads(line) for line in applied.out.splitlines()] == [
        {
            "created": 0,
            "adopted": 0,
            "updated": 0,
            "deleted": 0,
            "unchanged": 30,
            "blocked": 0,
            "kept": 0,
            "failed": 0,
            "waiting": 0,
            "updates_sent": 0,
            "estimated_credits": 0,
        }
    ]
    for run in (planned, applied):
        assert "\r" not in run.err
        assert "\x1b" not in run.err
        assert "reading" not in run.err
    assert len(planned.err_lines) == 2  # the plan's summary, and what it cost


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, so the command draws its bars on it."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("mode", ["--plan", "--apply"])
async def test_sync_on_a_terminal_shows_the_progress_of_the_plans_reads(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    mode: str,
) -> None:
    rows = records(30)
    desired, state = desired_file(tmp_path, rows), owned_state(server, tmp_path, rows)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    run = await cli(capsys, "sync", "--desired", desired, "--state", state, mode)

    assert run.code == 0, terminal.getvalue()
    drawn = terminal.getvalue()
    assert "reading groups" in drawn
    assert "30/30" in drawn
    if mode == "--plan":  # stdout still holds the plan, and nothing of the bar
        assert run.out.splitlines() == plan_lines(state)
    assert "reading" not in run.out


async def test_sync_on_a_terminal_draws_no_read_bar_for_a_plan_that_reads_no_group(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    rows = records(5)
    desired, state = desired_file(tmp_path, rows), owned_state(server, tmp_path, rows)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    run = await cli(
        capsys, "sync", "--desired", desired, "--state", state, "--refresh", "listing"
    )

    assert run.code == 0, terminal.getvalue()
    assert "reading groups" not in terminal.getvalue()
