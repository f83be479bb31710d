"""JSON <-> models through the one converter: pure, no I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from cattrs.gen import make_dict_structure_fn, override
from conftest import KEY
from hypothesis import given
from hypothesis import strategies as st

from asyncgroups import (
    Group,
    GroupPatch,
    GroupStatus,
    GroupSummary,
    NewGroup,
    Subscription,
    ValidationError,
)
from asyncgroups._convert import (
    _TAKEN_AS_IS,
    ShapeError,
    _builder,
    _events,
    _fast_structure,
    _keep,
    converter,
    decode_created,
    decode_group,
    decode_summaries,
    encode_new_group,
    encode_patch,
)

EVENT_A = "31a17cce-bbbb-4ee3-99bb-6144c6a3bbbb"
EVENT_B = "31a17cce-cccc-4ee3-99bb-6144c6a3cccc"

#: The read of the API's documentation, verbatim (minus the comment).
DOCUMENTED_READ: list[dict[str, Any]] = [
    {
        "name": "My events",
        "status": "published",
        "internal_note": None,
        "subscription": "no",
        "subscription_cal_url": None,
        "layout": None,
        "cta": False,
        "cta_block": None,
        "date_updated": "2023-11-24T15:05:14.079Z",
        "date_created": "2023-11-24T15:05:13.007Z",
        "events": [{"prokey": [EVENT_A]}, {"prokey": [EVENT_B]}],
    }
]


def _read(**fields: Any) -> dict[str, Any]:
    obj = dict(DOCUMENTED_READ[0])
    obj.update(fields)
    return obj


# Reads ------------------------------------------------------------------------------


def test_decode_group_reads_the_documented_reply() -> None:
    group = decode_group(DOCUMENTED_READ, prokey=KEY)
    assert group == Group(
        prokey=KEY,
        name="My events",
        status=GroupStatus.PUBLISHED,
        internal_note=None,
        subscription=Subscription.NO,
        subscription_cal_url=None,
        layout=None,
        cta=False,
        cta_block=None,
        date_created=datetime(2023, 11, 24, 15, 5, 13, 7000, tzinfo=UTC),
        date_updated=datetime(2023, 11, 24, 15, 5, 14, 79000, tzinfo=UTC),
        event_prokeys=(EVENT_A, EVENT_B),
        extra={},
    )


@pytest.mark.parametrize(
    "events",
    [
        [EVENT_A, EVENT_B],
        [{"prokey": EVENT_A}, {"prokey": EVENT_B}],
        [{"prokey": [EVENT_A]}, {"prokey": [EVENT_B]}],
        [EVENT_A, {"prokey": [EVENT_B]}],
    ],
    ids=["strings", "objects", "objects-with-arrays", "mixed"],
)
def test_decode_group_accepts_the_three_events_shapes(events: list[Any]) -> None:
    assert decode_group([_read(events=events)], prokey=KEY).event_prokeys == (EVENT_A, EVENT_B)


@pytest.mark.parametrize("events", [None, []])
def test_decode_group_reads_missing_or_empty_events_as_none(events: Any) -> None:
    group = decode_group([_read(events=events)], prokey=KEY)
    assert group.event_prokeys == ()
    assert not group.has_events


def test_decode_group_without_events_field_has_no_events() -> None:
    obj = _read()
    del obj["events"]
    assert decode_group(obj, prokey=KEY).event_prokeys == ()


@pytest.mark.parametrize(
    "events",
    [
        [{"prokey": [EVENT_A, EVENT_B]}],
        [{"prokey": []}],
        [{"id": EVENT_A}],
        [5],
        {"prokey": EVENT_A},
        "31a17cce",
    ],
)
def test_decode_group_rejects_events_it_cannot_read(events: Any) -> None:
    with pytest.raises(ShapeError, match="event"):
        decode_group([_read(events=events)], prokey=KEY)


def test_decode_group_both_reply_shapes_give_the_same_group() -> None:
    wrapped = DOCUMENTED_READ
    bare = _read(events=[EVENT_A, EVENT_B])
    assert decode_group(wrapped, prokey=KEY) == decode_group(bare, prokey=KEY)


def test_decode_group_keeps_fields_it_does_not_know_in_extra() -> None:
    obj = _read(rsvp=True, custom_domain={"enabled": False}, extra="x")
    group = decode_group(obj, prokey=KEY)
    assert group.extra == {"rsvp": True, "custom_domain": {"enabled": False}, "extra": "x"}


#: The read of the service's current documentation: a bare object with its key,
#: `landingpage`, and events as plain strings (plus the newer `public_event_overview`).
CURRENT_READ: dict[str, Any] = {
    **{k: v for k, v in DOCUMENTED_READ[0].items() if k != "events"},
    "prokey": KEY,
    "landingpage": "lp-1",
    "public_event_overview": True,
    "events": [EVENT_A, EVENT_B],
}


@pytest.mark.parametrize(
    "payload",
    [[_read(landingpage="lp-1", public_event_overview=True)], CURRENT_READ],
    ids=["list", "object"],
)
def test_decode_group_reads_landingpage_and_overview_in_both_shapes(payload: Any) -> None:
    group = decode_group(payload, prokey=KEY)
    assert group.landingpage == "lp-1"
    assert group.public_event_overview is True
    assert group.extra == {}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, (None, None)),
        ({"landingpage": None, "public_event_overview": None}, (None, None)),
        ({"landingpage": 12, "public_event_overview": 0}, ("12", False)),
        ({"landingpage": "", "public_event_overview": "false"}, ("", False)),
    ],
)
def test_decode_group_reads_landingpage_and_overview_like_the_other_fields(
    fields: dict[str, Any], expected: tuple[Any, Any]
) -> None:
    group = decode_group([_read(**fields)], prokey=KEY)
    assert (group.landingpage, group.public_event_overview) == expected


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"landingpage": {"active": False}}, "landingpage"),
        ({"public_event_overview": "maybe"}, "public_event_overview"),
    ],
)
def test_decode_group_names_a_new_field_that_does_not_fit(
    fields: dict[str, Any], named: str
) -> None:
    with pytest.raises(ShapeError, match=named):
        decode_group([_read(**fields)], prokey=KEY)


def test_decode_group_sets_prokey_from_the_request() -> None:
    other = "99ec3e7f-ef04-bbbb-a3d7-e30736faaaaa"
    group = decode_group([_read(prokey=[other], id=other)], prokey=KEY)
    assert group.prokey == KEY
    assert "prokey" not in group.extra
    assert "id" not in group.extra


@pytest.mark.parametrize("fields", [{"prokey": KEY}, {"id": KEY}, {"prokey": [KEY]}, {"id": [KEY]}])
def test_decode_group_reads_the_key_from_the_reply_without_a_request_key(
    fields: dict[str, Any],
) -> None:
    assert decode_group(_read(**fields)).prokey == KEY


@pytest.mark.parametrize("fields", [{}, {"prokey": None}, {"id": ""}, {"id": 5}])
def test_decode_group_without_any_key_is_a_shape_error(fields: dict[str, Any]) -> None:
    with pytest.raises(ShapeError, match="no prokey or id"):
        decode_group(_read(**fields))


@pytest.mark.parametrize(
    "payload",
    [[], [_read(), _read()], None, "text", 5, [None], ["x"]],
    ids=["empty-list", "two-items", "null", "string", "number", "list-of-null", "list-of-str"],
)
def test_decode_group_rejects_what_is_not_one_group(payload: Any) -> None:
    with pytest.raises(ShapeError):
        decode_group(payload, prokey=KEY)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-11-24T15:05:13.007Z", datetime(2023, 11, 24, 15, 5, 13, 7000, tzinfo=UTC)),
        ("2023-11-24T16:05:13+01:00", datetime(2023, 11, 24, 15, 5, 13, tzinfo=UTC)),
        ("2023-11-24T10:05:13-05:00", datetime(2023, 11, 24, 15, 5, 13, tzinfo=UTC)),
        ("2023-11-24T15:05:13", datetime(2023, 11, 24, 15, 5, 13, tzinfo=UTC)),
        ("2023-11-24 15:05:13.5", datetime(2023, 11, 24, 15, 5, 13, 500000, tzinfo=UTC)),
    ],
)
def test_decode_group_gives_dates_as_aware_utc(value: str, expected: datetime) -> None:
    group = decode_group([_read(date_created=value)], prokey=KEY)
    assert group.date_created == expected
    assert group.date_created is not None
    assert group.date_created.utcoffset() == timedelta(0)
    assert group.date_created.tzinfo is UTC


@pytest.mark.parametrize("value", [None, ""])
def test_decode_group_reads_a_null_or_empty_date_as_none(value: Any) -> None:
    assert decode_group([_read(date_created=value)], prokey=KEY).date_created is None


@pytest.mark.parametrize("value", ["yesterday", 1700000000, "2023-13-45T00:00:00Z"])
def test_decode_group_rejects_a_date_it_cannot_read(value: Any) -> None:
    with pytest.raises(ShapeError, match="date_created"):
        decode_group([_read(date_created=value)], prokey=KEY)


def test_decode_group_keeps_unknown_enum_values_as_strings() -> None:
    group = decode_group([_read(status="archived", subscription="webcal")], prokey=KEY)
    assert group.status == "archived"
    assert not isinstance(group.status, GroupStatus)
    assert group.subscription == "webcal"
    assert not isinstance(group.subscription, Subscription)


@pytest.mark.parametrize("subscription", ["no", "external", "children"])
def test_decode_group_gives_known_enum_values_as_members(subscription: str) -> None:
    group = decode_group([_read(subscription=subscription, status="draft")], prokey=KEY)
    assert group.subscription is Subscription(subscription)
    assert group.status is GroupStatus.DRAFT


def test_decode_group_reads_null_enums_as_none() -> None:
    group = decode_group([_read(status=None, subscription=None)], prokey=KEY)
    assert group.status is None
    assert group.subscription is None


@pytest.mark.parametrize(("value", "expected"), [(True, True), ("true", True), (0, False)])
def test_decode_group_reads_cta_leniently(value: Any, expected: bool) -> None:
    assert decode_group([_read(cta=value)], prokey=KEY).cta is expected


def test_decode_group_names_the_field_that_does_not_fit() -> None:
    with pytest.raises(ShapeError, match="cta"):
        decode_group([_read(cta="maybe")], prokey=KEY)


def test_decode_group_needs_a_name() -> None:
    obj = _read()
    del obj["name"]
    with pytest.raises(ShapeError, match="name"):
        decode_group(obj, prokey=KEY)


# Listing ----------------------------------------------------------------------------


def test_decode_summaries_reads_objects_with_a_label() -> None:
    assert decode_summaries([{"prokey": KEY, "label": "Team"}]) == [
        GroupSummary(prokey=KEY, name="Team")
    ]


def test_decode_summaries_reads_objects_with_a_name() -> None:
    assert decode_summaries([{"prokey": KEY, "name": "Team", "status": "draft"}]) == [
        GroupSummary(prokey=KEY, name="Team", extra={"status": "draft"})
    ]


def test_decode_summaries_prefers_name_and_keeps_label_in_extra() -> None:
    [summary] = decode_summaries([{"prokey": KEY, "name": "Team", "label": "Label"}])
    assert summary.name == "Team"
    assert summary.extra == {"label": "Label"}


def test_decode_summaries_reads_plain_ids_with_no_name() -> None:
    assert decode_summaries([KEY, EVENT_A]) == [
        GroupSummary(prokey=KEY, name=None),
        GroupSummary(prokey=EVENT_A, name=None),
    ]


@pytest.mark.parametrize("item", [{"id": KEY}, {"prokey": [KEY]}, {"id": [KEY]}])
def test_decode_summaries_reads_the_key_from_id_or_an_array(item: dict[str, Any]) -> None:
    assert decode_summaries([item])[0].prokey == KEY


@pytest.mark.parametrize("wrapper", ["groups", "data", "items"])
def test_decode_summaries_unwraps_a_list_inside_an_object(wrapper: str) -> None:
    assert decode_summaries({wrapper: [KEY]}) == [GroupSummary(prokey=KEY)]


def test_decode_summaries_reads_an_empty_listing() -> None:
    assert decode_summaries([]) == []


@pytest.mark.parametrize(
    "payload",
    [None, "x", {"something": []}, [5], [{"name": "no key"}], [{"prokey": ""}]],
)
def test_decode_summaries_rejects_what_is_not_a_listing(payload: Any) -> None:
    with pytest.raises(ShapeError):
        decode_summaries(payload)


# Create reply -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [{"success": "Created", "id": KEY}, [{"success": "Created", "id": KEY}], {"prokey": KEY}],
)
def test_decode_created_returns_the_new_prokey(payload: Any) -> None:
    assert decode_created(payload) == KEY


@pytest.mark.parametrize("payload", [{"success": "Created"}, {"id": ""}, {"id": None}, [], None])
def test_decode_created_without_an_id_is_a_shape_error(payload: Any) -> None:
    with pytest.raises(ShapeError, match="id"):
        decode_created(payload)


# Request bodies ---------------------------------------------------------------------


def test_encode_new_group_sends_only_fields_with_a_value() -> None:
    assert encode_new_group(NewGroup("Team")) == {"name": "Team", "subscription": "no"}


def test_encode_new_group_sends_every_given_field_as_plain_json() -> None:
    new = NewGroup(
        "Team",
        internal_note="note",
        subscription=Subscription.EXTERNAL,
        subscription_cal_url="https://example.com/team.ics",
        layout="style-1",
        cta=False,
        cta_block="block-1",
        landingpage="lp-1",
        public_event_overview=False,
    )
    body = encode_new_group(new)
    assert body == {
        "name": "Team",
        "internal_note": "note",
        "subscription": "external",
        "subscription_cal_url": "https://example.com/team.ics",
        "layout": "style-1",
        "cta": False,
        "cta_block": "block-1",
        "landingpage": "lp-1",
        "public_event_overview": False,
    }
    assert type(body["subscription"]) is str
    assert json.loads(json.dumps(body)) == body


def test_encode_patch_omits_unset_and_sends_none_as_null() -> None:
    patch = GroupPatch(name="New", internal_note=None, status=GroupStatus.DRAFT)
    body = encode_patch(patch)
    assert body == {"name": "New", "status": "draft", "internal_note": None}
    assert type(body["status"]) is str
    assert json.dumps(body) == '{"name": "New", "status": "draft", "internal_note": null}'


def test_encode_patch_of_an_empty_patch_is_empty() -> None:
    assert encode_patch(GroupPatch()) == {}


# Properties -------------------------------------------------------------------------

_keys = st.uuids().map(str)
_text = st.text(max_size=20)
_dates = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
_offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
_KNOWN_FIELDS = frozenset({"prokey", "id", "events", *attrs.fields_dict(Group)})
_unknown_fields = st.dictionaries(
    st.text(min_size=1, max_size=12).filter(lambda k: k not in _KNOWN_FIELDS),
    st.one_of(st.none(), st.booleans(), st.integers(), _text),
    max_size=4,
)


@st.composite
def _groups(draw: st.DrawFn) -> Group:
    return Group(
        prokey=draw(_keys),
        name=draw(st.text(min_size=1, max_size=30)),
        status=draw(st.one_of(st.none(), st.sampled_from(GroupStatus), st.just("archived"))),
        internal_note=draw(st.one_of(st.none(), _text)),
        subscription=draw(st.one_of(st.none(), st.sampled_from(Subscription), st.just("webcal"))),
        subscription_cal_url=draw(st.one_of(st.none(), st.just("https://example.com/c.ics"))),
        layout=draw(st.one_of(st.none(), _text)),
        cta=draw(st.one_of(st.none(), st.booleans())),
        cta_block=draw(st.one_of(st.none(), _text)),
        landingpage=draw(st.one_of(st.none(), _text)),
        public_event_overview=draw(st.one_of(st.none(), st.booleans())),
        date_created=draw(st.one_of(st.none(), _dates)),
        date_updated=draw(st.one_of(st.none(), _dates)),
        event_prokeys=tuple(draw(st.lists(_keys, max_size=4))),
        extra=draw(_unknown_fields),
    )


def _wire(group: Group, *, shape: str, event_shape: str, offset: timezone) -> Any:
    """`group` as the server would send it, in one of the real shapes, through JSON."""

    def date(value: datetime | None) -> str | None:
        return None if value is None else value.astimezone(offset).isoformat()

    def event(key: str) -> Any:
        return {"string": key, "object": {"prokey": key}, "array": {"prokey": [key]}}[event_shape]

    def enum(value: Any) -> Any:
        return getattr(value, "value", value)

    obj: dict[str, Any] = {
        **group.extra,
        "name": group.name,
        "status": enum(group.status),
        "internal_note": group.internal_note,
        "subscription": enum(group.subscription),
        "subscription_cal_url": group.subscription_cal_url,
        "layout": group.layout,
        "cta": group.cta,
        "cta_block": group.cta_block,
        "landingpage": group.landingpage,
        "public_event_overview": group.public_event_overview,
        "date_created": date(group.date_created),
        "date_updated": date(group.date_updated),
        "events": [event(k) for k in group.event_prokeys],
    }
    payload = [obj] if shape == "list" else obj
    return json.loads(json.dumps(payload))


@given(
    _groups(),
    st.sampled_from(["list", "object"]),
    st.sampled_from(["string", "object", "array"]),
    _offsets,
)
def test_decode_group_round_trips_every_group_in_every_shape(
    group: Group, shape: str, event_shape: str, offset: timezone
) -> None:
    payload = _wire(group, shape=shape, event_shape=event_shape, offset=offset)
    assert decode_group(payload, prokey=group.prokey) == group


@given(_groups())
def test_decode_group_list_and_object_shapes_always_agree(group: Group) -> None:
    wrapped = _wire(group, shape="list", event_shape="array", offset=UTC)
    bare = _wire(group, shape="object", event_shape="string", offset=UTC)
    assert decode_group(wrapped, prokey=group.prokey) == decode_group(bare, prokey=group.prokey)


@given(
    st.lists(
        st.tuples(_keys, st.one_of(st.none(), st.text(min_size=1, max_size=20))),
        max_size=5,
    ),
    st.sampled_from(["name", "label", "ids"]),
)
def test_decode_summaries_round_trips_any_listing(
    entries: list[tuple[str, str | None]], style: str
) -> None:
    if style == "ids":
        payload: list[Any] = [key for key, _ in entries]
        expected = [GroupSummary(prokey=key) for key, _ in entries]
    else:
        payload = [{"prokey": key, style: name} for key, name in entries]
        expected = [GroupSummary(prokey=key, name=name) for key, name in entries]
    assert decode_summaries(json.loads(json.dumps(payload))) == expected


def _valid_name(text: str) -> bool:
    """True for a name the models accept (their rules, not repeated here)."""
    try:
        GroupPatch(name=text)
    except ValidationError:
        return False
    return True


@given(
    name=st.one_of(st.just(None), st.text(min_size=1, max_size=10).filter(_valid_name)),
    status=st.one_of(st.none(), st.sampled_from(GroupStatus)),
    note=st.one_of(st.just("unset"), st.none(), _text),
    cta=st.one_of(st.just("unset"), st.none(), st.booleans()),
)
def test_encode_patch_sends_exactly_the_fields_the_patch_carries(
    name: str | None, status: GroupStatus | None, note: Any, cta: Any
) -> None:
    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = name
    if status is not None:
        fields["status"] = status
    if note != "unset":
        fields["internal_note"] = note
    if cta != "unset":
        fields["cta"] = cta
    body = json.loads(json.dumps(encode_patch(GroupPatch(**fields))))
    assert body == {k: getattr(v, "value", v) for k, v in fields.items()}


# The fast path: the same hooks as cattrs, without its bookkeeping ---------------------


_SAMPLES: dict[Any, list[Any]] = {
    str: ["x", ""],
    str | None: ["x", None],
    bool | None: [True, None],
}


def test_taken_as_is_every_type_has_samples() -> None:
    assert set(_SAMPLES) == set(_TAKEN_AS_IS)


@pytest.mark.parametrize(
    ("type_", "value"), [(t, v) for t, values in _SAMPLES.items() for v in values]
)
def test_taken_as_is_values_are_what_their_hooks_give_back(type_: Any, value: Any) -> None:
    assert converter.get_structure_hook(type_)(value, type_) is value


def test_builder_makes_the_model_its_init_makes() -> None:
    fields = attrs.fields(Group)
    values = [f"v{i}" for i in range(len(fields) - 1)] + [{"x": 1}]
    built = _builder(Group)(*values)
    expected = Group(**{a.name: v for a, v in zip(fields, values, strict=True)})
    assert type(built) is Group
    assert built == expected
    assert built.extra == {"x": 1}
    assert isinstance(built.extra, type(expected.extra))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.name = "changed"  # type: ignore[misc]


def test_builder_refuses_a_model_that_checks_its_fields() -> None:
    @attrs.frozen
    class Checked:
        count: int = attrs.field(validator=attrs.validators.instance_of(int))

    with pytest.raises(TypeError, match="Checked checks its fields"):
        _builder(Checked)
    with pytest.raises(TypeError, match="NewGroup checks its fields"):
        _builder(NewGroup)  # its __attrs_post_init__ applies the rules


_GROUP_FIELDS = {"extra": override(struct_hook=_keep), "event_prokeys": _events}
_WIRE_VALUES = st.sampled_from(
    [None, "", "x", "published", "external", 0, 1, 2.5, True, False, [], {},
     "2024-05-01T10:00:00Z", "2024-05-01", "nope", ["k"], [{"prokey": ["k"]}], [None]]
)  # fmt: skip


_WIRE_KEYS = st.sampled_from([*DOCUMENTED_READ[0], "prokey", "extra"])


@given(st.dictionaries(_WIRE_KEYS, _WIRE_VALUES, max_size=3), st.sets(_WIRE_KEYS, max_size=3))
def test_fast_structure_gives_what_cattrs_gives_whenever_it_gives(
    changes: dict[str, Any], dropped: set[str]
) -> None:
    obj = {**DOCUMENTED_READ[0], "prokey": KEY, **changes}
    obj = {k: v for k, v in obj.items() if k not in dropped}
    fast = _fast_structure(Group, _GROUP_FIELDS)
    detailed = make_dict_structure_fn(Group, converter, **_GROUP_FIELDS)
    try:
        fast_result = fast(obj)
    except Exception:
        return  # refused: the caller asks the detailed function
    assert fast_result == detailed(obj, Group)
