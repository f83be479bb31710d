"""The `asyncgroups` command, driven as a user would, against a FakeGroupsServer.

`main([...])` runs in a worker thread (it starts its own event loop) while the fake
server answers on this test's loop; a few tests run `python -m asyncgroups` as a real
subprocess for what only a process shows: signals, pipes, exit statuses.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import cli, fake_api, python_m, start_python_m

from asyncgroups._config import API_KEY_ENV, BASE_URL_ENV
from asyncgroups.cli import _exits
from asyncgroups.cli._args import parse
from asyncgroups.cli._settings import ENV
from asyncgroups.cli._values import rate as _rate
from asyncgroups.testing import FakeGroupsServer, Faults

MISSING = "31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa"


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeGroupsServer]:
    async with fake_api(monkeypatch) as fake:
        yield fake


def deletes(server: FakeGroupsServer) -> list[str]:
    """The keys of the DELETE requests the server received, in order."""
    return [r.path.rsplit("/", 1)[-1] for r in server.requests if r.method == "DELETE"]


def journal_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# get / list ---------------------------------------------------------------------------


async def test_get_prints_each_group_as_json_in_the_order_given(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    first = server.add_group("First", events=2, public_event_overview=True, rsvp=True)
    second = server.add_group("Second", internal_note="note")

    run = await cli(capsys, "get", second, first)

    assert run.code == 0
    assert [g["prokey"] for g in run.objects] == [second, first]
    shown = run.objects[1]
    assert shown["name"] == "First"
    assert shown["status"] == "published"
    assert shown["subscription"] == "no"
    assert shown["event_prokeys"] == list(server.groups[first]["events"])
    assert shown["public_event_overview"] is True
    assert shown["extra"] == {"rsvp": True}
    assert shown["date_created"].endswith("Z")
    assert "T" in shown["date_created"]
    assert run.err == ""


async def test_get_missing_group_exits_1_and_names_it(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    present = server.add_group("Here")

    run = await cli(capsys, "get", present, MISSING)

    assert run.code == 1
    assert [g["prokey"] for g in run.objects] == [present]
    assert run.err_lines == [f"not found: {MISSING}"]


async def test_get_malformed_key_is_one_line_usage_error_before_any_request(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run = await cli(capsys, "get", "../group/all")

    assert run.code == 2
    assert run.out == ""
    assert len(run.err_lines) == 1
    assert "is not a prokey" in run.err
    assert server.requests == []


async def test_missing_api_key_is_one_line(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ASYNCGROUPS_API_KEY")

    run = await cli(capsys, "list")

    assert run.code == 2
    assert run.err_lines == [
        "asyncgroups: error: no API key: pass --api-key KEY or set ASYNCGROUPS_API_KEY"
    ]
    assert server.requests == []


async def test_plain_http_to_a_remote_host_is_refused_unless_allowed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 0.0.0.0 is not loopback by address, yet a connection to it stays on this machine
    remote = ("--api-key", "k", "--timeout", "2", "--base-url", "http://0.0.0.0:9/v1")
    run = await cli(capsys, *remote, "list")
    assert run.code == 2
    assert run.err_lines == [
        "asyncgroups: error: base_url http://0.0.0.0:9 is plain http to a host that is "
        "not loopback: the API key would cross the network unencrypted. Use https, or pass "
        "--allow-insecure-http if you really mean it"
    ]

    allowed = await cli(capsys, "--allow-insecure-http", *remote, "list")
    assert allowed.code == 1  # accepted, then nothing listens there: one line, no traceback
    assert len(allowed.err_lines) == 1
    assert "Traceback" not in allowed.err


async def test_refused_api_key_is_one_line_without_the_key(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run = await cli(capsys, "--api-key", "wrong-secret", "list")

    assert run.code == 1
    assert len(run.err_lines) == 1
    assert "401" in run.err
    assert "API key was not accepted: it may be wrong or expired" in run.err
    assert run.err.count("may be wrong or expired") == 1  # the library's hint, said once
    assert "wrong-secret" not in run.err


async def test_bad_environment_value_names_the_variable(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASYNCGROUPS_CONCURRENCY", "lots")

    run = await cli(capsys, "list")

    assert run.code == 2
    assert run.err_lines == [
        "asyncgroups: error: ASYNCGROUPS_CONCURRENCY='lots': expected a positive integer, "
        "not 'lots'"
    ]


async def test_unknown_option_is_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    run = await cli(capsys, "get", "--frobnicate", MISSING)

    assert run.code == 2
    assert run.err_lines == [
        "asyncgroups: error: unrecognized arguments: --frobnicate (see asyncgroups --help)"
    ]


async def test_missing_required_option_names_the_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = await cli(capsys, "create", "--internal-note", "x")

    assert run.code == 2
    assert run.err_lines == [
        "asyncgroups: error: the following arguments are required: --name "
        "(see asyncgroups create --help)"
    ]


async def test_verbose_logs_every_request_to_stderr_without_the_key(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_group("G")

    run = await cli(capsys, "-v", "list")
    quiet = await cli(capsys, "list")

    assert run.code == 0
    assert len(run.objects) == 1  # stdout stays JSON Lines
    assert any(
        line.startswith("DEBUG asyncgroups: GET /group/all -> 200") for line in run.err_lines
    )
    assert server.api_key not in run.err
    assert quiet.err == ""  # the next run without -v logs nothing


async def test_global_options_are_accepted_after_the_command(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    key = server.add_group("G")

    verbose = await cli(capsys, "list", "-v")
    refused = await cli(capsys, "get", key, "--api-key", "wrong-secret", "--timeout", "5")
    both = await cli(capsys, "--api-key", "wrong-secret", "get", key, "--api-key", server.api_key)

    assert verbose.code == 0
    assert [g["prokey"] for g in verbose.objects] == [key]
    assert any(line.startswith("DEBUG asyncgroups: GET /group/all") for line in verbose.err_lines)
    assert refused.code == 1  # the key after the command was the one sent
    assert "API key was not accepted" in refused.err
    assert both.code == 0  # given twice, the later one wins
    assert [g["prokey"] for g in both.objects] == [key]


def test_fake_server_options_named_like_global_ones_keep_their_meaning() -> None:
    args = parse(["fake-server", "--api-key", "served-key", "--rate-limit", "5", "-v"])

    assert (args.server_api_key, args.server_rate_limit) == ("served-key", 5.0)
    assert args.api_key is None
    assert args.rate_limit == parse(["list"]).rate_limit  # the client's default, untouched
    assert args.verbose == 1


async def test_list_prints_one_summary_per_group(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = [server.add_group(f"Group {n}") for n in range(3)]

    run = await cli(capsys, "list")

    assert run.code == 0
    assert run.objects == [
        {"prokey": key, "name": f"Group {n}", "extra": {}} for n, key in enumerate(keys)
    ]


async def test_list_prints_every_group_of_every_page(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = [server.add_group(f"Group {n}") for n in range(1_750)]

    run = await cli(capsys, "list")

    assert run.code == 0
    assert [o["prokey"] for o in run.objects] == keys
    assert [r.query.get("page") for r in server.requests] == [None, "2", "3"]


# rate limit ---------------------------------------------------------------------------


def _busiest_second(server: FakeGroupsServer) -> int:
    times = sorted(r.received_at for r in server.requests)
    return max(sum(1 for u in times[i:] if u < t + 1.0) for i, t in enumerate(times))


async def test_rate_limit_defaults_to_the_documented_80_per_second(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ASYNCGROUPS_RATE_LIMIT")
    keys = [server.add_group(f"G{n}") for n in range(120)]
    listing = tmp_path / "keys.txt"
    listing.write_text("\n".join(keys))

    run = await cli(capsys, "bulk-get", "--input", str(listing))

    assert run.code == 0
    assert len(run.objects) == 120
    assert _busiest_second(server) <= 80
    arrivals = [r.received_at for r in server.requests]
    assert max(arrivals) - min(arrivals) > 1.45  # 119 gaps of 1/80 s


async def test_rate_limit_option_sets_the_rate_and_none_lifts_it(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    keys = [server.add_group(f"G{n}") for n in range(30)]
    listing = tmp_path / "keys.txt"
    listing.write_text("\n".join(keys))

    run = await cli(capsys, "--rate-limit", "40", "bulk-get", "--input", str(listing))
    assert run.code == 0
    arrivals = [r.received_at for r in server.requests]
    assert max(arrivals) - min(arrivals) > 29 / 40 - 0.01

    server.reset_stats()
    run = await cli(capsys, "--rate-limit", "none", "bulk-get", "--input", str(listing))
    assert run.code == 0
    assert _busiest_second(server) == 30


def test_cli_reads_the_environment_names_the_client_reads() -> None:
    assert (ENV["api_key"], ENV["base_url"]) == (API_KEY_ENV, BASE_URL_ENV)


@pytest.mark.parametrize(
    ("text", "rate"),
    [("80", 80.0), ("0.5", 0.5), ("none", 0.0), ("NONE", 0.0), ("0", 0.0), ("0.00", 0.0)],
)
def test_rate_limit_values_read_as_a_rate_or_none(text: str, rate: float) -> None:
    assert _rate(text) == rate  # 0.0 stands for no limit


@pytest.mark.parametrize("option", ["--base-url", "--api-key"])
async def test_an_empty_url_or_key_option_is_refused_not_replaced_by_the_default(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    run = await cli(capsys, option, "", "list")

    assert run.code == 2
    assert run.err_lines == [f"asyncgroups: error: {option} is empty"]
    assert server.requests == []


async def test_bad_rate_limit_is_one_line_usage_error(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run = await cli(capsys, "--rate-limit", "fast", "list")

    assert run.code == 2
    assert len(run.err_lines) == 1
    assert "expected requests per second (a positive number) or none, not 'fast'" in run.err
    assert server.requests == []


@pytest.mark.parametrize("timeout", ["-1", "0", "inf", "nan"])
async def test_bad_timeout_says_a_positive_number_is_expected(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], timeout: str
) -> None:
    run = await cli(capsys, "--timeout", timeout, "list")

    assert run.code == 2
    assert run.err_lines == [
        f"asyncgroups: error: argument --timeout: expected a positive number, not {timeout!r} "
        "(see asyncgroups --help)"
    ]
    assert server.requests == []


# create / update / delete -------------------------------------------------------------


async def test_create_prints_the_new_prokey(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run = await cli(
        capsys,
        "create",
        "--name",
        "Team events",
        "--internal-note",
        "from the CLI",
        "--subscription",
        "external",
        "--cal-url",
        "https://example.com/team.ics",
        "--no-cta",
    )

    assert run.code == 0
    [created] = run.objects
    stored = server.groups[created["prokey"]]
    assert stored["name"] == "Team events"
    assert stored["internal_note"] == "from the CLI"
    assert stored["subscription_cal_url"] == "https://example.com/team.ics"
    assert stored["cta"] is False


async def test_create_sends_landingpage_and_public_event_overview(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    options = ("--landingpage", "lp-1", "--public-event-overview")
    run = await cli(capsys, "create", "--name", "Team", *options)

    assert run.code == 0, run.err
    [post] = [r for r in server.requests if r.method == "POST"]
    assert post.body == {
        "name": "Team",
        "subscription": "no",
        "landingpage": "lp-1",
        "public_event_overview": True,
    }


async def test_create_external_without_url_is_refused_before_sending(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run = await cli(capsys, "create", "--name", "X", "--subscription", "external")

    assert run.code == 2
    assert run.err_lines == ['asyncgroups: error: --subscription "external" needs a --cal-url']
    assert server.requests == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--name", "Team 7 "), "--name must not start or end with whitespace (' ' at "),
        # An undecodable byte in a command line reaches Python as a lone surrogate.
        (("--name", "X", "--internal-note", "caf\udce9"), "--internal-note has '\\udce9' at "),
    ],
)
async def test_create_refuses_text_it_cannot_send_as_it_is_before_sending(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    options: tuple[str, ...],
    message: str,
) -> None:
    run = await cli(capsys, "create", *options)

    assert run.code == 2
    [line] = run.err_lines
    assert line.startswith(f"asyncgroups: error: {message}")
    assert server.requests == []


async def test_create_names_a_command_line_byte_that_is_not_utf8(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # "café" typed in a Latin-1 terminal: Python keeps the byte 0xe9 as '\udce9'.
    run = await cli(capsys, "create", "--name", "caf\udce9")

    assert run.code == 2
    assert run.err_lines == [
        "asyncgroups: error: --name has '\\udce9' at position 3: a lone surrogate, which has "
        "no UTF-8 form and cannot be sent; Python makes one of a byte that is not UTF-8 "
        "(here 0xe9) in a command line, a path or the environment: is the terminal's "
        "encoding UTF-8?"
    ]
    assert server.requests == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ("--cal-url", "ftp://name.example/cal.ics"),
            "--cal-url must be an http(s) URL with a host, not 'ftp://name.example/cal.ics'",
        ),
        (("--name", "  "), "--name must not be empty"),
        (
            ("--name", "\tG"),
            "--name must not start or end with whitespace ('\\t' at position 0 of '\\tG'): "
            "the service may trim it",
        ),
        (
            ("--subscription", "no", "--cal-url", "https://x.test/c.ics"),
            "--cal-url is only allowed with --subscription \"external\", not 'no'",
        ),
        (
            ("--subscription", "children", "--cal-url", "https://x.test/c.ics"),
            "--cal-url is only allowed with --subscription \"external\", not 'children'",
        ),
        (("--landingpage", "lp-\udce9"), "--landingpage has '\\udce9' at position 3"),
        (
            ("--landingpage", "lp-1", "--clear", "landingpage"),
            "--clear landingpage and --landingpage contradict each other",
        ),
    ],
)
async def test_update_validation_messages_name_the_options_typed(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    options: tuple[str, ...],
    message: str,
) -> None:
    key = server.add_group("G")

    run = await cli(capsys, "update", key, *options)

    assert run.code == 2
    [line] = run.err_lines
    assert line.startswith(f"asyncgroups: error: {message}")
    assert server.requests == []  # refused before anything is sent
    assert server.requests == []


async def test_update_sends_only_the_given_fields_and_clear_sends_null(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    key = server.add_group("Old", internal_note="stale", layout="style-1")

    run = await cli(capsys, "update", key, "--name", "New", "--clear", "internal-note")

    assert run.code == 0
    assert run.objects == [{"prokey": key, "updated": True}]
    [patch] = [r for r in server.requests if r.method == "PATCH"]
    assert patch.body == {"name": "New", "internal_note": None}
    assert server.groups[key]["layout"] == "style-1"


@pytest.mark.parametrize(
    ("options", "body"),
    [
        (("--landingpage", "lp-2"), {"landingpage": "lp-2"}),
        (("--no-public-event-overview",), {"public_event_overview": False}),
        (("--clear", "landingpage"), {"landingpage": None}),
        (("--clear", "public-event-overview"), {"public_event_overview": None}),
    ],
)
async def test_update_sets_and_clears_landingpage_and_public_event_overview(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    options: tuple[str, ...],
    body: dict[str, Any],
) -> None:
    key = server.add_group("G", landingpage="lp-1", public_event_overview=True)

    run = await cli(capsys, "update", key, *options)

    assert run.code == 0, run.err
    [patch] = [r for r in server.requests if r.method == "PATCH"]
    assert patch.body == body


async def test_update_skip_unchanged_sends_no_patch_when_nothing_differs(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    key = server.add_group("Same")

    run = await cli(capsys, "update", key, "--name", "Same", "--skip-unchanged")

    assert run.objects == [{"prokey": key, "updated": False}]
    assert [r.method for r in server.requests] == ["GET"]


async def test_update_without_a_field_is_a_usage_error(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    key = server.add_group("G")

    run = await cli(capsys, "update", key, "--skip-unchanged")

    assert run.code == 2
    assert "nothing to change" in run.err
    assert server.requests == []


async def test_update_of_locked_subscription_fails_in_one_line(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    key = server.add_group("With events", events=1)

    run = await cli(
        capsys, "update", key, "--subscription", "external", "--cal-url", "https://x.test/c.ics"
    )

    assert run.code == 1
    assert len(run.err_lines) == 1
    assert "cannot change while 1 event(s) are linked" in run.err
    assert [r.method for r in server.requests] == ["GET"]


async def test_delete_without_yes_refuses_when_stdin_is_not_a_terminal(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    key = server.add_group("Keep me")

    run = await cli(capsys, "delete", key)

    assert run.code == 2
    assert run.err_lines == [
        "asyncgroups: error: refusing to delete without --yes: stdin is not a terminal to ask on"
    ]
    assert key in server.groups
    assert server.requests == []


class _Terminal(io.StringIO):
    """A stdin that says it is a terminal, with the user's answer typed in."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "code", "kept"), [("y\n", 0, False), ("n\n", 1, True)])
async def test_delete_asks_on_a_terminal(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    code: int,
    kept: bool,
) -> None:
    key = server.add_group("Maybe")
    monkeypatch.setattr(sys, "stdin", _Terminal(answer))

    run = await cli(capsys, "delete", key)

    assert run.code == code
    assert "Delete 1 group(s) and every event linked to them? [y/N]" in run.err
    assert (key in server.groups) is kept


class _CtrlC(io.StringIO):
    """A terminal stdin at which the user presses Ctrl-C instead of answering."""

    def isatty(self) -> bool:
        return True

    def readline(self, size: int | None = -1, /) -> str:
        raise KeyboardInterrupt


async def test_ctrl_c_at_a_prompt_ends_its_line_and_exits_130(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = server.add_group("Maybe")
    monkeypatch.setattr(sys, "stdin", _CtrlC())

    run = await cli(capsys, "delete", key)

    assert run.code == 130
    assert run.err.endswith("every event linked to them? [y/N] \nasyncgroups: error: interrupted\n")
    assert key in server.groups


async def test_delete_yes_reports_each_key(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    key = server.add_group("Gone soon", events=2)

    run = await cli(capsys, "delete", "--yes", key, MISSING)

    assert run.code == 0
    assert run.objects == [
        {"prokey": key, "outcome": "deleted"},
        {"prokey": MISSING, "outcome": "missing"},
    ]
    assert server.groups == {}
    assert server.events == {}


# bulk-get -----------------------------------------------------------------------------


async def test_bulk_get_reads_keys_skipping_blanks_and_comments(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    keys = [server.add_group(f"G{n}") for n in range(5)]
    listing = tmp_path / "keys.txt"
    listing.write_text("# groups to read\n\n" + "\n".join(f"  {k}  # g" for k in keys) + "\n")

    run = await cli(capsys, "bulk-get", "--input", str(listing))

    assert run.code == 0
    assert sorted(g["prokey"] for g in run.objects) == sorted(keys)
    [summary] = run.err_lines
    assert re.fullmatch(r"bulk-get: 5 ok in \d+\.\d s", summary)


async def test_bulk_get_lists_failures_on_stderr_and_exits_1(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    present = server.add_group("Here")
    listing = tmp_path / "keys.txt"
    listing.write_text(f"{present}\nnot-a-key\n{MISSING}\n")
    output = tmp_path / "groups.jsonl"

    run = await cli(capsys, "bulk-get", "--input", str(listing), "--output", str(output))

    assert run.code == 1
    assert run.out == ""
    assert [json.loads(line)["prokey"] for line in output.read_text().splitlines()] == [present]
    assert not any(line.startswith("not found") for line in run.err_lines)  # only counted
    assert any(line.startswith("failed: not-a-key: ") for line in run.err_lines)
    assert "1 ok, 1 not found, 1 failed" in run.err_lines[-1]


async def test_bulk_get_reads_keys_from_stdin(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [server.add_group(f"G{n}") for n in range(3)]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(keys)))  # no final newline

    run = await cli(capsys, "bulk-get", "--input", "-")

    assert run.code == 0
    assert sorted(g["prokey"] for g in run.objects) == sorted(keys)


async def test_bulk_get_reads_a_real_pipe(server: FakeGroupsServer) -> None:
    keys = [server.add_group(f"G{n}") for n in range(20)]

    run = await python_m("bulk-get", "--input", "-", stdin="\n".join(keys).encode())

    assert run.code == 0, run.err
    assert sorted(g["prokey"] for g in run.objects) == sorted(keys)


async def test_bulk_get_from_stdin_on_dev_null_reads_no_keys_and_ends(
    server: FakeGroupsServer,
) -> None:
    # What cron, nohup and `ssh -n` give a command: a device the event loop cannot watch.
    run = await python_m("--rate-limit", "none", "bulk-get", "--input", "-")  # < /dev/null

    assert run.code == 0, run.err
    assert run.out == ""
    assert "Traceback" not in run.err
    assert server.requests == []


async def test_bulk_get_failure_line_for_a_huge_bad_line_stays_short(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    listing = tmp_path / "keys.txt"
    listing.write_text("x" * 5_000 + "\n")

    run = await cli(capsys, "bulk-get", "--input", str(listing))

    assert run.code == 1
    [failed] = [line for line in run.err_lines if line.startswith("failed: ")]
    assert len(failed) < 300
    assert server.requests == []


async def test_bulk_get_missing_input_file_is_one_line(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run = await cli(capsys, "bulk-get", "--input", str(tmp_path / "nope.txt"))

    assert run.code == 2
    assert run.err_lines == [
        f"asyncgroups: error: cannot read {tmp_path / 'nope.txt'}: No such file or directory"
    ]


async def test_bulk_get_stops_at_a_refused_api_key(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    listing = tmp_path / "keys.txt"
    listing.write_text("\n".join(server.add_group(f"G{n}") for n in range(50)))

    run = await cli(
        capsys, "--api-key", "wrong", "--concurrency", "2", "bulk-get", "--input", str(listing)
    )

    assert run.code == 1
    [cause, summary] = run.err_lines
    assert cause.startswith("failed: 50 keys: 401 ")
    assert "API key was not accepted" in cause
    assert summary.startswith("bulk-get: 0 ok, 50 failed in ")
    assert len(server.requests) < 10


# bulk-delete --------------------------------------------------------------------------


async def test_bulk_delete_journals_every_outcome_and_a_rerun_sends_nothing(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    keys = [server.add_group(f"G{n}") for n in range(6)]
    listing = tmp_path / "keys.txt"
    listing.write_text("\n".join([*keys, MISSING, keys[0]]) + "\n")
    journal = tmp_path / "journal.jsonl"

    first = await cli(
        capsys, "bulk-delete", "--input", str(listing), "--journal", str(journal), "--yes"
    )

    assert first.code == 0
    assert first.objects == [{"deleted": 6, "missing": 1, "failed": 0, "skipped": 1}]
    assert server.groups == {}
    records = journal_lines(journal)
    assert sorted(r["prokey"] for r in records) == sorted([*keys, MISSING])
    assert {r["outcome"] for r in records if r["prokey"] == MISSING} == {"missing"}
    assert all(r["timestamp"].endswith("Z") and r["error"] is None for r in records)

    server.reset_stats()
    again = await cli(
        capsys, "bulk-delete", "--input", str(listing), "--journal", str(journal), "--yes"
    )

    assert again.objects == [{"deleted": 0, "missing": 0, "failed": 0, "skipped": 8}]
    assert deletes(server) == []
    assert "journal: resuming, 7 key(s) already done will be skipped" in again.err_lines


async def test_bulk_delete_resumes_after_a_torn_last_line_and_retries_failures(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    deleted, missing, failed, torn, fresh = (server.add_group(f"G{n}") for n in range(5))
    listing = tmp_path / "keys.txt"
    listing.write_text("\n".join([deleted, missing, failed, torn, fresh]) + "\n")
    journal = tmp_path / "journal.jsonl"
    done = [
        {"prokey": deleted, "outcome": "deleted", "error": None, "timestamp": "t"},
        {"prokey": missing, "outcome": "missing", "error": None, "timestamp": "t"},
        {"prokey": failed, "outcome": "failed", "error": "503", "timestamp": "t"},
    ]
    cut = json.dumps({"prokey": torn, "outcome": "deleted"})[:30]
    journal.write_text("".join(json.dumps(r) + "\n" for r in done) + cut)

    run = await cli(
        capsys, "bulk-delete", "--input", str(listing), "--journal", str(journal), "--yes"
    )

    assert run.code == 0
    assert run.objects == [{"deleted": 3, "missing": 0, "failed": 0, "skipped": 2}]
    assert sorted(deletes(server)) == sorted([failed, torn, fresh])
    assert any("dropped a torn last line" in line for line in run.err_lines)
    records = journal_lines(journal)  # every line parses: the torn one is gone
    assert [r["prokey"] for r in records[:3]] == [deleted, missing, failed]
    assert sorted(r["prokey"] for r in records[3:]) == sorted([failed, torn, fresh])


async def slow_bulk_delete(
    server: FakeGroupsServer, tmp_path: Path, *, journaled: int
) -> tuple[list[str], Path, Path, asyncio.subprocess.Process]:
    """Start `bulk-delete` of 40 keys in a subprocess against a slow server; return once
    `journaled` outcomes are in its journal, with the process still running."""
    keys = [server.add_group(f"G{n}") for n in range(40)]
    listing = tmp_path / "keys.txt"
    listing.write_text("\n".join(keys) + "\n")
    journal = tmp_path / "journal.jsonl"
    server.faults = Faults(latency=0.03)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "asyncgroups",
        *("--concurrency", "2", "bulk-delete", "--input", str(listing)),
        *("--journal", str(journal), "--yes"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    while not journal.exists() or journal.read_text().count("\n") < journaled:
        await asyncio.sleep(0.02)
    return keys, listing, journal, process


async def test_bulk_delete_rerun_after_a_killed_run_never_repeats_a_journaled_delete(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    keys, listing, journal, process = await slow_bulk_delete(server, tmp_path, journaled=6)
    process.kill()
    await process.wait()
    assert process.returncode == -signal.SIGKILL
    done_before = {r["prokey"] for r in journal_lines(journal)}
    assert 6 <= len(done_before) < len(keys)
    server.faults = Faults()
    server.reset_stats()

    run = await cli(
        capsys, "bulk-delete", "--input", str(listing), "--journal", str(journal), "--yes"
    )

    assert run.code == 0
    assert not set(deletes(server)) & done_before
    summary = run.objects[0]
    assert summary["skipped"] == len(done_before)
    assert summary["deleted"] + summary["missing"] + summary["skipped"] == len(keys)
    assert server.groups == {}


async def test_bulk_delete_ctrl_c_exits_130_with_a_resume_hint_and_the_journal_intact(
    server: FakeGroupsServer, tmp_path: Path
) -> None:
    keys, _, journal, process = await slow_bulk_delete(server, tmp_path, journaled=4)
    process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), 10)

    assert process.returncode == 130
    *_, hint, last = err.decode().splitlines()
    assert last == "asyncgroups: error: interrupted"
    assert hint == (
        f"bulk-delete: interrupted; {journal} keeps every delete that finished: run the same "
        "command again to resume (keys already done are skipped, not sent again)"
    )
    assert "Traceback" not in err.decode()
    records = journal_lines(journal)  # complete lines only
    (summary,) = out.decode().splitlines()  # the one summary line, of what was journaled
    assert json.loads(summary)["deleted"] == sum(r["outcome"] == "deleted" for r in records)
    assert {r["prokey"] for r in records} <= set(keys)
    assert not {r["prokey"] for r in records} & set(server.groups)
    # The two deletes in flight at Ctrl-C may have reached the server unjournaled:
    # a re-run sends them again and reports them missing.
    assert len(keys) - len(records) - 2 <= len(server.groups) <= len(keys) - len(records)


async def test_bulk_delete_refuses_without_yes_when_stdin_is_not_a_terminal(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key = server.add_group("Keep")
    listing = tmp_path / "keys.txt"
    listing.write_text(key + "\n")

    run = await cli(
        capsys, "bulk-delete", "--input", str(listing), "--journal", str(tmp_path / "j")
    )

    assert run.code == 2
    assert run.err_lines == [
        "asyncgroups: error: refusing to delete without --yes: stdin is not a terminal to ask on"
    ]
    assert key in server.groups
    assert not (tmp_path / "j").exists()


async def test_bulk_delete_asks_on_a_terminal_naming_the_count(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    keys = [server.add_group(f"G{n}") for n in range(3)]
    listing = tmp_path / "keys.txt"
    listing.write_text("\n".join(keys) + "\n")
    monkeypatch.setattr(sys, "stdin", _Terminal("yes\n"))

    run = await cli(
        capsys, "bulk-delete", "--input", str(listing), "--journal", str(tmp_path / "j")
    )

    assert run.code == 0
    assert run.err.startswith(
        f"Delete the 3 group(s) listed in {listing} and every event linked to them? [y/N] "
    )
    assert server.groups == {}


async def test_bulk_delete_from_stdin_needs_yes_and_works_with_it(
    server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    keys = [server.add_group(f"G{n}") for n in range(3)]
    journal = str(tmp_path / "journal.jsonl")
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(keys)))

    refused = await cli(capsys, "bulk-delete", "--input", "-", "--journal", journal)
    assert refused.code == 2
    assert "the keys come from stdin" in refused.err
    assert len(server.groups) == 3

    done = await cli(capsys, "bulk-delete", "--input", "-", "--journal", journal, "--yes")
    assert done.objects == [{"deleted": 3, "missing": 0, "failed": 0, "skipped": 0}]


async def test_bulk_delete_dry_run_prints_what_it_would_delete_and_sends_nothing(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    done, todo = server.add_group("Done"), server.add_group("Todo")
    listing = tmp_path / "keys.txt"
    listing.write_text(f"{done}\n{todo}\n")
    journal = tmp_path / "journal.jsonl"
    journal.write_text(json.dumps({"prokey": done, "outcome": "deleted"}) + "\n")
    before = journal.read_bytes()

    run = await cli(
        capsys, "bulk-delete", "--input", str(listing), "--journal", str(journal), "--dry-run"
    )

    assert run.code == 0
    assert run.objects == [
        {"prokey": todo, "would_delete": True},
        {"would_delete": 1, "skipped": 1, "invalid": 0},
    ]
    assert server.requests == []
    assert journal.read_bytes() == before


async def test_bulk_delete_with_a_damaged_journal_is_refused(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key = server.add_group("Keep")
    listing = tmp_path / "keys.txt"
    listing.write_text(key + "\n")
    journal = tmp_path / "journal.jsonl"
    good = json.dumps({"prokey": MISSING, "outcome": "deleted"})
    journal.write_text(f"{good}\nnot json\n{good}\n")

    run = await cli(
        capsys, "bulk-delete", "--input", str(listing), "--journal", str(journal), "--yes"
    )

    assert run.code == 2
    assert len(run.err_lines) == 1
    assert "damaged at line 2" in run.err
    assert server.requests == []


async def test_bulk_delete_stops_at_a_refused_api_key_journaling_every_key_failed(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    keys = [server.add_group(f"G{n}") for n in range(50)]
    listing = tmp_path / "keys.txt"
    listing.write_text("\n".join(keys))
    journal = tmp_path / "journal.jsonl"

    run = await cli(
        capsys,
        *("--api-key", "wrong", "--concurrency", "2"),
        *("bulk-delete", "--input", str(listing), "--journal", str(journal), "--yes"),
    )

    assert run.code == 1
    assert run.objects == [{"deleted": 0, "missing": 0, "failed": 50, "skipped": 0}]
    [cause, _] = run.err_lines
    assert cause.startswith("failed: 50 keys: 401 ")
    assert "API key was not accepted" in cause
    # Every key is journaled failed, so a re-run (with the right key) sends each again.
    records = journal_lines(journal)
    assert sorted(r["prokey"] for r in records) == sorted(keys)
    assert {r["outcome"] for r in records} == {"failed"}
    assert sum(r["error"].startswith("not tried: 401 ") for r in records) >= 50 - 2 * 2
    # at most the deletes in flight and those finished but not yet reported
    assert len(server.requests) <= 2 * 2
    assert len(server.groups) == 50


async def test_bulk_delete_failures_are_journaled_and_exit_1(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key = server.add_group("G")
    listing = tmp_path / "keys.txt"
    listing.write_text(f"{key}\nnot-a-key\n")
    journal = tmp_path / "journal.jsonl"

    run = await cli(
        capsys, "bulk-delete", "--input", str(listing), "--journal", str(journal), "--yes"
    )

    assert run.code == 1
    assert run.objects == [{"deleted": 1, "missing": 0, "failed": 1, "skipped": 0}]
    [failure] = [r for r in journal_lines(journal) if r["outcome"] == "failed"]
    assert failure["prokey"] == "not-a-key"
    assert "is not a prokey" in failure["error"]
    assert any(line.startswith("failed: not-a-key: ") for line in run.err_lines)


# demo, fake-server, process behaviour -----------------------------------------------------


async def test_demo_proves_nothing_lost(capsys: pytest.CaptureFixture[str]) -> None:
    run = await cli(capsys, "demo", "--groups", "200")

    assert run.code == 0, run.err
    [report] = run.objects
    assert report["proof"] is True
    assert report["groups"] == 200
    assert report["retries"] > 0
    faults = {kind for step in report["steps"] for kind in step["faults"]}
    assert {"5xx", "reset", "lost_reply"} <= faults
    assert "every check held" in run.err_lines[-1]
    assert not any(line.lstrip().startswith("FAIL") for line in run.err_lines)


async def test_fake_server_answers_and_stops_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "asyncgroups",
        "fake-server",
        "--port",
        "0",
        "--groups",
        "3",
        "--page-size",
        "2",  # three groups on two pages: the list below has to read both
        "--api-key",
        "k-123",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    started = json.loads(await asyncio.wait_for(process.stdout.readline(), 10))
    assert started["api_key"] == "k-123"
    env = {**os.environ, "ASYNCGROUPS_BASE_URL": started["url"], "ASYNCGROUPS_API_KEY": "k-123"}
    listed = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "asyncgroups", "list", stdout=asyncio.subprocess.PIPE, env=env
    )
    out, _ = await listed.communicate()
    assert [json.loads(line)["name"] for line in out.splitlines()] == [
        "Group 1",
        "Group 2",
        "Group 3",
    ]

    process.send_signal(signal.SIGTERM)
    err = await asyncio.wait_for(process.stderr.read(), 10)
    await process.wait()

    assert process.returncode == 0
    assert f"export ASYNCGROUPS_BASE_URL={started['url']}" in err.decode()
    assert err.decode().splitlines()[-1] == "fake server stopped"


@pytest.mark.parametrize(
    ("variable", "stale"),
    [
        ("ASYNCGROUPS_CA_FILE", "removed-ca.pem"),  # a file that is gone
        ("ASYNCGROUPS_SHARED_LIMIT", "http://127.0.0.1:6379/0"),  # not a Redis URL
    ],
)
async def test_demo_and_fake_server_ignore_a_stale_client_only_variable(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str,
    stale: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, stale)  # for a client of the API, a usage error

    demo = await cli(capsys, "demo", "--groups", "50")
    process = await start_python_m("fake-server", "--port", "0")
    assert process.stdout is not None
    served = await asyncio.wait_for(process.stdout.readline(), 10)
    process.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(process.communicate(), 10)
    refused = await cli(capsys, "--base-url", json.loads(served)["url"], "--api-key", "k", "list")

    assert demo.code == 0, demo.err
    assert process.returncode == 0, err.decode()
    assert refused.code == 2
    assert variable in refused.err


async def test_bad_key_in_a_real_process_is_one_line_without_traceback() -> None:
    run = await python_m("--api-key", "k", "get", "31a17cce-bbbb")

    assert run.code == 2
    assert len(run.err_lines) == 1
    assert run.err.startswith("asyncgroups: error: prokey '31a17cce-bbbb' is not a prokey")


async def test_closed_stdout_ends_quietly(server: FakeGroupsServer) -> None:
    for n in range(3000):  # more output than a pipe buffers
        server.add_group(f"A group with a longish name, number {n}")

    def list_then_hang_up() -> tuple[int, bytes, bytes]:
        with subprocess.Popen(
            [sys.executable, "-m", "asyncgroups", "list"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as process:
            assert process.stdout is not None
            assert process.stderr is not None
            first = process.stdout.readline()
            process.stdout.close()  # the reader goes away, like `| head -1`
            err = process.stderr.read()
            return process.wait(10), first, err

    code, first, err = await asyncio.to_thread(list_then_hang_up)

    assert json.loads(first)["name"].startswith("A group")
    assert code == 141
    assert err == b""


async def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    helped = await cli(capsys, "--help")
    assert helped.code == 0
    for command in ("get", "list", "create", "update", "delete", "bulk-get", "bulk-delete"):
        assert command in helped.out
    version = await cli(capsys, "--version")
    assert version.code == 0
    assert version.out.startswith("asyncgroups ")


def _exit_codes() -> set[int]:
    """Every exit code the command defines."""
    return {
        value for name in _exits.__all__ if isinstance(value := getattr(_exits, name), int)
    }


def _cli_page_section(heading: str) -> str:
    """The command line's documentation page, from `heading` to the next heading."""
    page = (Path(__file__).parent.parent / "docs" / "cli.md").read_text(encoding="utf-8")
    after = f"\n{page}".split(f"\n{heading}", 1)[1]
    return re.split(r"\n#{1,6} ", after, maxsplit=1)[0]


async def test_help_lists_every_exit_code_with_what_it_means(
    capsys: pytest.CaptureFixture[str],
) -> None:
    helped = await cli(capsys, "--help")

    listed = helped.out.split("\nexit codes:\n", 1)[1]
    meanings = {}
    for line in listed.splitlines():
        code, _, meaning = line.strip().partition(" ")
        if code.isdigit():
            meanings[int(code)] = meaning.strip()
    assert set(meanings) == _exit_codes()
    assert meanings[_exits.WAITING].startswith("sync --apply:")
    assert "another apply" in listed  # a locked state file is exit 1
    assert "answered no" in listed  # so is a question declined


def test_cli_page_lists_every_exit_code() -> None:
    section = _cli_page_section("# The command line")
    codes = section.split("**Exit codes**", 1)[1].split("\n- **", 1)[0]
    assert {int(code) for code in re.findall(r"`(\d+)`", codes)} == _exit_codes()


async def test_cli_page_sync_section_names_every_option_of_sync_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    helped = await cli(capsys, "sync", "--help")

    own = helped.out.split("\noptions:\n", 1)[1].split("\nglobal options", 1)[0]
    options = set(re.findall(r"^  (?:-\w, )?(--[\w-]+)", own, re.MULTILINE)) - {"--help"}
    assert len(options) >= 10
    section = _cli_page_section("## sync")
    assert {option for option in options if f"`{option}" not in section} == set()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
async def test_a_full_disk_on_stdout_is_one_line_and_exit_1(server: FakeGroupsServer) -> None:
    key = server.add_group("G")
    with open("/dev/full", "wb") as full:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "asyncgroups",
            *("--api-key", server.api_key, "--base-url", server.url, "get", key),
            stdout=full,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 1
    assert err.decode().strip() == "asyncgroups: error: No space left on device"


async def test_bulk_get_refuses_to_write_over_its_own_input(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(server.add_group("G") + "\n")

    run = await cli(capsys, "bulk-get", "--input", str(keys), "--output", str(keys))

    assert run.code == 2
    assert "would destroy the keys" in run.err
    assert keys.read_text().strip() in server.groups
    assert server.requests == []


@pytest.mark.parametrize(
    ("host", "message"),
    [("", "expected a host name or address, not ''"), ("a" * 70, "not a valid host name: ")],
)
async def test_fake_server_bad_host_is_a_one_line_usage_error(
    capsys: pytest.CaptureFixture[str], host: str, message: str
) -> None:
    run = await cli(capsys, "fake-server", "--port", "0", "--host", host)

    assert run.code == 2
    [line] = run.err_lines
    assert line.startswith(f"asyncgroups: error: argument --host: {message}")


@pytest.mark.parametrize("port", ["99999", "-1", "65536", "http"])
async def test_fake_server_bad_port_is_a_one_line_usage_error(
    capsys: pytest.CaptureFixture[str], port: str
) -> None:
    run = await cli(capsys, "fake-server", "--port", port)

    assert run.code == 2
    [line] = run.err_lines
    assert line.startswith("asyncgroups: error: argument --port: expected a port")
    assert f"not {port!r}" in line
    assert run.out == ""


async def test_list_output_pipes_into_bulk_get(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [server.add_group(f"Team #{n}") for n in range(4)]  # a '#' is not a comment in JSON
    listed = await cli(capsys, "list")
    created = json.dumps({"id": keys[0]})  # the create reply's spelling
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{listed.out}{created}\n"))

    run = await cli(capsys, "bulk-get", "--input", "-")

    assert run.code == 0, run.err
    assert sorted(g["prokey"] for g in run.objects) == sorted([*keys, keys[0]])
    assert re.fullmatch(r"bulk-get: 5 ok in \d+\.\d s", run.err_lines[-1])


async def test_bulk_delete_takes_the_output_of_get_as_input(
    server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    keys = [server.add_group(f"G{n}") for n in range(3)]
    listing = tmp_path / "groups.jsonl"
    listing.write_text((await cli(capsys, "get", *keys)).out + '{"name": "no key here"}\n')

    run = await cli(
        capsys, "bulk-delete", "--input", str(listing), "--journal", str(tmp_path / "j"), "--yes"
    )

    assert run.code == 1  # the object without a key fails, in one line; the rest is done
    assert run.objects == [{"deleted": 3, "missing": 0, "failed": 1, "skipped": 0}]
    assert server.groups == {}
    [failure] = [line for line in run.err_lines if line.startswith("failed: ")]
    assert "is not a prokey" in failure
