"""The lost-create protocol's pure rules: which failed creates may still land, and how
long, as tables."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from asyncgroups import (
    AsyncGroupsError,
    ConnectError,
    ConnectTimeout,
    NotFoundError,
    RequestTimeout,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
)
from asyncgroups.errors import make_status_error
from asyncgroups.sync._landing import (
    LANDING_FLOOR,
    LANDING_TIMEOUTS,
    Undecided,
    landing_window,
    may_still_land,
)
from asyncgroups.sync._rows import PendingCreate


@pytest.mark.parametrize(
    ("timeout", "window"),
    [
        (0.1, LANDING_FLOOR),  # a tiny timeout: the floor, for the server's sake
        (30.0, 150.0),  # the client's default timeout
        (24.0, LANDING_FLOOR),  # 5 x 24 = 120: where the two meet
        (100.0, 500.0),
    ],
)
def test_landing_window_is_several_timeouts_and_never_under_the_floor(
    timeout: float, window: float
) -> None:
    assert LANDING_TIMEOUTS == 5
    assert landing_window(timeout) == window


def _pending(**outcome: str | None) -> PendingCreate:
    return PendingCreate("a", "A", MappingProxyType({"name": "A"}), 1, "t", **outcome)


@pytest.mark.parametrize(
    ("outcome", "undecided"),
    [
        ({}, None),  # never sent
        ({"sent_at": "2027-01-15T08:00:00.000+00:00"}, None),  # sent: the apply decides
        (
            {
                "sent_at": "2027-01-15T07:59:59.900+00:00",
                "timed_out_at": "2027-01-15T08:00:00.000+00:00",
                "decide_after": "2027-01-15T08:02:00.000+00:00",
            },
            Undecided(1_800_000_120.0, 1_800_000_000.0),
        ),
        (
            {
                "sent_at": "2027-01-15T08:00:00.000+00:00",
                "decide_after": "2027-01-15T08:02:00+00:00",
            },
            Undecided(1_800_000_120.0),
        ),
    ],
)
def test_undecided_reads_the_pending_row(
    outcome: dict[str, str], undecided: Undecided | None
) -> None:
    assert Undecided.of(_pending(**outcome)) == undecided


def test_undecided_note_says_what_may_land_and_when_it_is_decided() -> None:
    failed = Undecided(1_800_000_120.0, 1_800_000_000.0)
    assert failed.when == datetime(2027, 1, 15, 8, 2, tzinfo=UTC)
    assert failed.note() == (
        "waiting: a create that failed at 2027-01-15T08:00:00.000Z may still land; "
        "nothing was sent; decided after 2027-01-15T08:02:00.000Z"
    )
    seen = Undecided(1_800_000_120.0, 1_800_000_000.0, "POST /group: 504 Gateway Timeout")
    assert seen.note() == (
        "waiting: a create that failed at 2027-01-15T08:00:00.000Z (POST /group: 504 "
        "Gateway Timeout) may still land; nothing was sent; decided after "
        "2027-01-15T08:02:00.000Z"
    )
    assert Undecided(1_800_000_120.0).note() == (
        "waiting: a create that was sent and never answered (an interrupted apply?) may "
        "still land; nothing was sent; decided after 2027-01-15T08:02:00.000Z"
    )


def _status(status: int) -> AsyncGroupsError:
    return make_status_error(status, method="POST", url="https://api.test/v1/group", body="")


def _after_a_lost_attempt(error: AsyncGroupsError) -> AsyncGroupsError:
    error.may_have_acted = True  # an earlier attempt of the call lost its reply
    return error


@pytest.mark.parametrize(
    ("error", "lands"),
    [
        # the request may have reached the server, and nobody answered for it
        (TransportError("connection lost: Server disconnected"), True),
        (RequestTimeout("timed out after 30s"), True),
        # never sent: nothing can land
        (ConnectError("connection refused"), False),
        (ConnectTimeout("no connection within 10s"), False),
        (ValidationError("name must not be empty", field="name"), False),
        # a gateway speaking for a backend that may still be at it
        (_status(502), True),
        (_status(504), True),
        (_status(524), True),  # a CDN's "origin timed out": not a status HTTP defines
        # the service itself answered: it is done, a listing now tells what it made
        (_status(500), False),
        (_status(503), False),
        (_status(501), False),
        # a reply that could not be used (a redirect, `HTTP/1.1 099`, broken JSON)
        (_status(99), True),
        (_status(302), True),
        (UnexpectedResponseError("bad JSON", status=201, method="POST", url="u"), True),
        # a 4xx proves the server did not act ...
        (_status(400), False),
        (_status(409), False),
        (_status(429), False),
        # ... unless an earlier attempt of the same call lost its reply
        (_after_a_lost_attempt(NotFoundError("x", status=404, method="POST", url="u")), True),
    ],
)
def test_may_still_land_unless_nothing_was_sent_or_the_service_answered(
    error: AsyncGroupsError, lands: bool
) -> None:
    assert may_still_land(error) is lands
