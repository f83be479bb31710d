"""Models and input validation: pure, no I/O."""

from __future__ import annotations

import copy
import pickle
import unicodedata
import uuid
from typing import Any

import attrs
import pytest
from conftest import KEY, URL_PASSWORD, shows_password
from hypothesis import given
from hypothesis import strategies as st

from asyncgroups import (
    UNSET,
    Group,
    GroupPatch,
    GroupStatus,
    GroupSummary,
    NewGroup,
    Subscription,
    ValidationError,
    validate_prokey,
)
from asyncgroups._convert import encode_new_group, encode_patch

EVENT = "31a17cce-cccc-4ee3-99bb-6144c6a3bbbb"
CAL = "https://example.com/team.ics"


def _group(**fields: object) -> Group:
    values: dict[str, object] = {
        "prokey": KEY,
        "name": "Team",
        "status": GroupStatus.PUBLISHED,
        "subscription": Subscription.NO,
    }
    values.update(fields)
    return Group(**values)  # type: ignore[arg-type]


# Prokeys ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [KEY, KEY.upper(), str(uuid.UUID(int=0))])
def test_validate_prokey_accepts_uuid_shaped_keys(key: str) -> None:
    assert validate_prokey(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "all",
        "latest",
        "../all",
        "..",
        f"../{KEY}",
        f"{KEY}/../all",
        f"{KEY}/",
        "/" + KEY,
        KEY.replace("-", "/", 1),
        f"{KEY}%2F..",
        "%2e%2e",
        f"{KEY}?x=1",
        f"{KEY}#frag",
        f" {KEY}",
        f"{KEY} ",
        f"{KEY}\n",
        f"{KEY}\r\n",
        KEY.replace("-", " ", 1),
        KEY[:-1],
        KEY + "a",
        KEY.replace("a", "g"),
        KEY.replace("-", ""),
        "\uff13\uff11a17cce-bbbb-4ee3-99bb-6144c6a3aaaa",  # full-width digits are not hex
    ],
)
def test_validate_prokey_rejects_what_is_not_a_prokey(key: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_prokey(key)
    assert info.value.field == "prokey"


@pytest.mark.parametrize("key", [None, 123, b"31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa", [KEY]])
def test_validate_prokey_rejects_non_strings(key: object) -> None:
    with pytest.raises(ValidationError, match="must be a string"):
        validate_prokey(key)


def test_validate_prokey_error_shows_the_key_and_the_expected_shape() -> None:
    with pytest.raises(ValidationError) as info:
        validate_prokey("../all", field="event")
    assert "'../all'" in str(info.value)
    assert "8-4-4-4-12" in str(info.value)
    assert info.value.field == "event"


def test_validate_prokey_error_shortens_huge_input() -> None:
    with pytest.raises(ValidationError) as info:
        validate_prokey("x" * 10_000)
    assert len(str(info.value)) < 300


@given(st.uuids())
def test_validate_prokey_accepts_every_uuid(value: uuid.UUID) -> None:
    assert validate_prokey(str(value)) == str(value)


@given(
    st.uuids().map(str),
    st.integers(min_value=0, max_value=36),
    st.sampled_from(["/", "..", "%", "?", "#", " ", "\n", "\t", "\\", "\x00"]),
)
def test_validate_prokey_rejects_a_uuid_with_any_url_character_inside(
    key: str, at: int, bad: str
) -> None:
    with pytest.raises(ValidationError):
        validate_prokey(key[:at] + bad + key[at:])


def test_validation_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="prokey"):
        validate_prokey("nope")


# NewGroup ---------------------------------------------------------------------------


def test_new_group_defaults_to_no_subscription() -> None:
    new = NewGroup("Team events")
    assert new.subscription is Subscription.NO
    assert new.subscription_cal_url is None
    assert new.internal_note is None
    assert new.cta is None
    assert new.landingpage is None
    assert new.public_event_overview is None


@pytest.mark.parametrize("name", ["", " ", "\t\n"])
def test_new_group_rejects_an_empty_name(name: str) -> None:
    with pytest.raises(ValidationError, match="name") as info:
        NewGroup(name)
    assert info.value.field == "name"


@pytest.mark.parametrize("name", [None, 42, b"Team"])
def test_new_group_rejects_a_name_that_is_not_a_string(name: object) -> None:
    with pytest.raises(ValidationError) as info:
        NewGroup(name)  # type: ignore[arg-type]
    assert info.value.field == "name"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("no", Subscription.NO),
        ("external", Subscription.EXTERNAL),
        ("children", Subscription.CHILDREN),
        (Subscription.CHILDREN, Subscription.CHILDREN),
    ],
)
def test_new_group_accepts_subscription_as_string_or_member(
    value: str, expected: Subscription
) -> None:
    url = CAL if expected is Subscription.EXTERNAL else None
    assert NewGroup("Team", subscription=value, subscription_cal_url=url).subscription is expected


@pytest.mark.parametrize("value", ["yes", "EXTERNAL", "", None, 1])
def test_new_group_rejects_unknown_subscription(value: object) -> None:
    with pytest.raises(ValidationError, match="subscription must be one of") as info:
        NewGroup("Team", subscription=value)
    assert info.value.field == "subscription"


def test_new_group_external_needs_a_cal_url() -> None:
    with pytest.raises(ValidationError, match="needs a subscription_cal_url") as info:
        NewGroup("Team", subscription=Subscription.EXTERNAL)
    assert info.value.field == "subscription_cal_url"


@pytest.mark.parametrize(
    "url", [CAL, "http://example.com/cal.ics", "HTTPS://Example.com/c", "https://[::1]:8443/c"]
)
def test_new_group_external_accepts_http_urls(url: str) -> None:
    new = NewGroup("Team", subscription="external", subscription_cal_url=url)
    assert new.subscription_cal_url == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/cal.ics",
        "webcal://example.com/cal.ics",
        "example.com/cal.ics",
        "http://",
        "https:///cal.ics",
        "not a url",
        "",
        "http://[::1",  # urlsplit raises ValueError on this one
    ],
)
def test_new_group_rejects_a_cal_url_that_is_not_http_with_a_host(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        NewGroup("Team", subscription="external", subscription_cal_url=url)
    assert info.value.field == "subscription_cal_url"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://example.com/team.ics\n", r"'\n' at position 28"),
        ("https://example.com/team.ics\r\n", r"'\r' at position 28"),
        (" https://example.com/team.ics", "' ' at position 0"),
        ("https://exa mple.com/team.ics", "' ' at position 11"),
        ("https://example.com\r\nX-Injected: 1/team.ics", r"'\r' at position 19"),
        ("https://exam\x00ple.com/team.ics", r"'\x00' at position 12"),
        ("https://example.com/team\tx.ics", r"'\t' at position 24"),
        ("https://example.com/\x7fteam.ics", r"'\x7f' at position 20"),
        ("https://example.com/team.ics\u00a0", r"'\xa0' at position 28"),
        ("https://example.com/\u202eteam.ics", r"'\u202e' at position 20"),
        ("https://exa\u200bmple.com/team.ics", r"'\u200b' at position 11"),
    ],
)
def test_cal_url_with_whitespace_or_a_control_character_is_refused_not_stripped(
    url: str, shown: str
) -> None:
    for build in (
        lambda: NewGroup("Team", subscription="external", subscription_cal_url=url),
        lambda: GroupPatch(subscription_cal_url=url),
    ):
        with pytest.raises(ValidationError, match="spaces or control characters") as info:
            build()
        assert info.value.field == "subscription_cal_url"
        assert shown in str(info.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"ftp://user:{URL_PASSWORD}@cal.example/c.ics", "'ftp://user:***@cal.example/c.ics'"),
        (f"https://user:{URL_PASSWORD} @cal.example/c.ics", "'https://user:***@cal.example/c.ics'"),
        (f"https://:{URL_PASSWORD}@cal.example/c.ics\n", r"'https://:***@cal.example/c.ics\n'"),
    ],
)
def test_cal_url_refused_is_shown_without_its_password(url: str, shown: str) -> None:
    with pytest.raises(ValidationError) as info:
        NewGroup("Team", subscription="external", subscription_cal_url=url)
    assert shown in str(info.value)
    assert not shows_password(str(info.value))


@pytest.mark.parametrize(
    "url", ["https://exa<mple.com/c.ics", 'https://"x".com/c', "https://ex|ample.com/", "http://a^b/"]
)
def test_cal_url_with_a_host_that_is_not_a_host_name_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="not a host name") as info:
        NewGroup("Team", subscription="external", subscription_cal_url=url)
    assert info.value.field == "subscription_cal_url"


@pytest.mark.parametrize(
    "url",
    [
        "https://bücher.example/team.ics",
        "https://user@cal.example.com:8443/a/b.ics?x=1&y=%20#frag",
        "http://127.0.0.1:8080/team.ics",
        "https://[2001:db8::1]/team.ics",
        "https://cal_host.example/team.ics",
    ],
)
def test_cal_url_accepts_real_urls_and_keeps_them_exactly(url: str) -> None:
    new = NewGroup("Team", subscription="external", subscription_cal_url=url)
    assert new.subscription_cal_url == url
    assert GroupPatch(subscription_cal_url=url).changes() == {"subscription_cal_url": url}


_URL_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12
)


@given(
    before=_URL_TEXT,
    after=_URL_TEXT,
    bad=st.characters(codec="utf-8").filter(
        lambda c: c.isspace() or unicodedata.category(c) in ("Cc", "Cf")
    ),
)
def test_cal_url_with_any_whitespace_or_control_anywhere_is_refused(
    before: str, after: str, bad: str
) -> None:
    with pytest.raises(ValidationError) as info:
        GroupPatch(subscription_cal_url=f"https://{before}{bad}example.com/{after}")
    assert info.value.field == "subscription_cal_url"


@given(st.text(max_size=60))
def test_an_accepted_cal_url_is_sent_exactly_as_validated(url: str) -> None:
    try:
        patch = GroupPatch(subscription_cal_url=url)
    except ValidationError:
        return
    assert not any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in url)
    assert encode_patch(patch) == {"subscription_cal_url": url}
    new = NewGroup("Team", subscription="external", subscription_cal_url=url)
    assert encode_new_group(new)["subscription_cal_url"] == url


@pytest.mark.parametrize("subscription", [Subscription.NO, Subscription.CHILDREN])
def test_new_group_rejects_a_cal_url_without_external(subscription: Subscription) -> None:
    with pytest.raises(ValidationError, match='only allowed with subscription "external"'):
        NewGroup("Team", subscription=subscription, subscription_cal_url=CAL)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("internal_note", 5),
        ("layout", ["x"]),
        ("cta_block", 1.5),
        ("cta", "yes"),
        ("cta", 1),
        ("landingpage", 12),
        ("landingpage", {"id": "lp-1"}),
        ("landingpage", True),
        ("public_event_overview", "yes"),
        ("public_event_overview", 1),
        ("public_event_overview", "true"),
    ],
)
@pytest.mark.parametrize("model", [NewGroup, GroupPatch])
def test_models_reject_fields_of_the_wrong_type_naming_them(
    model: type[NewGroup] | type[GroupPatch], field: str, value: object
) -> None:
    with pytest.raises(ValidationError) as info:
        model(name="Team", **{field: value})
    assert info.value.field == field
    assert str(info.value).startswith(f"{field} must be ")


@pytest.mark.parametrize(
    ("fields", "sent"),
    [
        ({}, {}),
        ({"landingpage": None, "public_event_overview": None}, {}),
        ({"landingpage": "lp-1"}, {"landingpage": "lp-1"}),
        ({"public_event_overview": False}, {"public_event_overview": False}),
        (
            {"landingpage": "", "public_event_overview": True},
            {"landingpage": "", "public_event_overview": True},
        ),
    ],
)
def test_new_group_sends_landingpage_and_overview_only_when_given(
    fields: dict[str, Any], sent: dict[str, Any]
) -> None:
    body = encode_new_group(NewGroup("Team", **fields))
    assert body == {"name": "Team", "subscription": "no", **sent}


def test_new_group_is_frozen() -> None:
    new = NewGroup("Team")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        new.name = "Other"  # type: ignore[misc]


# Text that can be sent ----------------------------------------------------------------

#: Every text field a create or a patch sends.
TEXT_FIELDS = (
    "name",
    "internal_note",
    "subscription_cal_url",
    "layout",
    "cta_block",
    "landingpage",
)

#: Lone surrogates: half of a UTF-16 pair, as `json.loads('"\\ud83d"')` yields, and the
#: `\udcff` Python makes of an undecodable byte in a command line.
LONE_SURROGATES = ["\ud800", "\ud83d", "\udfff", "\udcff"]


def _with_text(model: type[NewGroup] | type[GroupPatch], field: str, text: str) -> object:
    """`model` with `text` placed in `field` (inside a URL for the calendar URL)."""
    fields: dict[str, Any] = {"name": "Team", field: text}
    if field == "subscription_cal_url":
        fields.update(subscription="external", subscription_cal_url=f"https://x.test/{text}.ics")
    return model(**fields)


@pytest.mark.parametrize("model", [NewGroup, GroupPatch])
@pytest.mark.parametrize("field", TEXT_FIELDS)
@pytest.mark.parametrize("lone", LONE_SURROGATES)
def test_text_with_a_lone_surrogate_is_refused_naming_the_field(
    model: type[NewGroup] | type[GroupPatch], field: str, lone: str
) -> None:
    with pytest.raises(ValidationError) as info:
        _with_text(model, field, f"ab{lone}cd")
    assert info.value.field == field
    message = str(info.value)
    assert message.startswith(f"{field} has {lone!r} at position ")
    assert "lone surrogate" in message
    message.encode("utf-8")  # the message itself can be printed


@pytest.mark.parametrize("model", [NewGroup, GroupPatch])
@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_text_with_any_character_of_unicode_is_accepted(
    model: type[NewGroup] | type[GroupPatch], field: str
) -> None:
    text = "Caf\u00e9-\U0001f389-\u4e2d-\u05d0"  # an emoji is a pair in UTF-16: not lone
    built = _with_text(model, field, text)
    assert text in str(getattr(built, field))


@pytest.mark.parametrize(
    "name",
    [
        " Team",
        "Team ",
        "\tTeam",
        "Team\n",
        "Team\r\n",
        "\u00a0Team",  # no-break space
        "Team\u3000",  # ideographic space
        "\u2003Team",  # em space
        "Team\u2028",  # line separator
        "\ufeffTeam",  # byte order mark: JavaScript's trim() strips it
        "Team\x00",  # NUL: PHP's trim() strips it
        "Team\x1f",
    ],
)
@pytest.mark.parametrize("model", [NewGroup, GroupPatch])
def test_a_name_with_whitespace_the_service_may_trim_is_refused(
    model: type[NewGroup] | type[GroupPatch], name: str
) -> None:
    with pytest.raises(ValidationError) as info:
        model(name=name)
    assert info.value.field == "name"
    assert str(info.value).startswith("name must not start or end with whitespace")


@pytest.mark.parametrize("name", ["Team 7", "Team  7", "Team\u00a07", "\U0001f389 Team", "T"])
def test_a_name_with_whitespace_inside_is_kept_exactly(name: str) -> None:
    assert NewGroup(name).name == name
    assert GroupPatch(name=name).name == name


# GroupPatch -------------------------------------------------------------------------


def test_group_patch_defaults_every_field_to_unset() -> None:
    patch = GroupPatch()
    assert all(value is UNSET for value in attrs.asdict(patch, recurse=False).values())
    assert patch.is_empty()
    assert patch.changes() == {}


def test_group_patch_changes_keep_none_and_omit_unset() -> None:
    patch = GroupPatch(name="New", internal_note=None, cta=False)
    assert patch.changes() == {"name": "New", "internal_note": None, "cta": False}
    assert not patch.is_empty()


@pytest.mark.parametrize(
    ("fields", "sent"),
    [
        ({}, {}),
        ({"landingpage": None}, {"landingpage": None}),
        ({"public_event_overview": None}, {"public_event_overview": None}),
        ({"landingpage": "lp-2", "name": "Team"}, {"name": "Team", "landingpage": "lp-2"}),
        ({"public_event_overview": False}, {"public_event_overview": False}),
    ],
)
def test_group_patch_sends_landingpage_and_overview_null_when_none_never_when_unset(
    fields: dict[str, Any], sent: dict[str, Any]
) -> None:
    patch = GroupPatch(**fields)
    assert patch.changes() == sent
    assert encode_patch(patch) == sent
    assert patch.is_empty() is (not sent)


def test_group_patch_accepts_enum_values_as_strings() -> None:
    patch = GroupPatch(status="draft", subscription="children")
    assert patch.status is GroupStatus.DRAFT
    assert patch.subscription is Subscription.CHILDREN


@pytest.mark.parametrize("name", ["", "   "])
def test_group_patch_rejects_an_empty_name(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        GroupPatch(name=name)
    assert info.value.field == "name"


def test_group_patch_rejects_a_null_name() -> None:
    with pytest.raises(ValidationError) as info:
        GroupPatch(name=None)  # type: ignore[arg-type]
    assert info.value.field == "name"


@pytest.mark.parametrize("field", ["status", "subscription"])
def test_group_patch_rejects_null_for_enum_fields(field: str) -> None:
    with pytest.raises(ValidationError) as info:
        GroupPatch(**{field: None})  # type: ignore[arg-type]
    assert info.value.field == field


def test_group_patch_rejects_unknown_status() -> None:
    with pytest.raises(ValidationError, match="status must be one of"):
        GroupPatch(status="archived")


@pytest.mark.parametrize("url", ["ftp://x/cal.ics", "http://", "cal.ics", "http://[::1"])
def test_group_patch_rejects_a_bad_cal_url(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        GroupPatch(subscription_cal_url=url)
    assert info.value.field == "subscription_cal_url"


def test_group_patch_allows_a_cal_url_alone() -> None:
    assert GroupPatch(subscription_cal_url=CAL).changes() == {"subscription_cal_url": CAL}


def test_group_patch_allows_external_without_a_url() -> None:
    patch = GroupPatch(subscription=Subscription.EXTERNAL)
    assert patch.changes() == {"subscription": Subscription.EXTERNAL}


def test_group_patch_rejects_external_with_a_null_url() -> None:
    with pytest.raises(ValidationError, match="needs a subscription_cal_url"):
        GroupPatch(subscription=Subscription.EXTERNAL, subscription_cal_url=None)


@pytest.mark.parametrize("subscription", [Subscription.NO, Subscription.CHILDREN])
def test_group_patch_rejects_a_url_with_another_subscription(subscription: Subscription) -> None:
    with pytest.raises(ValidationError, match='only allowed with subscription "external"'):
        GroupPatch(subscription=subscription, subscription_cal_url=CAL)


def test_group_patch_allows_no_with_a_null_url() -> None:
    patch = GroupPatch(subscription=Subscription.NO, subscription_cal_url=None)
    assert patch.changes() == {"subscription": Subscription.NO, "subscription_cal_url": None}


def test_group_patch_changes_subscription_only_when_it_carries_one() -> None:
    assert GroupPatch(subscription="no").changes_subscription()
    assert not GroupPatch(subscription_cal_url=CAL).changes_subscription()
    assert not GroupPatch(name="x").changes_subscription()


def test_group_patch_without_unchanged_keeps_only_differing_fields() -> None:
    current = _group(name="Team", internal_note=None, layout="style-1", cta=True)
    patch = GroupPatch(name="Team", internal_note=None, layout="style-2", cta=False)
    assert patch.without_unchanged(current).changes() == {"layout": "style-2", "cta": False}


def test_group_patch_without_unchanged_compares_landingpage_and_overview() -> None:
    current = _group(landingpage="lp-1", public_event_overview=False)
    same = GroupPatch(landingpage="lp-1", public_event_overview=False)
    assert same.without_unchanged(current).is_empty()
    other = GroupPatch(landingpage=None, public_event_overview=True)
    assert other.without_unchanged(current).changes() == {
        "landingpage": None,
        "public_event_overview": True,
    }


def test_group_patch_without_unchanged_compares_enums_by_value() -> None:
    current = _group(status="draft", subscription="no")
    patch = GroupPatch(status=GroupStatus.DRAFT, subscription=Subscription.NO)
    assert patch.without_unchanged(current).is_empty()


def test_group_patch_without_unchanged_sends_a_known_value_over_an_unknown_one() -> None:
    current = _group(status="archived")  # a value newer than this library
    patch = GroupPatch(status=GroupStatus.PUBLISHED)
    assert patch.without_unchanged(current).changes() == {"status": GroupStatus.PUBLISHED}


def test_group_patch_without_unchanged_treats_null_and_false_as_different() -> None:
    current = _group(cta=None)
    assert GroupPatch(cta=False).without_unchanged(current).changes() == {"cta": False}


def test_group_patch_is_frozen_and_keyword_only() -> None:
    with pytest.raises(TypeError):
        GroupPatch("name")  # type: ignore[call-arg]
    patch = GroupPatch(name="x")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        patch.name = "y"  # type: ignore[misc]


# UNSET and Group --------------------------------------------------------------------


def test_unset_is_falsy_and_reads_as_unset() -> None:
    assert not UNSET
    assert repr(UNSET) == "UNSET"
    assert type(UNSET)("UNSET") is UNSET  # one sentinel, so `is UNSET` checks hold
    assert list(type(UNSET)) == [UNSET]


def test_group_holds_landingpage_and_overview_as_fields() -> None:
    group = _group(landingpage="lp-1", public_event_overview=True)
    assert (group.landingpage, group.public_event_overview) == ("lp-1", True)
    assert group.extra == {}
    assert (_group().landingpage, _group().public_event_overview) == (None, None)


def test_group_has_events_follows_event_prokeys() -> None:
    assert not _group().has_events
    assert _group(event_prokeys=(EVENT,)).has_events


def test_group_extra_is_read_only_and_copied() -> None:
    source = {"rsvp": True}
    group = _group(extra=source)
    source["rsvp"] = False
    assert group.extra == {"rsvp": True}
    with pytest.raises(TypeError):
        group.extra["rsvp"] = False  # type: ignore[index]


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda g: pickle.loads(pickle.dumps(g))])  # noqa: S301
def test_group_survives_deepcopy_and_pickling(clone: Any) -> None:
    # Results of bulk reads cross process boundaries (multiprocessing, task queues).
    group = _group(event_prokeys=(EVENT,), extra={"rsvp": {"enabled": True}})
    copied = clone(group)
    assert copied == group
    assert copied.extra == {"rsvp": {"enabled": True}}
    with pytest.raises(TypeError):
        copied.extra["rsvp"] = None
    summary = GroupSummary(prokey=KEY, name="Team", extra={"label": "T"})
    assert clone(summary) == summary


def test_group_equality_covers_every_field() -> None:
    assert _group() == _group()
    assert _group() != _group(name="Other")
    assert _group() != _group(extra={"rsvp": True})


@given(st.text(max_size=80))
def test_group_patch_cal_url_check_raises_only_validation_error(url: str) -> None:
    field = None
    try:
        GroupPatch(subscription_cal_url=url)
    except ValidationError as err:
        field = err.field
    assert field in {None, "subscription_cal_url"}


@given(
    name=st.one_of(st.none(), st.integers(), st.text(max_size=20)),
    subscription=st.one_of(st.sampled_from(["no", "external", "children"]), st.text(max_size=8)),
    url=st.one_of(st.none(), st.text(max_size=30), st.just(CAL)),
)
def test_new_group_raises_only_validation_error(
    name: object, subscription: str, url: str | None
) -> None:
    field = None
    try:
        NewGroup(name, subscription=subscription, subscription_cal_url=url)  # type: ignore[arg-type]
    except ValidationError as err:
        field = err.field
    assert field in {None, "name", "subscription", "subscription_cal_url"}
