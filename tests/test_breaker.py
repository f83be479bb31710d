"""The `Breaker` as a table: which outcomes stop a bulk call, and what untried keys get."""

from __future__ import annotations

import pytest

from asyncgroups import (
    AsyncGroupsError,
    RateLimitError,
    RequestTimeout,
    TransportError,
    ValidationError,
)
from asyncgroups._breaker import FAILURES_TO_STOP, TIMEOUTS_TO_STOP, Breaker
from asyncgroups.errors import make_status_error


def _connect_failure(never_connected: bool = True) -> TransportError:
    error = TransportError("GET /group/k: could not connect to 127.0.0.1:1: connection refused")
    error.never_connected = never_connected
    return error


def _status(status: int) -> AsyncGroupsError:
    return make_status_error(status, method="GET", url="https://h/v1/group/k", body=b"")


def _timeout() -> RequestTimeout:
    return RequestTimeout("GET /group/k: no complete reply within 0.5s (attempt 3)")


def _stopped() -> AsyncGroupsError:
    error = _status(429)
    assert isinstance(error, RateLimitError)
    error.client_stopped = True
    return error


@pytest.mark.parametrize(
    ("seen", "trips_on"),
    [
        ([_connect_failure()], 0),
        ([_status(401)], 0),
        ([None, _status(500), _status(401)], 2),  # a refused key stops even after successes
        ([ValidationError("bad key"), _connect_failure()], 1),  # validation sent nothing
        ([RequestTimeout("slow"), _connect_failure()], 1),  # a timeout proves nothing
        ([None, _connect_failure()], None),  # the server was reached: passing trouble
        ([_status(404), _connect_failure()], None),
        ([_status(503), _connect_failure()], None),
        ([TransportError("connection lost"), _connect_failure()], None),
        ([_connect_failure(never_connected=False)], None),  # connected on an earlier try
        # Keys whose every attempt timed out, nothing answered: the fifth stops the call.
        ([_timeout() for _ in range(TIMEOUTS_TO_STOP)], TIMEOUTS_TO_STOP - 1),
        ([_timeout() for _ in range(TIMEOUTS_TO_STOP - 1)], None),
        ([None, *(_timeout() for _ in range(TIMEOUTS_TO_STOP))], None),  # passing trouble
        ([_status(404), *(_timeout() for _ in range(TIMEOUTS_TO_STOP))], None),
        # Keys the server failed on every attempt, none served: the fifth stops the call.
        ([_status(503) for _ in range(FAILURES_TO_STOP)], FAILURES_TO_STOP - 1),
        ([TransportError("connection lost") for _ in range(FAILURES_TO_STOP)], 4),
        ([_status(502), _status(500), *(_status(503) for _ in range(3))], 4),
        ([_status(503) for _ in range(FAILURES_TO_STOP - 1)], None),
        ([None, *(_status(503) for _ in range(FAILURES_TO_STOP))], None),  # passing
        ([_status(404), *(_status(503) for _ in range(FAILURES_TO_STOP))], None),
        # The server's 429s stopped the client: nothing will be sent for a while.
        ([None, _status(429), _stopped()], 2),
        ([_status(429), _status(429), _status(429)], None),  # each waited out, or passing
    ],
)
def test_breaker_trips_only_when_the_api_cannot_be_reached_at_all(
    seen: list[AsyncGroupsError | None], trips_on: int | None
) -> None:
    breaker = Breaker()
    for error in seen:
        breaker.observe(error)
    assert breaker.cause is (seen[trips_on] if trips_on is not None else None)


def test_breaker_keeps_the_first_cause_and_fails_untried_keys_with_it() -> None:
    breaker = Breaker()
    assert breaker.skip() is None
    first = _connect_failure()
    breaker.observe(first)
    breaker.observe(_status(401))
    assert breaker.skip() is first
    assert breaker.skip() is first
    assert breaker.skipped == 2
    assert any("stopped sending" in note for note in first.__notes__)
