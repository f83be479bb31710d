"""`answer_for`: which HTTP answer a web app gives for each asyncgroups error. No I/O."""

from __future__ import annotations

import pytest
from conftest import API_KEY, KEY

from asyncgroups import (
    AsyncGroupsError,
    AuthenticationError,
    BulkError,
    ConnectError,
    ConnectTimeout,
    LimiterUnavailableError,
    NotFoundError,
    RateLimitError,
    RequestTimeout,
    ServerError,
    SubscriptionLockedError,
    UnexpectedResponseError,
    ValidationError,
)
from asyncgroups.contrib.starlette import answer_for

URL = "https://api.example/v1/group/" + KEY


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (ValidationError("prokey 'x' is not a prokey", field="prokey"), 422, None),
        (NotFoundError("No entry found", status=404, method="GET", url=URL), 404, None),
        (SubscriptionLockedError(KEY, 2), 409, None),
        (RateLimitError("slow down", retry_after=7, status=429, method="GET", url=URL), 503, "7"),
        (RateLimitError("slow down", retry_after=2.1, status=429, method="GET", url=URL), 503, "3"),
        (RateLimitError("slow down", retry_after=0.2, status=429, method="GET", url=URL), 503, "1"),
        (RateLimitError("slow down", status=429, method="GET", url=URL), 503, "1"),
        (LimiterUnavailableError("redis down", backend="redis"), 503, "1"),
        (RequestTimeout("no reply within 1s"), 504, None),
        (ConnectTimeout("no connect within 1s"), 504, None),
        (ConnectError("refused"), 502, None),
        (AuthenticationError("bad key", status=401, method="GET", url=URL), 502, None),
        (ServerError("oops", status=503, method="GET", url=URL), 502, None),
        (UnexpectedResponseError("not JSON", status=200, method="GET", url=URL), 502, None),
        (BulkError("2 failed", [ConnectError("a"), ConnectError("b")]), 502, None),
        (AsyncGroupsError("something"), 502, None),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None,
)
def test_answer_for_maps_each_error(
    error: AsyncGroupsError, status: int, retry_after: str | None
) -> None:
    answer = answer_for(error)
    assert answer.status == status
    assert (answer.headers or {}).get("Retry-After") == retry_after
    if retry_after is not None:
        assert f"try again in {retry_after}s" in answer.detail


@pytest.mark.parametrize(
    ("retry_after", "header"),
    [
        (1e300, "3600"),
        (251_605_698_515.0, "3600"),  # Retry-After: Fri, 31 Dec 9999 23:59:59 GMT
        (float("inf"), "3600"),
        (3599.2, "3600"),
        (float("nan"), "1"),
        (-5.0, "0"),
        (0.0, "0"),
        (1e-300, "1"),
    ],
)
def test_answer_for_retry_after_is_whole_seconds_within_an_hour(
    retry_after: float, header: str
) -> None:
    error = RateLimitError("slow down", retry_after=retry_after, status=429, method="GET", url=URL)
    answer = answer_for(error)
    assert answer.headers == {"Retry-After": header}
    assert answer.detail.endswith(f"try again in {header}s")


def test_answer_for_input_errors_say_what_was_wrong() -> None:
    assert answer_for(ValidationError("name must not be empty", field="name")).detail == (
        "name must not be empty"
    )
    assert "2 event(s) are linked" in answer_for(SubscriptionLockedError(KEY, 2)).detail


def test_answer_for_never_repeats_what_the_api_said() -> None:
    echoed = f"invalid Authorization header {API_KEY!r}"
    for error in [
        AuthenticationError(echoed, status=401, method="GET", url=URL),
        ServerError(echoed, status=500, method="GET", url=URL),
        NotFoundError(echoed, status=404, method="GET", url=URL),
        RateLimitError(echoed, status=429, method="GET", url=URL),
        ConnectError(echoed),
    ]:
        assert API_KEY not in answer_for(error).detail
        assert "invalid Authorization" not in answer_for(error).detail
