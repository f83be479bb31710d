"""`asyncgroups sync` refuses what would wipe an account, and says a credit shortage
once: driven as a user would, against a FakeGroupsServer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cli_support import cli, fake_api, python_m

from asyncgroups.sync import SyncState
from asyncgroups.testing import FakeGroupsServer


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeGroupsServer]:
    async with fake_api(monkeypatch) as fake:
        yield fake


def records(n: int, *, name: str = "Team") -> list[dict[str, str]]:
    return [{"key": f"crm-{i}", "name": f"{name} {i}"} for i in range(n)]


def desired_file(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def writes(server: FakeGroupsServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in server.requests if r.method != "GET"]


async def owning(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path, n: int
) -> str:
    """A state file that owns `n` groups ("Team 0" …); the fake's records are cleared."""
    state = str(tmp_path / "s.db")
    first = desired_file(tmp_path / "first.jsonl", records(n))
    run = await cli(capsys, "sync", "--desired", str(first), "--state", state, "--apply", "-y")
    assert run.code == 0, run.err
    server.reset_stats()
    return state


async def test_sync_empty_stdin_with_prune_is_refused_in_one_line_and_sends_nothing(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = await owning(server, capsys, tmp_path, 12)

    # `true | asyncgroups sync --desired - --prune --apply --yes`
    run = await python_m(
        "sync", "--desired", "-", "--state", state, "--prune", "--apply", "--yes", stdin=b""
    )

    assert run.code == 2, run.err
    assert run.err_lines == [
        "asyncgroups: error: refusing to apply: the plan deletes 12 groups, and every event "
        "linked to them, more than the 0 allowed (the desired set is empty); check the "
        "desired groups, or pass --max-deletes 12 if these deletes are meant; nothing was sent"
    ]
    assert run.out == ""
    assert writes(server) == []
    assert len(server.groups) == 12


async def test_sync_cut_short_desired_set_is_refused_without_its_creates(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = await owning(server, capsys, tmp_path, 30)
    cut_short = [*records(5, name="Renamed"), {"key": "new", "name": "New"}]
    short = desired_file(tmp_path / "short.jsonl", cut_short)
    argv = ("sync", "--desired", str(short), "--state", state, "--prune")

    run = await cli(capsys, *argv, "--apply", "-y")

    assert run.code == 2
    (line,) = run.err_lines
    assert "the plan deletes 25 groups" in line
    assert "more than the 10 allowed (by default, max(10, 10% of the 30 owned groups))" in line
    assert "--max-deletes 25" in line
    assert writes(server) == []

    refused = await cli(capsys, *argv, "--max-deletes", "24", "--apply", "-y")
    assert refused.code == 2
    assert "more than the 24 allowed (by --max-deletes)" in refused.err
    assert writes(server) == []

    run = await cli(capsys, *argv, "--max-deletes", "25", "--apply", "-y")
    assert run.code == 0, run.err
    assert run.objects[-1]["deleted"] == 25
    assert run.objects[-1]["created"] == 1
    assert len(server.groups) == 6


async def test_sync_plan_shows_the_deletes_and_that_apply_would_refuse_them(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = await owning(server, capsys, tmp_path, 12)
    empty = desired_file(tmp_path / "empty.jsonl", [])

    run = await cli(capsys, "sync", "--desired", str(empty), "--state", state, "--prune")

    assert run.code == 0, run.err
    assert [o["action"] for o in run.objects] == ["delete"] * 12
    assert run.err_lines[-1] == (
        "--apply would refuse this plan: the plan deletes 12 groups, and every event linked "
        "to them, more than the 0 allowed (the desired set is empty); check the desired "
        "groups, or pass --max-deletes 12 if these deletes are meant"
    )
    allowed = await cli(
        capsys, "sync", "--desired", str(empty), "--state", state, "--prune", "--max-deletes", "12"
    )
    assert "would refuse" not in allowed.err
    assert writes(server) == []


@pytest.mark.parametrize("bad", ["-1", "ten", "2.5"])
async def test_sync_max_deletes_must_be_a_whole_number(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path, bad: str
) -> None:
    empty = desired_file(tmp_path / "empty.jsonl", [])
    run = await cli(
        capsys, "sync", "--desired", str(empty), "--state", str(tmp_path / "s.db"),
        "--max-deletes", bad, "--apply", "-y",
    )  # fmt: skip
    assert run.code == 2
    (line,) = run.err_lines
    assert line.startswith("asyncgroups: error: argument --max-deletes: expected a")
    assert server.requests == []


async def test_sync_every_owned_group_gone_is_refused_unless_allow_vanished(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = await owning(server, capsys, tmp_path, 6)
    with SyncState(state) as sync_state:
        prokeys = [row.prokey for row in sync_state.rows().values()]
    for prokey in prokeys:  # the state now reads as another account's
        assert (await cli(capsys, "delete", prokey, "--yes")).code == 0
    server.reset_stats()
    desired = str(tmp_path / "first.jsonl")
    argv = ("sync", "--desired", desired, "--state", state, "--apply", "-y")

    run = await cli(capsys, *argv)

    assert run.code == 2
    (line,) = run.err_lines
    assert line.startswith(f"asyncgroups: error: refusing to apply: all 6 groups {state} owns")
    assert "--allow-vanished" in line
    assert writes(server) == []

    run = await cli(capsys, *argv, "--allow-vanished")
    assert run.code == 0, run.err
    assert run.objects[-1]["created"] == 6
    assert writes(server) == ["POST /v1/group"] * 6


async def test_sync_out_of_credits_is_said_once_and_no_patch_follows(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = await owning(server, capsys, tmp_path, 12)
    server.credits = 0  # the 5th update is answered 402
    renamed = desired_file(tmp_path / "renamed.jsonl", records(12, name="Renamed"))

    run = await cli(
        capsys, "sync", "--desired", str(renamed), "--state", state, "--apply", "-y",
        "--concurrency", "1",
    )  # fmt: skip

    assert run.code == 1
    assert [w.split()[0] for w in writes(server)] == ["PATCH"] * 5  # the 5th was the 402
    failed = [line for line in run.err_lines if line.startswith("failed:")]
    assert len(failed) == 1
    assert "402" in failed[0]
    assert "Not enough event credits" in failed[0]
    assert sum("not sent" in line for line in run.err_lines) == 1
    assert "7 update(s) not sent: the account ran out of event credits (402)" in run.err_lines[-1]
    *items, summary = run.objects
    assert [i["outcome"] for i in items] == ["done"] * 4 + ["failed"] * 8
    assert [i["error_type"] for i in items[5:]] == ["OutOfCreditsError"] * 7
    assert (summary["updated"], summary["failed"]) == (4, 8)


async def test_sync_owned_groups_gone_but_one_unreadable_is_refused_in_one_line(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = await owning(server, capsys, tmp_path, 6)
    with SyncState(state) as sync_state:
        prokeys = [row.prokey for row in sync_state.rows().values()]
    for prokey in prokeys:
        assert (await cli(capsys, "delete", prokey, "--yes")).code == 0
    server.inject(status=503, times=20, method="GET", path=f"/group/{prokeys[0]}")
    server.reset_stats()
    desired = str(tmp_path / "first.jsonl")

    run = await cli(capsys, "sync", "--desired", desired, "--state", state, "--apply", "-y")

    assert run.code == 2
    (line,) = run.err_lines
    assert line.startswith(
        f"asyncgroups: error: refusing to apply: all 5 of the 6 groups {state} owns that "
        "the plan could check are gone from the account"
    )
    assert writes(server) == []
