"""The exception tree of asyncgroups, and the one place an HTTP status becomes a type.

```
AsyncGroupsError
├── ValidationError (also ValueError)          bad input, caught before any request
├── SubscriptionLockedError                    subscription change with events linked
├── TransportError                             connection failures
│   ├── ConnectError                           never reached the server
│   │   └── ConnectTimeout (also RequestTimeout)
│   └── RequestTimeout
├── APIError (.status .message .method .url .body .request_id)
│   ├── BadRequestError 400/422   ├── AuthenticationError 401
│   ├── PermissionDeniedError 403 ├── NotFoundError 404
│   ├── ConflictError 409         ├── RateLimitError 429 (.retry_after)
│   ├── ServerError 5xx           └── UnexpectedResponseError (3xx, odd status, bad JSON, oversize)
├── LimiterUnavailableError                    a shared limiter's store (Redis) unreachable
└── BulkError (ExceptionGroup)
```

Every error says what it means for the request: `may_have_acted` is True when the server
may have carried it out (so a failed write is not proof that nothing happened), and
`may_still_be_running` when it may even still be doing so (an attempt that timed out
after the request left). Code that must know, such as a sync deciding whether a create
can be sent again, asks the error instead of guessing from its type.

`ClientStateError` (a `RuntimeError`, outside the tree) reports misuse of a client: a
call after `close()` or from another event loop. A broad `except AsyncGroupsError` does
not hide it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, Final, Self

__all__ = [
    "APIError",
    "AsyncGroupsError",
    "AuthenticationError",
    "BadRequestError",
    "BulkError",
    "ClientStateError",
    "ConflictError",
    "ConnectError",
    "ConnectTimeout",
    "LimiterUnavailableError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeout",
    "ServerError",
    "SubscriptionLockedError",
    "TransportError",
    "UnexpectedResponseError",
    "ValidationError",
    "make_status_error",
]

#: How much of a response body an `APIError` keeps, in characters.
BODY_LIMIT = 1000

#: Response headers that carry a request id, in order of preference.
REQUEST_ID_HEADERS = (
    "x-request-id",
    "request-id",
    "x-amzn-requestid",
    "x-correlation-id",
    "cf-ray",
)


class AsyncGroupsError(Exception):
    """Base class of every error asyncgroups raises about a request or its input."""

    #: True when the server may have carried out the request this error is about: in
    #: the attempt that raised it, a connection lost or timed out after the request may
    #: have left, a 5xx (possibly from a proxy in front of a server that did act), a
    #: reply that could not be used (a redirect, a status HTTP does not define as an
    #: answer such as `HTTP/1.1 099`, a body that is not the expected JSON); or an
    #: earlier attempt of the same call lost its reply (a DELETE whose retry got 404,
    #: say). An earlier attempt answered with a 5xx does not count: the server
    #: answered, and the later answer supersedes it. False only when provably nothing
    #: happened: input refused before sending, a failure to connect, a 4xx (429
    #: included).
    may_have_acted: bool = False
    #: True when the server may still be working on the request: an attempt timed out
    #: after the request left, so an empty read right now proves nothing about a write.
    may_still_be_running: bool = False


class ClientStateError(RuntimeError):
    """The client was used in a state that cannot work: closed, or on another event loop."""


class ValidationError(AsyncGroupsError, ValueError):
    """Input was rejected before any request was sent; the message names the field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class SubscriptionLockedError(AsyncGroupsError):
    """The subscription setting cannot change while events are linked to the group."""

    def __init__(self, prokey: str, linked_events: int) -> None:
        super().__init__(
            f"group {prokey}: the subscription cannot change while {linked_events} "
            "event(s) are linked; unlink or delete them first (no PATCH was sent)"
        )
        self.prokey = prokey
        self.linked_events = linked_events

    def __reduce__(self) -> tuple[Any, ...]:
        # The default rebuilds from `args` (the message alone), which this __init__ refuses.
        return (type(self), (self.prokey, self.linked_events), self.__dict__)


# Transport errors ------------------------------------------------------------------


class TransportError(AsyncGroupsError):
    """The request could not be completed on the wire (send or read failed, or connect)."""

    #: True when no attempt of the call could even connect: the request never left
    #: this machine. A bulk call that meets one before any reply stops sending. Only a
    #: `ConnectError` can say so; one raised after an earlier attempt got through says
    #: False.
    never_connected: bool = False
    may_have_acted = True

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.url = url


class RequestTimeout(TransportError):
    """One attempt took longer than the client's `timeout`; the server may still be at it."""

    may_still_be_running = True


class ConnectError(TransportError):
    """No connection could be made (refused, unresolvable, TLS refused): nothing was sent."""

    never_connected = True
    may_have_acted = False


class ConnectTimeout(ConnectError, RequestTimeout):
    """The connection could not be made within the attempt's connect limit: nothing was sent."""

    may_still_be_running = False


# API errors ------------------------------------------------------------------------


class APIError(AsyncGroupsError):
    """The server answered with a status that is not a success."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str,
        url: str,
        path: str | None = None,
        body: str = "",
        request_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.path = path if path is not None else _path_of(url)
        self.message = message
        self.method = method
        self.url = url
        self.body = body[:BODY_LIMIT]
        self.request_id = request_id
        #: What may be the cause, where the server's message does not say (or None).
        self.hint = hint
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"{self.method} {self.path}: {self.status} {self.message}".rstrip()
        if self.hint:
            text += f" ({self.hint})"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.__dict__))


def _rebuild(cls: type[APIError], state: dict[str, Any]) -> APIError:
    err = cls.__new__(cls)
    err.__dict__.update(state)
    Exception.__init__(err, err._describe())
    return err


class BadRequestError(APIError):
    """The server rejected the request as invalid (400 or 422)."""


class AuthenticationError(APIError):
    """The API key was missing or not accepted (401)."""


class PermissionDeniedError(APIError):
    """The API key may not do this (403)."""


class NotFoundError(APIError):
    """No group has that prokey (404).

    With `may_have_acted` set, an earlier attempt of the same call lost its reply: the
    404 then most likely means that attempt did the work (a DELETE, say).
    """


class ConflictError(APIError):
    """The request conflicts with the group's state (409)."""


class RateLimitError(APIError):
    """Too many requests (429); `retry_after` is the server's wait in seconds, if given."""

    #: True when the server's 429s have stopped the client (the rule is `Throttle`'s, in
    #: `asyncgroups._retry`): until `retry_after` seconds from when this was raised,
    #: every request of the client fails at once with such an error, unsent. A bulk call
    #: that meets one stops sending.
    client_stopped: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServerError(APIError):
    """The server failed (5xx); it, or the server behind a proxy, may have acted."""

    may_have_acted = True


class UnexpectedResponseError(APIError):
    """The reply could not be used: a redirect, a status HTTP does not define as an answer,
    a body that is not the expected JSON, or too large."""

    may_have_acted = True


# Limiter ---------------------------------------------------------------------------


class LimiterUnavailableError(AsyncGroupsError):
    """A shared limiter could not reach its store (Redis, say): the request was not sent.

    `backend` names the store and `location` says where it is, without any password.
    """

    def __init__(self, message: str, *, backend: str = "", location: str = "") -> None:
        super().__init__(message)
        self.backend = backend
        self.location = location


# Bulk ------------------------------------------------------------------------------


class BulkError(ExceptionGroup[AsyncGroupsError], AsyncGroupsError):
    """Some keys of a bulk call failed; `.exceptions` holds one error per failed key."""

    def __new__(cls, message: str, exceptions: Sequence[AsyncGroupsError]) -> Self:
        return super().__new__(cls, message, exceptions)

    def derive(self, excs: Sequence[AsyncGroupsError]) -> BulkError:  # type: ignore[override]
        return BulkError(self.message, excs)


# Mapping ---------------------------------------------------------------------------

_STATUS_TYPES: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
}


def error_type_for_status(status: int) -> type[APIError]:
    """Return the `APIError` subclass that stands for an unsuccessful HTTP status.

    Only a 4xx maps to a class whose `may_have_acted` is False: any other status (a
    5xx, a redirect, or one HTTP does not define as a final answer, such as the 99 of
    `HTTP/1.1 099`, a 1xx or a 6xx) leaves open whether the server acted.
    """
    if status in _STATUS_TYPES:
        return _STATUS_TYPES[status]
    if 400 <= status < 500:
        return APIError
    if 500 <= status < 600:
        return ServerError
    return UnexpectedResponseError


def make_status_error(
    status: int,
    *,
    method: str,
    url: str,
    path: str | None = None,
    body: bytes | str,
    headers: Mapping[str, str] | None = None,
    retry_after: float | None = None,
) -> APIError:
    """Build the error for an unsuccessful reply, keeping what the server said.

    The message is the body's JSON `message` (or `error`) when there is one, else a
    short, single-line excerpt of the body (an HTML page from a proxy, say).
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    message = _message_of(text, status)
    request_id = _request_id_of(headers)
    cls = error_type_for_status(status)
    # Only a 429 carries a Retry-After; the other classes do not take one.
    extra: dict[str, Any] = {"retry_after": retry_after} if cls is RateLimitError else {}
    return cls(
        message,
        status=status,
        method=method,
        url=url,
        path=path,
        body=text,
        request_id=request_id,
        hint=key_hint(status, method, message) or _odd_status_hint(status),
        **extra,
    )


#: What a 401 may mean: keys can be given an expiry date, which cannot be changed later.
KEY_REFUSED_HINT: Final = "the API key may be wrong or expired; an expired key needs replacing"
#: What a 403 on a write may mean: a key's scope (Read is the default) cannot be changed.
READ_ONLY_HINT: Final = (
    "the API key may be Read-only; a key's scope cannot be changed, so create a Read & "
    "Write key"
)
#: What a 403 on a read may mean: a key made with the Write scope alone.
WRITE_ONLY_HINT: Final = (
    "the API key may be Write-only; a key's scope cannot be changed, so create a Read & "
    "Write key"
)
# Words by which the server's own message already names the cause (or another one: a
# group drafted in the web app is refused with a 403 of its own).
_SAYS_KEY_CAUSE: Final = ("expire", "invalid", "wrong", "revoked")
_SAYS_SCOPE_CAUSE: Final = (
    "read-only",
    "read only",
    "write-only",
    "write only",
    "scope",
    "access",
    "draft",
    "publish",
)
_WRITES: Final = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def key_hint(status: int, method: str, message: str) -> str | None:
    """What a 401 or 403 may say about the key, unless the server's message says it.

    Never the key itself: the hint is fixed text.
    """
    said = message.lower()
    if status == 401:
        return None if any(word in said for word in _SAYS_KEY_CAUSE) else KEY_REFUSED_HINT
    if status == 403 and not any(word in said for word in _SAYS_SCOPE_CAUSE):
        return READ_ONLY_HINT if method.upper() in _WRITES else WRITE_ONLY_HINT
    return None


#: What a status HTTP does not define as a final answer (`HTTP/1.1 099`, a 1xx, a 6xx) says.
ODD_STATUS_HINT: Final = (
    "not a final status HTTP defines; the server, or something in front of it, may have "
    "acted on the request"
)


def _odd_status_hint(status: int) -> str | None:
    return None if 200 <= status < 600 else ODD_STATUS_HINT


def _message_of(text: str, status: int) -> str:
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(stripped)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to read
            data = None
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        if isinstance(data, dict):
            for name in ("message", "error", "detail"):
                value = data.get(name)
                if isinstance(value, str) and value:
                    return _one_line(value)
    if 300 <= status < 400:
        return "redirect not followed"
    if not stripped:
        return _reason(status)
    if stripped.startswith("<"):
        return f"{_reason(status)} (HTML body)"
    return _one_line(stripped)


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "unexpected status"


def _request_id_of(headers: Mapping[str, str] | None) -> str | None:
    """The first request-id header the server sent, if any."""
    found = (headers[name] for name in REQUEST_ID_HEADERS if headers and headers.get(name))
    return next(found, None)


def _path_of(url: str) -> str:
    """The path (and query) of a URL: what a message shows of it."""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return url
    slash = url.find("/", scheme_end + 3)
    return url[slash:] if slash >= 0 else "/"
