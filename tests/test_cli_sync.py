"""`asyncgroups sync`, driven as a user would, against a FakeGroupsServer."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import cli, fake_api, start_python_m

from asyncgroups.cli._sync import question
from asyncgroups.sync import Action, SyncState
from asyncgroups.testing import FakeGroupsServer, Faults

CAL = "https://example.com/team.ics"
#: A rate limit that subprocess runs against the local fake never reach.
UNLIMITED = "100000"


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeGroupsServer]:
    async with fake_api(monkeypatch) as fake:
        yield fake


class _Terminal(io.StringIO):
    """A stdin that says it is a terminal, with the user's answer typed in."""

    def isatty(self) -> bool:
        return True


def desired_file(tmp_path: Path, *records: dict[str, Any]) -> Path:
    path = tmp_path / "desired.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


RECORDS = [
    {"key": "crm-1", "name": "Team A", "internal_note": "a"},
    {"key": "crm-2", "name": "Team B", "subscription": "external", "subscription_cal_url": CAL},
    {"key": 3, "name": "Team C", "status": "draft"},
]


def writes(server: FakeGroupsServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in server.requests if r.method != "GET"]


async def test_sync_plan_prints_json_lines_and_a_summary_and_changes_nothing(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    desired = desired_file(tmp_path, *RECORDS)

    run = await cli(capsys, "sync", "--desired", str(desired), "--state", str(tmp_path / "s.db"))

    assert run.code == 0, run.err
    assert [(o["key"], o["action"]) for o in run.objects] == [
        ("crm-1", "create"),
        ("crm-2", "create"),
        ("3", "create"),
    ]
    assert run.objects[2]["fields"] == {"name": "Team C", "status": "draft"}
    plan_summary, cost = run.err_lines
    assert plan_summary == (
        "plan: 3 to create, 0 to update, 0 to delete, 0 unchanged, 0 blocked; "
        "1 update(s), estimated 0 event credits"
    )
    assert cost.startswith("plan made in ")
    assert cost.endswith(" s: 1 request (1 page)")
    # an empty state owns nothing to read: the plan only lists the account, to prove it can
    assert {(r.method, r.path) for r in server.requests} == {("GET", "/v1/group/all")}
    assert server.groups == {}
    assert list(tmp_path.iterdir()) == [desired]  # not even the state file was created


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("state_known", [False, True])
async def test_sync_plan_with_a_refused_key_exits_1_in_one_line(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path, state_known: bool
) -> None:
    desired = desired_file(tmp_path, *RECORDS)
    state = tmp_path / "s.db"
    if state_known:
        applied = await cli(
            capsys, "sync", "--desired", str(desired), "--state", str(state), "--apply", "-y"
        )
        assert applied.code == 0, applied.err

    run = await cli(
        capsys, "--api-key", "wrong-key", "sync", "--desired", str(desired), "--state", str(state)
    )

    assert run.code == 1
    assert run.out == ""
    [line] = run.err_lines
    assert line.startswith(
        "asyncgroups: error: cannot read the account, so nothing was planned: GET /group/all: 401"
    )
    assert "API key was not accepted" in line
    assert "wrong-key" not in line
    assert state.exists() is state_known  # a plan still creates no state file


async def test_sync_plan_against_an_unreachable_api_exits_1_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ASYNCGROUPS_BASE_URL", f"http://127.0.0.1:{closed_port()}/v1")
    monkeypatch.setenv("ASYNCGROUPS_API_KEY", "k")
    desired = desired_file(tmp_path, *RECORDS)

    run = await cli(capsys, "sync", "--desired", str(desired), "--state", str(tmp_path / "s"))

    assert run.code == 1
    assert run.out == ""
    [line] = run.err_lines
    assert line.startswith("asyncgroups: error: cannot read the account, so nothing was planned: ")


async def test_sync_apply_with_a_refused_key_fails_before_asking_and_writes_nothing(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    desired = desired_file(tmp_path, *RECORDS)
    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))

    run = await cli(
        capsys,
        *("--api-key", "wrong-key", "sync", "--desired", str(desired)),
        *("--state", str(tmp_path / "s"), "--apply"),
    )

    assert run.code == 1
    [line] = run.err_lines
    assert "cannot read the account, so nothing was planned" in line
    assert "[y/N]" not in run.err
    assert writes(server) == []


async def test_sync_apply_yes_creates_and_a_second_run_sends_no_write(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    desired = desired_file(tmp_path, *RECORDS)
    state = str(tmp_path / "s.db")

    run = await cli(capsys, "sync", "--desired", str(desired), "--state", state, "--apply", "-y")

    assert run.code == 0, run.err
    *items, summary = run.objects
    assert [(i["key"], i["action"], i["outcome"]) for i in items] == [
        ("crm-1", "create", "done"),
        ("crm-2", "create", "done"),
        ("3", "create", "done"),
    ]
    assert {i["prokey"] for i in items} == set(server.groups)
    assert summary["created"] == 3
    assert summary["failed"] == 0
    assert summary["updates_sent"] == 1  # the draft's status, which a create cannot carry
    assert run.err_lines[-1].startswith("sync: 3 created, 0 updated, 0 deleted, 0 unchanged")
    sent = writes(server)

    again = await cli(capsys, "sync", "--desired", str(desired), "--state", state, "--apply")

    assert again.code == 0, again.err  # nothing to change: nothing to ask either
    assert again.objects == [
        {
            "created": 0,
            "adopted": 0,
            "updated": 0,
            "deleted": 0,
            "unchanged": 3,
            "blocked": 0,
            "kept": 0,
            "failed": 0,
            "waiting": 0,
            "updates_sent": 0,
            "estimated_credits": 0,
        }
    ]
    assert writes(server) == sent


async def test_sync_apply_without_yes_refuses_when_stdin_is_not_a_terminal(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    desired = desired_file(tmp_path, *RECORDS)

    run = await cli(
        capsys, "sync", "--desired", str(desired), "--state", str(tmp_path / "s"), "--apply"
    )

    assert run.code == 2
    assert run.err_lines[-1] == (
        "asyncgroups: error: refusing to apply the plan without --yes: stdin is not a "
        "terminal to ask on"
    )
    assert server.groups == {}
    assert writes(server) == []


URL = "https://api.example.com/v1"


@pytest.mark.parametrize(
    ("counts", "credits", "asked"),
    [
        (
            {Action.CREATE: 3},
            0,
            f"Apply to the account at {URL}: 3 creates, for an estimated 0 event credits?",
        ),
        (
            {Action.UPDATE: 1, Action.DELETE: 1},
            1,
            f"Apply to the account at {URL}: 1 update, 1 delete (deleting a group deletes "
            "every event linked to it), for an estimated 1 event credit?",
        ),
        (
            {Action.CREATE: 1, Action.ADOPT: 2, Action.UPDATE: 1200, Action.DELETE: 2},
            240,
            f"Apply to the account at {URL}: 1 create, 2 adoptions, 1,200 updates, 2 deletes "
            "(deleting a group deletes every event linked to it), for an estimated 240 event "
            "credits?",
        ),
    ],
)
def test_sync_question_names_the_account_each_change_and_what_a_delete_takes(
    counts: dict[Action, int], credits: int, asked: str
) -> None:
    assert question(counts, credits, URL) == asked


@pytest.mark.parametrize(
    ("answer", "code", "created", "last"),
    [
        ("y\n", 0, 1, "sync: 1 created"),
        ("\n", 1, 0, "asyncgroups: error: not confirmed: nothing was changed"),
    ],
)
async def test_sync_apply_asks_on_a_terminal_naming_the_changes_and_credits(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    answer: str,
    code: int,
    created: int,
    last: str,
) -> None:
    desired = desired_file(tmp_path, {"key": "k", "name": "Team"})
    monkeypatch.setattr(sys, "stdin", _Terminal(answer))

    run = await cli(
        capsys, "sync", "--desired", str(desired), "--state", str(tmp_path / "s"), "--apply"
    )

    assert run.code == code
    question = f"Apply to the account at {server.url}: 1 create, for an estimated 0 event credits?"
    assert f"{question} [y/N] " in run.err
    assert len(server.groups) == created
    assert last in run.err_lines[-1]


async def test_sync_invalid_desired_names_line_and_field_and_sends_nothing(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    desired = desired_file(
        tmp_path,
        {"key": "a", "name": "A"},
        {"key": "b", "name": "B", "subscription_cal_url": "ftp://nope"},
        {"key": "a", "name": "A again"},
    )

    run = await cli(
        capsys, "sync", "--desired", str(desired), "--state", str(tmp_path / "s"), "--apply", "-y"
    )

    assert run.code == 2
    assert run.err_lines[0].startswith(f"invalid: {desired}:2: field 'subscription_cal_url': ")
    assert run.err_lines[1] == (
        f"invalid: {desired}:3: field 'key': duplicate key 'a' (first at {desired}:1)"
    )
    assert run.err_lines[2] == (
        f"asyncgroups: error: 2 problem(s) in the desired groups of {desired}; nothing was sent"
    )
    assert server.requests == []
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("mode", [(), ("--plan",), ("--apply", "--yes")])
@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"key": "b", "name": "Team B", "internal_note": "cut \ud83d"}, "internal_note"),
        ({"key": "b", "name": "Team B "}, "name"),
    ],
)
async def test_sync_refuses_one_record_it_cannot_send_as_it_is_before_sending_anything(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    mode: tuple[str, ...],
    bad: dict[str, str],
    field: str,
) -> None:
    # json.dumps writes the lone surrogate as the escape "\ud83d", as a cut string would be.
    desired = desired_file(tmp_path, RECORDS[0], bad, RECORDS[2])

    run = await cli(
        capsys, "sync", "--desired", str(desired), "--state", str(tmp_path / "s"), *mode
    )

    assert run.code == 2
    [problem, error] = run.err_lines
    assert problem.startswith(f"invalid: {desired}:2: field {field!r}: ")
    assert error == (
        f"asyncgroups: error: 1 problem(s) in the desired groups of {desired}; nothing was sent"
    )
    assert server.requests == []
    assert run.out == ""


async def test_sync_reads_the_desired_groups_from_stdin(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(RECORDS[0]) + "\n"))

    run = await cli(
        capsys, "sync", "--desired", "-", "--state", str(tmp_path / "s"), "--apply", "--yes"
    )

    assert run.code == 0, run.err
    assert [g["name"] for g in server.groups.values()] == ["Team A"]


async def test_sync_from_stdin_needs_yes_to_apply(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(RECORDS[0]) + "\n"))

    run = await cli(capsys, "sync", "--desired", "-", "--state", str(tmp_path / "s"), "--apply")

    assert run.code == 2
    assert "the desired groups come from stdin" in run.err
    assert server.requests == []


async def test_sync_prune_and_blocked_items_are_reported(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = str(tmp_path / "s.db")
    first = desired_file(tmp_path, *RECORDS[:2])
    assert (
        await cli(capsys, "sync", "--desired", str(first), "--state", state, "--apply", "-y")
    ).code == 0
    with SyncState(state) as sync_state:
        rows = sync_state.rows()
    server.link_event(rows["crm-1"].prokey)
    by_hand = server.add_group("Made by hand")
    second = desired_file(
        tmp_path,
        {"key": "crm-1", "name": "Team A", "subscription": "external", "subscription_cal_url": CAL},
    )

    run = await cli(
        capsys, "sync", "--desired", str(second), "--state", state, "--prune", "--apply", "-y"
    )

    assert run.code == 0, run.err
    *items, summary = run.objects
    assert [(i["key"], i["action"], i["outcome"]) for i in items] == [
        ("crm-2", "delete", "done"),  # work as it ends, then what was skipped
        ("crm-1", "blocked", "skipped"),
    ]
    assert summary["blocked"] == 1
    assert summary["deleted"] == 1
    assert any(
        line.startswith("blocked: crm-1: the subscription cannot change") for line in run.err_lines
    )
    assert set(server.groups) == {rows["crm-1"].prokey, by_hand}


async def test_sync_failed_item_exits_1_and_says_why(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    desired = desired_file(tmp_path, *RECORDS[:2])
    server.inject(method="POST", status=400, body={"message": "Name not allowed"})

    run = await cli(
        capsys, "sync", "--desired", str(desired), "--state", str(tmp_path / "s"), "--apply", "-y"
    )

    assert run.code == 1
    assert any(
        line.startswith("failed: crm-1: ") and "Name not allowed" in line for line in run.err_lines
    )
    *items, summary = run.objects
    assert items[0]["outcome"] == "failed"
    assert items[0]["error_type"] == "BadRequestError"
    assert summary["failed"] == 1
    assert summary["created"] == 1


async def test_sync_create_that_may_still_land_exits_75_saying_when_to_run_again(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The service makes the group 0.6 s after the POST; the command gives up after 0.2 s.
    desired = desired_file(tmp_path, *RECORDS[:2])
    server.inject(method="POST", delay=0.6, times=1)
    argv = ["sync", "--desired", str(desired), "--state", str(tmp_path / "s.db"), "--apply"]

    run = await cli(capsys, *argv, "-y", "--timeout", "0.2")
    again = await cli(capsys, *argv, "-y", "--timeout", "0.2")  # a retry loop, at once

    for each in (run, again):
        assert each.code == 75, each.err
        waiting = [o for o in each.objects if o.get("outcome") == "waiting"]
        assert [o["key"] for o in waiting] == ["crm-1"]
        assert "may still land" in waiting[0]["note"]
        assert each.objects[-1]["waiting"] == 1
        assert each.objects[-1]["failed"] == 0
        assert f"1 waiting (run again after {waiting[0]['decide_after']})" in each.err_lines[-1]
        assert not any(line.startswith("failed:") for line in each.err_lines)
    assert [r.body["name"] for r in server.requests if r.method == "POST"] == ["Team A", "Team B"]


async def test_sync_apply_refuses_while_another_apply_holds_the_state(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    desired = desired_file(tmp_path, *RECORDS)
    state = tmp_path / "s.db"
    with SyncState(state) as other, other.locked():
        run = await cli(
            capsys, "sync", "--desired", str(desired), "--state", str(state), "--apply", "-y"
        )
        plan = await cli(capsys, "sync", "--desired", str(desired), "--state", str(state))

    assert run.code == 1
    [line] = run.err_lines
    assert line.startswith(
        f"asyncgroups: error: the state file {state} is in use by another apply "
        f"(pid {os.getpid()} on "
    )
    assert line.endswith("there is nothing to clean up.)")
    assert writes(server) == []
    assert plan.code == 0  # planning reads only, so it needs no lock


async def test_sync_bad_state_file_is_a_usage_error(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    desired = desired_file(tmp_path, *RECORDS)
    state = tmp_path / "notes.txt"
    state.write_text("not a database " * 200)

    run = await cli(capsys, "sync", "--desired", str(desired), "--state", str(state))

    assert run.code == 2
    assert "is not a usable state file" in run.err
    assert server.requests == []


async def test_sync_ctrl_c_exits_130_printing_what_it_did_and_the_next_run_resumes(
    server: FakeGroupsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASYNCGROUPS_RATE_LIMIT", UNLIMITED)
    records = [{"key": f"k{n}", "name": f"Group {n}"} for n in range(60)]
    desired = desired_file(tmp_path, *records)
    state = str(tmp_path / "s.db")
    server.faults = Faults(latency=0.02)
    argv = [
        "--concurrency",
        "4",
        "sync",
        "--desired",
        str(desired),
        "--state",
        state,
        "--apply",
        "-y",
    ]
    process = await start_python_m(*argv)
    while len(server.groups) < 8:
        await asyncio.sleep(0.01)
    process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), 10)

    assert process.returncode == 130, err.decode()
    lines = err.decode().splitlines()
    assert lines[-1] == "asyncgroups: error: interrupted"
    assert "run the same command again to resume" in lines[-2]
    assert "Traceback" not in err.decode()
    await asyncio.sleep(0.05)  # the requests in flight at Ctrl-C finish on the server
    assert len(server.groups) < len(records)
    # every create that finished before Ctrl-C is on stdout, as the state has it
    done = [json.loads(line) for line in out.decode().splitlines()]
    assert done
    assert {(r["action"], r["outcome"]) for r in done} == {("create", "done")}
    with SyncState(state) as sync_state:
        rows = sync_state.rows()
    assert all(rows[r["key"]].prokey == r["prokey"] for r in done)

    server.faults = Faults()
    resumed = await start_python_m(*argv)
    out, err = await asyncio.wait_for(resumed.communicate(), 20)
    assert resumed.returncode == 0, err.decode()
    *rest, summary = [json.loads(line) for line in out.decode().splitlines()]
    assert summary["failed"] == 0
    assert not {r["key"] for r in rest} & {r["key"] for r in done}  # each change shown once
    names = sorted(g["name"] for g in server.groups.values())
    assert names == sorted(r["name"] for r in records)  # each once: nothing created twice


async def test_sync_apply_streams_each_result_while_it_runs(
    server: FakeGroupsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASYNCGROUPS_RATE_LIMIT", UNLIMITED)
    records = [{"key": f"k{n}", "name": f"Group {n}"} for n in range(40)]
    desired = desired_file(tmp_path, *records)
    server.faults = Faults(latency=0.05)
    process = await start_python_m(
        *("--concurrency", "2", "sync", "--desired", str(desired)),
        *("--state", str(tmp_path / "s.db"), "--apply", "-y"),
    )
    assert process.stdout is not None
    try:
        first = json.loads(await asyncio.wait_for(process.stdout.readline(), 20))
        created_by_then = len(server.groups)
    finally:
        out, err = await asyncio.wait_for(process.communicate(), 20)

    assert process.returncode == 0, err.decode()
    assert (first["action"], first["outcome"]) == ("create", "done")
    assert first["prokey"] in server.groups
    assert created_by_then < len(records)  # the line came while most work was still ahead
    assert json.loads(out.decode().splitlines()[-1])["created"] == len(records)


async def test_demo_ends_with_a_sync_round_whose_checks_hold(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = await cli(capsys, "demo", "--groups", "150")

    assert run.code == 0, run.err
    [report] = run.objects
    steps = {step["step"]: step for step in report["steps"]}
    sync_steps = [name for name in steps if name.startswith("sync: ")]
    assert sync_steps == [
        "sync: plan a desired set of groups",
        "sync: apply it, creates included, under faults",
        "sync: run it again",
    ]
    assert all(steps[name]["proof"] for name in sync_steps)
    rerun = run.err[run.err.index("[7/7] sync: run it again") :]
    assert "ok   the re-run ended with every item done" in rerun
    # The faults (a 502, a connection dropped) leave a few creates that may still land:
    # the re-run decides them past their landing window, and says so.
    # How many depends on which requests the faults met in flight, not only on the seed.
    finished = re.search(r"ok   the re-run only finished the (\d+) item\(s\)", rerun)
    assert finished is not None, rerun
    decided = re.search(r"(\d+) create\(s\) that may still have landed decided after", rerun)
    assert int(decided[1] if decided else 0) <= int(finished[1]), rerun


async def test_sync_apply_refuses_while_another_apply_holds_the_state_through_a_link(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    desired = desired_file(tmp_path, *RECORDS)
    state = tmp_path / "jobs" / "groups.sync.db"
    state.parent.mkdir()
    SyncState(state).close()
    hard = tmp_path / "groups.sync.db"
    os.link(state, hard)
    with SyncState(state) as other, other.locked():
        run = await cli(
            capsys, "sync", "--desired", str(desired), "--state", str(hard), "--apply", "-y"
        )

    assert run.code == 1
    [line] = run.err_lines
    assert f"the state file {hard} is in use by another apply (pid {os.getpid()} on " in line
    assert writes(server) == []


async def test_sync_state_of_another_account_is_one_line_exit_2_and_nothing_is_sent(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    desired = desired_file(tmp_path, *RECORDS)
    state = str(tmp_path / "s.db")
    applied = await cli(
        capsys, "sync", "--desired", str(desired), "--state", state, "--apply", "-y"
    )
    assert applied.code == 0, applied.err
    async with FakeGroupsServer(api_key=server.api_key) as staging:
        monkeypatch.setenv("ASYNCGROUPS_BASE_URL", staging.url)
        for mode in ("--plan", "--apply"):
            run = await cli(capsys, "sync", "--desired", str(desired), "--state", state, mode, "-y")
            assert run.code == 2
            assert run.err_lines == [
                f"asyncgroups: error: the state file {state} belongs to the account at "
                f"{server.url}, not {staging.url}: give --state a new file for that account "
                "(one state file per account), or rebind this one if the account itself "
                f"moved to {staging.url} (--rebind-state, with --apply)"
            ]
        assert staging.requests == []

        plan_only = await cli(
            capsys, "sync", "--desired", str(desired), "--state", state, "--rebind-state"
        )
        assert plan_only.code == 2
        assert "goes with --apply" in plan_only.err

        moved = await cli(
            capsys,
            *("sync", "--desired", str(desired), "--state", state),
            *("--apply", "-y", "--rebind-state"),
        )
        assert moved.code == 0, moved.err
        assert moved.err_lines[0] == (
            f"sync: {state} now belongs to the account at {staging.url} (was {server.url})"
        )
        assert len(staging.groups) == 3  # an empty account: the state's groups made there
    with SyncState(state) as again:
        assert again.base_url == staging.url
