"""What one attempt of a request came to, decided without I/O.

The pipeline (`_http.py`) does the sending; everything it learns from one attempt, a
status with headers and body, or a transport failure it has already named, comes here.
`classify` turns that into an `Attempt`: the decoded value, or the error to raise, and
whether the retry policy tries again and after what `Retry-After`. `settle` then makes
the error of the last attempt speak for the whole call (`may_have_acted`,
`may_still_be_running`, `never_connected`). Like gidgethub's `sansio` module, this one
performs no I/O of its own: the clock is passed in, and the tests are tables.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Generic, TypeVar

from ._convert import loads
from ._retry import Failure, RetryPolicy, parse_retry_after, retry_decision
from .errors import (
    APIError,
    AsyncGroupsError,
    ConnectError,
    RateLimitError,
    TransportError,
    UnexpectedResponseError,
    make_status_error,
)

__all__ = [
    "LOST_REPLY",
    "Attempt",
    "Rules",
    "classify",
    "os_reason",
    "settle",
    "stopped_error",
]

T = TypeVar("T")

#: Failures after which the request may have reached the server, its reply lost.
LOST_REPLY: Final = frozenset({Failure.DISCONNECT, Failure.TIMEOUT, Failure.BAD_BODY})

#: The longest message an `UnexpectedResponseError` shows, in characters (the reply
#: itself is on its `.body`).
MESSAGE_LIMIT: Final = 500


class Rules:
    """What `classify` needs to know about one client: fixed for the client's life."""

    __slots__ = ("base_url", "clean", "clock", "max_body_size", "retry")

    def __init__(
        self,
        *,
        base_url: str,
        retry: RetryPolicy | None,
        clean: Callable[[str], str],
        max_body_size: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        #: Prefixed to a path for an error's `.url`.
        self.base_url = base_url
        #: The retry policy (None: never retry).
        self.retry = retry
        #: Masks every spelling of a secret in text an error will show.
        self.clean = clean
        #: The size cap the body was read under, for the oversize message.
        self.max_body_size = max_body_size
        #: The Unix time, for a `Retry-After` given as a date.
        self.clock = clock


class Attempt(Generic[T]):
    """One attempt's result: a value, or an error with what to do about it."""

    __slots__ = ("error", "failure", "reason", "retry", "retry_after", "value")

    def __init__(
        self,
        value: T | None = None,
        error: AsyncGroupsError | None = None,
        failure: int | Failure | None = None,
        retry: bool = False,
        retry_after: float | None = None,
        reason: str = "",
    ) -> None:
        #: The decoded reply (None without a decoder, or after a failure).
        self.value = value
        #: The error this attempt failed with; None on success.
        self.error = error
        #: How it failed, as the retry policy reads it: a status or a `Failure`; None
        #: for a success, or a failure no retry can change (a reply that decodes to
        #: nothing the caller expects, a body over the size cap).
        self.failure = failure
        #: True when the policy tries the request again.
        self.retry = retry
        #: The server's `Retry-After` in seconds, when it sent one that can be read.
        self.retry_after = retry_after
        #: Why the policy does (or does not) try again, for the log; "" when it had no say.
        self.reason = reason

    @property
    def may_have_acted(self) -> bool:
        """True when the server may have carried out this attempt (the error says so)."""
        return self.error is not None and self.error.may_have_acted

    @property
    def reply_lost(self) -> bool:
        """True when the request may have reached the server and its reply was lost."""
        return self.failure in LOST_REPLY

    @property
    def connected(self) -> bool:
        """True unless this attempt failed to connect (and so sent nothing)."""
        return not isinstance(self.error, ConnectError)

    def __repr__(self) -> str:
        if self.error is None:
            return f"Attempt(value={self.value!r})"
        return (
            f"Attempt(error={type(self.error).__name__}, failure={self.failure!r}, "
            f"retry={self.retry}, retry_after={self.retry_after!r})"
        )


#: The result of every 2xx read without a decoder: one object, never changed.
_DONE: Final[Attempt[Any]] = Attempt(None)


def classify(
    rules: Rules,
    method: str,
    path: str,
    attempt: int,
    status: int = 0,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = b"",
    decode: Callable[[Any], T] | None = None,
    *,
    failure: Failure | None = None,
    error: TransportError | None = None,
) -> Attempt[T]:
    """What attempt number `attempt` (1-based) of `method path` came to.

    Give either a reply (`status`, `headers`, `body`: None when it was larger than the
    size cap) or a transport failure (`failure` and the `error` it was named as). A 2xx
    reply is decoded with `decode` (without one, the body is not parsed and the value
    is None). A 2xx body that is not JSON fails like a lost reply (retried for GET and
    DELETE: a proxy's garbled page is usually passing); JSON that `decode` cannot use,
    a body over the cap and an untrusted certificate are never retried. Anything else
    is retried as the policy says (`retry_decision`).
    """
    if failure is not None:
        if error is None:
            raise TypeError("classify(failure=...) needs the error it was named as")
        return _failed(rules, method, attempt, failure, error)
    if body is None:
        text = f"the reply is larger than the {rules.max_body_size} byte cap"
        return Attempt(None, _unexpected(rules, method, path, text, status))
    if 200 <= status < 300:
        if decode is None:
            if not _is_page(body):
                return _DONE
            # A web page, not the API (a wrong base URL, a captive portal): what was
            # asked for did not happen, or nobody can tell.
            text = "the reply is an HTML page, not the API's JSON (is the base URL right?)"
            page = _unexpected(rules, method, path, text, status, body)
            return _failed(rules, method, attempt, Failure.BAD_BODY, page)
        # Whatever an untrusted body does to the decoder (a RecursionError from JSON
        # nested 100,000 deep, say) is this reply's failure, an AsyncGroupsError, and
        # never escapes to sink a bulk call.
        try:
            payload = loads(body) if body else None
        except Exception as err:
            text = f"the reply is not the documented JSON: {_decode_failure(err)}"
            garbled = _unexpected(rules, method, path, text, status, body)
            return _failed(rules, method, attempt, Failure.BAD_BODY, garbled)
        try:
            return Attempt(decode(payload))
        except Exception as err:
            text = f"the reply is not the documented JSON: {_decode_failure(err)}"
            unusable = _unexpected(rules, method, path, text, status, body)
            unusable.__cause__ = err
            return Attempt(None, unusable)
    retry_after = None
    if status in (429, 503) or (headers is not None and "Retry-After" in headers):
        retry_after = parse_retry_after(
            headers.get("Retry-After") if headers is not None else None, now=rules.clock()
        )
    refused = make_status_error(
        status,
        method=method,
        url=rules.base_url + path,
        path=path,
        body=rules.clean(body.decode("utf-8", "replace")),
        headers=headers,
        retry_after=retry_after,
    )
    return _failed(rules, method, attempt, status, refused, retry_after)


def _is_page(body: bytes) -> bool:
    """True for a reply body that is a page of markup, not JSON nor empty.

    Decided on the body alone: servers send `text/html` as their default type with
    JSON and with empty replies alike.
    """
    if body.lstrip()[:1] != b"<":
        return False
    try:
        loads(body)
    except Exception:
        return True
    return False


def stopped_error(
    rules: Rules, method: str, path: str, *, left: float, reason: str
) -> RateLimitError:
    """The error of a request the client does not send: the server's 429s stopped it.

    `left` is how long the stop lasts still, in seconds (the error's `retry_after`);
    `reason` says why the client stopped (`Throttle.reason`).
    """
    error = RateLimitError(
        f"not sent: this client sends nothing for {left:.1f}s more ({reason})",
        status=429,
        method=method,
        url=rules.base_url + path,
        path=path,
        retry_after=left,
    )
    error.client_stopped = True
    return error


def settle(
    error: AsyncGroupsError,
    *,
    earlier_lost: bool,
    earlier_running: bool,
    earlier_connected: bool,
) -> AsyncGroupsError:
    """`error`, from a call's last attempt, made to speak for every attempt of the call.

    An earlier attempt whose reply was lost may have done the work: the error then
    says `may_have_acted` (a DELETE whose retry got 404 deleted the group). One that
    timed out after the request left may still be running. An earlier 5xx is not
    counted: the server answered, and the later attempt's answer supersedes it (a
    DELETE's 404 after a 503 means the group was not there). A `ConnectError` says
    `never_connected` only when no attempt of the call connected.
    """
    if earlier_lost:
        error.may_have_acted = True
    if earlier_running:
        error.may_still_be_running = True
    if earlier_connected and isinstance(error, ConnectError):
        error.never_connected = False
    return error


def _failed(
    rules: Rules,
    method: str,
    attempt: int,
    failure: int | Failure,
    error: AsyncGroupsError,
    retry_after: float | None = None,
) -> Attempt[Any]:
    retry, reason = retry_decision(rules.retry, method, failure, attempt, retry_after=retry_after)
    return Attempt(None, error, failure, retry, retry_after, reason)


def _unexpected(
    rules: Rules, method: str, path: str, message: str, status: int, raw: bytes = b""
) -> APIError:
    """An `UnexpectedResponseError` whose message and body are masked, then shortened."""
    # Masked whole, then shortened: a cut through the key would leave a prefix of it.
    text = rules.clean(message)
    if len(text) > MESSAGE_LIMIT:
        text = text[: MESSAGE_LIMIT - 1] + "…"
    return UnexpectedResponseError(
        text,
        status=status,
        method=method,
        url=rules.base_url + path,
        path=path,
        body=rules.clean(raw.decode("utf-8", "replace")) if raw else "",
    )


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
