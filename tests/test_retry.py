"""Retry decisions as tables: a fixed `now`, an injected `rand`, no asyncio."""

from __future__ import annotations

import email.utils
import logging
import math
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
from conftest import KEY
from hypothesis import given
from hypothesis import strategies as st

from asyncgroups import RetryPolicy, ValidationError
from asyncgroups._retry import (
    DEFAULT_RETRY_STATUSES,
    Failure,
    Throttle,
    backoff,
    log_decision,
    parse_retry_after,
    retry_decision,
    retry_delay,
    should_retry,
)

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
POLICY = RetryPolicy()

# RetryPolicy ------------------------------------------------------------------------


def test_retry_policy_has_the_documented_defaults() -> None:
    assert POLICY.max_attempts == 3
    assert POLICY.backoff_base == 0.25
    assert POLICY.backoff_max == 20.0
    assert POLICY.jitter is True
    assert POLICY.retry_statuses == frozenset({408, 425, 429, 500, 502, 503, 504})
    assert POLICY.max_retry_after == 60.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": -1},
        {"max_attempts": 2.5},
        {"max_attempts": "3"},
        {"backoff_base": -0.1},
        {"backoff_base": math.nan},
        {"backoff_base": "1"},
        {"backoff_max": -1},
        {"max_retry_after": -1},
        {"max_retry_after": None},
        {"jitter": "yes"},
        {"max_attempts": True},
        {"backoff_max": math.inf},
        {"retry_statuses": {"503"}},
        {"retry_statuses": {700}},
        {"retry_statuses": 503},
    ],
)
def test_retry_policy_rejects_bad_values_naming_the_field(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as info:
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == next(iter(kwargs))
    assert info.value.field in str(info.value)


def test_retry_policy_accepts_no_backoff_and_a_single_attempt() -> None:
    policy = RetryPolicy(max_attempts=1, backoff_base=0, backoff_max=0, max_retry_after=0)
    assert policy.max_attempts == 1


def test_retry_policy_is_frozen_keyword_only_and_hashable() -> None:
    with pytest.raises(TypeError):
        RetryPolicy(5)  # type: ignore[call-arg]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        POLICY.max_attempts = 5  # type: ignore[misc]
    assert RetryPolicy(retry_statuses={500}) == RetryPolicy(retry_statuses=frozenset({500}))
    assert hash(RetryPolicy()) == hash(POLICY)


def test_retry_policy_copies_retry_statuses() -> None:
    statuses = {500}
    policy = RetryPolicy(retry_statuses=statuses)
    statuses.add(404)
    assert policy.retry_statuses == frozenset({500})


# should_retry -----------------------------------------------------------------------

_RETRIED_STATUSES = sorted(DEFAULT_RETRY_STATUSES)
_CONNECTION = [Failure.CONNECT, Failure.DISCONNECT, Failure.TIMEOUT]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("failure", [*_RETRIED_STATUSES, *_CONNECTION])
def test_should_retry_idempotent_methods_on_retry_statuses_and_wire_failures(
    method: str, failure: int | Failure
) -> None:
    assert should_retry(POLICY, method, failure, 1)


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 302, 501, 505])
def test_should_not_retry_idempotent_methods_on_other_statuses(method: str, status: int) -> None:
    assert not should_retry(POLICY, method, status, 1)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize("failure", [429, Failure.CONNECT])
def test_should_retry_post_and_patch_only_where_the_server_did_not_act(
    method: str, failure: int | Failure
) -> None:
    assert should_retry(POLICY, method, failure, 1)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize(
    "failure", [408, 425, 500, 502, 503, 504, 409, Failure.TIMEOUT, Failure.DISCONNECT]
)
def test_should_not_retry_post_and_patch_where_the_server_may_have_acted(
    method: str, failure: int | Failure
) -> None:
    # A POST retried after a 503 can create a duplicate group; a PATCH can spend a credit.
    assert not should_retry(POLICY, method, failure, 1)


@pytest.mark.parametrize(("attempt", "expected"), [(1, True), (2, True), (3, False), (4, False)])
def test_should_retry_stops_after_max_attempts(attempt: int, expected: bool) -> None:
    assert should_retry(POLICY, "GET", 503, attempt) is expected


def test_should_not_retry_with_a_single_attempt_policy() -> None:
    assert not should_retry(RetryPolicy(max_attempts=1), "GET", Failure.CONNECT, 1)


@pytest.mark.parametrize("failure", [503, 429, Failure.CONNECT])
def test_should_not_retry_without_a_policy(failure: int | Failure) -> None:
    assert not should_retry(None, "GET", failure, 1)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("retry_after", "expected"), [(None, True), (0.0, True), (60.0, True), (60.5, False)]
)
def test_should_retry_a_429_only_within_max_retry_after(
    method: str, retry_after: float | None, expected: bool
) -> None:
    assert should_retry(POLICY, method, 429, 1, retry_after=retry_after) is expected


def test_should_retry_follows_custom_retry_statuses() -> None:
    policy = RetryPolicy(retry_statuses={418})
    assert should_retry(policy, "GET", 418, 1)
    assert not should_retry(policy, "GET", 503, 1)
    assert not should_retry(policy, "POST", 418, 1)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_should_not_retry_a_429_the_policy_leaves_out(method: str) -> None:
    assert not should_retry(RetryPolicy(retry_statuses={503}), method, 429, 1)


@pytest.mark.parametrize(
    ("policy", "method", "failure", "attempt", "retry_after", "expected"),
    [
        (None, "GET", 503, 1, None, (False, "retries are off")),
        (POLICY, "GET", 503, 3, None, (False, "attempt 3 of 3 was the last")),
        (POLICY, "GET", 503, 1, None, (True, "status 503 is retryable")),
        (POLICY, "GET", 404, 1, None, (False, "status 404 is not retryable")),
        (
            POLICY,
            "GET",
            Failure.TIMEOUT,
            1,
            None,
            (True, "a timeout failure on an idempotent request"),
        ),
        (
            POLICY,
            "POST",
            503,
            1,
            None,
            (False, "POST is not retried after status 503: it may have acted"),
        ),
        (
            POLICY,
            "GET",
            429,
            1,
            120.0,
            (False, "Retry-After 120s is over max_retry_after 60s"),
        ),
    ],
)
def test_retry_decision_says_why(
    policy: RetryPolicy | None,
    method: str,
    failure: int | Failure,
    attempt: int,
    retry_after: float | None,
    expected: tuple[bool, str],
) -> None:
    assert retry_decision(policy, method, failure, attempt, retry_after=retry_after) == expected


def test_log_decision_names_the_request_and_the_wait(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="asyncgroups"):
        log_decision("GET", f"/group/{KEY}", "status 503 is retryable", wait=0.25, attempt=1, of=3)
        log_decision("POST", "/group", "POST is not retried after status 503: it may have acted")
    assert [r.getMessage() for r in caplog.records] == [
        f"retry GET /group/{KEY} in 0.25s after attempt 1 of 3: status 503 is retryable",
        "no retry POST /group: POST is not retried after status 503: it may have acted",
    ]


def test_logging_snippet_of_the_docs_shows_the_lines_when_pasted() -> None:
    page = Path(__file__).parent.parent / "docs" / "observability.md"
    section = page.read_text(encoding="utf-8").split("\n## Logging\n", 1)[1]
    [snippet] = re.findall(r"```python\n(.*?)```", section, re.DOTALL)[:1]
    script = snippet + (
        "from asyncgroups._retry import log_decision\n"
        "log_decision('GET', '/group/k', 'status 503 is retryable', wait=0.5, attempt=1, of=3)\n"
    )
    run = subprocess.run(  # noqa: S603 - this interpreter, the docs' own snippet
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert "DEBUG asyncgroups: retry GET /group/k in 0.50s after attempt 1 of 3" in run.stderr


# parse_retry_after ------------------------------------------------------------------


def _http_date(offset: float) -> str:
    return email.utils.formatdate(NOW + offset, usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("0", 0.0),
        ("5", 5.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("120", 120.0),
        ("soon", None),
        ("inf", None),
        ("nan", None),
        ("5s", None),
        (_http_date(30), 30.0),
        (_http_date(3600), 3600.0),
        (_http_date(-30), 0.0),
        ("Tue, 14 Nov 2023 22:14:20 GMT", 60.0),
        ("Tue, 14 Nov 2023 23:14:20 +0100", 60.0),
        # Past datetime's year 9999: read as its first moment out of reach (10000-01-01),
        # a very long wait, not a ValueError or OverflowError.
        ("Fri, 01 Jan 10000 00:00:00 GMT", 253_402_300_800.0 - NOW),
        ("Fri, 01 Jan 99999999999 00:00:00 GMT", 253_402_300_800.0 - NOW),
        ("Fri, 01 Jan " + "9" * 5000 + " 00:00:00 GMT", None),
        ("Fri, 01 Jan 0001 00:00:00 GMT", 0.0),
    ],
)
def test_parse_retry_after_reads_seconds_and_http_dates(
    value: str | None, expected: float | None
) -> None:
    assert parse_retry_after(value, now=NOW) == expected


# backoff and retry_delay ------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "expected"), [(1, 0.25), (2, 0.5), (3, 1.0), (4, 2.0), (5, 2.0), (50, 2.0)]
)
def test_backoff_doubles_up_to_backoff_max(attempt: int, expected: float) -> None:
    policy = RetryPolicy(backoff_base=0.25, backoff_max=2.0, jitter=False)
    assert backoff(policy, attempt, rand=lambda: 0.5) == expected


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 0.0), (0.5, 0.5), (0.999, 0.999)])
def test_backoff_with_jitter_is_uniform_below_the_cap(rand: float, expected: float) -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=10.0, jitter=True)
    assert backoff(policy, 2, rand=lambda: rand) == pytest.approx(expected)


def test_backoff_of_a_huge_attempt_does_not_overflow() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_max=30.0, jitter=False)
    assert backoff(policy, 100_000, rand=lambda: 1.0) == 30.0


def test_backoff_with_zero_base_never_waits() -> None:
    policy = RetryPolicy(backoff_base=0)
    assert all(backoff(policy, n, rand=lambda: 1.0) == 0 for n in range(1, 10))


_HTTP_DATE = st.from_regex(
    r"\A(Mon|Fri), [0-9]{1,3} (Jan|Feb|Dec) [0-9]{1,30} [0-9]{1,3}:[0-9]{1,3}:[0-9]{1,3} "
    r"(GMT|[+-][0-9]{1,6})\Z"
)


@given(st.one_of(st.text(), _HTTP_DATE))
def test_parse_retry_after_never_raises_and_never_goes_negative(value: str) -> None:
    seconds = parse_retry_after(value, now=NOW)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (1, 4.0, 4.0),  # longer than the backoff: the server's wait
        (1, 99.0, 10.0),  # capped at max_retry_after
        (3, None, 4.0),  # no header: the backoff
        # "Retry now" (0, a negative number or a past date, all read as 0) never
        # shortens the backoff: no burst of attempts without a pause.
        (1, 0.0, 1.0),
        (2, 0.0, 2.0),
        (2, 0.5, 2.0),
    ],
)
def test_retry_delay_is_the_longer_of_backoff_and_retry_after(
    attempt: int, retry_after: float | None, expected: float
) -> None:
    policy = RetryPolicy(backoff_base=1.0, jitter=False, max_retry_after=10.0)
    assert retry_delay(policy, attempt, retry_after=retry_after, rand=lambda: 0.5) == expected


# Throttle: a cool-down, or a stop -----------------------------------------------------

#: One step of a throttle's life: a 429 read at `now` (the policy's delay, the server's
#: Retry-After) and the cool-down expected (None: the client stops instead), or another
#: outcome of an attempt (a status, a `Failure`, None for a success).
Step = tuple[float, float, float | None, float | None] | tuple[int | Failure | None]


@pytest.mark.parametrize(
    "steps",
    [
        # Two cool-downs are waited out; the third 429 in a row stops the client.
        [(0.0, 1.0, 1.0, 1.0), (1.0, 1.0, 1.0, 1.0), (2.0, 1.0, 1.0, None)],
        # A success in between starts the count again; so does any 4xx (the server served).
        [
            (0.0, 1.0, None, 1.0),
            (1.0, 1.0, None, 1.0),
            (None,),
            (2.0, 1.0, None, 1.0),
            (3.0, 1.0, None, 1.0),
            (404,),
            (4.0, 1.0, None, 1.0),
            (5.0, 1.0, None, 1.0),
            (6.0, 1.0, None, None),
        ],
        # A 5xx or a lost connection is not a success: the count goes on.
        [
            (0.0, 1.0, None, 1.0),
            (503,),
            (Failure.TIMEOUT,),
            (1.0, 1.0, None, 1.0),
            (2.0, 1.0, None, None),
        ],
        # 429s read during a cool-down belong to it (requests sent before it began).
        [
            (0.0, 1.0, None, 1.0),
            (0.5, 1.0, None, 1.0),
            (0.9, 1.0, None, 1.0),
            (2.0, 1.0, None, 1.0),
            (3.0, 1.0, None, None),
        ],
        # A Retry-After over max_retry_after (60 s here) stops the client at once.
        [(0.0, 60.0, 120.0, None)],
        # Without any wait (no backoff, no Retry-After) the third still stops the call.
        [(0.0, 0.0, None, 0.0), (0.0, 0.0, None, 0.0), (0.0, 0.0, None, None)],
        # A wait over max_retry_after (a long backoff) is not a cool-down either.
        [(0.0, 61.0, None, 0.0)],
    ],
    ids=[
        "third-stops",
        "success-resets",
        "5xx-does-not-reset",
        "during-a-cool-down",
        "over-the-cap",
        "no-wait",
        "long-backoff",
    ],
)
def test_throttle_cools_down_then_stops_after_429s_in_a_row(steps: list[Step]) -> None:
    throttle = Throttle()
    for step in steps:
        if len(step) == 1:
            throttle.note(step[0])
            continue
        now, delay, retry_after, expected = step
        assert throttle.met_429(now, delay, retry_after, longest=60.0) == expected, step


def test_throttle_stop_lasts_until_the_servers_moment() -> None:
    throttle = Throttle()
    assert throttle.met_429(10.0, 60.0, 120.0, longest=60.0) is None
    assert throttle.stopped_for(10.0) == 120.0
    assert throttle.stopped_for(129.0) == 1.0
    assert throttle.stopped_for(130.0) == 0.0
    assert "Retry-After 120s is over max_retry_after 60s" in throttle.reason
    assert throttle.stops == 1


def test_throttle_429_read_during_a_stop_belongs_to_it() -> None:
    throttle = Throttle()
    assert throttle.met_429(0.0, 60.0, 120.0, longest=60.0) is None
    assert throttle.met_429(1.0, 1.0, 1.0, longest=60.0) is None  # sent before the stop
    assert throttle.met_429(2.0, 60.0, 300.0, longest=60.0) is None  # a later moment wins
    assert throttle.stopped_for(2.0) == 300.0
    assert throttle.stops == 1


def test_throttle_stops_again_at_the_next_429_until_something_is_served() -> None:
    throttle = Throttle()
    for now in (0.0, 1.0, 2.0):
        throttle.met_429(now, 1.0, 1.0, longest=60.0)
    assert throttle.stopped_for(2.5) == 0.5
    assert "3 replies in a row were 429" in throttle.reason
    assert throttle.met_429(3.0, 1.0, 1.0, longest=60.0) is None  # the stop is over: a 4th
    assert throttle.stops == 2
    throttle.note(None)
    assert throttle.met_429(5.0, 1.0, 1.0, longest=60.0) == 1.0
