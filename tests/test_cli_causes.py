"""Failures counted by cause, as tables: what a bulk run says on stderr, and per key."""

from __future__ import annotations

import pytest

from asyncgroups import (
    AuthenticationError,
    ConnectError,
    LimiterUnavailableError,
    RequestTimeout,
    ServerError,
    ValidationError,
)
from asyncgroups.cli._causes import SHOWN_CAUSES, Causes, cause_of, not_tried

BASE = "http://127.0.0.1:8080/v1"
KEYS = [f"31a17cce-bbbb-4ee3-99bb-{n:012x}" for n in range(3000)]


def refused(key: str) -> ConnectError:
    return ConnectError(
        f"GET /group/{key}: could not connect to 127.0.0.1:8080: connection refused",
        method="GET",
        url=f"{BASE}/group/{key}",
    )


def server_error(key: str, request_id: str) -> ServerError:
    return ServerError(
        "Service Unavailable (HTML body)",
        status=503,
        method="GET",
        url=f"{BASE}/group/{key}",
        request_id=request_id,
    )


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (refused(KEYS[0]), "could not connect to 127.0.0.1:8080: connection refused"),
        (server_error(KEYS[0], "rq-1"), "503 Service Unavailable (HTML body)"),
        (
            RequestTimeout(
                f"GET /group/{KEYS[0]}: no complete reply within 2s (attempt 3)",
                method="GET",
                url=f"{BASE}/group/{KEYS[0]}",
            ),
            "no complete reply within 2s",
        ),
        (
            LimiterUnavailableError("the shared rate limit 'x' cannot be reached: Redis at r"),
            "the shared rate limit 'x' cannot be reached: Redis at r",
        ),
    ],
)
def test_cause_of_leaves_out_the_request_the_attempt_and_the_request_id(
    error: Exception, cause: str
) -> None:
    assert cause_of(error) == cause


def test_not_tried_when_the_error_is_about_another_keys_request() -> None:
    error = refused(KEYS[0])
    assert not not_tried(KEYS[0], error)
    assert not_tried(KEYS[1], error)
    assert not not_tried("not-a-key", ValidationError("prokey 'not-a-key' is not a prokey"))
    causes = Causes()
    assert causes.add(KEYS[1], error) == (
        "not tried: could not connect to 127.0.0.1:8080: connection refused"
    )
    assert causes.add(KEYS[0], error) == str(error)


def _stopped_the_call(error: Exception) -> Exception:
    error.add_note("asyncgroups: ... so this bulk call stopped sending; every key ...")
    return error


def test_causes_tell_keys_failed_with_an_error_of_no_request_by_the_one_object_they_share() -> None:
    # A shared limit out of reach: the keys in flight each met it, as their own error;
    # one of them stopped the call, and every key after failed with that very object.
    met = [LimiterUnavailableError("the shared rate limit 'x' cannot be reached") for _ in KEYS[:4]]
    stop = _stopped_the_call(met[0])
    causes = Causes()

    texts = [causes.add(key, error) for key, error in zip(KEYS, met, strict=False)]
    texts += [causes.add(key, stop) for key in KEYS[4:100]]

    assert texts[:4] == ["the shared rate limit 'x' cannot be reached"] * 4
    assert set(texts[4:]) == {"not tried: the shared rate limit 'x' cannot be reached"}
    assert causes.lines() == [
        "failed: 100 keys: the shared rate limit 'x' cannot be reached "
        "(96 of them not tried: the run stopped sending)"
    ]


def test_causes_say_a_stopped_run_in_one_line_whatever_the_count() -> None:
    causes = Causes()
    first = [refused(key) for key in KEYS[:16]]  # the keys in flight, each its own error
    for key, error in zip(KEYS, first, strict=False):
        causes.add(key, error)
    for key in KEYS[16:]:
        causes.add(key, first[0])  # failed with the error that stopped the call

    assert causes.failed == len(KEYS)
    assert causes.lines() == [
        "failed: 3,000 keys: could not connect to 127.0.0.1:8080: connection refused "
        "(2,984 of them not tried: the run stopped sending)"
    ]


def test_causes_name_the_key_of_a_lone_failure_as_it_reads() -> None:
    causes = Causes()
    causes.add(KEYS[0], server_error(KEYS[0], "rq-1"))
    causes.add(KEYS[1], server_error(KEYS[1], "rq-2"))
    causes.add("not-a-key", ValidationError("prokey 'not-a-key' is not a prokey"))

    assert causes.lines() == [
        "failed: 2 keys: 503 Service Unavailable (HTML body)",
        "failed: not-a-key: prokey 'not-a-key' is not a prokey",
    ]


def test_causes_show_the_commonest_and_count_the_rest_in_one_line() -> None:
    causes = Causes()
    for n, key in enumerate(KEYS[:2000]):
        causes.add(key, ValidationError(f"bad key number {n}"))
    for key in KEYS[2000:2010]:
        url = f"{BASE}/group/{key}"
        causes.add(key, AuthenticationError("Unauthorized", status=401, method="GET", url=url))

    lines = causes.lines()

    assert lines[0].startswith("failed: 10 keys: 401 Unauthorized (the API key was not accepted")
    assert lines[-1] == "failed: 2,000 more key(s), for other causes"
    assert len(lines) == 2


def test_causes_show_at_most_a_few_lines() -> None:
    causes = Causes()
    for n, key in enumerate(KEYS[:40]):
        causes.add(key, ValidationError(f"bad key number {n // 2}"))  # 20 causes of 2 keys

    lines = causes.lines()

    assert len(lines) == SHOWN_CAUSES + 1
    assert lines[0] == "failed: 2 keys: bad key number 0"
    assert lines[-1] == f"failed: {40 - 2 * SHOWN_CAUSES} more key(s), for other causes"
