"""The one ISO 8601 formatter: the spellings the journal, the state file and JSON output keep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from asyncgroups._timestamp import iso_utc

MOMENT = datetime(2024, 3, 1, 12, 30, 5, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "options", "expected"),
    [
        (MOMENT, {}, "2024-03-01T12:30:05.123Z"),
        (MOMENT, {"utc": "+00:00"}, "2024-03-01T12:30:05.123+00:00"),
        (MOMENT, {"keep_microseconds": True}, "2024-03-01T12:30:05.123456Z"),
        (
            MOMENT.replace(microsecond=123000),
            {"keep_microseconds": True},
            "2024-03-01T12:30:05.123Z",
        ),
        (MOMENT.astimezone(timezone(timedelta(hours=2))), {}, "2024-03-01T12:30:05.123Z"),
        (MOMENT.replace(tzinfo=None), {}, "2024-03-01T12:30:05.123"),
    ],
)
def test_iso_utc_writes_each_kept_spelling(
    moment: datetime, options: dict[str, Any], expected: str
) -> None:
    assert iso_utc(moment, **options) == expected


def test_iso_utc_without_a_moment_is_now_in_utc() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    text = iso_utc()
    assert text.endswith("Z")
    assert datetime.fromisoformat(text) >= before


def test_iso_utc_matches_the_sync_state_files_format() -> None:
    # The state file has always written `datetime.now(UTC).isoformat(timespec=...)`.
    assert iso_utc(MOMENT, utc="+00:00") == MOMENT.isoformat(timespec="milliseconds")
