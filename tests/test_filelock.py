"""The one file lock the journal and the sync state take."""

from __future__ import annotations

from pathlib import Path

from asyncgroups._filelock import try_lock, unlock


def test_try_lock_refuses_a_second_holder_until_released(tmp_path: Path) -> None:
    path = tmp_path / "file.lock"
    with open(path, "a+b") as first, open(path, "a+b") as second:
        assert try_lock(first)
        assert not try_lock(second)
        unlock(first)
        assert try_lock(second)


def test_closing_the_file_releases_its_lock(tmp_path: Path) -> None:
    path = tmp_path / "file.lock"
    with open(path, "a+b") as first:
        assert try_lock(first)
    with open(path, "a+b") as again:
        assert try_lock(again)
