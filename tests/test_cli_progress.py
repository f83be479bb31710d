"""Progress on stderr: rich when installed, a plain line without it, nothing off a terminal."""

from __future__ import annotations

import io
import sys

import pytest

from asyncgroups.cli._progress import progress_bar


def test_no_bar_off_a_terminal_but_logged_lines_still_reach_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with progress_bar("bulk-get", 2) as bar:  # captured stderr is not a terminal
        bar.advance("ok")
        bar.log("failed: k: boom")
        bar.advance("failed")

    assert capsys.readouterr().err == "failed: k: boom\n"
    assert bar.counts == {"ok": 1, "missing": 0, "failed": 1, "skipped": 0}


def test_rich_bar_shows_progress_and_keeps_logged_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with progress_bar("bulk-get", 3, show=True) as bar:
        for _ in range(3):
            bar.advance("ok")
        bar.log("not found: k")

    captured = capsys.readouterr()
    assert captured.out == ""
    assert "not found: k" in captured.err
    assert "bulk-get" in captured.err
    assert "3/3" in captured.err


def test_without_rich_a_plain_line_is_drawn(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("rich", "rich.console", "rich.progress"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed

    with progress_bar("bulk-delete", None, show=True) as bar:
        bar.advance("ok")
        bar.log("failed: k: boom")
        bar.advance("missing")

    err = capsys.readouterr().err
    assert "failed: k: boom\n" in err
    assert err.rstrip("\n").rsplit("\r", 1)[-1].startswith("bulk-delete: 2/? (")
    assert "1 missing" in err


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, so rich draws a live bar on it."""

    def isatty(self) -> bool:
        return True


def test_rich_bar_leaves_a_redirected_stdout_alone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)  # stdout stays captured: not a terminal

    with progress_bar("bulk-get", 1, show=True) as bar:
        sys.stdout.write('{"prokey": "k"}\n')
        bar.advance("ok")

    assert capsys.readouterr().out == '{"prokey": "k"}\n'
    assert '"prokey"' not in terminal.getvalue()
    assert "bulk-get" in terminal.getvalue()


@pytest.mark.parametrize("rich", [True, False])
def test_logged_lines_are_escaped_with_or_without_rich(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, rich: bool
) -> None:
    if not rich:
        for name in ("rich", "rich.console", "rich.progress"):
            monkeypatch.setitem(sys.modules, name, None)

    with progress_bar("bulk-get", 1, show=True) as bar:
        bar.log("failed: \x1b]0;pwned\x07\x1b[2J")

    err = capsys.readouterr().err
    assert "failed: \\x1b]0;pwned\\x07\\x1b[2J" in err
    assert "\x1b]0;" not in err


@pytest.mark.parametrize("rich", [True, False])
def test_a_bar_takes_its_total_once_it_is_known(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, rich: bool
) -> None:
    if not rich:
        for name in ("rich", "rich.console", "rich.progress"):
            monkeypatch.setitem(sys.modules, name, None)

    with progress_bar("reading groups", None, show=True) as bar:
        bar.expect(2)
        bar.advance("ok")
        bar.advance("missing")

    err = capsys.readouterr().err
    assert "reading groups" in err
    assert "2/2" in err
