"""The request pipeline: the only client module that touches aiohttp.

It owns (or borrows) the `aiohttp.ClientSession`, and sends each request through the
limiter with a per-attempt timeout, retries what the policy allows, reads bodies under a
size cap, and maps every aiohttp and asyncio failure to the library's errors, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import json
import logging
import math
import os
import random
import re
import socket
import ssl
import time
import traceback
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, overload
from urllib.parse import unquote, urlsplit
from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

import aiohttp
import attrs

from ._convert import loads
from ._deadline import Deadlines
from ._limiter import ClientLimiter, Limiter
from ._mask import SecretMasker
from ._retry import Failure, RetryPolicy, parse_retry_after, retry_delay, should_retry
from ._secret import Secret
from ._stats import ClientStats
from .errors import (
    APIError,
    ClientStateError,
    NotFoundError,
    RequestTimeout,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
    make_status_error,
)

__all__ = ["AIOHTTP_VERSION", "Pipeline", "proxy_from_env"]

logger = logging.getLogger("asyncgroups")

T = TypeVar("T")

AIOHTTP_VERSION = aiohttp.__version__

#: Idle pooled connections are closed after this many seconds: shorter than the 5 s idle
#: limit common on servers and load balancers, so a reused connection is rarely stale.
KEEPALIVE_TIMEOUT = 4.0

#: The longest message an `UnexpectedResponseError` shows, in characters (the reply
#: itself is on its `.body`).
_MESSAGE_LIMIT = 500

#: The share of an attempt's timeout (at most one second) left after the connect limit.
_CONNECT_MARGIN = 0.1

#: Failures after which the server may have acted on the request.
_UNCERTAIN = frozenset({Failure.DISCONNECT, Failure.TIMEOUT, Failure.BAD_BODY})

#: Backoff and longest 429 cool-down when the client has no retry policy of its own.
_DEFAULT_RETRY = RetryPolicy()
_MAX_RETRY_AFTER = _DEFAULT_RETRY.max_retry_after


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def proxy_from_env(url: str) -> str | None:
    """The proxy `HTTPS_PROXY`/`HTTP_PROXY` name for `url`, unless `NO_PROXY` excludes it.

    Loopback hosts never go through a proxy (a local fake server must stay local). A
    proxy given without a scheme (`proxy.corp:3128`, common in corporate settings) is
    taken as `http://`; a scheme aiohttp cannot use (`socks5://`) is a `ValidationError`
    rather than a proxy silently misused.
    """
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme)
    if not proxy or not parts.hostname or is_loopback(parts.hostname):
        return None
    if proxy_bypass_environment(parts.hostname, proxies):
        return None
    return check_proxy(proxy if "://" in proxy else f"http://{proxy}", source="environment")


def check_proxy(proxy: str, *, source: str = "proxy") -> str:
    """`proxy` if it is an http(s) URL with a host, else `ValidationError`."""
    try:
        parts = urlsplit(proxy)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        shown = _mask_userinfo(proxy)
        raise ValidationError(
            f"the proxy from the {source} must be an http(s) URL with a host, not {shown!r}"
            if source == "environment"
            else f"proxy must be an http(s) URL with a host, not {shown!r}",
            field="proxy",
        )
    return proxy


def _mask_userinfo(url: str) -> str:
    """`url` with any password in it replaced by `***`."""
    scheme, sep, rest = url.rpartition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


def _decode_failure(err: Exception) -> str:
    """What went wrong decoding a reply, in words (a RecursionError's own text is obscure)."""
    if isinstance(err, RecursionError):
        return "it is nested deeper than the decoder allows"
    return str(err) or type(err).__name__


#: Plain words for the errors a connect attempt meets most.
_OS_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ETIMEDOUT: "timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EADDRNOTAVAIL: "address not available",
}


def connect_failure(err: aiohttp.ClientConnectorError) -> str:
    """Why a connection could not be made, naming host and port, in plain words.

    aiohttp's own text ("Cannot connect to host h:1 ssl:<ssl.SSLContext object at
    0x7f…> [Connect call failed ('h', 1)]") shows the TLS context even for http://,
    and is what an app would otherwise pass on to its callers.
    """
    where = _host_port(err.host, err.port)
    if isinstance(err, aiohttp.ClientConnectorDNSError):
        return f"could not resolve host {err.host}: {_os_reason(err.os_error)}"
    if isinstance(err, aiohttp.ClientConnectorCertificateError):
        cert = err.certificate_error
        reason = getattr(cert, "verify_message", None) or getattr(cert, "reason", None) or cert
        return f"TLS certificate verification failed for {where}: {reason}"
    if isinstance(err, aiohttp.ClientSSLError):
        return f"TLS handshake with {where} failed: {_os_reason(err.os_error)}"
    target = "the proxy " if isinstance(err, aiohttp.ClientProxyConnectionError) else ""
    return f"could not connect to {target}{where}: {_os_reason(err.os_error)}"


def _host_port_of(url: str) -> str:
    """`host:port` of a URL, the port filled in from the scheme when it has none."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    return _host_port(parts.hostname or "", port)


def _host_port(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port is not None else shown


def _os_reason(err: OSError) -> str:
    """An OSError's cause in a few lower-case words, without the address it repeats."""
    if isinstance(err, ssl.SSLError) and err.reason:
        return str(err.reason).lower().replace("_", " ")
    codes = {err.errno} if err.errno is not None else set()
    if not codes:
        # asyncio joins the errors of several addresses into one ("Multiple
        # exceptions: [Errno 111] ..., [Errno 111] ..."), without an errno of its own.
        codes = {int(code) for code in re.findall(r"\[Errno (-?\d+)\]", str(err))}
    if isinstance(err, socket.gaierror) and err.strerror:
        return err.strerror[:1].lower() + err.strerror[1:]
    if len(codes) == 1:
        code = codes.pop()
        if code in _OS_REASONS:
            return _OS_REASONS[code]
        with contextlib.suppress(ValueError):
            text = os.strerror(code)
            return text[:1].lower() + text[1:]
    return str(err) or type(err).__name__


def _connection_ready_trace(limiter: ClientLimiter) -> aiohttp.TraceConfig:
    """Hooks that tell `limiter` when each request's connection is ready to send on."""

    async def ready(*_: object) -> None:
        limiter.connected()

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(ready)
    trace.on_connection_reuseconn.append(ready)
    return trace


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    """The system's verifying TLS context, made once (loading the CA store is slow)."""
    return ssl.create_default_context()


def _without_request_head(err: BaseException) -> BaseException:
    """`err` with the locals of aiohttp's request-writer frames in its traceback cleared.

    The writer serialises the request head, the Authorization header among it, to bytes
    and holds them in a local while it writes; a write to a connection that closed
    meanwhile (a stale keep-alive) raises there, and the bytes would be shown by any
    traceback rendered with locals. Those frames keep their names and line numbers.
    """
    seen: set[int] = set()
    exc: BaseException | None = err
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for frame, _ in traceback.walk_tb(exc.__traceback__):
            if frame.f_globals.get("__name__") == "aiohttp.http_writer":
                with contextlib.suppress(RuntimeError):  # a frame still running
                    frame.clear()
        exc = exc.__context__
    return err


def _verifies(context: ssl.SSLContext) -> bool:
    """True when `context` checks both the certificate chain and the host name."""
    return context.verify_mode != ssl.CERT_NONE and context.check_hostname


def request_tls(
    ssl_context: ssl.SSLContext | None,
    session: aiohttp.ClientSession | None,
    *,
    https: bool,
) -> ssl.SSLContext | aiohttp.Fingerprint:
    """The TLS setting every request of a client carries, or `ValidationError`.

    An explicit `ssl_context` wins. A borrowed session's connector is honoured when it
    verifies (for example with a corporate CA) or pins the certificate
    (`aiohttp.Fingerprint`); one that does not verify is refused rather than overridden
    into failures or followed into sending the key unverified. Otherwise the system's
    trust store is used. Over plain http no TLS is made, so nothing is refused.
    """
    if ssl_context is not None:
        if https and not _verifies(ssl_context):
            raise ValidationError(
                "ssl_context does not verify certificates and host names (verify_mode is "
                "CERT_NONE or check_hostname is off); asyncgroups always verifies TLS: pass "
                'a verifying context, e.g. ssl.create_default_context(cafile="ca.pem")',
                field="ssl_context",
            )
        return ssl_context
    # TCPConnector keeps its ssl= (True, False, a context or a Fingerprint) as `_ssl`;
    # aiohttp has no public accessor. Another connector type: the system store.
    setting = getattr(session.connector, "_ssl", True) if session is not None else True
    if isinstance(setting, aiohttp.Fingerprint):
        return setting
    if isinstance(setting, ssl.SSLContext) and _verifies(setting):
        return setting
    if setting is True or not https:
        return _default_ssl_context()
    what = "ssl=False" if setting is False else "an ssl context with verification off"
    raise ValidationError(
        f"the borrowed session's connector does not verify TLS ({what}), and asyncgroups "
        "never sends the API key over unverified TLS: pass ssl_context= to trust a private "
        'CA (e.g. ssl.create_default_context(cafile="ca.pem")), or borrow a session whose '
        "connector verifies",
        field="session",
    )


class Pipeline:
    """Sends requests for one client. Not public: `GroupsClient` wires it up."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        user_agent: str,
        timeout: float,
        max_connections: int,
        retry: RetryPolicy | None,
        limiter: Limiter,
        stats: ClientStats,
        session: aiohttp.ClientSession | None,
        ssl_context: ssl.SSLContext | None,
        proxy: str | None,
        trace_configs: Sequence[aiohttp.TraceConfig],
        max_body_size: int,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.base_url = base_url
        # Held (and handed to aiohttp) as a Secret, whose repr is masked: tracebacks that
        # show frame locals, ours and aiohttp's, then never show the key.
        key = Secret(api_key)
        self._api_key = key
        self._headers = {
            "Authorization": key,
            "Accept": "application/json",
            "User-Agent": user_agent,
        }
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        self._timeout = timeout
        # A socket connect gets most of the attempt's time, but runs out just before the
        # attempt does: a host that never answers the SYN (a firewall, a dead route) is
        # then known as a failure to connect, not just a slow reply.
        self._connect_timeout = timeout - min(timeout * _CONNECT_MARGIN, 1.0)
        self._connect_target = _host_port_of(proxy or base_url)
        self.max_connections = max_connections
        self.retry = retry
        self.limiter = limiter
        self.stats = stats
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
        self._ssl = request_tls(ssl_context, session, https=base_url.lower().startswith("https:"))
        self._proxy = proxy
        secrets: list[str] = [key]
        if proxy and (password := urlsplit(proxy).password):
            secrets += [password, unquote(password)]
        # Every error this pipeline raises passes through it, chained causes included.
        self._masker = SecretMasker(secrets)
        self._trace_configs = list(trace_configs)
        # A rate limit counts when each request really went out. On a session this
        # client makes, aiohttp says when a connection is ready (after any TLS
        # handshake); on a borrowed one, the moment it is handed to aiohttp stands in.
        self._reporting: ClientLimiter | None = None
        if isinstance(limiter, ClientLimiter) and limiter.counts_sends and session is None:
            self._reporting = limiter
            self._trace_configs.append(_connection_ready_trace(limiter))
        self._max_body = max_body_size
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
                limit=self.max_connections,
                limit_per_host=0,
                use_dns_cache=True,
                ttl_dns_cache=300,
                keepalive_timeout=KEEPALIVE_TIMEOUT,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
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
    ) -> T: ...

    @overload
    async def send(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = ...,
        decode: None = ...,
    ) -> None: ...

    async def send(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        decode: Callable[[Any], T] | None = None,
    ) -> T | None:
        """Send one request (with retries); decode its 2xx JSON reply with `decode`.

        Without `decode` the reply body is not parsed and None is returned. A reply
        that is not JSON counts as a failed attempt: retried for GET and DELETE (a
        proxy's garbled page is usually passing), raised for POST and PATCH.
        """
        loop = self._check_usable()
        deadlines = self._deadlines
        assert deadlines is not None  # bound with the loop by _check_usable
        session = self._session
        if session is None or session.closed:
            session = self.open()  # makes an owned session; refuses a closed borrowed one
        url = self.base_url + path
        data = None
        headers = self._headers
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            headers = self._json_headers
        limiter = self.limiter
        attempt = 0
        # True once an attempt failed after it may have reached the server.
        uncertain = False
        # True while every attempt so far failed to connect.
        never_connected = True
        while True:
            attempt += 1
            failure: int | Failure
            error: Exception
            # An error raised without a retry, whatever the policy says.
            fatal: Exception | None = None
            retry_after: float | None = None
            if self.closed:
                raise ClientStateError("this GroupsClient was closed while the call was retrying")
            if self._reporting is not None:
                await self._reporting.acquire(reporting=True)
            else:
                await limiter.acquire()
            started = loop.time()
            try:
                self.stats.requests += 1
                if attempt > 1:
                    self.stats.retries += 1
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
                        raw = await self._read(resp, method, path, url)
                        resp_headers = resp.headers
            except aiohttp.ConnectionTimeoutError as err:
                failure, error = Failure.CONNECT, RequestTimeout(
                    f"{method} {path}: could not connect to {self._connect_target} within "
                    f"{self._connect_timeout:g}s (attempt {attempt})",
                    method=method,
                    url=url,
                )
                error.__cause__ = err
                self._log(method, path, "connect timeout", attempt, loop.time() - started)
            except TimeoutError as err:
                failure, error = Failure.TIMEOUT, RequestTimeout(
                    f"{method} {path}: no complete reply within {self._timeout:g}s "
                    f"(attempt {attempt})",
                    method=method,
                    url=url,
                )
                error.__cause__ = err
                self._log(method, path, "timeout", attempt, loop.time() - started)
            except aiohttp.ClientConnectorCertificateError as err:
                # Not retried (it would fail the same way), but like any failure to
                # connect it means the request never left.
                tls = self._transport_error(method, path, url, connect_failure(err), err)
                tls.never_connected = never_connected
                fatal = tls
            except aiohttp.ClientConnectorError as err:
                failure, error = Failure.CONNECT, self._transport_error(
                    method, path, url, connect_failure(err), err
                )
                self._log(method, path, "connect failed", attempt, loop.time() - started)
            except (aiohttp.ClientError, OSError) as err:
                failure, error = Failure.DISCONNECT, self._transport_error(
                    method, path, url, "connection lost", err
                )
                self._log(method, path, "disconnected", attempt, loop.time() - started)
            else:
                self._log(method, path, status, attempt, loop.time() - started)
                if 200 <= status < 300:
                    if decode is None:
                        return None
                    # Whatever an untrusted body does to the decoder (a RecursionError
                    # from JSON nested 100,000 deep, say) is this reply's failure, an
                    # AsyncGroupsError, and never escapes to sink a bulk call.
                    try:
                        payload = loads(raw) if raw else None
                    except Exception as err:
                        failure, error = Failure.BAD_BODY, self._unexpected(
                            method,
                            path,
                            f"the reply is not the documented JSON: {_decode_failure(err)}",
                            status,
                            raw,
                        )
                    else:
                        try:
                            return decode(payload)
                        except Exception as err:
                            fatal = self._unexpected(
                                method,
                                path,
                                f"the reply is not the documented JSON: {_decode_failure(err)}",
                                status,
                                raw,
                            )
                            fatal.__cause__ = err
                else:
                    failure = status
                    if status in (429, 503) or "Retry-After" in resp_headers:
                        retry_after = parse_retry_after(
                            resp_headers.get("Retry-After"), now=time.time()
                        )
                    error = make_status_error(
                        status,
                        method=method,
                        url=url,
                        path=path,
                        body=self._clean(raw.decode("utf-8", "replace")),
                        headers=resp_headers,
                        retry_after=retry_after,
                    )
            finally:
                limiter.release()
            # Raised here, outside every `except`, so no unscrubbed exception rides along
            # as an implicit __context__.
            if fatal is not None:
                raise self._masker.scrub(fatal)
            never_connected = never_connected and failure is Failure.CONNECT
            retrying = should_retry(self.retry, method, failure, attempt, retry_after=retry_after)
            delay = 0.0
            if retrying or failure == 429:
                # A 429 pauses the whole client, whether or not this call tries again, and
                # for at least the backoff even when Retry-After says "now" or is past.
                delay = retry_delay(
                    self.retry if self.retry is not None else _DEFAULT_RETRY,
                    attempt,
                    retry_after=retry_after,
                    rand=self._rand,
                )
            if failure == 429 and (retry_after is None or retry_after <= self._longest_wait):
                self._cool_down(delay)
            if not retrying:
                if uncertain and isinstance(error, NotFoundError):
                    error.after_uncertain_attempt = True
                if never_connected and isinstance(error, TransportError):
                    error.never_connected = True
                raise self._masker.scrub(error)
            uncertain = uncertain or failure in _UNCERTAIN
            if delay > 0:
                await asyncio.sleep(delay)

    @property
    def _longest_wait(self) -> float:
        """The longest wait a 429 may impose (a longer Retry-After raises at once)."""
        return self.retry.max_retry_after if self.retry is not None else _MAX_RETRY_AFTER

    def _cool_down(self, seconds: float) -> None:
        """Hold every new request of this client for `seconds` after a 429.

        A wait longer than `max_retry_after` is not taken: that call raised at once.
        """
        if 0 < seconds <= self._longest_wait:
            self.stats.cool_downs += 1
            self.limiter.cool_down(seconds)

    async def _read(
        self, resp: aiohttp.ClientResponse, method: str, path: str, url: str
    ) -> bytes:
        # Content-Length counts bytes on the wire, which may be compressed: it can refuse
        # early, but only counting the decoded bytes as they come bounds the memory.
        length = resp.content_length
        if length is not None and length > self._max_body:
            raise self._oversize(method, path, resp.status)
        chunks = []
        size = 0
        async for chunk in resp.content.iter_any():
            size += len(chunk)
            if size > self._max_body:
                raise self._oversize(method, path, resp.status)
            chunks.append(chunk)
        return b"".join(chunks)

    # Errors and logs ----------------------------------------------------------------

    def _clean(self, text: object) -> str:
        """`text` as a string with every spelling of the key (and a proxy password) masked."""
        return self._masker.mask(str(text))

    def _transport_error(
        self, method: str, path: str, url: str, what: str, err: BaseException
    ) -> TransportError:
        if isinstance(err, aiohttp.ClientConnectorError):
            text = what  # connect_failure() already says where and why
        else:
            text = f"{what}: {self._clean(err) or type(err).__name__}"
        error = TransportError(f"{method} {path}: {text}", method=method, url=url)
        # A ClientResponseError carries the request's headers, the key among them.
        if not isinstance(err, aiohttp.ClientResponseError):
            error.__cause__ = _without_request_head(err)
        return error

    def _unexpected(
        self, method: str, path: str, message: str, status: int = 200, raw: bytes = b""
    ) -> APIError:
        # Masked whole, then shortened: a cut through the key would leave a prefix of it.
        text = self._clean(message)
        if len(text) > _MESSAGE_LIMIT:
            text = text[: _MESSAGE_LIMIT - 1] + "…"
        return UnexpectedResponseError(
            text,
            status=status,
            method=method,
            url=self.base_url + path,
            path=path,
            body=self._clean(raw.decode("utf-8", "replace")) if raw else "",
        )

    def _oversize(self, method: str, path: str, status: int) -> APIError:
        return self._unexpected(
            method, path, f"the reply is larger than the {self._max_body} byte cap", status
        )

    def _log(self, method: str, path: str, outcome: object, attempt: int, elapsed: float) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %s (attempt %d, %.1f ms)", method, path, outcome, attempt, elapsed * 1000
            )

