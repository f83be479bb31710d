"""Naming aiohttp's and asyncio's failures: what each one was on the wire, as tables.

The exceptions are built as aiohttp raises them; no socket is opened. The pipeline's
own tests (tests/test_http.py) meet the same failures over real sockets.
"""

from __future__ import annotations

import socket
import types
from typing import Any

import aiohttp
import pytest
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

from asyncgroups import ConnectError, ConnectTimeout, RequestTimeout, TransportError
from asyncgroups._config import Options
from asyncgroups._failures import name_failure
from asyncgroups._failures import os_reason as _os_reason
from asyncgroups._retry import Failure
from asyncgroups._sansio import Request

PATH = "/group/31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa"
URL = "https://api.example.com/v1" + PATH
OPTIONS = Options(timeout=2.0, connect_timeout=1.8, retry=None, max_body_size=100)
REQUEST: Request[Any] = Request("GET", PATH, URL, None, None, None, OPTIONS)
HOST = types.SimpleNamespace(host="api.example.com", port=443, ssl=True)


def _refused() -> aiohttp.ClientConnectorError:
    return aiohttp.ClientConnectorError(HOST, ConnectionRefusedError(111, "Connect call failed"))  # type: ignore[arg-type]


def _untrusted() -> aiohttp.ClientConnectorCertificateError:
    return aiohttp.ClientConnectorCertificateError(HOST, ValueError("self-signed"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("err", "kind", "error_type", "word", "text"),
    [
        (
            aiohttp.ConnectionTimeoutError(),
            Failure.CONNECT,
            ConnectTimeout,
            "connect timeout",
            "could not connect to proxy:3128 within 1.8s (attempt 2)",
        ),
        (
            TimeoutError(),
            Failure.TIMEOUT,
            RequestTimeout,
            "timeout",
            "no complete reply within 2s (attempt 2)",
        ),
        (
            _refused(),
            Failure.CONNECT,
            ConnectError,
            "connect failed",
            "could not connect to api.example.com:443: connection refused",
        ),
        (
            _untrusted(),
            Failure.CERTIFICATE,
            ConnectError,
            "certificate refused",
            "TLS certificate verification failed for api.example.com:443: self-signed",
        ),
        (
            aiohttp.ServerDisconnectedError(),
            Failure.DISCONNECT,
            TransportError,
            "disconnected",
            "connection lost: Server disconnected",
        ),
        (
            ConnectionResetError(104, "Connection reset by peer"),
            Failure.DISCONNECT,
            TransportError,
            "disconnected",
            "connection lost: [Errno 104] Connection reset by peer",
        ),
    ],
)
def test_name_failure(
    err: BaseException, kind: Failure, error_type: type[TransportError], word: str, text: str
) -> None:
    named_kind, error, named_word = name_failure(err, REQUEST, 2, "proxy:3128")
    assert (named_kind, type(error), named_word) == (kind, error_type, word)
    assert str(error) == f"GET {PATH}: {text}"
    assert (error.method, error.url) == ("GET", URL)
    assert error.__cause__ is err


def test_name_failure_drops_a_response_error_that_carries_the_request_headers() -> None:
    headers = CIMultiDictProxy(CIMultiDict({"Authorization": "sk_live_0123456789abcdef"}))
    info = aiohttp.RequestInfo(yarl.URL(URL), "GET", headers, yarl.URL(URL))
    err = aiohttp.ClientResponseError(info, (), status=400, message="bad")
    kind, error, _ = name_failure(err, REQUEST, 1, "proxy:3128")
    assert kind is Failure.DISCONNECT
    assert error.__cause__ is None


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)"), "connection refused"),
        (OSError(113, "Connect call failed ('10.0.0.1', 443)"), "host unreachable"),
        (OSError(101, "Network is unreachable"), "network unreachable"),
        (OSError(110, "Connect call failed"), "timed out"),
        (OSError(13, "Connect call failed"), "permission denied"),
        (
            OSError(
                "Multiple exceptions: [Errno 111] Connect call failed ('::1', 1, 0, 0), "
                "[Errno 111] Connect call failed ('127.0.0.1', 1)"
            ),
            "connection refused",
        ),
        (OSError("Multiple exceptions: [Errno 111] a, [Errno 99] b"), None),
        (socket.gaierror(-2, "Name or service not known"), "name or service not known"),
        (OSError(), "OSError"),
    ],
)
def test_os_reason_says_why_a_connect_failed_in_plain_words(
    error: OSError, reason: str | None
) -> None:
    assert _os_reason(error) == (reason if reason is not None else str(error))
