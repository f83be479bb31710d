"""`FakeGroupsServer`: the Groups API over real sockets, with faults on demand.

The HTTP edge of the testing kit: it routes requests to the in-memory `Store`, records
them, and applies the fault `decide` chose. With no faults configured (and
`record=False`) a request skips all of that after one flag check, so benchmarks can use
it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import ssl
import struct
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from aiohttp import web

from ._faults import (
    NO_FAULTS,
    Decision,
    Faults,
    Injection,
    TokenBucket,
    decide,
    format_retry_after,
    injected_body,
)
from ._records import RecordedRequest
from ._store import PAGE_SIZE, Shape, Store

if TYPE_CHECKING:
    import trustme

__all__ = ["FakeGroupsServer", "RecordedRequest"]

_JSON: Final = "application/json"
_UNAUTHORIZED: Final = json.dumps({"message": "Unauthorized"}).encode()
_NO_ROUTE: Final = json.dumps({"message": "Not found"}).encode()
_NOT_ALLOWED: Final = json.dumps({"message": "Method not allowed"}).encode()
_RATE_LIMITED: Final = json.dumps({"message": "Too many requests"}).encode()
# SO_LINGER on with a zero timeout: close() then sends a TCP RST, not a FIN.
_LINGER_RESET: Final = struct.pack("ii", 1, 0)
# How long close() lets a request still being handled finish before cancelling it.
_SHUTDOWN_GRACE: Final = 0.25


class _NotJSON:
    """Marks a body that is present but not JSON (recorded as None, answered 400)."""


_NOT_JSON: Final = _NotJSON()


class FakeGroupsServer:
    """A fake of the Groups API on 127.0.0.1, behaving as its documentation says.

    Use it as `async with FakeGroupsServer() as server:` (or `await server.start()` /
    `await server.close()`) and point a client at `server.url` with `server.api_key`.
    `shape="list"` answers reads as the documented one-element list with
    `{"prokey": ["k"]}` events and `{"success": "Created", "id": …}` creates;
    `shape="object"` answers as the newer documentation (a bare object, string events,
    `landingpage`, plain ids from `/group/all`, `{"status": "success", "message":
    "created", "prokey": …}` creates). `/group/all` is paged like the service, 800
    groups a page in creation order (`?page=2` for the next); `page_size=None` serves
    the whole account at once and ignores `page`, like a server that predates paging.
    Faults come
    from `faults` (random, replayable from `seed`) and from `inject` (one-shot).
    """

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        credits: int = 100,
        faults: Faults | None = None,
        seed: int = 0,
        shape: Shape = "list",
        tls: bool = False,
        record: bool = True,
        keepalive_timeout: float = 75.0,
        page_size: int | None = PAGE_SIZE,
    ) -> None:
        if shape not in ("list", "object"):
            raise ValueError(f'shape must be "list" or "object", not {shape!r}')
        if not api_key:
            raise ValueError("api_key must be a non-empty string")
        if page_size is not None and (
            isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1
        ):
            raise ValueError(f"page_size must be a positive int or None, not {page_size!r}")
        self.api_key = api_key
        #: Groups per page of `GET /group/all` (None: not paged, `?page` ignored).
        self.page_size = page_size
        self.host = host
        self.shape: Shape = shape
        self.seed = seed
        self.record = record
        self._port = port
        self._keepalive_timeout = keepalive_timeout
        self._store = Store(credits=credits, seed=seed)
        self._rng = random.Random(seed)
        self._injections: list[Injection] = []
        self._requests: list[RecordedRequest] = []
        self._in_flight = 0
        self._peak = 0
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None
        self._faults = NO_FAULTS
        self._bucket: TokenBucket | None = None
        self._faulty = False
        self.faults = faults if faults is not None else NO_FAULTS
        self._ca: trustme.CA | None = _make_ca() if tls else None

    # Lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the port and start answering; raises RuntimeError if already started."""
        if self._runner is not None:
            raise RuntimeError("the fake server is already running")
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=_SHUTDOWN_GRACE,
            keepalive_timeout=self._keepalive_timeout,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._port, ssl_context=self._server_ssl())
            await site.start()
            self._bound_port = int(runner.addresses[0][1])
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    async def close(self) -> None:
        """Stop answering and close every connection; calling it again does nothing."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """The base URL to give a client: `http://127.0.0.1:<port>/v1` (https with TLS)."""
        if self._bound_port is None:
            raise RuntimeError("the fake server has not been started")
        scheme = "https" if self._ca is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self._bound_port}/v1"

    @property
    def port(self) -> int:
        """The bound TCP port (known once started)."""
        if self._bound_port is None:
            raise RuntimeError("the fake server has not been started")
        return self._bound_port

    def ssl_context(self) -> ssl.SSLContext:
        """A client-side SSL context that trusts this server's test CA (needs `tls=True`)."""
        if self._ca is None:
            raise RuntimeError("ssl_context() needs FakeGroupsServer(tls=True)")
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context

    def ca_pem(self) -> bytes:
        """This server's test CA certificate as PEM (needs `tls=True`), for a tool that
        takes a CA file, such as `asyncgroups --ca-file`."""
        if self._ca is None:
            raise RuntimeError("ca_pem() needs FakeGroupsServer(tls=True)")
        return self._ca.cert_pem.bytes()

    def _server_ssl(self) -> ssl.SSLContext | None:
        if self._ca is None:
            return None
        names = dict.fromkeys(("127.0.0.1", "localhost", self.host))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(*names).configure_cert(context)
        return context

    # Seeding and inspection ----------------------------------------------------------

    def add_group(
        self,
        name: str = "Test group",
        events: int = 0,
        *,
        prokey: str | None = None,
        **fields: Any,
    ) -> str:
        """Store a group (as the web app would, unvalidated) and return its prokey.

        `events` links that many new events; `fields` set or add stored fields
        (`subscription="external"`, `public_event_overview=True`, …).
        """
        key = self._store.add_group({"name": name, **fields}, prokey=prokey)
        for _ in range(events):
            self._store.link_event(key)
        return key

    def link_event(self, group_prokey: str) -> str:
        """Link a new event to a group and return the event's prokey."""
        return self._store.link_event(group_prokey)

    def set_drafted_in_app(self, group_prokey: str) -> None:
        """Set a group to draft as the web app does: publishing it through the API is refused."""
        self._store.set_drafted_in_app(group_prokey)

    @property
    def groups(self) -> Mapping[str, Mapping[str, Any]]:
        """A read-only copy of the stored groups: prokey -> fields (`events` a tuple)."""
        return self._store.snapshot()

    @property
    def events(self) -> Mapping[str, str]:
        """A read-only copy of the linked events: event prokey -> group prokey."""
        return self._store.event_owners()

    @property
    def credits(self) -> int:
        """Event credits left; every 5th successful update spends one. Settable."""
        return self._store.credits

    @credits.setter
    def credits(self, value: int) -> None:
        self._store.credits = value

    @property
    def updates(self) -> int:
        """How many PATCH requests have succeeded."""
        return self._store.updates

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the recorded requests, in arrival order (empty with `record=False`)."""
        return list(self._requests)

    @property
    def in_flight(self) -> int:
        """How many requests are being handled right now."""
        return self._in_flight

    @property
    def peak_in_flight(self) -> int:
        """The most requests handled at once since the start or `reset_stats()`."""
        return self._peak

    def reset_stats(self) -> None:
        """Forget the recorded requests and the peak concurrency (state stays)."""
        self._requests.clear()
        self._peak = self._in_flight

    # Faults ----------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The random faults in force; assign a new `Faults` to change them at any time."""
        return self._faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        if not isinstance(value, Faults):
            raise TypeError(f"faults must be a Faults, not {type(value).__name__}")
        self._faults = value
        self._bucket = (
            TokenBucket(value.rate_limit, value.bucket_size, time.monotonic())
            if value.rate_limit is not None
            else None
        )
        self._faulty = bool(value.draws or value.latency or value.rate_limit is not None)

    def inject(
        self,
        *,
        status: int | None = None,
        reset: bool = False,
        lost_reply: bool = False,
        malformed: bool = False,
        delay: float = 0.0,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        retry_after: float | str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Injection:
        """Arm a one-shot fault for the next `times` matching requests and return it.

        Give at most one of `status` (answer it without acting: an HTML proxy page for
        a 5xx unless `body` is given; `retry_after` and `headers` are sent with it),
        `reset` (drop the connection before acting), `lost_reply` (act, then drop the
        connection unanswered) or `malformed` (act, answer with the body cut short);
        `delay` seconds are waited first, and alone just slow the request down.
        `method` and `path` (under `/v1`, a prefix: "/group/" + key) narrow the target.
        Injections are used in the order they were armed, before any random fault.
        """
        injection = Injection.armed(
            status=status,
            reset=reset,
            lost_reply=lost_reply,
            malformed=malformed,
            delay=delay,
            times=times,
            method=method,
            path=path,
            retry_after=retry_after,
            body=body,
            headers=headers,
        )
        self._injections.append(injection)
        return injection

    @property
    def pending_injections(self) -> list[Injection]:
        """The armed injections that have not been used up, in the order they fire."""
        return list(self._injections)

    # Request handling -------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self._in_flight += 1
        if self._in_flight > self._peak:
            self._peak = self._in_flight
        try:
            method = request.method
            path = request.path
            route = path[3:] if path.startswith("/v1/") else path
            # Decided before the first await, so the order is the order of arrival.
            decision = (
                decide(
                    method,
                    route,
                    faults=self._faults,
                    rng=self._rng,
                    injections=self._injections,
                    bucket=self._bucket,
                    now=time.monotonic(),
                )
                if self._faulty or self._injections
                else None
            )
            raw = await request.read() if request.body_exists else b""
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = _NOT_JSON
            if self.record:
                self._requests.append(
                    RecordedRequest(
                        method=method,
                        path=path,
                        query=request.query,
                        headers=request.headers,
                        body=None if body is _NOT_JSON else body,
                        raw_body=raw,
                        fault=decision.label if decision is not None else None,
                        received_at=time.monotonic(),
                    )
                )
            if decision is None:
                status, payload = self._act(method, route, request, body)
                return web.Response(status=status, body=payload, content_type=_JSON)
            return await self._answer_faulty(request, decision, method, route, body)
        finally:
            self._in_flight -= 1

    async def _answer_faulty(
        self, request: web.Request, decision: Decision, method: str, route: str, body: Any
    ) -> web.StreamResponse:
        if decision.delay:
            await asyncio.sleep(decision.delay)
        kind = decision.kind
        if kind == "reset":
            return _drop(request, reset=True)
        if kind == "rate_limited":
            return web.Response(
                status=429,
                body=_RATE_LIMITED,
                content_type=_JSON,
                headers={"Retry-After": format_retry_after(self._faults.retry_after)},
            )
        if kind == "status":
            payload, content_type = injected_body(decision.status, decision.body)
            headers = dict(decision.headers)
            if decision.retry_after is not None:
                headers["Retry-After"] = format_retry_after(decision.retry_after)
            headers.setdefault("Content-Type", content_type)
            return web.Response(status=decision.status, body=payload, headers=headers)
        status, payload = self._act(method, route, request, body)
        if kind == "lost_reply":
            return _drop(request, reset=False)
        if kind == "malformed":
            # A proper prefix of a JSON object or list is never valid JSON.
            payload = payload[: max(1, len(payload) // 2)]
        return web.Response(status=status, body=payload, content_type=_JSON)

    def _act(self, method: str, route: str, request: web.Request, body: Any) -> tuple[int, bytes]:
        """Do what the real service would do; answer its status and JSON bytes."""
        if request.headers.get("Authorization") != self.api_key:
            return 401, _UNAUTHORIZED
        store = self._store
        if route.startswith("/group/"):
            key = route[7:]
            if method == "GET":
                if key == "all":
                    status, data = store.list_all(
                        self.shape, page=request.query.get("page"), page_size=self.page_size
                    )
                elif key == "latest":
                    status, data = store.latest(self.shape)
                else:
                    status, data = store.read(key, self.shape)
            elif method == "PATCH":
                status, data = store.update(key, _body_or_refusal(body))
            elif method == "DELETE":
                status, data = store.delete(key)
            else:
                return 405, _NOT_ALLOWED
        elif route == "/group":
            if method != "POST":
                return 405, _NOT_ALLOWED
            status, data = store.create(_body_or_refusal(body), self.shape)
        else:
            return 404, _NO_ROUTE
        return status, json.dumps(data).encode()


def _body_or_refusal(body: Any) -> Any:
    # A missing or non-JSON body reaches the rules as a non-object, which they refuse.
    return None if body is _NOT_JSON else body


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


def _make_ca() -> trustme.CA:
    try:
        import trustme
    except ImportError as err:
        raise ImportError(
            'FakeGroupsServer(tls=True) needs trustme: pip install "asyncgroups[testing]" '
            "(or pip install trustme)"
        ) from err
    return trustme.CA()
