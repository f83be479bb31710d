"""The bulk-delete journal: resumable, flushed per record, tolerant of a torn last line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncgroups.cli._exits import UsageError
from asyncgroups.cli._journal import Journal, read_journal

A = "31a17cce-aaaa-4ee3-99bb-6144c6a3aaaa"
B = "31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa"
C = "31a17cce-cccc-4ee3-99bb-6144c6a3aaaa"


def line(prokey: str, outcome: str) -> str:
    return json.dumps({"prokey": prokey, "outcome": outcome, "error": None}) + "\n"


def test_read_journal_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    state = read_journal(str(tmp_path / "none.jsonl"))

    assert state.done == set()
    assert state.records == 0
    assert not state.torn


def test_journal_done_keys_are_deleted_or_missing_and_a_later_failure_undoes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text(
        line(A, "deleted") + line(B, "missing") + line(C, "deleted") + line(C, "failed")
    )

    assert read_journal(str(path)).done == {A, B}


def test_record_is_on_disk_before_close(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal.open(str(path)) as journal:
        journal.record(A, "deleted")
        journal.record(B, "failed", "GET /group/b: 503 Service Unavailable")

        assert read_journal(str(path)).done == {A}  # another reader sees it at once
        [first, second] = [json.loads(x) for x in path.read_text().splitlines()]
    assert first["prokey"] == A
    assert first["outcome"] == "deleted"
    assert first["error"] is None
    assert second["error"] == "GET /group/b: 503 Service Unavailable"
    assert first["timestamp"].endswith("Z")


@pytest.mark.parametrize(
    "tail",
    [
        '{"prokey": "31a17cce-cccc',  # cut short mid-write
        "\x00\x00\x00",  # what a power cut can leave
    ],
)
def test_open_drops_a_torn_last_line_and_appends_cleanly(tmp_path: Path, tail: str) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text(line(A, "deleted") + tail)

    with Journal.open(str(path)) as journal:
        assert journal.torn
        assert journal.done == {A}
        journal.record(C, "deleted")

    assert [json.loads(x)["prokey"] for x in path.read_text().splitlines()] == [A, C]


@pytest.mark.parametrize("content", ["my precious notes\n", line(A, "deleted") + "{broken}\n"])
def test_a_whole_line_that_is_no_record_is_refused_and_the_file_kept(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text(content)

    with pytest.raises(UsageError, match="is it the right file"):
        Journal.open(str(path))

    assert path.read_text() == content


def test_a_broken_line_before_intact_ones_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text(line(A, "deleted") + "oops\n" + line(B, "deleted"))

    with pytest.raises(UsageError, match="damaged at line 2"):
        Journal.open(str(path))
    assert path.read_text().count("\n") == 3  # left as it was


def test_blank_lines_are_not_damage(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text(line(A, "deleted") + "\n" + line(B, "missing"))

    assert read_journal(str(path)).done == {A, B}


def test_a_journal_in_use_by_another_run_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "j.jsonl")
    with Journal.open(path), pytest.raises(UsageError, match="in use by another"):
        Journal.open(path)
    with Journal.open(path):  # released on close
        pass


@pytest.mark.parametrize("outcome", ["ok", "skipped"])
def test_journal_refuses_to_record_an_outcome_it_cannot_read_back(
    tmp_path: Path, outcome: str
) -> None:
    with (
        Journal.open(str(tmp_path / "j.jsonl")) as journal,
        pytest.raises(ValueError, match="a journal records"),
    ):
        journal.record(A, outcome)  # type: ignore[arg-type]
    assert (tmp_path / "j.jsonl").read_text() == ""
