"""The exception tree and the status-to-type mapping: pure, no I/O."""

from __future__ import annotations

import pickle

import pytest
from conftest import KEY
from multidict import CIMultiDict

from asyncgroups import (
    APIError,
    AsyncGroupsError,
    AuthenticationError,
    BadRequestError,
    BulkError,
    ClientStateError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeout,
    ServerError,
    SubscriptionLockedError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
)
from asyncgroups.errors import (
    BODY_LIMIT,
    KEY_REFUSED_HINT,
    ODD_STATUS_HINT,
    READ_ONLY_HINT,
    WRITE_ONLY_HINT,
    error_type_for_status,
    key_hint,
    make_status_error,
)

URL = f"https://api.example.com/v1/group/{KEY}"
PATH = f"/group/{KEY}"


def _error(status: int, body: bytes | str = b"", **kwargs: object) -> APIError:
    return make_status_error(status, method="GET", url=URL, path=PATH, body=body, **kwargs)  # type: ignore[arg-type]


# The tree ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "parents"),
    [
        (ValidationError, (AsyncGroupsError, ValueError)),
        (SubscriptionLockedError, (AsyncGroupsError,)),
        (TransportError, (AsyncGroupsError,)),
        (RequestTimeout, (TransportError, AsyncGroupsError)),
        (APIError, (AsyncGroupsError,)),
        (BadRequestError, (APIError,)),
        (AuthenticationError, (APIError,)),
        (PermissionDeniedError, (APIError,)),
        (NotFoundError, (APIError,)),
        (ConflictError, (APIError,)),
        (RateLimitError, (APIError,)),
        (ServerError, (APIError,)),
        (UnexpectedResponseError, (APIError,)),
        (BulkError, (AsyncGroupsError, ExceptionGroup)),
        (ClientStateError, (RuntimeError,)),
    ],
)
def test_error_classes_form_the_documented_tree(
    cls: type[BaseException], parents: tuple[type, ...]
) -> None:
    for parent in parents:
        assert issubclass(cls, parent)


def test_client_state_error_is_not_hidden_by_a_broad_except() -> None:
    assert not issubclass(ClientStateError, AsyncGroupsError)


@pytest.mark.parametrize(
    "cls", [RequestTimeout, TransportError, SubscriptionLockedError, ValidationError]
)
def test_non_api_errors_are_not_api_errors(cls: type[BaseException]) -> None:
    assert not issubclass(cls, APIError)


# Status to type ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, BadRequestError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (599, ServerError),
        (301, UnexpectedResponseError),
        (302, UnexpectedResponseError),
        (304, UnexpectedResponseError),
        (307, UnexpectedResponseError),
        (308, UnexpectedResponseError),
        (402, APIError),
        (405, APIError),
        (418, APIError),
        (451, APIError),
        # Not a final status HTTP defines: aiohttp hands over "HTTP/1.1 099" as 99.
        (0, UnexpectedResponseError),
        (99, UnexpectedResponseError),
        (100, UnexpectedResponseError),
        (101, UnexpectedResponseError),
        (199, UnexpectedResponseError),
        (600, UnexpectedResponseError),
        (999, UnexpectedResponseError),
    ],
)
def test_make_status_error_maps_status_to_type(status: int, expected: type[APIError]) -> None:
    err = _error(status)
    assert type(err) is expected
    assert error_type_for_status(status) is expected
    assert err.status == status


def test_only_a_4xx_status_proves_the_server_did_not_act() -> None:
    """Every status a reply line can carry (three digits), successes aside."""
    for method in ("POST", "PATCH", "GET", "DELETE"):
        not_acted = {
            status
            for status in range(1000)
            if not 200 <= status < 300
            and not make_status_error(status, method=method, url=URL, body=b"").may_have_acted
        }
        assert not_acted == set(range(400, 500)), method


@pytest.mark.parametrize("status", [0, 99, 101, 600, 999])
def test_a_status_http_does_not_define_says_the_request_may_have_been_carried_out(
    status: int,
) -> None:
    err = make_status_error(status, method="POST", url=URL, body=b"{}")
    assert err.hint == ODD_STATUS_HINT
    assert str(err).endswith(f"({ODD_STATUS_HINT})")


# What an error keeps ----------------------------------------------------------------


def test_api_error_str_reads_method_path_status_and_server_message() -> None:
    err = _error(404, b'{"message": "No entry found"}')
    assert str(err) == f"GET {PATH}: 404 No entry found"
    assert err.message == "No entry found"
    assert err.method == "GET"
    assert err.url == URL
    assert err.path == PATH


def test_api_error_str_adds_the_request_id() -> None:
    headers = CIMultiDict({"X-Request-ID": "req-123"})
    err = _error(500, b'{"message": "boom"}', headers=headers)
    assert err.request_id == "req-123"
    assert str(err) == f"GET {PATH}: 500 boom (request id req-123)"


@pytest.mark.parametrize(
    "header", ["x-request-id", "request-id", "x-amzn-requestid", "x-correlation-id", "cf-ray"]
)
def test_api_error_reads_the_request_id_from_known_headers(header: str) -> None:
    assert _error(500, headers=CIMultiDict({header: "abc"})).request_id == "abc"


def test_api_error_without_request_id_header_has_none() -> None:
    err = _error(500, headers=CIMultiDict({"content-type": "text/plain"}))
    assert err.request_id is None
    assert "request id" not in str(err)


def test_api_error_path_defaults_to_the_path_of_the_url() -> None:
    err = make_status_error(404, method="DELETE", url=URL, body="")
    assert err.path == f"/v1/group/{KEY}"
    assert str(err).startswith(f"DELETE /v1/group/{KEY}: 404")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"message": "No entry found"}', "No entry found"),
        (b'[{"message": "No entry found"}]', "No entry found"),
        (b'{"error": "invalid name"}', "invalid name"),
        (b'{"detail": "bad field"}', "bad field"),
        (b'{"message": "line one\\n  line two"}', "line one line two"),
        (b"plain text reason", "plain text reason"),
        (b"<html><body>Bad gateway</body></html>", "Bad Gateway (HTML body)"),
        (b"", "Bad Gateway"),
        (b"   \n", "Bad Gateway"),
        (b"{not json", "{not json"),
        (b'{"message": 5}', '{"message": 5}'),
    ],
)
def test_make_status_error_keeps_what_the_server_said(body: bytes, message: str) -> None:
    assert _error(502, body).message == message


def test_make_status_error_message_of_a_redirect_says_it_was_not_followed() -> None:
    assert _error(302, b"").message == "redirect not followed"


def test_make_status_error_message_of_an_unknown_status_without_body() -> None:
    assert _error(499, b"").message == "unexpected status"


def test_make_status_error_shortens_a_long_message_to_one_line() -> None:
    err = _error(400, b"x" * 5000)
    assert len(err.message) <= 200
    assert err.message.endswith("\u2026")
    assert "\n" not in str(err)


def test_make_status_error_truncates_the_body() -> None:
    err = _error(500, b"y" * (BODY_LIMIT * 10))
    assert err.body == "y" * BODY_LIMIT


def test_make_status_error_reads_a_body_that_is_not_utf8() -> None:
    err = _error(500, b"caf\xe9 down")
    assert err.message == "caf\ufffd down"


@pytest.mark.parametrize("status", [404, 500])
def test_make_status_error_reads_a_body_nested_too_deep_to_decode(status: int) -> None:
    err = _error(status, b"[" * 100_000 + b"]" * 100_000)  # json.loads: RecursionError
    assert type(err) is error_type_for_status(status)
    assert err.message == "[" * 199 + "…"  # an excerpt, as for any body that is not JSON


def test_rate_limit_error_carries_retry_after() -> None:
    err = _error(429, b'{"message": "slow down"}', retry_after=120.0)
    assert isinstance(err, RateLimitError)
    assert err.retry_after == 120.0
    assert str(err) == f"GET {PATH}: 429 slow down"


def test_rate_limit_error_without_retry_after_has_none() -> None:
    err = _error(429)
    assert isinstance(err, RateLimitError)
    assert err.retry_after is None


def test_subscription_locked_error_says_nothing_was_sent() -> None:
    err = SubscriptionLockedError(KEY, 3)
    assert err.prokey == KEY
    assert err.linked_events == 3
    assert KEY in str(err)
    assert "3 event(s)" in str(err)
    assert "no PATCH was sent" in str(err)


def test_transport_error_keeps_method_and_url() -> None:
    err = RequestTimeout("GET /group/all: no reply", method="GET", url=URL)
    assert (err.method, err.url) == ("GET", URL)


# Errors cross process boundaries (multiprocessing, task queues) ---------------------


@pytest.mark.parametrize(
    "err",
    [
        _error(404, b'{"message": "No entry found"}', headers=CIMultiDict({"x-request-id": "r"})),
        _error(429, b"{}", retry_after=3.0),
        _error(503, b"<html></html>"),
        ValidationError("name must not be empty", field="name"),
        SubscriptionLockedError(KEY, 2),
        TransportError("GET /group/all: connection lost", method="GET", url=URL),
        RequestTimeout("GET /group/all: no reply", method="GET", url=URL),
        ClientStateError("this GroupsClient is closed"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_survive_pickling(err: Exception) -> None:
    copy = pickle.loads(pickle.dumps(err))  # noqa: S301 (our own bytes)
    assert type(copy) is type(err)
    assert str(copy) == str(err)
    assert vars(copy) == vars(err)


# BulkError --------------------------------------------------------------------------


def test_bulk_error_is_an_exception_group_of_the_failures() -> None:
    failures = [_error(500), ValidationError("bad key", field="prokey")]
    err = BulkError("2 of 5 keys failed", failures)
    assert isinstance(err, AsyncGroupsError)
    assert list(err.exceptions) == failures


def test_bulk_error_split_by_type_stays_a_bulk_error() -> None:
    # `except* NotFoundError` splits through this; both halves stay catchable as ours.
    err = BulkError("2 failed", [_error(404), _error(500)])
    found, rest = err.split(NotFoundError)
    assert isinstance(found, BulkError)
    assert isinstance(rest, BulkError)
    assert [type(e) for e in found.exceptions] == [NotFoundError]
    assert [type(e) for e in rest.exceptions] == [ServerError]
    assert found.message == "2 failed"


def test_bulk_error_survives_pickling_with_its_failures() -> None:
    err = BulkError("2 failed", [_error(404), SubscriptionLockedError(KEY, 1)])
    copy = pickle.loads(pickle.dumps(err))  # noqa: S301 (our own bytes)
    assert type(copy) is BulkError
    assert [str(e) for e in copy.exceptions] == [str(e) for e in err.exceptions]


# Hints about the key ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "method", "message", "hint"),
    [
        (401, "GET", "Unauthorized", KEY_REFUSED_HINT),
        (401, "POST", "Unauthorized", KEY_REFUSED_HINT),
        (401, "GET", "API key expired on 2026-01-01", None),  # the server said it
        (401, "GET", "Invalid API key", None),
        (403, "POST", "Forbidden", READ_ONLY_HINT),
        (403, "PATCH", "Forbidden", READ_ONLY_HINT),
        (403, "DELETE", "Forbidden", READ_ONLY_HINT),
        (403, "GET", "Forbidden", WRITE_ONLY_HINT),  # a read refused: a Write-only key
        (403, "PATCH", "This key has Read-only access", None),
        (403, "POST", "missing scope: write", None),
        (403, "PATCH", "This group was set to draft in the application", None),
        (403, "PATCH", "This group cannot be published via API", None),
        (403, "GET", "Access denied", None),
        (404, "DELETE", "No entry found", None),
        (500, "POST", "Internal Server Error", None),
    ],
)
def test_key_hint_names_the_likely_cause_only_when_the_server_does_not(
    status: int, method: str, message: str, hint: str | None
) -> None:
    assert key_hint(status, method, message) == hint


def test_status_error_keeps_the_servers_message_and_adds_the_hint_to_str() -> None:
    err = make_status_error(
        403, method="PATCH", url=URL, path=PATH, body=b'{"message": "Forbidden"}'
    )
    assert err.message == "Forbidden"
    assert err.hint == READ_ONLY_HINT
    assert str(err) == f"PATCH {PATH}: 403 Forbidden ({READ_ONLY_HINT})"
    assert pickle.loads(pickle.dumps(err)).hint == READ_ONLY_HINT  # noqa: S301 (our own bytes)
