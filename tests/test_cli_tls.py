"""`--ca-file` and `$ASYNCGROUPS_CA_FILE`: a private CA from the command line.

The fake server serves HTTPS with a throwaway trustme CA (`FakeGroupsServer(tls=True)`),
as a corporate proxy or a staging host would with a private CA.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cli_support import cli

from asyncgroups.testing import FakeGroupsServer

HINT = "(a private CA? pass --ca-file or set $ASYNCGROUPS_CA_FILE)"


@pytest.fixture
async def tls_server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeGroupsServer]:
    async with FakeGroupsServer(tls=True) as fake:
        monkeypatch.setenv("ASYNCGROUPS_BASE_URL", fake.url)
        monkeypatch.setenv("ASYNCGROUPS_API_KEY", fake.api_key)
        monkeypatch.setenv("ASYNCGROUPS_RATE_LIMIT", "none")
        monkeypatch.delenv("ASYNCGROUPS_CA_FILE", raising=False)
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        yield fake


@pytest.fixture
def ca_file(tls_server: FakeGroupsServer, tmp_path: Path) -> Path:
    path = tmp_path / "corporate-ca.pem"
    path.write_bytes(tls_server.ca_pem())
    return path


async def test_untrusted_certificate_is_one_line_naming_the_ca_options(
    tls_server: FakeGroupsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    tls_server.add_group("Team")

    run = await cli(capsys, "list")

    assert run.code == 1
    [line] = run.err_lines
    assert line.startswith("asyncgroups: error: GET /group/all")
    assert "TLS certificate verification failed for 127.0.0.1:" in line
    assert line.endswith(HINT)
    assert tls_server.requests == []


async def test_ca_file_option_trusts_the_private_ca(
    tls_server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], ca_file: Path
) -> None:
    key = tls_server.add_group("Team")

    run = await cli(capsys, "--ca-file", str(ca_file), "get", key)

    assert run.code == 0, run.err
    assert [group["prokey"] for group in run.objects] == [key]


async def test_ca_file_variable_trusts_the_private_ca(
    tls_server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    ca_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = tls_server.add_group("Team")
    monkeypatch.setenv("ASYNCGROUPS_CA_FILE", str(ca_file))

    run = await cli(capsys, "list")

    assert run.code == 0, run.err
    assert [summary["prokey"] for summary in run.objects] == [key]


async def test_ca_file_replaces_the_system_store_rather_than_extending_it(
    tls_server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    other = tmp_path / "another-ca.pem"
    async with FakeGroupsServer(tls=True) as elsewhere:
        other.write_bytes(elsewhere.ca_pem())

    run = await cli(capsys, "--ca-file", str(other), "list")

    assert run.code == 1
    assert "TLS certificate verification failed" in run.err
    assert tls_server.requests == []


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "cannot read it: No such file or directory"),
        (b"not a certificate\n", "holds no CA certificate in PEM form"),
        (b"", "holds no CA certificate in PEM form"),
    ],
)
async def test_bad_ca_file_is_a_usage_error_before_any_request(
    tls_server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    content: bytes | None,
    said: str,
) -> None:
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_bytes(content)

    run = await cli(capsys, "--ca-file", str(path), "list")

    assert run.code == 2
    assert run.err_lines == [f"asyncgroups: error: --ca-file {path}: {said}"]
    assert tls_server.requests == []


async def test_bad_ca_file_variable_is_named_in_the_usage_error(
    tls_server: FakeGroupsServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASYNCGROUPS_CA_FILE", str(tmp_path))  # a directory

    run = await cli(capsys, "list")

    assert run.code == 2
    assert run.err_lines == [
        f"asyncgroups: error: $ASYNCGROUPS_CA_FILE {tmp_path}: cannot read it: Is a directory"
    ]
    assert tls_server.requests == []


async def test_bulk_get_with_an_untrusted_certificate_says_it_once(
    tls_server: FakeGroupsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    listing = tmp_path / "keys.txt"
    listing.write_text("\n".join(tls_server.add_group(f"G{n}") for n in range(200)))

    run = await cli(capsys, "bulk-get", "--input", str(listing))

    assert run.code == 1
    [cause, summary] = run.err_lines
    assert cause.startswith("failed: 200 keys: TLS certificate verification failed for ")
    untried = r" \(1\d\d of them not tried: the run stopped sending\)$"
    assert re.search(re.escape(HINT) + untried, cause)
    assert summary.startswith("bulk-get: 0 ok, 200 failed in ")
