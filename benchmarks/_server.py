"""The server side of the benchmarks: a static aiohttp.web app, run in its own process.

It answers every `GET /v1/group/{key}` with the documented body of a read (a one-element
JSON list whose `events` are `{"prokey": ["..."]}` objects), after an optional delay, over
plain HTTP or TLS. It binds 127.0.0.1 only, prints `PORT <n>` once it listens, and stops
when its standard input closes, so it can never outlive the benchmark that started it.

Run by `benchmarks.__main__` as `python -m benchmarks._server [--latency S] [--cert F --key F]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import ssl
import sys
from typing import Final

from aiohttp import web

#: The documented reply of `GET /group/{prokey}`, the same for every key.
BODY: Final = json.dumps(
    [
        {
            "name": "Team events",
            "status": "published",
            "internal_note": "benchmark",
            "subscription": "external",
            "subscription_cal_url": "https://example.com/team.ics",
            "layout": None,
            "cta": None,
            "cta_block": None,
            "date_created": "2024-05-01T10:00:00Z",
            "date_updated": "2024-05-02T11:30:00Z",
            "events": [
                {"prokey": ["11111111-2222-4333-8444-555555555555"]},
                {"prokey": ["66666666-7777-4888-9999-aaaaaaaaaaaa"]},
            ],
        }
    ],
    separators=(",", ":"),
).encode()

_PREFIX: Final = "/v1/group/"
_NOT_FOUND: Final = b'{"message":"No entry found"}'


def make_app(latency: float) -> web.Application:
    """The app: one catch-all GET route, so routing costs as little as it can."""

    async def read(request: web.Request) -> web.Response:
        if not request.path.startswith(_PREFIX):
            return web.Response(status=404, body=_NOT_FOUND, content_type="application/json")
        if latency > 0:
            await asyncio.sleep(latency)
        return web.Response(body=BODY, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", read)
    return app


async def serve(latency: float, cert: str | None, key: str | None) -> None:
    ssl_context = None
    if cert is not None:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(cert, key)
    runner = web.AppRunner(make_app(latency), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context, backlog=1024)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    print(f"PORT {port}", flush=True)
    loop = asyncio.get_running_loop()
    try:
        # Stop when the parent closes our stdin (or dies): never outlive the benchmark.
        await loop.run_in_executor(None, sys.stdin.buffer.read)
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait per request")
    parser.add_argument("--cert", help="PEM certificate chain (enables TLS)")
    parser.add_argument("--key", help="PEM private key for --cert")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.latency, args.cert, args.key))


if __name__ == "__main__":
    main()
