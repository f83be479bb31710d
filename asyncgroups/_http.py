"""The request pipeline: the only client module that touches aiohttp.

It owns (or borrows) the `aiohttp.ClientSession`, sends each attempt of a request
through the limiter under a per-attempt timeout, reads bodies under a size cap, and
names every aiohttp and asyncio failure once, as the library's transport errors: a
`ConnectError` when nothing left this machine, a `RequestTimeout` or a plain
`TransportError` when the request may have. What an attempt's reply or failure means
(its value, its error, whether it is retried) is decided in `_sansio.classify`, without
I/O; this module only acts on the answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import ssl
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar, overload

import aiohttp
import attrs
from yarl import URL

from ._config import (
    KEEPALIVE_TIMEOUT,
    ClientSettings,
    check_tls,
    host_port,
    host_port_of,
    in_flight_cap,
)
from ._deadline import Deadlines
from ._limiter import CappedLimiter, ClientLimiter, Limiter
from ._mask import SecretMasker, url_secrets, without_request_head
from ._retry import Failure, RetryPolicy, Throttle, log_decision, retry_delay
from ._sansio import Attempt, Rules, classify, os_reason, settle, stopped_error
from ._stats import ClientStats
from .errors import (
    ClientStateError,
    ConnectError,
    ConnectTimeout,
    LimiterUnavailableError,
    RateLimitError,
    RequestTimeout,
    TransportError,
    ValidationError,
)

__all__ = ["AIOHTTP_VERSION", "Pipeline", "borrowed_pool_size", "check_borrowed"]

logger = logging.getLogger("asyncgroups")

T = TypeVar("T")

AIOHTTP_VERSION: Final = aiohttp.__version__

#: Backoff and longest 429 cool-down when the client has no retry policy of its own.
_DEFAULT_RETRY: Final = RetryPolicy()


def check_borrowed(session: aiohttp.ClientSession) -> None:
    """Refuse a borrowed session whose settings would fight the client's own."""
    if session.auth is not None:
        raise ValidationError(
            "the borrowed session has auth= set, which aiohttp cannot combine with the "
            "API key's Authorization header; pass a session without auth",
            field="session",
        )


def borrowed_pool_size(session: aiohttp.ClientSession | None) -> int | None:
    """The connection limit of a borrowed session's connector (0: none; None: no session)."""
    if session is None or session.connector is None:
        return None
    return session.connector.limit


def connect_failure(err: aiohttp.ClientConnectorError) -> str:
    """Why a connection could not be made, naming host and port, in plain words.

    aiohttp's own text ("Cannot connect to host h:1 ssl:<ssl.SSLContext object at
    0x7f…> [Connect call failed ('h', 1)]") shows the TLS context even for http://,
    and is what an app would otherwise pass on to its callers.
    """
    where = host_port(err.host, err.port)
    if isinstance(err, aiohttp.ClientConnectorDNSError):
        return f"could not resolve host {err.host}: {os_reason(err.os_error)}"
    if isinstance(err, aiohttp.ClientConnectorCertificateError):
        cert = err.certificate_error
        reason = getattr(cert, "verify_message", None) or getattr(cert, "reason", None) or cert
        return f"TLS certificate verification failed for {where}: {reason}"
    if isinstance(err, aiohttp.ClientSSLError):
        return f"TLS handshake with {where} failed: {os_reason(err.os_error)}"
    target = "the proxy " if isinstance(err, aiohttp.ClientProxyConnectionError) else ""
    return f"could not connect to {target}{where}: {os_reason(err.os_error)}"


def _connection_ready_trace(limiter: ClientLimiter) -> aiohttp.TraceConfig:
    """Hooks that tell `limiter` when each request's connection is ready to send on."""

    async def ready(*_: object) -> None:
        limiter.connected()

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(ready)
    trace.on_connection_reuseconn.append(ready)
    return trace


def request_tls(
    ssl_context: ssl.SSLContext | None,
    session: aiohttp.ClientSession | None,
    *,
    https: bool,
) -> ssl.SSLContext | aiohttp.Fingerprint:
    """The TLS setting every request of a client carries, or `ValidationError`.

    A borrowed session's connector that pins the certificate (`aiohttp.Fingerprint`)
    is honoured unless `ssl_context` is given; everything else is `check_tls`'s rule.
    """
    # TCPConnector keeps its ssl= (True, False, a context or a Fingerprint) as `_ssl`;
    # aiohttp has no public accessor. Another connector type: the system store.
    setting = getattr(session.connector, "_ssl", True) if session is not None else True
    if ssl_context is None and isinstance(setting, aiohttp.Fingerprint):
        return setting
    return check_tls(ssl_context, setting, https=https)


class Pipeline:
    """Sends requests for one client. Not public: `GroupsClient` wires it up.

    `limiter=None` gives the default `ClientLimiter`: `pool_size` requests in flight at
    most, at `settings.rate_limit` a second. Another kind of limiter is put behind a
    `CappedLimiter` of `pool_size`: it paces, the client keeps its own cap.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        limiter: Limiter | None,
        stats: ClientStats,
        session: aiohttp.ClientSession | None,
        ssl_context: ssl.SSLContext | None,
        trace_configs: Sequence[aiohttp.TraceConfig],
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.base_url = settings.base_url
        # Parsed once: each request's URL is this one with its path extended, already
        # encoded (prokeys are validated), instead of a string parsed again per request.
        self._base = URL(settings.base_url)
        self._base_path = self._base.raw_path.rstrip("/")
        # The key lives only in these header mappings (and, on a session this client
        # makes, in the session's default headers, which hold the same object), as a
        # Secret, whose repr is masked: tracebacks that show frame locals, ours and
        # aiohttp's, never show it.
        key = settings.api_key
        self._headers = {
            "Authorization": key,
            "Accept": "application/json",
            "User-Agent": settings.user_agent,
        }
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        # What each request passes: on a session this client makes, `_headers` are the
        # session's own (aiohttp then copies them instead of merging a mapping into
        # them), so a read passes none and a write only its Content-Type. A borrowed
        # session's headers are the owner's: ours go with every request, and win.
        self._read_headers: Mapping[str, str] | None = None if session is None else self._headers
        self._write_headers: Mapping[str, str] = (
            {"Content-Type": "application/json"} if session is None else self._json_headers
        )
        self._timeout = settings.timeout
        self._connect_timeout = settings.connect_timeout
        self._connect_target = host_port_of(settings.proxy or settings.base_url)
        #: The default concurrency of bulk calls.
        self.max_connections = settings.max_connections
        #: Requests in flight at most, decided once: the pool of a session this client
        #: makes, or `max_connections` capped by a borrowed session's smaller pool (a
        #: wait inside aiohttp's pool would count against the attempt's timeout).
        self.pool_size = in_flight_cap(settings.max_connections, borrowed_pool_size(session))
        self.retry = settings.retry
        #: The limiter as given (or the default one), for `GroupsClient.limiter`.
        self.given_limiter: Limiter = (
            limiter if limiter is not None else ClientLimiter(self.pool_size, settings.rate_limit)
        )
        #: What each attempt passes: a `ClientLimiter` is its own cap; any other limiter
        #: (a shared one) paces behind this client's own in-flight cap.
        self.limiter: Limiter = (
            self.given_limiter
            if isinstance(self.given_limiter, ClientLimiter)
            else CappedLimiter(self.given_limiter, self.pool_size)
        )
        #: What this client sent; only the pipeline writes it.
        self.stats = stats
        #: What the server's 429s told this client: cool down, or stop sending.
        self.throttle = Throttle()
        self._session = session
        self._owns_session = session is None
        # No rounding up of aiohttp's timers to whole seconds: the connect limit must
        # stay inside the attempt's.
        self._request_timeout = attrs.evolve(
            session.timeout if session is not None else aiohttp.ClientTimeout(total=None),
            sock_connect=self._connect_timeout,
            ceil_threshold=math.inf,
        )
        # An explicit setting on every request: a borrowed connector's own verifying
        # context is honoured, and one that does not verify is refused by request_tls.
        self._ssl = request_tls(
            ssl_context, session, https=settings.base_url.lower().startswith("https:")
        )
        self._proxy = settings.proxy
        # Every error this pipeline raises passes through it, chained causes included.
        self._masker = SecretMasker([key, *url_secrets(settings.proxy or "")])
        self._rules = Rules(
            base_url=settings.base_url,
            retry=settings.retry,
            clean=self._masker.mask,
            max_body_size=settings.max_body_size,
        )
        self._trace_configs = list(trace_configs)
        # A rate limit counts when each request really went out. On a session this
        # client makes, aiohttp says when a connection is ready (after any TLS
        # handshake); on a borrowed one, the moment it is handed to aiohttp stands in.
        self._reporting: ClientLimiter | None = None
        chosen = self.limiter
        if isinstance(chosen, ClientLimiter) and chosen.counts_sends and session is None:
            self._reporting = chosen
            self._trace_configs.append(_connection_ready_trace(chosen))
        self._max_body = settings.max_body_size
        self._rand = rand
        self._loop: asyncio.AbstractEventLoop | None = None
        # Each attempt's timeout; made with the loop this client is bound to.
        self._deadlines: Deadlines | None = None
        self.closed = False

    # Lifecycle ----------------------------------------------------------------------

    def _check_usable(self) -> asyncio.AbstractEventLoop:
        if self.closed:
            raise ClientStateError("this GroupsClient is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._deadlines = Deadlines(self._timeout, loop)
        elif loop is not self._loop:
            raise ClientStateError(
                "this GroupsClient was opened in another event loop (for example an earlier "
                "asyncio.run() call or a parent process); create one client per event loop"
            )
        return loop

    def open(self) -> aiohttp.ClientSession:
        """The session, made now if this client owns it and has none yet."""
        self._check_usable()
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.pool_size,
                limit_per_host=0,
                use_dns_cache=True,
                ttl_dns_cache=300,
                keepalive_timeout=KEEPALIVE_TIMEOUT,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                headers=self._headers,
                trace_configs=self._trace_configs or None,
                trust_env=False,  # proxies are resolved once, in proxy_from_env
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True,
            )
            # aiohttp quietly resends an idempotent request once when a pooled
            # connection drops; the retry policy alone decides (and counts) that here.
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
        elif self._session.closed:
            raise ClientStateError("the borrowed aiohttp session is closed")
        return self._session

    async def close(self) -> None:
        """Close the owned session (never a borrowed one). Safe to call again."""
        if self.closed:
            return
        self.closed = True
        session, self._session = self._session, None
        if session is None or not self._owns_session:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self._loop is None or running is self._loop:
            await session.close()
        elif self._loop.is_closed():
            # The loop that owned the sockets is gone; detach so nothing waits on it.
            session.detach()

    # Sending ------------------------------------------------------------------------

    @overload
    async def send(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = ...,
        decode: Callable[[Any], T],
        page: bool = ...,
    ) -> T: ...

    @overload
    async def send(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = ...,
        decode: None = ...,
        page: bool = ...,
    ) -> None: ...

    async def send(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        decode: Callable[[Any], T] | None = None,
        page: bool = False,
    ) -> T | None:
        """Send one request (with retries); decode its 2xx JSON reply with `decode`.

        Without `decode` the reply body is not parsed and None is returned. A PATCH
        that succeeds is counted in `stats.updates_sent`; each attempt is counted as a
        write, a read of one group, or (`page`) a read of a page of the listing. What
        each attempt means is `classify`'s to say; the error raised speaks for the whole
        call (`settle`).
        """
        loop = self._check_usable()
        session = self._session
        if session is None or session.closed:
            session = self.open()  # makes an owned session; refuses a closed borrowed one
        url = self._url(path)
        data = None
        headers = self._read_headers
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            headers = self._write_headers
        attempt = 0
        # What the earlier attempts of this call did, for the error of the last one.
        lost = running = connected = False
        while True:
            attempt += 1
            if self.closed:
                raise ClientStateError("this GroupsClient was closed while the call was retrying")
            try:
                result: Attempt[T] = await self._attempt(
                    loop, session, method, path, url, data, headers, attempt, decode, page
                )
            except (LimiterUnavailableError, RateLimitError) as err:
                # This attempt was never sent; what the earlier ones did still counts.
                raise settle(
                    err,
                    earlier_lost=lost,
                    earlier_running=running,
                    earlier_connected=connected,
                ) from None
            if result.error is None:
                self.throttle.note(None)
                if method == "PATCH":
                    self.stats.updates_sent += 1
                return result.value
            if not await self._back_off(loop, result, method, path, attempt):
                error = settle(
                    result.error,
                    earlier_lost=lost,
                    earlier_running=running,
                    earlier_connected=connected,
                )
                # Raised here, outside every `except`, so no unscrubbed exception rides
                # along as an implicit __context__.
                raise self._masker.scrub(error)
            lost = lost or result.reply_lost
            running = running or result.failure is Failure.TIMEOUT
            connected = connected or result.connected

    async def _attempt(
        self,
        loop: asyncio.AbstractEventLoop,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        url: URL,
        data: bytes | None,
        headers: Mapping[str, str] | None,
        attempt: int,
        decode: Callable[[Any], T] | None,
        page: bool,
    ) -> Attempt[T]:
        """Send attempt number `attempt` under a limiter slot and the timeout; classify it.

        `page`: the attempt reads a page of the listing (counted apart from other reads).
        """
        deadlines = self._deadlines
        assert deadlines is not None  # bound with the loop by _check_usable
        limiter = self.limiter
        throttle = self.throttle
        if throttle.stopped_until > -math.inf:
            self._refuse_while_stopped(loop, method, path)
        if self._reporting is not None:
            await self._reporting.acquire(reporting=True)
        else:
            await limiter.acquire()
        # Timed only for the DEBUG line: the clock is not read when nobody listens.
        debug = logger.isEnabledFor(logging.DEBUG)
        started = loop.time() if debug else 0.0
        try:
            if throttle.stopped_until > -math.inf:  # the client stopped while this waited
                self._refuse_while_stopped(loop, method, path)
            stats = self.stats
            stats.requests += 1
            if method != "GET":
                stats.writes += 1
            elif page:
                stats.pages += 1
            else:
                stats.reads += 1
            if attempt > 1:
                stats.retries += 1
            with deadlines.watch():  # asyncio.timeout(self._timeout), but cheaper
                async with session.request(
                    method,
                    url,
                    data=data,
                    headers=headers,
                    allow_redirects=False,
                    raise_for_status=False,
                    proxy=self._proxy,
                    ssl=self._ssl,
                    timeout=self._request_timeout,
                ) as resp:
                    status = resp.status
                    raw = await self._read(resp)
                    resp_headers = resp.headers
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            failure, error, outcome = self._name_failure(
                err, method, path, self.base_url + path, attempt
            )
            if debug:
                _log(method, path, outcome, attempt, loop.time() - started)
            return classify(self._rules, method, path, attempt, failure=failure, error=error)
        finally:
            limiter.release()
        if debug:
            _log(method, path, status, attempt, loop.time() - started)
        return classify(self._rules, method, path, attempt, status, resp_headers, raw, decode)

    def _url(self, path: str) -> URL:
        """The URL of `path` (which starts with a slash) under the base URL."""
        if "?" in path:  # a page of the listing: let yarl split off the query
            return URL(self.base_url + path)
        return self._base.with_path(self._base_path + path, encoded=True)

    def _refuse_while_stopped(
        self, loop: asyncio.AbstractEventLoop, method: str, path: str
    ) -> None:
        """Raise the `RateLimitError` of an unsent request while the client is stopped."""
        throttle = self.throttle
        left = throttle.stopped_for(loop.time())
        if left > 0:
            raise stopped_error(self._rules, method, path, left=left, reason=throttle.reason)

    async def _back_off(
        self,
        loop: asyncio.AbstractEventLoop,
        result: Attempt[Any],
        method: str,
        path: str,
        attempt: int,
    ) -> bool:
        """Log the retry decision and wait before the next attempt; False when there is none.

        A 429 goes to the `Throttle` first, whether or not this call tries again: it
        pauses the whole client (the limiter's cool-down), or stops it, and then this
        call ends too.
        """
        failure = result.failure
        if failure != 429:
            self.throttle.note(failure)
            if not result.retry:
                if failure is not None:
                    log_decision(method, path, result.reason)
                return False
        policy = self.retry if self.retry is not None else _DEFAULT_RETRY
        delay = retry_delay(policy, attempt, retry_after=result.retry_after, rand=self._rand)
        if failure == 429 and not self._cool_down(loop, result, delay, policy):
            log_decision(method, path, "the client stopped sending after this 429")
            return False
        wait = delay if result.retry else None
        log_decision(
            method, path, result.reason, wait=wait, attempt=attempt, of=policy.max_attempts
        )
        if result.retry and delay > 0:
            await asyncio.sleep(delay)
        return result.retry

    def _cool_down(
        self,
        loop: asyncio.AbstractEventLoop,
        result: Attempt[Any],
        delay: float,
        policy: RetryPolicy,
    ) -> bool:
        """Pause the client after a 429, as the `Throttle` says; False when it stopped."""
        throttle = self.throttle
        stops = throttle.stops
        now = loop.time()
        wait = throttle.met_429(now, delay, result.retry_after, longest=policy.max_retry_after)
        if wait is None:
            error = result.error
            assert isinstance(error, RateLimitError)  # a 429 is always one
            error.client_stopped = True
            if throttle.stops > stops:  # this 429 began the stop
                self.stats.cool_downs += 1
                error.add_note(
                    f"asyncgroups: this client sends nothing for the next "
                    f"{throttle.stopped_for(now):.1f}s ({throttle.reason}); every request "
                    "until then fails at once with a RateLimitError"
                )
            return False
        if wait > 0:
            self.stats.cool_downs += 1
            self.limiter.cool_down(wait)
        return True

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes | None:
        """The reply's body, or None as soon as it is larger than the size cap."""
        # Content-Length counts bytes on the wire, which may be compressed: it can refuse
        # early, but only counting the decoded bytes as they come bounds the memory.
        length = resp.content_length
        if length is not None:
            if length > self._max_body:
                return None
            if "Content-Encoding" not in resp.headers:
                # Not compressed: the body is exactly `length` bytes, under the cap, and
                # (the usual case on a fast connection) already buffered whole.
                content = resp.content
                if content.is_eof():
                    return content.read_nowait()
                return await resp.read()
        chunks = []
        size = 0
        async for chunk in resp.content.iter_any():
            size += len(chunk)
            if size > self._max_body:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    # Naming failures ------------------------------------------------------------------

    def _name_failure(
        self, err: BaseException, method: str, path: str, url: str, attempt: int
    ) -> tuple[Failure, TransportError, str]:
        """What an aiohttp or asyncio failure was on the wire: kind, error, log word."""
        where = f"{method} {path}"
        error: TransportError
        if isinstance(err, aiohttp.ConnectionTimeoutError):
            kind, word = Failure.CONNECT, "connect timeout"
            text = f"could not connect to {self._connect_target} within {self._connect_timeout:g}s"
            error = ConnectTimeout(f"{where}: {text} (attempt {attempt})", method=method, url=url)
        elif isinstance(err, TimeoutError):
            kind, word = Failure.TIMEOUT, "timeout"
            text = f"no complete reply within {self._timeout:g}s (attempt {attempt})"
            error = RequestTimeout(f"{where}: {text}", method=method, url=url)
        elif isinstance(err, aiohttp.ClientConnectorError):
            # A certificate that is not trusted is not retried (it would fail the same
            # way), but like any failure to connect it means the request never left.
            untrusted = isinstance(err, aiohttp.ClientConnectorCertificateError)
            kind = Failure.CERTIFICATE if untrusted else Failure.CONNECT
            word = "certificate refused" if untrusted else "connect failed"
            error = ConnectError(f"{where}: {connect_failure(err)}", method=method, url=url)
        else:
            kind, word = Failure.DISCONNECT, "disconnected"
            text = self._masker.mask(str(err)) or type(err).__name__
            error = TransportError(f"{where}: connection lost: {text}", method=method, url=url)
        if isinstance(err, TimeoutError):
            error.__cause__ = err
        elif not isinstance(err, aiohttp.ClientResponseError):
            # Not a ClientResponseError: it carries the request's headers, the key among
            # them. Any other keeps its traceback, minus the serialised request head.
            error.__cause__ = without_request_head(err)
        return kind, error, word


def _log(method: str, path: str, outcome: object, attempt: int, elapsed: float) -> None:
    """The DEBUG line of one attempt: method, path, status or failure, attempt, time."""
    logger.debug(
        "%s %s -> %s (attempt %d, %.1f ms)", method, path, outcome, attempt, elapsed * 1000
    )
