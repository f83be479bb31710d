"""`FakeGroupsServer`: the Groups API over real sockets, with faults on demand.

The HTTP edge of the testing kit: it records each request, asks the armed faults
(`_faults.ArmedFaults`) what to do with it, and answers through `_answers` over the
in-memory `Store`. With no faults armed (and `record=False`) a request skips all of
that, so benchmarks can use it too.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from typing import Any, Final, Self

from aiohttp import web

from ._answers import JSON, NOT_JSON, UNAUTHORIZED, Answer, act, answer_faulty, read_body
from ._faults import NO_FAULTS, ArmedFaults, Faults, Injection, fault_kind
from ._records import RecordedRequest
from ._store import PAGE_SIZE, Shape, Store
from ._thread import ServingInThread, on_server_loop
from ._tls import FakeCA

__all__ = ["FakeGroupsServer", "RecordedRequest"]

# How long close() lets a request still being handled finish before cancelling it.
_SHUTDOWN_GRACE: Final = 0.25


class FakeGroupsServer(ServingInThread):
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
    Faults come from `faults` (random, replayable from `seed`) and from `inject`
    (one-shot). For synchronous tests, `with server.in_thread():` runs it on a loop of
    its own in a background thread.
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
        _check_options(api_key, shape, page_size)
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
        self._requests: list[RecordedRequest] = []
        self._in_flight = 0
        self._peak = 0
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None
        self._armed = ArmedFaults(faults if faults is not None else NO_FAULTS, seed)
        self._ca = FakeCA() if tls else None

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
            tls = self._ca.server_context(self.host) if self._ca is not None else None
            site = web.TCPSite(runner, self.host, self._port, ssl_context=tls)
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

    async def __aexit__(self, *_: object) -> None:
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
        return self._tls("ssl_context").client_context()

    def ca_pem(self) -> bytes:
        """This server's test CA certificate as PEM (needs `tls=True`), for a tool that
        takes a CA file, such as `asyncgroups --ca-file`."""
        return self._tls("ca_pem").pem()

    def _tls(self, method: str) -> FakeCA:
        if self._ca is None:
            raise RuntimeError(f"{method}() needs FakeGroupsServer(tls=True)")
        return self._ca

    # Seeding and inspection ----------------------------------------------------------

    @on_server_loop
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

    @on_server_loop
    def link_event(self, group_prokey: str) -> str:
        """Link a new event to a group and return the event's prokey."""
        return self._store.link_event(group_prokey)

    @on_server_loop
    def set_drafted_in_app(self, group_prokey: str) -> None:
        """Set a group to draft as the web app does: publishing it through the API is refused."""
        self._store.set_drafted_in_app(group_prokey)

    @property
    @on_server_loop
    def groups(self) -> Mapping[str, Mapping[str, Any]]:
        """A read-only copy of the stored groups: prokey -> fields (`events` a tuple)."""
        return self._store.snapshot()

    @property
    @on_server_loop
    def events(self) -> Mapping[str, str]:
        """A read-only copy of the linked events: event prokey -> group prokey."""
        return self._store.event_owners()

    @property
    def credits(self) -> int:
        """Event credits left; every 5th successful update spends one. Settable."""
        return self._store.credits

    @credits.setter
    @on_server_loop
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

    @on_server_loop
    def reset_stats(self) -> None:
        """Forget the recorded requests and the peak concurrency (state stays)."""
        self._requests.clear()
        self._peak = self._in_flight

    # Faults ----------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The random faults in force; assign a new `Faults` to change them at any time."""
        return self._armed.faults

    @faults.setter
    @on_server_loop
    def faults(self, value: Faults) -> None:
        self._armed.faults = value

    @on_server_loop
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
        kind = fault_kind(
            status=status, reset=reset, lost_reply=lost_reply, malformed=malformed, delay=delay
        )
        injection = Injection(
            kind=kind,
            status=status,
            delay=delay,
            times=times,
            method=method,
            path=path,
            retry_after=retry_after,
            body=body,
            headers=headers,
        )
        self._armed.injections.append(injection)
        return injection

    @property
    def pending_injections(self) -> list[Injection]:
        """The armed injections that have not been used up, in the order they fire."""
        return list(self._armed.injections)

    # Request handling -------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self._in_flight += 1
        self._peak = max(self._peak, self._in_flight)
        try:
            method = request.method
            path = request.path
            route = path[3:] if path.startswith("/v1/") else path
            # Decided before the first await, so the order is the order of arrival.
            decision = self._armed.decide(method, route)
            raw, body = await read_body(request)
            if self.record:
                fault = decision.label if decision is not None else None
                self._requests.append(_record(request, raw, body, fault))
            if decision is None:
                status, payload = self._act(method, route, request, body)
                return web.Response(status=status, body=payload, content_type=JSON)
            return await answer_faulty(
                request,
                decision,
                lambda: self._act(method, route, request, body),
                retry_after=self._armed.faults.retry_after,
            )
        finally:
            self._in_flight -= 1

    def _act(self, method: str, route: str, request: web.Request, body: Any) -> Answer:
        """Do what the real service would do; answer its status and JSON bytes."""
        if request.headers.get("Authorization") != self.api_key:
            return 401, UNAUTHORIZED
        page = request.query.get("page")
        return act(
            self._store, method, route, body, page=page, shape=self.shape, page_size=self.page_size
        )


def _record(request: web.Request, raw: bytes, body: Any, fault: str | None) -> RecordedRequest:
    return RecordedRequest(
        method=request.method,
        path=request.path,
        query=request.query,
        headers=request.headers,
        body=None if body is NOT_JSON else body,
        raw_body=raw,
        fault=fault,
        received_at=time.monotonic(),
    )


def _check_options(api_key: str, shape: Shape, page_size: int | None) -> None:
    if shape not in ("list", "object"):
        raise ValueError(f'shape must be "list" or "object", not {shape!r}')
    if not api_key:
        raise ValueError("api_key must be a non-empty string")
    if page_size is not None and (
        isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1
    ):
        raise ValueError(f"page_size must be a positive int or None, not {page_size!r}")
