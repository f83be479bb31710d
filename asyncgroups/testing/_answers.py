"""How the fake answers one request: the service's routes over the store, and the faults.

`act` does what the real service would do with a request and says what it answers;
`answer_faulty` applies the fault `decide` chose around that (a delay, a status instead,
a dropped connection, a reply cut short). The server's request handler calls them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from ._faults import Decision, format_retry_after, injected_body
from ._store import Shape, Store

__all__ = ["JSON", "UNAUTHORIZED", "act", "answer_faulty", "read_body"]

JSON: Final = "application/json"
UNAUTHORIZED: Final = json.dumps({"message": "Unauthorized"}).encode()
_NO_ROUTE: Final = json.dumps({"message": "Not found"}).encode()
_NOT_ALLOWED: Final = json.dumps({"message": "Method not allowed"}).encode()
_RATE_LIMITED: Final = json.dumps({"message": "Too many requests"}).encode()
# SO_LINGER on with a zero timeout: close() then sends a TCP RST, not a FIN.
_LINGER_RESET: Final = struct.pack("ii", 1, 0)

#: What a request of the service answers: a status and the JSON bytes of its body.
Answer = tuple[int, bytes]


class _NotJSON:
    """Marks a body that is present but not JSON (recorded as None, answered 400)."""


NOT_JSON: Final = _NotJSON()


async def read_body(request: web.Request) -> tuple[bytes, Any]:
    """The request's body as bytes, and as JSON (None when empty, `NOT_JSON` when not)."""
    raw = await request.read() if request.body_exists else b""
    if not raw:
        return raw, None
    try:
        return raw, json.loads(raw)
    except ValueError:
        return raw, NOT_JSON


def act(
    store: Store,
    method: str,
    route: str,
    body: Any,
    *,
    page: str | None,
    shape: Shape,
    page_size: int | None,
) -> Answer:
    """Do what the real service would do with an authorised request; say what it answers."""
    if body is NOT_JSON:
        body = None  # a missing or non-JSON body reaches the rules as a non-object: refused
    if route.startswith("/group/"):
        key = route[7:]
        if method == "GET":
            if key == "all":
                status, data = store.list_all(shape, page=page, page_size=page_size)
            elif key == "latest":
                status, data = store.latest(shape)
            else:
                status, data = store.read(key, shape)
        elif method == "PATCH":
            status, data = store.update(key, body)
        elif method == "DELETE":
            status, data = store.delete(key)
        else:
            return 405, _NOT_ALLOWED
    elif route == "/group":
        if method != "POST":
            return 405, _NOT_ALLOWED
        status, data = store.create(body, shape)
    else:
        return 404, _NO_ROUTE
    return status, json.dumps(data).encode()


async def answer_faulty(
    request: web.Request,
    decision: Decision,
    act_now: Callable[[], Answer],
    *,
    retry_after: float | str,
) -> web.StreamResponse:
    """The response to a request `decision` applies a fault to; `act_now` does the work.

    `retry_after` is what a 429 of the random rate limit says to wait.
    """
    if decision.delay:
        await asyncio.sleep(decision.delay)
    kind = decision.kind
    if kind == "reset":
        return _drop(request, reset=True)
    if kind == "rate_limited":
        headers = {"Retry-After": format_retry_after(retry_after)}
        return web.Response(status=429, body=_RATE_LIMITED, content_type=JSON, headers=headers)
    if kind == "status":
        return _injected_status(decision)
    status, payload = act_now()
    if kind == "lost_reply":
        return _drop(request, reset=False)
    if kind == "malformed":
        # A proper prefix of a JSON object or list is never valid JSON.
        payload = payload[: max(1, len(payload) // 2)]
    return web.Response(status=status, body=payload, content_type=JSON)


def _injected_status(decision: Decision) -> web.Response:
    payload, content_type = injected_body(decision.status, decision.body)
    headers = dict(decision.headers)
    if decision.retry_after is not None:
        headers["Retry-After"] = format_retry_after(decision.retry_after)
    headers.setdefault("Content-Type", content_type)
    return web.Response(status=decision.status, body=payload, headers=headers)


def _drop(request: web.Request, *, reset: bool) -> web.StreamResponse:
    """Close the connection without answering; `reset` sends a TCP RST instead of a FIN.

    The returned response is never sent: writing it to the closed transport raises
    ConnectionResetError inside aiohttp, which aiohttp treats as a client that went
    away (no log line, no warning) and closes the connection.
    """
    transport = request.transport
    if transport is not None:
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        transport.abort()
    return web.Response()
