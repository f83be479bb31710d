"""The command line never shows an API key a misbehaving server echoes back.

A small aiohttp.web app on 127.0.0.1 plays a server that echoes the key in spellings
the fake server never uses; the command runs against it, as a user would run it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest
from aiohttp import web
from cli_support import cli

from asyncgroups._mask import SecretMasker

if TYPE_CHECKING:
    from conftest import Serve

KEY = "sk_live_MARKER/slash+plus=="
PROKEYS = [f"31a17cce-bbbb-4ee3-99bb-6144c6a3a{n:03d}" for n in range(3)]


async def test_cli_bulk_delete_masks_an_echoed_key_in_stderr_and_the_journal(
    serve: Serve,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    async def handler(request: web.Request) -> web.Response:
        echoed = request.headers["Authorization"]
        spellings = {
            PROKEYS[0]: echoed.replace("/", "\\/"),
            PROKEYS[1]: "".join(f"\\u{ord(c):04x}" for c in echoed),
            PROKEYS[2]: quote(echoed, safe=""),
        }
        spelled = spellings[request.path.rsplit("/", 1)[-1]]
        return web.Response(
            status=409,
            text='{"message": "conflict for ' + spelled + '"}',
            headers={"X-Request-Id": f"rq-{echoed}"},
            content_type="application/json",
        )

    base = await serve(_app(handler))
    monkeypatch.setenv("ASYNCGROUPS_BASE_URL", base + "/v1")
    monkeypatch.setenv("ASYNCGROUPS_API_KEY", KEY)
    listing = tmp_path / "keys.txt"
    listing.write_text("\n".join(PROKEYS) + "\n")
    journal = tmp_path / "journal.jsonl"

    run = await cli(
        capsys, "bulk-delete", "--input", str(listing), "--journal", str(journal), "--yes"
    )

    assert run.code == 1
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert {r["outcome"] for r in records} == {"failed"}
    assert all("conflict for ***" in r["error"] for r in records)
    masker = SecretMasker([KEY])
    for text in (run.out, run.err, journal.read_text()):
        assert not masker.leaks(text), text
        assert "MARKER" not in text


def _app(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app
