"""Desired records: validation, the create they make, and reading JSON Lines. No I/O."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest

from asyncgroups import UNSET, GroupPatch, GroupStatus, NewGroup, Subscription, ValidationError
from asyncgroups._convert import encode_new_group
from asyncgroups.sync import DesiredGroup, DesiredStateError, read_desired
from asyncgroups.sync._desired import check_unique, collect_desired

CAL = "https://example.com/team.ics"


def test_desired_group_leaves_fields_out_unmanaged() -> None:
    d = DesiredGroup("42", "Team")
    assert d.internal_note is UNSET
    assert d.managed() == {"name": "Team"}
    assert isinstance(d.new_group(), NewGroup)
    # Not even NewGroup's default subscription: the record does not manage it.
    assert encode_new_group(d.new_group()) == {"name": "Team"}
    assert d.followup().is_empty()


def test_desired_group_accepts_an_integer_key_as_its_text() -> None:
    assert DesiredGroup(42, "Team").key == "42"  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["", "   ", True, None, 1.5, "k" * 513])
def test_desired_group_refuses_a_bad_key(key: object) -> None:
    with pytest.raises(ValidationError) as info:
        DesiredGroup(key, "Team")  # type: ignore[arg-type]
    assert info.value.field == "key"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "  "}, "name"),
        ({"name": 5}, "name"),
        ({"subscription": "external"}, "subscription_cal_url"),
        ({"subscription": "external", "subscription_cal_url": None}, "subscription_cal_url"),
        ({"subscription_cal_url": CAL}, "subscription_cal_url"),
        ({"subscription": "no", "subscription_cal_url": CAL}, "subscription_cal_url"),
        (
            {"subscription": "external", "subscription_cal_url": "ftp://x/y.ics"},
            "subscription_cal_url",
        ),
        ({"subscription": "sometimes"}, "subscription"),
        ({"subscription": None}, "subscription"),
        ({"status": "archived"}, "status"),
        ({"status": None}, "status"),
        ({"cta": "yes"}, "cta"),
        ({"internal_note": 3}, "internal_note"),
        ({"landingpage": 12}, "landingpage"),
        ({"public_event_overview": "yes"}, "public_event_overview"),
        ({"subscription": "children", "subscription_cal_url": CAL}, "subscription_cal_url"),
    ],
)
def test_desired_group_applies_the_rules_of_a_create(fields: dict[str, object], field: str) -> None:
    values: dict[str, object] = {"name": "Team", **fields}
    with pytest.raises(ValidationError) as info:
        DesiredGroup("k", **values)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": " Team"}, "name"),
        ({"name": "Team\u00a0"}, "name"),
        ({"name": "Te\ud83dam"}, "name"),
        ({"internal_note": "\ud800"}, "internal_note"),
        ({"layout": "\udfff"}, "layout"),
        ({"cta_block": "x\udcff"}, "cta_block"),
        ({"landingpage": "lp-\ud83d"}, "landingpage"),
        (
            {"subscription": "external", "subscription_cal_url": "https://x.test/\ud83d.ics"},
            "subscription_cal_url",
        ),
        ({"key": "crm-\ud800"}, "key"),  # not sent, but stored in the state file
    ],
)
def test_desired_group_refuses_text_that_cannot_be_sent_as_it_is(
    fields: dict[str, object], field: str
) -> None:
    values: dict[str, object] = {"key": "k", "name": "Team", **fields}
    with pytest.raises(ValidationError) as info:
        DesiredGroup(**values)  # type: ignore[arg-type]
    assert info.value.field == field


def test_read_desired_names_the_line_of_a_name_with_whitespace_or_a_lone_surrogate() -> None:
    lines = [
        '{"key": "a", "name": "A"}',
        '{"key": "b", "name": "Team 7 "}',
        '{"key": "c", "name": "C"}',
        '{"key": "d", "name": "D", "internal_note": "cut \\ud83d"}',  # JSON escape
        '{"key": "e\\udfff", "name": "E"}',
    ]
    with pytest.raises(DesiredStateError) as info:
        read_desired(lines, source="groups.jsonl")
    assert [(p.where, p.field) for p in info.value.problems] == [
        ("groups.jsonl:2", "name"),
        ("groups.jsonl:4", "internal_note"),
        ("groups.jsonl:5", "key"),
    ]
    str(info.value).encode("utf-8")  # the message itself can be printed


def test_desired_group_builds_its_create_and_the_patch_a_create_cannot_say() -> None:
    d = DesiredGroup(
        "k",
        "Team",
        status="draft",
        internal_note=None,
        subscription="external",
        subscription_cal_url=CAL,
        cta=None,
    )
    assert d.status is GroupStatus.DRAFT
    assert encode_new_group(d.new_group()) == encode_new_group(
        NewGroup("Team", subscription=Subscription.EXTERNAL, subscription_cal_url=CAL)
    )
    # a create cannot send a status or a null cta (it would become false)
    assert d.followup() == GroupPatch(status=GroupStatus.DRAFT, cta=None)
    assert d.values() == {
        "name": "Team",
        "status": "draft",
        "internal_note": None,
        "subscription": "external",
        "subscription_cal_url": CAL,
        "cta": None,
    }
    assert d.created_values() == {
        "name": "Team",
        "internal_note": None,
        "subscription": "external",
        "subscription_cal_url": CAL,
    }


def test_desired_group_published_status_needs_no_followup() -> None:
    assert DesiredGroup("k", "Team", status="published", cta=False).followup().is_empty()


def test_read_desired_reads_json_lines_and_skips_blank_lines() -> None:
    text = (
        '{"key": "a", "name": "A", "internal_note": null}\n'
        "\n"
        '{"key": 7, "name": "B", "subscription": "external", '
        f'"subscription_cal_url": "{CAL}", "status": "draft"}}\n'
    )
    records = read_desired(io.StringIO(text))
    assert [r.key for r in records] == ["a", "7"]
    assert records[0].managed() == {"name": "A", "internal_note": None}
    assert records[1].subscription is Subscription.EXTERNAL


def test_read_desired_reads_landingpage_and_overview_as_managed_fields() -> None:
    lines = [
        '{"key": "a", "name": "A", "landingpage": "lp-1", "public_event_overview": true}',
        '{"key": "b", "name": "B", "landingpage": null, "public_event_overview": false}',
    ]
    a, b = read_desired(lines)
    assert a.values() == {"name": "A", "landingpage": "lp-1", "public_event_overview": True}
    assert b.values() == {"name": "B", "landingpage": None, "public_event_overview": False}
    assert a.full_patch() == GroupPatch(name="A", landingpage="lp-1", public_event_overview=True)
    assert b.created_values() == b.values()  # a create sends no null: the group has none
    assert b.followup().is_empty()


def test_read_desired_names_the_line_and_field_of_every_problem() -> None:
    lines = [
        '{"key": "a", "name": "A"}',
        '{"key": "b", "nmae": "typo"}',
        "not json",
        '{"key": "c", "name": "C", "subscription_cal_url": "ftp://x"}',
        '["a", "list"]',
        '{"name": "no key"}',
        '{"key": "a", "name": "again"}',
    ]
    with pytest.raises(DesiredStateError) as info:
        read_desired(lines, source="groups.jsonl")
    problems = info.value.problems
    assert [(p.where, p.field) for p in problems] == [
        ("groups.jsonl:2", "nmae"),
        ("groups.jsonl:3", None),
        ("groups.jsonl:4", "subscription_cal_url"),
        ("groups.jsonl:5", None),
        ("groups.jsonl:6", "key"),
        ("groups.jsonl:7", "key"),
    ]
    assert "duplicate key 'a' (first at groups.jsonl:1)" in problems[-1].message
    text = str(info.value)
    assert "6 problem(s)" in text
    assert "groups.jsonl:4: field 'subscription_cal_url':" in text
    assert isinstance(info.value, ValidationError)  # callers may catch it as bad input


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"key": "a",\n',
            "Expecting property name enclosed in double quotes at the end of the line",
        ),
        ('{"key": "a", "name": }\n', "Expecting value at column 22"),
        ('{"key": "a"} x\r\n', "Extra data at column 14"),
        ('  {"key": 1\n', "Expecting ',' delimiter at the end of the line"),
    ],
)
def test_read_desired_says_where_in_its_line_a_record_is_not_json(line: str, message: str) -> None:
    # JSON's own "line 2" would contradict the file's line number: only the column is said.
    with pytest.raises(DesiredStateError) as info:
        read_desired(["\n", line], source="broken.jsonl")
    [problem] = info.value.problems
    assert str(problem) == f"broken.jsonl:2: not valid JSON ({message})"


def test_desired_state_error_lists_a_bounded_number_of_problems() -> None:
    lines = ['{"key": "k", "name": ""}'] * 30
    with pytest.raises(DesiredStateError) as info:
        read_desired(lines)
    assert len(info.value.problems) == 30  # invalid records are not checked for duplicates
    assert "… and 10 more problem(s)" in str(info.value)


def test_check_unique_refuses_duplicates_and_foreign_items() -> None:
    with pytest.raises(DesiredStateError) as info:
        check_unique([DesiredGroup("a", "A"), {"key": "b"}, DesiredGroup("a", "A2")])
    assert [p.where for p in info.value.problems] == ["item 1", "item 2"]
    assert "duplicate key 'a' (first at item 0)" in str(info.value)


async def test_collect_desired_takes_an_async_iterable() -> None:
    async def produce() -> AsyncIterator[DesiredGroup]:
        for i in range(3):
            yield DesiredGroup(str(i), f"G{i}")

    assert [d.key for d in await collect_desired(produce())] == ["0", "1", "2"]


@pytest.mark.parametrize("value", [DesiredGroup("a", "A"), "a", 5])
async def test_collect_desired_refuses_what_is_not_a_collection_of_records(value: object) -> None:
    with pytest.raises(ValidationError):
        await collect_desired(value)


@pytest.mark.parametrize(
    ("fields", "body"),
    [
        ({}, {"name": "Team"}),
        ({"subscription": "no"}, {"name": "Team", "subscription": "no"}),
        ({"layout": "grid", "cta": False}, {"name": "Team", "layout": "grid", "cta": False}),
        ({"internal_note": None, "status": "published"}, {"name": "Team"}),
        ({"landingpage": None, "public_event_overview": None}, {"name": "Team"}),
        (
            {"landingpage": "lp-1", "public_event_overview": False},
            {"name": "Team", "landingpage": "lp-1", "public_event_overview": False},
        ),
    ],
)
def test_desired_group_create_body_holds_only_managed_fields(
    fields: dict[str, object], body: dict[str, object]
) -> None:
    assert encode_new_group(DesiredGroup("k", "Team", **fields).new_group()) == body  # type: ignore[arg-type]


def test_partial_new_group_refuses_sends_without_the_name_or_with_unknown_fields() -> None:
    from asyncgroups.models import PartialNewGroup

    for sends in (frozenset(), frozenset({"name", "colour"})):
        with pytest.raises(ValidationError) as info:
            PartialNewGroup("Team", sends=sends)
        assert info.value.field == "sends"
