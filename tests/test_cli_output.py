"""What the command prints of foreign text and values: strict JSON, escaped messages.

stdout must parse under a strict JSON parser whatever the server sent (NaN included),
stderr must never carry a control character from a server or from the input, and a
reply the library accepts but JSON cannot show fails that one key, never the command.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from cli_support import Run, cli, fake_api, python_m

import asyncgroups.cli
from asyncgroups.cli._io import encode, printable
from asyncgroups.testing import FakeGroupsServer

#: A rate limit the few requests of these tests never reach (valid under any default).
UNLIMITED = "100000"
TERMINAL_ATTACK = "\x1b]0;pwned\x07\x1b[2J"


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeGroupsServer]:
    async with fake_api(monkeypatch) as fake:
        monkeypatch.setenv("ASYNCGROUPS_RATE_LIMIT", UNLIMITED)
        yield fake


def strict_objects(run: Run) -> list[dict[str, Any]]:
    """stdout parsed as RFC 8259 JSON Lines: NaN, Infinity and -Infinity are refused."""

    def refuse(constant: str) -> Any:
        raise AssertionError(f"stdout holds {constant}, which strict JSON does not allow")

    return [json.loads(line, parse_constant=refuse) for line in run.out.splitlines()]


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def no_controls(text: str) -> bool:
    return not any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0 for c in text)


# control characters on stderr ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (TERMINAL_ATTACK, "\\x1b]0;pwned\\x07\\x1b[2J"),
        ("two\nlines\r", "two\\nlines\\r"),
        ("nul\x00 del\x7f csi\x9b", "nul\\x00 del\\x7f csi\\x9b"),
        ("admin\u202egnp.exe", "admin\\u202egnp.exe"),
        ("undecodable \udcff", "undecodable \\udcff"),
        ("Équipe née à Zürich \u2013 東京 🎉", "Équipe née à Zürich \u2013 東京 🎉"),
    ],
)
def test_printable_escapes_what_a_terminal_would_act_on_and_keeps_letters(
    text: str, shown: str
) -> None:
    assert printable(text) == shown


async def test_server_message_with_terminal_escapes_is_printed_escaped(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    key = server.add_group("G")
    server.inject(method="GET", status=400, body={"message": f"Bad {TERMINAL_ATTACK} request"})

    run = await cli(capsys, "get", key)

    assert run.code == 1
    [line] = run.err_lines
    assert "Bad \\x1b]0;pwned\\x07\\x1b[2J request" in line
    assert no_controls(run.err)


async def test_failed_command_message_from_the_server_is_printed_escaped(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.inject(method="POST", status=400, body={"message": f"No {TERMINAL_ATTACK}"})

    run = await cli(capsys, "create", "--name", "X")

    assert run.code == 1
    [line] = run.err_lines
    assert line.startswith("asyncgroups: error: POST /group: 400 No \\x1b]0;pwned")
    assert no_controls(run.err)


async def test_binary_input_is_never_echoed_raw(server: FakeGroupsServer) -> None:
    garbage = b"\x1b]0;pwned\x07\x1b[2J\xff\xfe\x00\x9b6n\n"

    run = await python_m("bulk-get", "--input", "-", stdin=garbage)

    assert run.code == 1
    assert run.out == ""
    assert no_controls(run.err)
    assert any(line.startswith("failed: \\x1b]0;pwned\\x07") for line in run.err_lines)


async def test_verbose_log_lines_are_escaped(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    key = server.add_group("G")
    server.inject(method="GET", status=400, body={"message": TERMINAL_ATTACK})

    run = await cli(capsys, "-v", "get", key)

    assert run.code == 1
    assert any(line.startswith("DEBUG asyncgroups") for line in run.err_lines)
    assert no_controls(run.err)


# stdout is for JSON, even while a bar is drawn ---------------------------------------------


def _read_terminal(master: int) -> bytes:
    """Everything written to a pseudo-terminal, until its last writer closes it."""
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the process ended and closed its side
            return seen
        if not chunk:
            return seen
        seen += chunk


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
@pytest.mark.parametrize("command", ["bulk-get", "sync"])
async def test_with_a_bar_on_the_terminal_the_json_still_goes_to_stdout(
    server: FakeGroupsServer, tmp_path: Any, command: str
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("\n".join(server.add_group(f"G{n}") for n in range(5)) + "\n")
    desired = tmp_path / "desired.jsonl"
    desired.write_text(
        "".join(json.dumps({"key": f"k{n}", "name": f"N{n}"}) + "\n" for n in range(5))
    )
    argv = {
        "bulk-get": ["bulk-get", "--input", str(keys)],
        "sync": [
            "sync",
            "--desired",
            str(desired),
            "--state",
            str(tmp_path / "s"),
            "--apply",
            "-y",
        ],
    }[command]
    master, slave = os.openpty()  # stderr on a terminal, stdout into a file: `> out.jsonl`
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "asyncgroups",
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=slave,
        )
    finally:
        os.close(slave)
    try:
        terminal = asyncio.ensure_future(asyncio.to_thread(_read_terminal, master))
        out, _ = await asyncio.wait_for(process.communicate(), 20)
        seen = (await asyncio.wait_for(terminal, 20)).decode("utf-8", "replace")
    finally:
        os.close(master)

    assert process.returncode == 0, seen
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert len(lines) == 5 if command == "bulk-get" else 6  # sync: 5 results, a summary
    assert command in seen  # the bar was drawn...
    assert '"prokey"' not in seen  # ...and no JSON went to it


# strict JSON on stdout ---------------------------------------------------------------------


def test_encode_writes_non_finite_numbers_as_null_at_any_depth() -> None:
    value = {"a": math.nan, "b": [math.inf, {"c": -math.inf, "d": 1.5}], "e": (math.nan,)}

    assert json.loads(encode(value)) == {"a": None, "b": [None, {"c": None, "d": 1.5}], "e": [None]}
    assert json.loads(encode(nested(600) | {"x": math.nan}))["x"] is None
    assert value["a"] is not None  # the caller's value is left as it was


async def test_get_prints_nan_and_infinity_from_a_reply_as_null(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    key = server.add_group("G", score=math.nan, ratio=math.inf, history=[1.0, -math.inf])

    run = await cli(capsys, "get", key)

    assert run.code == 0, run.err
    [group] = strict_objects(run)
    assert group["extra"] == {"score": None, "ratio": None, "history": [1.0, None]}


async def test_bulk_get_output_is_strict_json(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    keys = [server.add_group(f"G{n}", score=math.nan) for n in range(3)]
    listing = tmp_path / "keys.txt"
    listing.write_text("\n".join(keys) + "\n")

    run = await cli(capsys, "bulk-get", "--input", str(listing))

    assert run.code == 0, run.err
    assert [g["extra"]["score"] for g in strict_objects(run)] == [None, None, None]


# a reply the library accepts but JSON cannot show ----------------------------------------


async def test_get_of_a_group_nested_600_deep_fails_that_key_in_one_line(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = server.add_group("Deep", deep=nested(600))
    fine = server.add_group("Fine")

    run = await cli(capsys, "get", deep, fine)

    assert run.code == 1
    assert [g["prokey"] for g in strict_objects(run)] == [fine]
    assert run.err_lines == [
        f"failed: {deep}: the group cannot be printed: it nests too deeply to be written as JSON"
    ]


async def test_bulk_get_fails_the_deep_key_and_goes_on_with_the_rest(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    first = server.add_group("First")
    deep = server.add_group("Deep", deep=nested(600))
    last = server.add_group("Last")
    listing = tmp_path / "keys.txt"
    listing.write_text(f"{first}\n{deep}\n{last}\n")

    run = await cli(capsys, "--concurrency", "1", "bulk-get", "--input", str(listing))

    assert run.code == 1
    assert sorted(g["prokey"] for g in strict_objects(run)) == sorted([first, last])
    assert run.err_lines[0] == (
        f"failed: {deep}: the group cannot be printed: it nests too deeply to be written as JSON"
    )
    assert "2 ok, 1 failed" in run.err_lines[-1]
    assert "Traceback" not in run.err


@pytest.fixture
async def odd_listing(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, str]]:
    """An API whose `/group/all` lists a group nested 600 deep and one holding NaN."""
    deep, odd = "31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa", "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"

    async def listing(request: web.Request) -> web.Response:
        items = [
            {"prokey": deep, "name": "Deep", "tree": nested(600)},
            {"prokey": odd, "name": "Odd", "score": math.nan},
        ]
        page = request.query.get("page", "1")
        return web.json_response(items if page == "1" else [])

    app = web.Application()
    app.router.add_get("/v1/group/all", listing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    monkeypatch.setenv("ASYNCGROUPS_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("ASYNCGROUPS_API_KEY", "local-key")
    monkeypatch.setenv("ASYNCGROUPS_RATE_LIMIT", UNLIMITED)
    try:
        yield deep, odd
    finally:
        await runner.cleanup()


async def test_list_fails_the_unprintable_summary_and_prints_the_rest_strictly(
    odd_listing: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    deep, odd = odd_listing

    run = await cli(capsys, "list")

    assert run.code == 1
    assert strict_objects(run) == [{"prokey": odd, "name": "Odd", "extra": {"score": None}}]
    assert run.err_lines == [
        f"failed: {deep}: the group cannot be printed: it nests too deeply to be written as JSON"
    ]


# never a traceback -------------------------------------------------------------------------


async def test_an_unexpected_exception_is_one_line_without_the_api_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    leaked = ["sk-live-0123456789"]

    def broken(*_: object) -> int:
        raise RuntimeError(f"something odd near {leaked[0]}\nsecond line")

    monkeypatch.setattr(asyncgroups.cli, "_command", lambda name: broken)
    monkeypatch.setenv("ASYNCGROUPS_API_KEY", leaked[0])

    run = await cli(capsys, "list")
    leaked[0] = "other-secret-42"
    flagged = await cli(capsys, "--api-key=other-secret-42", "list")
    leaked[0] = "third-secret-43"
    abbreviated = await cli(capsys, "list", "--api", "third-secret-43")

    assert run.code == 1
    assert run.err_lines == [
        "asyncgroups: error: unexpected error (RuntimeError: something odd near *** second "
        "line); this is a bug in asyncgroups, please report it"
    ]
    assert flagged.code == 1
    assert "other-secret-42" not in flagged.err
    assert "***" in flagged.err
    assert "third-secret-43" not in abbreviated.err
    assert "***" in abbreviated.err
