"""The floor: the least work any client can do per request, to show what the server allows.

`concurrency` keep-alive sockets on asyncio's transports, each writing a fixed GET and
reading bytes until the reply's `Content-Length` is in; no HTTP library, no JSON, no
models. It spends about a quarter of the CPU per request that aiohttp does, so what it
reaches against the latency-bound server is as close to the server's own limit as a
client on this machine can get: the share of the ceiling it misses is the server's
(and the machine's), not a client's. Plain HTTP only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

_HEADER_END = b"\r\n\r\n"
_LENGTH = b"\r\ncontent-length:"


class _Connection(asyncio.Protocol):
    """One socket: one request at a time, its reply complete once its body is in."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.reply: asyncio.Future[bool] | None = None
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head = self.buffer.find(_HEADER_END)
        if head < 0 or self.reply is None:
            return
        start = bytes(self.buffer[:head]).lower().find(_LENGTH)
        if start < 0:
            self._fail(ValueError("a reply without Content-Length"))
            return
        end = self.buffer.find(b"\r\n", start + len(_LENGTH))
        length = int(self.buffer[start + len(_LENGTH) : end if end >= 0 else head])
        if len(self.buffer) < head + len(_HEADER_END) + length:
            return
        ok = self.buffer.startswith(b"HTTP/1.1 200 ")
        del self.buffer[: head + len(_HEADER_END) + length]
        reply, self.reply = self.reply, None
        reply.set_result(ok)

    def _fail(self, error: BaseException) -> None:
        self.lost = error
        if self.reply is not None and not self.reply.done():
            self.reply.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lost is None:
            self._fail(exc or ConnectionResetError("the server closed the connection"))

    async def get(self, request: bytes) -> bool:
        if self.lost is not None or self.transport is None:
            raise ConnectionResetError("the connection is gone")
        self.reply = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.reply


@contextlib.asynccontextmanager
async def open_raw_sockets(job: dict[str, Any], api_key: str) -> AsyncIterator[Any]:
    """`concurrency` sockets, opened now; `read(batch)` sends each key's GET on one."""
    url = urlsplit(job["base_url"])
    if url.scheme != "http" or url.hostname is None or url.port is None:
        raise ValueError(f"the raw-socket floor speaks plain HTTP only, not {job['base_url']}")
    host, port = url.hostname, url.port
    loop = asyncio.get_running_loop()
    connections: list[_Connection] = []
    try:
        for _ in range(job["concurrency"]):
            _, protocol = await loop.create_connection(_Connection, host, port)
            connections.append(protocol)
        template = (
            f"GET {url.path}/group/%s HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: {api_key}\r\n\r\n"
        ).encode()

        async def read(batch: Iterable[str]) -> int:
            keys: Iterator[str] = iter(batch)
            ok = 0

            async def worker(connection: _Connection) -> None:
                nonlocal ok
                for key in keys:
                    answered = await connection.get(template % key.encode())
                    ok += answered  # not `ok += await ...`: that reads `ok` before waiting

            async with asyncio.TaskGroup() as workers:
                for connection in connections:
                    workers.create_task(worker(connection))
            return ok

        yield read
    finally:
        for connection in connections:
            if connection.transport is not None:
                connection.transport.close()
