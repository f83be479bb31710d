"""`options_with`: a call's options changed from a client's, by the constructor's rules."""

from __future__ import annotations

import math

import pytest

from asyncgroups import RetryPolicy, ValidationError
from asyncgroups._config import DEFAULT_RETRY, Options
from asyncgroups._options import KEEP, options_with

CLIENT = Options(timeout=30.0, connect_timeout=29.0, retry=DEFAULT_RETRY, max_body_size=1024)
NO_RETRY_QUICK = RetryPolicy(max_attempts=1)


@pytest.mark.parametrize(
    ("timeout", "retry", "expected"),
    [
        (KEEP, KEEP, CLIENT),
        (0.5, KEEP, Options(timeout=0.5, connect_timeout=0.45, retry=DEFAULT_RETRY,
                            max_body_size=1024)),
        (60, KEEP, Options(timeout=60.0, connect_timeout=59.0, retry=DEFAULT_RETRY,
                           max_body_size=1024)),
        (KEEP, None, Options(timeout=30.0, connect_timeout=29.0, retry=None,
                             max_body_size=1024)),
        (2, NO_RETRY_QUICK, Options(timeout=2.0, connect_timeout=1.8, retry=NO_RETRY_QUICK,
                                    max_body_size=1024)),
    ],
)  # fmt: skip
def test_options_with_changes_only_what_is_given(
    timeout: object, retry: object, expected: Options
) -> None:
    changed = options_with(CLIENT, timeout=timeout, retry=retry)
    assert changed.retry is expected.retry
    assert changed.timeout == expected.timeout
    assert math.isclose(changed.connect_timeout, expected.connect_timeout)
    assert changed.max_body_size == expected.max_body_size


@pytest.mark.parametrize(
    ("timeout", "retry", "field"),
    [
        (0, KEEP, "timeout"),
        (-1.0, KEEP, "timeout"),
        (math.nan, KEEP, "timeout"),
        (math.inf, KEEP, "timeout"),
        ("2", KEEP, "timeout"),
        (True, KEEP, "timeout"),
        (None, KEEP, "timeout"),
        (KEEP, 3, "retry"),
        (KEEP, "no", "retry"),
    ],
)
def test_options_with_refuses_what_the_constructor_refuses(
    timeout: object, retry: object, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        options_with(CLIENT, timeout=timeout, retry=retry)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("timeout", "retry", "message"),
    [
        (-1, KEEP, "timeout must be a positive, finite number, not -1"),
        (math.inf, KEEP, "timeout must be a positive, finite number, not inf"),
        (None, KEEP, "timeout must be a number, not None"),
        ("2", KEEP, "timeout must be a number, not str"),
        (KEEP, "no", "retry must be a RetryPolicy, or None to never retry, not str"),
        (KEEP, False, "retry must be a RetryPolicy, or None to never retry, not bool"),
        (KEEP, RetryPolicy,
         "retry must be a RetryPolicy, or None to never retry, not the class itself: "
         "call it, RetryPolicy(...)"),
    ],
)  # fmt: skip
def test_options_with_error_says_what_was_given(
    timeout: object, retry: object, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        options_with(CLIENT, timeout=timeout, retry=retry)
    assert str(caught.value) == message
