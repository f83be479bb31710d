"""The lost-create protocol's pure rules: how long a create may still land, as tables."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from asyncgroups.sync._creates import LANDING_FLOOR, LANDING_TIMEOUTS, Undecided, landing_window
from asyncgroups.sync._state import PendingCreate


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
    timed_out = Undecided(1_800_000_120.0, 1_800_000_000.0)
    assert timed_out.when == datetime(2027, 1, 15, 8, 2, tzinfo=UTC)
    assert timed_out.note() == (
        "waiting: a create that timed out at 2027-01-15T08:00:00.000Z may still land; "
        "nothing was sent; decided after 2027-01-15T08:02:00.000Z"
    )
    assert Undecided(1_800_000_120.0).note() == (
        "waiting: a create that was sent and never answered (an interrupted apply?) may "
        "still land; nothing was sent; decided after 2027-01-15T08:02:00.000Z"
    )
