"""`classify_reply`, `classify_failure` and `settle`: what one attempt came to, as tables.

Like gidgethub's `TestDecipherResponse`: one class per function, a test per row of
behaviour. The clock is fixed and the retry policy is given, so nothing sleeps.
"""

from __future__ import annotations

from typing import Any

import pytest

from asyncgroups import (
    APIError,
    ConnectError,
    ConnectTimeout,
    NotFoundError,
    RateLimitError,
    RequestTimeout,
    RetryPolicy,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
)
from asyncgroups._config import Options
from asyncgroups._retry import Failure
from asyncgroups._sansio import (
    Attempt,
    Learnt,
    Request,
    Rules,
    classify_failure,
    classify_reply,
    settle,
)

BASE = "https://api.example.com/v1"
PATH = "/group/31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa"
NOW = 1_700_000_000.0
SECRET = "sk_live_0123456789abcdef"


DEFAULT_POLICY = RetryPolicy()


def _rules() -> Rules:
    return Rules(mask=lambda text: text.replace(SECRET, "***"), clock=lambda: NOW)


def _request(
    method: str = "GET",
    *,
    decode: Any = None,
    retry: RetryPolicy | None = DEFAULT_POLICY,
    max_body_size: int = 100,
) -> Request[Any]:
    options = Options(timeout=1.0, connect_timeout=0.9, retry=retry, max_body_size=max_body_size)
    return Request(method, PATH, BASE + PATH, None, None, decode, options)


def _reply(
    status: int,
    body: bytes | None = b"",
    *,
    method: str = "GET",
    attempt: int = 1,
    headers: dict[str, str] | None = None,
    decode: Any = None,
    retry: RetryPolicy | None = DEFAULT_POLICY,
) -> Attempt[Any]:
    request = _request(method, decode=decode, retry=retry)
    return classify_reply(_rules(), request, attempt, status, headers or {}, body)


def _failure(
    failure: Failure, error: TransportError, *, method: str = "GET", attempt: int = 1
) -> Attempt[Any]:
    return classify_failure(_request(method), attempt, failure, error)


class TestClassifyReply:
    def test_2xx_is_decoded(self) -> None:
        result = _reply(200, b'{"a": 1}', decode=lambda payload: payload["a"])
        assert (result.value, result.error, result.retry) == (1, None, False)

    def test_2xx_without_a_decoder_is_none_unparsed(self) -> None:
        result = _reply(204, b"not json at all")
        assert (result.value, result.error) == (None, None)

    @pytest.mark.parametrize(
        ("method", "body", "headers", "retry"),
        [
            ("DELETE", b"<!doctype html><p>Sign in to the Wi-Fi</p>", None, True),
            ("PATCH", b"  <html><body>Welcome</body></html>", None, False),
            ("DELETE", b"<?xml version='1.0'?><error/>", None, True),
        ],
    )
    def test_2xx_html_page_without_a_decoder_is_not_done(
        self, method: str, body: bytes, headers: dict[str, str] | None, retry: bool
    ) -> None:
        # A web page where the API should be (a wrong base URL, a captive portal): the
        # delete or update did not happen, or nobody can tell, so it is not "done".
        result = _reply(200, body, method=method, headers=headers)
        assert isinstance(result.error, UnexpectedResponseError)
        assert "HTML page" in str(result.error)
        assert result.retry is retry

    @pytest.mark.parametrize("body", [b"", b'{"success": "Deleted"}', b"OK"])
    def test_2xx_without_a_decoder_typed_html_but_not_a_page_is_done(self, body: bytes) -> None:
        # `text/html` is many servers' default type, JSON and empty replies included.
        result = _reply(200, body, method="DELETE", headers={"Content-Type": "text/html"})
        assert (result.value, result.error) == (None, None)

    def test_2xx_empty_body_decodes_as_none(self) -> None:
        assert _reply(200, b"", decode=lambda payload: payload).value is None

    @pytest.mark.parametrize(
        ("method", "retry"), [("GET", True), ("DELETE", True), ("POST", False)]
    )
    def test_2xx_body_that_is_not_json_is_a_lost_reply(self, method: str, retry: bool) -> None:
        result = _reply(200, b"<html>", method=method, decode=lambda payload: payload)
        assert isinstance(result.error, UnexpectedResponseError)
        assert result.failure is Failure.BAD_BODY
        assert result.reply_lost
        assert result.retry is retry
        assert result.may_have_acted

    def test_2xx_json_the_decoder_refuses_is_never_retried(self) -> None:
        def refuse(payload: object) -> object:
            raise ValueError("no prokey")

        result = _reply(200, b"{}", decode=refuse)
        assert isinstance(result.error, UnexpectedResponseError)
        assert isinstance(result.error.__cause__, ValueError)
        assert (result.failure, result.retry) == (None, False)
        assert "no prokey" in result.error.message

    def test_2xx_nested_too_deep_says_so(self) -> None:
        deep = b"[" * 100_000 + b"]" * 100_000
        result = _reply(200, deep, decode=lambda payload: payload)
        assert isinstance(result.error, UnexpectedResponseError)
        assert "nested deeper" in result.error.message

    def test_body_over_the_cap_is_never_retried(self) -> None:
        result = _reply(200, None, decode=lambda payload: payload)
        assert isinstance(result.error, UnexpectedResponseError)
        assert "larger than the 100 byte cap" in result.error.message
        assert (result.failure, result.retry) == (None, False)

    def test_404_is_not_found_and_not_retried(self) -> None:
        result = _reply(404, b'{"message": "No entry found"}', method="DELETE")
        assert isinstance(result.error, NotFoundError)
        assert result.error.message == "No entry found"
        assert (result.failure, result.retry, result.may_have_acted) == (404, False, False)

    @pytest.mark.parametrize(("method", "retry"), [("GET", True), ("PATCH", False)])
    def test_503_is_retried_only_for_idempotent_methods(self, method: str, retry: bool) -> None:
        result = _reply(503, b"busy", method=method)
        assert isinstance(result.error, ServerError)
        assert result.retry is retry
        assert result.may_have_acted  # a proxy's 5xx may hide a server that acted
        assert not result.reply_lost  # but the server answered

    @pytest.mark.parametrize("method", ["GET", "POST", "PATCH"])
    def test_429_is_retried_for_every_method(self, method: str) -> None:
        result = _reply(429, b"", method=method, headers={"Retry-After": "2"})
        assert isinstance(result.error, RateLimitError)
        assert result.error.retry_after == 2.0
        assert (result.retry_after, result.retry, result.may_have_acted) == (2.0, True, False)

    def test_429_retry_after_as_a_date_is_read_with_the_given_clock(self) -> None:
        result = _reply(429, headers={"Retry-After": "Tue, 14 Nov 2023 22:13:30 GMT"})
        assert result.retry_after == 10.0

    def test_429_retry_after_over_the_cap_is_not_retried(self) -> None:
        result = _reply(429, headers={"Retry-After": "3600"})
        assert (result.retry_after, result.retry) == (3600.0, False)

    def test_retry_after_on_another_status_is_read(self) -> None:
        assert _reply(500, headers={"Retry-After": "1"}).retry_after == 1.0

    def test_retry_after_is_read_only_when_sent(self) -> None:
        assert _reply(404, headers={"Retry-After": "1"}).retry_after == 1.0
        assert _reply(404).retry_after is None

    def test_last_attempt_is_not_retried(self) -> None:
        assert not _reply(503, attempt=3).retry

    def test_no_policy_never_retries(self) -> None:
        assert not _reply(503, retry=None).retry

    @pytest.mark.parametrize("status", [301, 302, 307])
    def test_3xx_is_unexpected(self, status: int) -> None:
        result = _reply(status)
        assert isinstance(result.error, UnexpectedResponseError)
        assert result.error.message == "redirect not followed"

    @pytest.mark.parametrize(
        ("status", "acted"), [(99, True), (0, True), (101, True), (600, True), (402, False)]
    )
    def test_a_post_answered_with_an_odd_status_may_have_acted(
        self, status: int, acted: bool
    ) -> None:
        result = _reply(status, b"{}", method="POST")
        assert result.may_have_acted is acted
        assert not result.retry  # a POST is never sent twice on such an answer

    def test_error_text_is_masked(self) -> None:
        result = _reply(400, f'{{"message": "bad key {SECRET}"}}'.encode())
        assert isinstance(result.error, APIError)
        assert SECRET not in str(result.error)
        assert SECRET not in result.error.body

    def test_error_url_is_the_base_url_and_path(self) -> None:
        result = _reply(500)
        assert isinstance(result.error, APIError)
        assert (result.error.url, result.error.path) == (BASE + PATH, PATH)


class TestClassifyTransportFailure:
    def test_connect_failure_is_retried_even_for_post(self) -> None:
        result = _failure(Failure.CONNECT, ConnectError("refused"), method="POST")
        assert result.retry
        assert not result.may_have_acted
        assert not result.connected
        assert not result.reply_lost

    def test_connect_timeout_is_retried_even_for_patch(self) -> None:
        result = _failure(Failure.CONNECT, ConnectTimeout("slow connect"), method="PATCH")
        assert result.retry
        assert not result.may_have_acted

    def test_untrusted_certificate_is_not_retried(self) -> None:
        result = _failure(Failure.CERTIFICATE, ConnectError("untrusted"))
        assert (result.retry, result.may_have_acted, result.connected) == (False, False, False)

    @pytest.mark.parametrize(
        ("method", "retry"), [("GET", True), ("DELETE", True), ("POST", False), ("PATCH", False)]
    )
    def test_lost_connection_is_retried_only_for_idempotent_methods(
        self, method: str, retry: bool
    ) -> None:
        result = _failure(Failure.DISCONNECT, TransportError("reset"), method=method)
        assert result.retry is retry
        assert result.may_have_acted
        assert result.reply_lost
        assert result.connected

    @pytest.mark.parametrize(("method", "retry"), [("GET", True), ("POST", False)])
    def test_timeout_is_retried_only_for_idempotent_methods(self, method: str, retry: bool) -> None:
        result = _failure(Failure.TIMEOUT, RequestTimeout("slow"), method=method)
        assert result.retry is retry
        assert result.reply_lost
        assert result.error is not None
        assert result.error.may_still_be_running


class TestSettle:
    def test_a_404_after_a_lost_reply_may_have_acted(self) -> None:
        error = settle(
            NotFoundError("gone", status=404, method="DELETE", url=BASE + PATH),
            Learnt(reply_lost=True, may_be_running=False, connected=True),
        )
        assert error.may_have_acted

    def test_a_404_after_a_5xx_did_not_act(self) -> None:
        error = settle(
            NotFoundError("gone", status=404, method="DELETE", url=BASE + PATH),
            Learnt(reply_lost=False, may_be_running=False, connected=True),
        )
        assert not error.may_have_acted

    def test_a_connect_error_after_a_reply_got_through_says_it_connected_before(self) -> None:
        error = settle(
            ConnectError("refused"),
            Learnt(reply_lost=False, may_be_running=False, connected=True),
        )
        assert isinstance(error, TransportError)
        assert not error.never_connected
        assert not error.may_have_acted

    def test_a_connect_error_of_every_attempt_never_connected(self) -> None:
        error = settle(
            ConnectError("refused"),
            Learnt(reply_lost=False, may_be_running=False, connected=False),
        )
        assert isinstance(error, TransportError)
        assert error.never_connected

    def test_an_earlier_timeout_may_still_be_running(self) -> None:
        error = settle(
            ServerError("busy", status=503, method="DELETE", url=BASE + PATH),
            Learnt(reply_lost=True, may_be_running=True, connected=True),
        )
        assert (error.may_have_acted, error.may_still_be_running) == (True, True)


class TestLearnt:
    @pytest.mark.parametrize(
        ("failure", "error", "learnt"),
        [
            (Failure.DISCONNECT, TransportError("reset"), Learnt(True, False, True)),
            (Failure.TIMEOUT, RequestTimeout("slow"), Learnt(True, True, True)),
            (Failure.CONNECT, ConnectError("refused"), Learnt(False, False, False)),
            (Failure.CONNECT, ConnectTimeout("no answer"), Learnt(False, False, False)),
            (
                503,
                ServerError("busy", status=503, method="GET", url=BASE),
                Learnt(False, False, True),
            ),
        ],
    )
    def test_after_one_failed_attempt(self, failure: Any, error: Any, learnt: Learnt) -> None:
        assert Learnt().after(Attempt(None, error, failure, retry=True)) == learnt

    def test_what_was_learnt_is_never_forgotten(self) -> None:
        lost = Learnt().after(Attempt(None, RequestTimeout("slow"), Failure.TIMEOUT))
        refused = Attempt(None, ConnectError("refused"), Failure.CONNECT)
        assert lost.after(refused) == Learnt(reply_lost=True, may_be_running=True, connected=True)


@pytest.mark.parametrize(
    ("error", "acted", "running", "never_connected"),
    [
        (ValidationError("bad", field="x"), False, False, None),
        (TransportError("reset"), True, False, False),
        (RequestTimeout("slow"), True, True, False),
        (ConnectError("refused"), False, False, True),
        (ConnectTimeout("no answer"), False, False, True),
        (NotFoundError("x", status=404, method="GET", url=BASE), False, False, None),
        (RateLimitError("x", status=429, method="GET", url=BASE), False, False, None),
        (ServerError("x", status=502, method="GET", url=BASE), True, False, None),
        (UnexpectedResponseError("x", status=200, method="GET", url=BASE), True, False, None),
    ],
)
def test_each_error_class_says_what_one_attempt_means(
    error: Any, acted: bool, running: bool, never_connected: bool | None
) -> None:
    assert error.may_have_acted is acted
    assert error.may_still_be_running is running
    if never_connected is not None:
        assert error.never_connected is never_connected


def test_connect_timeout_is_both_a_connect_error_and_a_request_timeout() -> None:
    assert issubclass(ConnectTimeout, ConnectError)
    assert issubclass(ConnectTimeout, RequestTimeout)
