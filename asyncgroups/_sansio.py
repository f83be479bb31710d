"""What one attempt of a request came to, decided without I/O.

The pipeline (`_http.py`) carries one `Request` down its steps and sends it; what it
learns from one attempt comes here. `classify_reply` reads a status with headers and
body, `classify_failure` a transport failure `_failures` has already named; each gives
an `Attempt`: the decoded value, or the error to raise, and whether the retry policy
tries again and after what `Retry-After`. What the earlier attempts of a call showed is
one `Learnt` value, and `settle` makes the last attempt's error speak for the whole call
(`may_have_acted`, `may_still_be_running`, `never_connected`). Like gidgethub's `sansio`
module, this one performs no I/O of its own: the clock is passed in, the tests are tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Generic, TypeVar

import attrs

from ._config import Options
from ._convert import loads
from ._retry import Failure, parse_retry_after, retry_decision
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
    "NOTHING_LEARNT",
    "Attempt",
    "Learnt",
    "Request",
    "Rules",
    "classify_failure",
    "classify_reply",
    "settle",
    "stopped_error",
]

T = TypeVar("T")

#: Failures after which the request may have reached the server, its reply lost.
LOST_REPLY: Final = frozenset({Failure.DISCONNECT, Failure.TIMEOUT, Failure.BAD_BODY})

#: The longest message an `UnexpectedResponseError` shows, in characters (the reply
#: itself is on its `.body`).
MESSAGE_LIMIT: Final = 500


# Not frozen, like `Attempt`: attrs' frozen __init__ costs 2.4% more instructions per request.
@attrs.define(repr=False)
class Request(Generic[T]):
    """One call as it travels the pipeline: what is sent, how its reply is read, with what.

    Built once by `send` and never changed.
    """

    #: The HTTP method.
    method: str
    #: The path under the base URL, starting with a slash (a page's query included).
    path: str
    #: The base URL and the path: an error's `.url`.
    url: str
    #: The JSON body, encoded (None: no body).
    body: bytes | None
    #: The headers this request passes to aiohttp (None: the session's own).
    headers: Mapping[str, str] | None
    #: Turns a 2xx reply's JSON into the call's value (None: the body is not parsed).
    decode: Callable[[Any], T] | None
    #: The timeout, retry policy and size cap the call is sent with.
    options: Options
    #: Whether this reads a page of the listing (counted apart from other reads).
    page: bool = False

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path})"


@attrs.frozen(kw_only=True)
class Rules:
    """What classifying needs beside the request: fixed for the client's life."""

    #: Masks every spelling of a secret in text that is cut before an error shows it.
    mask: Callable[[str], str]
    #: The Unix time, for a `Retry-After` given as a date.
    clock: Callable[[], float] = time.time


@attrs.define(repr=False)  # not frozen: see `Request`
class Attempt(Generic[T]):
    """One attempt's result: a value, or an error with what to do about it."""

    #: The decoded reply (None without a decoder, or after a failure).
    value: T | None = None
    #: The error this attempt failed with; None on success.
    error: AsyncGroupsError | None = None
    #: How it failed, as the retry policy reads it: a status or a `Failure`; None for a
    #: success, or a failure no retry can change (a reply that decodes to nothing the
    #: caller expects, a body over the size cap).
    failure: int | Failure | None = None
    #: True when the policy tries the request again.
    retry: bool = False
    #: The server's `Retry-After` in seconds, when it sent one that can be read.
    retry_after: float | None = None
    #: Why the policy does (or does not) try again, for the log; "" when it had no say.
    reason: str = ""

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


def classify_reply(
    rules: Rules,
    request: Request[T],
    attempt: int,
    status: int,
    headers: Mapping[str, str],
    body: bytes | None,
) -> Attempt[T]:
    """What attempt number `attempt` (1-based) of `request` came to, answered `status`.

    `body` is None when it was larger than the size cap: never retried. A 2xx reply is
    decoded (`_read_success`); any other status is the error it stands for, retried as
    the policy says (`retry_decision`).
    """
    if body is None:
        text = f"the reply is larger than the {request.options.max_body_size} byte cap"
        return Attempt(None, _unexpected(rules, request, text, status))
    if 200 <= status < 300:
        return _read_success(rules, request, attempt, status, body)
    retry_after = None
    if status in (429, 503) or "Retry-After" in headers:
        retry_after = parse_retry_after(headers.get("Retry-After"), now=rules.clock())
    refused = make_status_error(
        status,
        method=request.method,
        url=request.url,
        path=request.path,
        body=rules.mask(body.decode("utf-8", "replace")),  # masked before it is cut
        headers=headers,
        retry_after=retry_after,
    )
    return _failed(request, attempt, status, refused, retry_after)


def classify_failure(
    request: Request[Any], attempt: int, failure: Failure, error: TransportError
) -> Attempt[Any]:
    """What attempt number `attempt` of `request` came to, failed on the wire as `failure`.

    An untrusted certificate is never retried; anything else is retried as the policy
    says (`retry_decision`).
    """
    return _failed(request, attempt, failure, error)


def _read_success(
    rules: Rules, request: Request[T], attempt: int, status: int, body: bytes
) -> Attempt[T]:
    """A 2xx reply, decoded with `request.decode` (without one, the body is not parsed).

    A body that is not JSON fails like a lost reply (retried for GET and DELETE: a
    proxy's garbled page is usually passing), and so does a web page where no value
    was expected; JSON that the decoder cannot use is never retried.
    """
    decode = request.decode
    if decode is None:
        if not _is_page(body):
            return Attempt(None)
        # A web page, not the API (a wrong base URL, a captive portal): what was
        # asked for did not happen, or nobody can tell.
        text = "the reply is an HTML page, not the API's JSON (is the base URL right?)"
        page = _unexpected(rules, request, text, status, body)
        return _failed(request, attempt, Failure.BAD_BODY, page)
    # Whatever an untrusted body does to the decoder (a RecursionError from JSON
    # nested 100,000 deep, say) is this reply's failure, an AsyncGroupsError, and
    # never escapes to sink a bulk call.
    try:
        payload = loads(body) if body else None
    except Exception as err:
        text = f"the reply is not the documented JSON: {_decode_failure(err)}"
        garbled = _unexpected(rules, request, text, status, body)
        return _failed(request, attempt, Failure.BAD_BODY, garbled)
    try:
        return Attempt(decode(payload))
    except Exception as err:
        text = f"the reply is not the documented JSON: {_decode_failure(err)}"
        unusable = _unexpected(rules, request, text, status, body)
        unusable.__cause__ = err
        return Attempt(None, unusable)


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


def stopped_error(request: Request[Any], *, left: float, reason: str) -> RateLimitError:
    """The error of a request the client does not send: the server's 429s stopped it.

    `left` is how long the stop lasts still, in seconds (the error's `retry_after`);
    `reason` says why the client stopped (`Throttle.reason`).
    """
    error = RateLimitError(
        f"not sent: this client sends nothing for {left:.1f}s more ({reason})",
        status=429,
        method=request.method,
        url=request.url,
        path=request.path,
        retry_after=left,
    )
    error.client_stopped = True
    return error


@attrs.frozen
class Learnt:
    """What the earlier attempts of one call showed, for the error its last one raises."""

    #: An attempt's reply was lost after the request may have reached the server.
    reply_lost: bool = False
    #: An attempt timed out after the request left: the server may still be at it.
    may_be_running: bool = False
    #: An attempt got a connection (so something may have been sent).
    connected: bool = False

    def after(self, result: Attempt[Any]) -> Learnt:
        """What is known once `result`, a failed attempt that is retried, is added."""
        return Learnt(
            reply_lost=self.reply_lost or result.reply_lost,
            may_be_running=self.may_be_running or result.failure is Failure.TIMEOUT,
            connected=self.connected or result.connected,
        )


#: What a call knows before its first attempt.
NOTHING_LEARNT: Final = Learnt()


def settle(error: AsyncGroupsError, earlier: Learnt) -> AsyncGroupsError:
    """`error`, from a call's last attempt, made to speak for every attempt of the call.

    An earlier attempt whose reply was lost may have done the work: the error then
    says `may_have_acted` (a DELETE whose retry got 404 deleted the group). One that
    timed out after the request left may still be running. An earlier 5xx is not
    counted: the server answered, and the later attempt's answer supersedes it (a
    DELETE's 404 after a 503 means the group was not there). A `ConnectError` says
    `never_connected` only when no attempt of the call connected.
    """
    if earlier.reply_lost:
        error.may_have_acted = True
    if earlier.may_be_running:
        error.may_still_be_running = True
    if earlier.connected and isinstance(error, ConnectError):
        error.never_connected = False
    return error


def _failed(
    request: Request[Any],
    attempt: int,
    failure: int | Failure,
    error: AsyncGroupsError,
    retry_after: float | None = None,
) -> Attempt[Any]:
    retry, reason = retry_decision(
        request.options.retry, request.method, failure, attempt, retry_after=retry_after
    )
    return Attempt(None, error, failure, retry, retry_after, reason)


def _unexpected(
    rules: Rules, request: Request[Any], message: str, status: int, raw: bytes = b""
) -> APIError:
    """An `UnexpectedResponseError` whose message and body are masked, then shortened."""
    # Masked whole, then shortened: a cut through the key would leave a prefix of it.
    text = rules.mask(message)
    if len(text) > MESSAGE_LIMIT:
        text = text[: MESSAGE_LIMIT - 1] + "…"
    return UnexpectedResponseError(
        text,
        status=status,
        method=request.method,
        url=request.url,
        path=request.path,
        body=rules.mask(raw.decode("utf-8", "replace")) if raw else "",
    )


def _decode_failure(err: Exception) -> str:
    """What went wrong decoding a reply, in words (a RecursionError's own text is obscure)."""
    if isinstance(err, RecursionError):
        return "it is nested deeper than the decoder allows"
    return str(err) or type(err).__name__
