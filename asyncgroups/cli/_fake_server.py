"""fake-server: a FakeGroupsServer in the foreground, for trying the command or an app.

stdout gets one JSON line (`url`, `api_key`, `groups`) so a script can find the port
(`--port 0` picks a free one); stderr gets the `export` lines a person would paste.
Ctrl-C or SIGTERM stops it cleanly, with exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import signal

from ..testing import PAGE_SIZE, FakeGroupsServer, Faults
from ._exits import OK, UsageError
from ._io import open_output, say
from ._settings import ENV, Settings

__all__ = ["cmd_fake_server"]


def _faults(args: argparse.Namespace) -> Faults:
    try:
        return Faults(
            latency=args.latency,
            jitter=args.jitter,
            error_rate=args.error_rate,
            reset_rate=args.reset_rate,
            lost_reply_rate=args.lost_reply_rate,
            malformed_rate=args.malformed_rate,
            rate_limit=args.server_rate_limit,
            burst=args.burst,
            retry_after=args.retry_after,
        )
    except (TypeError, ValueError) as err:
        raise UsageError(f"fake-server: {err}") from None


def _stop_on_signals(stop: asyncio.Event) -> None:
    """Make SIGTERM and SIGINT end the wait; where that is unsupported, Ctrl-C still works."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Not on Windows, nor outside the main thread: KeyboardInterrupt remains.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)


def _reachable(url: str) -> str:
    """The URL a local client should use: a wildcard bind address is not one to dial."""
    return url.replace("//0.0.0.0:", "//127.0.0.1:").replace("//[::]:", "//[::1]:")


async def _serve(args: argparse.Namespace, faults: Faults) -> int:
    server = FakeGroupsServer(
        args.server_api_key,
        host=args.host,
        port=args.port,
        faults=faults,
        page_size=PAGE_SIZE if args.page_size is None else args.page_size or None,
        seed=args.seed,
        shape=args.shape,
        record=False,  # a long-running server must not keep every request
    )
    try:
        await server.start()
    except OSError as err:
        raise UsageError(
            f"cannot listen on {args.host}:{args.port}: {err.strerror or err}"
        ) from None
    try:
        stop = asyncio.Event()
        _stop_on_signals(stop)  # before the URL is out: a script may stop it right away
        for number in range(1, args.groups + 1):
            server.add_group(f"Group {number}")
        url = _reachable(server.url)
        with open_output(None) as out:
            out.write({"url": url, "api_key": server.api_key, "groups": args.groups})
        say(f"fake Groups API on {url} with {args.groups} group(s); Ctrl-C stops it")
        say(f"export {ENV['base_url']}={shlex.quote(url)}")
        say(f"export {ENV['api_key']}={shlex.quote(server.api_key)}")
        await stop.wait()
    finally:
        await server.close()
    say("fake server stopped")
    return OK


def cmd_fake_server(args: argparse.Namespace, settings: Settings) -> int:
    """`fake-server`: serve until Ctrl-C or SIGTERM."""
    if not args.server_api_key.strip():
        raise UsageError("fake-server: --api-key must not be empty")
    return asyncio.run(_serve(args, _faults(args)))
