"""A Redis that echoes what it was sent in its errors never shows the password.

Redis answers an unknown command with its arguments (`-ERR unknown command 'AUTH',
with args beginning with: 'default' '<password>'`): a proxy or an old server in front
of the real one does exactly that to the password the client authenticates with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
import redis.asyncio as aioredis
from conftest import KEY

from asyncgroups import GroupsClient, LimiterUnavailableError
from asyncgroups.contrib.redis import RedisLimiter

PASSWORD = "S3cr3tRedisPassw0rd"
#: Spaces inside: redis-py's text must not be folded before the password is masked.
SPACED = "S3cr3t\tQz7Rx  Passw0rd"


async def _echo_errors(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer every RESP command with an error that repeats its arguments."""
    with contextlib.suppress(ConnectionError, ValueError):
        while line := await reader.readline():
            if not line.startswith(b"*"):
                continue
            args = []
            for _ in range(int(line[1:])):
                await reader.readline()
                args.append((await reader.readline()).rstrip(b"\r\n").decode("latin-1"))
            echoed = " ".join(f"'{arg}'" for arg in args[1:])
            reply = f"-ERR unknown command '{args[0]}', with args beginning with: {echoed}\r\n"
            writer.write(reply.encode("latin-1"))
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def _echoing_redis() -> AsyncIterator[int]:
    server = await asyncio.start_server(_echo_errors, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def _error_and_log(limiter: RedisLimiter, caplog: pytest.LogCaptureFixture) -> str:
    caplog.set_level(logging.DEBUG)
    try:
        async with GroupsClient("k" * 16, base_url="http://127.0.0.1:9/v1", limiter=limiter) as c:
            with pytest.raises(LimiterUnavailableError) as caught:
                await c.groups.get(KEY)
    finally:
        await limiter.aclose()
    return " ".join([str(caught.value), repr(caught.value), repr(limiter), caplog.text])


@pytest.mark.parametrize("password", [PASSWORD, SPACED], ids=["plain", "spaced"])
async def test_redis_limiter_from_a_url_masks_a_password_redis_echoes(
    password: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with _echoing_redis() as port:
        url = f"redis://default:{quote(password, safe='')}@127.0.0.1:{port}/0"
        shown = await _error_and_log(RedisLimiter(url, timeout=0.2), caplog)
    assert "unknown command" in shown  # the reason is there, without the password
    assert not any(piece in shown for piece in password.split())


async def test_redis_limiter_on_a_borrowed_client_masks_its_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with _echoing_redis() as port:
        borrowed = aioredis.Redis(host="127.0.0.1", port=port, username="u", password=PASSWORD)
        try:
            shown = await _error_and_log(RedisLimiter(borrowed, timeout=0.2), caplog)
        finally:
            await borrowed.aclose()
    assert "unknown command" in shown
    assert PASSWORD not in shown
