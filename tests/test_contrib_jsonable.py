"""`to_jsonable`: how the CLI and web apps show a model as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from conftest import KEY

from asyncgroups import Group, GroupPatch, GroupStatus, GroupSummary, Subscription
from asyncgroups.contrib.jsonable import to_jsonable


def test_group_fields_in_model_order_with_values_for_enums_and_utc_dates() -> None:
    group = Group(
        prokey=KEY,
        name="Team",
        status=GroupStatus.PUBLISHED,
        subscription=Subscription.EXTERNAL,
        subscription_cal_url="https://example.com/c.ics",
        date_created=datetime(2023, 11, 24, 15, 5, 13, 7000, tzinfo=UTC),
        date_updated=datetime(2023, 11, 24, 15, 5, 14, 79123, tzinfo=UTC),
        event_prokeys=("e1", "e2"),
        landingpage="lp-1",
        extra={"rsvp": {"active": False}, "name_alias": "x"},
    )

    shown = to_jsonable(group)

    assert list(shown) == [
        "prokey", "name", "status", "internal_note", "subscription", "subscription_cal_url",
        "layout", "cta", "cta_block", "landingpage", "public_event_overview", "date_created",
        "date_updated", "event_prokeys", "extra",
    ]  # fmt: skip
    assert (shown["landingpage"], shown["public_event_overview"]) == ("lp-1", None)
    assert shown["status"] == "published"
    assert type(shown["status"]) is str
    assert shown["subscription"] == "external"
    assert shown["date_created"] == "2023-11-24T15:05:13.007Z"
    assert shown["date_updated"] == "2023-11-24T15:05:14.079123Z"
    assert shown["event_prokeys"] == ["e1", "e2"]
    assert shown["extra"] == {"rsvp": {"active": False}, "name_alias": "x"}
    assert json.loads(json.dumps(shown)) == shown


def test_unknown_enum_values_are_shown_as_received() -> None:
    shown = to_jsonable(Group(prokey=KEY, name="N", status="archived", subscription="family"))

    assert shown["status"] == "archived"
    assert shown["subscription"] == "family"


def test_summary_with_ids_only_has_null_name() -> None:
    assert to_jsonable(GroupSummary(prokey=KEY)) == {"prokey": KEY, "name": None, "extra": {}}


def test_only_models_are_accepted() -> None:
    with pytest.raises(TypeError, match="takes an attrs model"):
        to_jsonable({"prokey": KEY})  # type: ignore[arg-type]


def test_patch_shows_only_the_fields_it_carries() -> None:
    assert to_jsonable(GroupPatch(name="b", layout=None)) == {"name": "b", "layout": None}
