"""Naming aiohttp's and asyncio's failures, once: the library's transport errors.

Like httpx's `map_httpcore_exceptions`, this is the one place an exception from below
becomes the library's own: a `ConnectError` (or `ConnectTimeout`) when nothing left this
machine, a `RequestTimeout` or a plain `TransportError` when the request may have. It
sits at the same edge as `_http.py` and may import aiohttp; it performs no I/O.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import ssl
from typing import Any, Final

import aiohttp

from ._mask import without_request_head
from ._retry import Failure
from ._sansio import Request
from ._urls import host_port
from .errors import ConnectError, ConnectTimeout, RequestTimeout, TransportError

__all__ = ["WIRE_FAILURES", "Named", "connect_failure", "name_failure", "os_reason"]

#: What one attempt on the wire may raise: every one of them is named here.
WIRE_FAILURES: Final = (TimeoutError, aiohttp.ClientError, OSError)

#: How a failure was named: its kind for the retry policy, its error, its log word.
Named = tuple[Failure, TransportError, str]


def name_failure(
    err: BaseException, request: Request[Any], attempt: int, connect_target: str
) -> Named:
    """What `err`, raised by attempt number `attempt` of `request`, was on the wire.

    `connect_target` is the `host:port` a connection is made to (the proxy's, if any).
    The error keeps `err` as its cause, minus what would show the key (see the end).
    """
    method, url, options = request.method, request.url, request.options
    where = f"{method} {request.path}"
    error: TransportError
    if isinstance(err, aiohttp.ConnectionTimeoutError):
        kind, word = Failure.CONNECT, "connect timeout"
        text = f"could not connect to {connect_target} within {options.connect_timeout:g}s"
        error = ConnectTimeout(f"{where}: {text} (attempt {attempt})", method=method, url=url)
    elif isinstance(err, TimeoutError):
        kind, word = Failure.TIMEOUT, "timeout"
        text = f"no complete reply within {options.timeout:g}s (attempt {attempt})"
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
        text = str(err) or type(err).__name__
        error = TransportError(f"{where}: connection lost: {text}", method=method, url=url)
    if isinstance(err, TimeoutError):
        error.__cause__ = err
    elif not isinstance(err, aiohttp.ClientResponseError):
        # Not a ClientResponseError: it carries the request's headers, the key among
        # them. Any other keeps its traceback, minus the serialised request head.
        error.__cause__ = without_request_head(err)
    return kind, error, word


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


#: Plain words for the errors a connect attempt meets most.
_OS_REASONS: Final = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ETIMEDOUT: "timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EADDRNOTAVAIL: "address not available",
}


def os_reason(err: OSError) -> str:
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
