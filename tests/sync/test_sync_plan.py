"""Planning decisions, as pure functions of desired records, state rows and live groups."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import pytest

from asyncgroups import UNSET, Group, GroupPatch, ServerError, ValidationError
from asyncgroups.sync import Action, Change, DesiredGroup, Refresh, StateRow, plan_record
from asyncgroups.sync._decide import LiveView, build_plan, looked_for
from asyncgroups.sync._plan import check_refresh
from asyncgroups.sync._rows import PendingCreate, StateSnapshot

CAL = "https://example.com/team.ics"


def key(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def live_group(n: int, name: str, *, events: int = 0, **fields: Any) -> Group:
    values: dict[str, Any] = {
        "status": "published",
        "internal_note": None,
        "subscription": "no",
        "subscription_cal_url": None,
        "layout": None,
        "cta": False,
        "cta_block": None,
    }
    values.update(fields)
    linked = tuple(key(9000 + i) for i in range(events))
    return Group(prokey=key(n), name=name, event_prokeys=linked, **values)


def row(k: str, n: int, **fields: Any) -> StateRow:
    return StateRow(k, key(n), "created", MappingProxyType(fields), "2026-01-01T00:00:00Z")


def snapshot(rows: Sequence[StateRow] = (), pending: Sequence[PendingCreate] = ()) -> StateSnapshot:
    return StateSnapshot(
        state_id="test",
        generation=7,
        rows={r.key: r for r in rows},
        pending={p.key: p for p in pending},
    )


def live(*groups: Group, missing: Sequence[int] = (), failed: Mapping[int, Any] = ()) -> LiveView:
    return LiveView(
        groups={g.prokey: g for g in groups},
        missing=frozenset(key(n) for n in missing),
        failed={key(n): err for n, err in dict(failed).items()},
    )


def test_plan_creates_what_the_state_does_not_know() -> None:
    desired = [DesiredGroup("a", "A", internal_note="x"), DesiredGroup("b", "B", status="draft")]
    plan = build_plan(desired, snapshot(), live=live())
    assert [(i.key, i.action) for i in plan.items] == [("a", Action.CREATE), ("b", Action.CREATE)]
    assert plan.state_generation == 7
    # the draft needs a PATCH after its create: one update
    assert plan.patches == 1
    assert plan.has_changes


def test_plan_leaves_a_matching_group_unchanged_and_ignores_unmanaged_fields() -> None:
    desired = [DesiredGroup("a", "A", internal_note="x")]
    group = live_group(1, "A", internal_note="x", layout="set-by-hand", cta=True)
    plan = build_plan(desired, snapshot([row("a", 1, name="A")]), live=live(group))
    (item,) = plan.items
    assert item.action is Action.UNCHANGED
    assert item.prokey == key(1)
    assert not plan.has_changes
    assert plan.estimated_credits == 0


def test_plan_updates_exactly_the_fields_that_differ() -> None:
    desired = [
        DesiredGroup(
            "a",
            "A2",
            internal_note=None,
            cta=True,
            subscription="external",
            subscription_cal_url=CAL,
        )
    ]
    group = live_group(1, "A", internal_note="old", cta=True)
    plan = build_plan(desired, snapshot([row("a", 1)]), live=live(group))
    (item,) = plan.items
    assert item.action is Action.UPDATE
    assert item.changes == (
        Change("name", "A", "A2"),
        Change("internal_note", "old", None),
        Change("subscription", "no", "external"),
        Change("subscription_cal_url", None, CAL),
    )
    assert item.patch() == GroupPatch(
        name="A2", internal_note=None, subscription="external", subscription_cal_url=CAL
    )


def test_plan_recreates_a_group_gone_from_the_account_as_drift() -> None:
    plan = build_plan([DesiredGroup("a", "A")], snapshot([row("a", 1)]), live=live(missing=[1]))
    (item,) = plan.items
    assert (item.action, item.drift, item.prokey) == (Action.CREATE, True, key(1))
    assert "gone from the account" in (item.reason or "")
    assert "1 to create (1 after drift)" in plan.summary()


def test_plan_blocks_a_group_it_could_not_read() -> None:
    error = ServerError("boom", status=503, method="GET", url="http://x/group/k")
    plan = build_plan(
        [DesiredGroup("a", "A")], snapshot([row("a", 1)]), live=live(failed={1: error})
    )
    (item,) = plan.items
    assert (item.action, item.intended) == (Action.BLOCKED, Action.UPDATE)
    assert "could not read" in (item.reason or "")


def test_plan_blocks_a_subscription_change_while_events_are_linked() -> None:
    desired = [
        DesiredGroup("a", "A2", subscription="external", subscription_cal_url=CAL),
        DesiredGroup("b", "B", subscription="external", subscription_cal_url=CAL),
    ]
    plan = build_plan(
        desired,
        snapshot([row("a", 1), row("b", 2)]),
        live=live(live_group(1, "A", events=2), live_group(2, "B")),
    )
    blocked, allowed = plan.items
    assert blocked.action is Action.BLOCKED
    assert "2 event(s) are linked" in (blocked.reason or "")
    assert blocked.changes[0] == Change("name", "A", "A2")  # shown, but nothing is sent
    assert allowed.action is Action.UPDATE
    assert plan.patches == 1


def test_plan_allows_a_new_url_without_a_subscription_change_while_events_are_linked() -> None:
    desired = [DesiredGroup("a", "A", subscription="external", subscription_cal_url=CAL)]
    group = live_group(
        1, "A", events=1, subscription="external", subscription_cal_url="https://old/x.ics"
    )
    (item,) = build_plan(desired, snapshot([row("a", 1)]), live=live(group)).items
    assert item.action is Action.UPDATE
    assert item.patch() == GroupPatch(subscription_cal_url=CAL)


@pytest.mark.parametrize(
    ("applied", "action"),
    [
        ({}, Action.BLOCKED),  # status never managed: someone else drafted it
        ({"status": "published"}, Action.BLOCKED),  # drafted by hand after the last sync
        ({"status": "draft"}, Action.UPDATE),  # drafted by this sync: it may publish it
    ],
)
def test_plan_blocks_publishing_a_group_drafted_outside_the_sync(
    applied: dict[str, Any], action: Action
) -> None:
    desired = [DesiredGroup("a", "A", status="published")]
    group = live_group(1, "A", status="draft")
    (item,) = build_plan(desired, snapshot([row("a", 1, **applied)]), live=live(group)).items
    assert item.action is action
    if action is Action.BLOCKED:
        assert "web application" in (item.reason or "")


def test_plan_without_prune_keeps_owned_groups_that_are_no_longer_desired() -> None:
    plan = build_plan([], snapshot([row("gone", 1)]), live=live(live_group(1, "G")))
    (item,) = plan.items
    assert (item.action, item.prokey) == (Action.KEEP, key(1))
    assert not plan.has_changes
    assert "1 kept" in plan.summary()


def test_plan_prune_deletes_only_owned_groups() -> None:
    # key(3) exists in the account but no row owns it: it never appears in the plan
    plan = build_plan(
        [DesiredGroup("a", "A")],
        snapshot([row("a", 1, name="A"), row("gone", 2), row("vanished", 4)]),
        live=live(live_group(1, "A"), live_group(2, "G"), live_group(3, "G"), missing=[4]),
        prune=True,
    )
    assert [(i.key, i.action, i.prokey) for i in plan.items] == [
        ("a", Action.UNCHANGED, key(1)),
        ("gone", Action.DELETE, key(2)),
        ("vanished", Action.DELETE, key(4)),
    ]
    assert "already gone" in (plan.items[2].reason or "")


def test_plan_without_refresh_compares_with_the_fields_last_applied() -> None:
    desired = [DesiredGroup("a", "A", internal_note="n"), DesiredGroup("b", "B")]
    rows = [row("a", 1, name="A"), row("b", 2, name="B")]
    # the live groups differ, but are not looked at
    plan = build_plan(
        desired, snapshot(rows), live=live(live_group(2, "changed by hand")), refresh=False
    )
    first, second = plan.items
    assert first.action is Action.UPDATE
    assert first.changes == (Change("internal_note", UNSET, "n"),)  # never applied: unknown
    assert second.action is Action.UNCHANGED
    assert plan.refresh is Refresh.NONE


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("full", Refresh.FULL),
        ("listing", Refresh.LISTING),
        ("none", Refresh.NONE),
        (Refresh.LISTING, Refresh.LISTING),
        (True, Refresh.FULL),  # the refresh flag as it was: read everything compared ...
        (False, Refresh.NONE),  # ... or nothing
    ],
)
def test_check_refresh_takes_a_mode_name_or_the_old_flag(value: object, mode: Refresh) -> None:
    assert check_refresh(value) is mode


@pytest.mark.parametrize("value", ["Full", "fast", "", None, 1, 0, "True", 2.5])
def test_check_refresh_refuses_anything_else_naming_the_field(value: object) -> None:
    expected = "refresh must be 'full', 'listing' or 'none'"
    with pytest.raises(ValidationError, match=expected) as info:
        check_refresh(value)
    assert info.value.field == "refresh"


def listed(names: Mapping[int, str | None], missing: Sequence[int] = ()) -> LiveView:
    """What a listing of the account showed of the owned groups: names, and who lacked."""
    return LiveView(
        listed={key(n): name for n, name in names.items()},
        missing=frozenset(key(n) for n in missing),
    )


@pytest.mark.parametrize(
    ("shown", "desired_note", "action", "changes"),
    [
        ("A", "x", Action.UNCHANGED, ()),
        # a name changed by hand is seen: the listing shows names
        ("renamed by hand", "x", Action.UPDATE, (Change("name", "renamed by hand", "A"),)),
        (None, "x", Action.UNCHANGED, ()),  # a listing of ids only: the state's name stands
        # other fields are compared with those last applied (the listing has no others)
        ("A", "y", Action.UPDATE, (Change("internal_note", "x", "y"),)),
    ],
)
def test_plan_from_the_listing_compares_its_name_and_trusts_the_state_for_the_rest(
    shown: str | None, desired_note: str, action: Action, changes: tuple[Change, ...]
) -> None:
    plan = build_plan(
        [DesiredGroup("a", "A", internal_note=desired_note)],
        snapshot([row("a", 1, name="A", internal_note="x")]),
        live=listed({1: shown}),
        refresh=Refresh.LISTING,
    )
    (item,) = plan.items
    assert (item.action, item.prokey, item.changes) == (action, key(1), changes)
    assert plan.refresh is Refresh.LISTING


def test_plan_from_the_listing_recreates_a_group_it_does_not_show_as_drift() -> None:
    plan = build_plan(
        [DesiredGroup("a", "A"), DesiredGroup("b", "B")],
        snapshot([row("a", 1, name="A"), row("b", 2, name="B")]),
        live=listed({1: "A"}, missing=[2]),
        refresh=Refresh.LISTING,
    )
    unchanged, drift = plan.items
    assert unchanged.action is Action.UNCHANGED
    assert (drift.action, drift.drift, drift.prokey) == (Action.CREATE, True, key(2))
    assert "missing from the account's listing" in (drift.reason or "")
    assert (plan.checked_count, plan.vanished_count) == (2, 1)


def test_plan_from_the_listing_prunes_a_group_it_does_not_show_as_already_gone() -> None:
    plan = build_plan(
        [],
        snapshot([row("old", 1), row("gone", 2)]),
        live=listed({1: "Old"}, missing=[2]),
        refresh=Refresh.LISTING,
        prune=True,
    )
    assert [(i.key, i.action) for i in plan.items] == [
        ("old", Action.DELETE),
        ("gone", Action.DELETE),
    ]
    assert plan.items[0].reason is None
    assert "already gone" in (plan.items[1].reason or "")


@pytest.mark.parametrize(
    ("refresh", "prune", "checked"),
    [
        # a full refresh reads the owned groups it compares; with prune, every one
        (Refresh.FULL, False, ["a", "b"]),
        (Refresh.FULL, True, ["a", "b", "old", "older"]),
        # one listing shows every group, compared or not
        (Refresh.LISTING, False, ["a", "b", "old", "older"]),
        (Refresh.LISTING, True, ["a", "b", "old", "older"]),
        # nothing is looked for
        (Refresh.NONE, False, []),
        (Refresh.NONE, True, []),
    ],
)
def test_plan_looks_for_the_owned_groups_its_refresh_can_check(
    refresh: Refresh, prune: bool, checked: list[str]
) -> None:
    rows = snapshot([row("a", 1), row("b", 2), row("old", 3), row("older", 4)]).rows
    wanted = {"a", "b", "new"}
    assert [r.key for r in looked_for(rows, wanted, refresh=refresh, prune=prune)] == checked
    # every one of them gone: the plan counts those it looked for, and only those
    everything_gone = LiveView(missing=frozenset(key(n) for n in range(1, 5)))
    desired = [DesiredGroup(k, k.upper()) for k in sorted(wanted)]
    plan = build_plan(
        desired,
        snapshot([row("a", 1), row("b", 2), row("old", 3), row("older", 4)]),
        live=everything_gone,
        refresh=refresh,
        prune=prune,
    )
    assert (plan.owned_count, plan.checked_count) == (4, len(checked))
    assert plan.vanished_count == len(checked)


def test_plan_resumes_an_interrupted_create() -> None:
    pending = PendingCreate("a", "A", MappingProxyType({"name": "A"}), 1, "t")
    (item,) = build_plan([DesiredGroup("a", "A")], snapshot(pending=[pending]), live=live()).items
    assert (item.action, item.resume) == (Action.CREATE, True)


def test_plan_says_until_when_a_timed_out_create_may_still_land() -> None:
    pending = PendingCreate(
        "a",
        "A",
        MappingProxyType({"name": "A"}),
        1,
        "t",
        sent_at="2027-01-15T07:59:59.900+00:00",
        timed_out_at="2027-01-15T08:00:00.000+00:00",
        decide_after="2027-01-15T08:02:00.000+00:00",
    )
    (item,) = build_plan([DesiredGroup("a", "A")], snapshot(pending=[pending]), live=live()).items
    assert (item.action, item.resume) == (Action.CREATE, True)
    assert "may still land" in (item.reason or "")
    assert "creates nothing before 2027-01-15T08:02:00.000Z" in (item.reason or "")


def test_plan_adopts_a_single_group_with_the_exact_name() -> None:
    desired = [DesiredGroup("a", "Team", internal_note="synced"), DesiredGroup("b", "New")]
    plan = build_plan(
        desired,
        snapshot(),
        live=live(live_group(5, "Team", internal_note="by hand")),
        adoptable={"Team": [key(5)]},
    )
    adopt, create = plan.items
    assert (adopt.action, adopt.prokey) == (Action.ADOPT, key(5))
    assert adopt.changes == (Change("internal_note", "by hand", "synced"),)
    assert create.action is Action.CREATE
    assert plan.patches == 1
    assert plan.adopt_by_name


def test_plan_never_guesses_between_same_named_groups() -> None:
    desired = [DesiredGroup("a", "Team"), DesiredGroup("b", "Dup"), DesiredGroup("c", "Dup")]
    plan = build_plan(
        desired,
        snapshot(),
        live=live(live_group(5, "Team"), live_group(6, "Team"), live_group(7, "Dup")),
        adoptable={"Team": [key(5), key(6)], "Dup": [key(7)]},
    )
    assert [i.action for i in plan.items] == [Action.BLOCKED] * 3
    assert f"({key(5)}, {key(6)})" in (plan.items[0].reason or "")
    assert "2 desired keys share the name 'Dup'" in (plan.items[1].reason or "")
    assert all(i.intended is Action.ADOPT for i in plan.items)


def test_plan_does_not_adopt_a_name_an_interrupted_create_used() -> None:
    pending = PendingCreate("old", "Team", MappingProxyType({"name": "Team"}), 1, "t")
    plan = build_plan(
        [DesiredGroup("a", "Team")],
        snapshot(pending=[pending]),
        live=live(live_group(5, "Team")),
        adoptable={"Team": [key(5)]},
    )
    assert plan.items[0].action is Action.BLOCKED
    assert plan.items[1].action is Action.KEEP  # the interrupted create itself


@pytest.mark.parametrize(
    ("before", "updates", "credits"),
    [(0, 0, 0), (0, 4, 0), (0, 5, 1), (3, 2, 1), (4, 1, 1), (5, 4, 0), (0, 12, 2), (9, 1, 1)],
)
def test_plan_estimates_credits_from_the_clients_running_count(
    before: int, updates: int, credits: int
) -> None:
    desired = [DesiredGroup(str(i), "new name") for i in range(updates)]
    rows = [row(str(i), i) for i in range(updates)]
    groups = [live_group(i, "old name") for i in range(updates)]
    plan = build_plan(desired, snapshot(rows), live=live(*groups), updates_before=before)
    assert plan.patches == updates
    assert plan.estimated_credits == credits


def test_plan_records_are_json_lines_ready() -> None:
    desired = [DesiredGroup("a", "A2"), DesiredGroup("b", "B", cta=None)]
    plan = build_plan(
        desired, snapshot([row("a", 1), row("old", 2)]), live=live(live_group(1, "A")), prune=True
    )
    records = [plan_record(item) for item in plan.items]
    assert records == [
        {
            "key": "a",
            "action": "update",
            "prokey": key(1),
            "changes": {"name": {"old": "A", "new": "A2"}},
        },
        {"key": "b", "action": "create", "fields": {"name": "B", "cta": None}},
        {"key": "old", "action": "delete", "prokey": key(2)},
    ]
    json.dumps(records)  # plain JSON values only


def test_plan_summary_counts_every_action_and_the_credits() -> None:
    plan = build_plan(
        [DesiredGroup("a", "A")], snapshot([row("a", 1)]), live=live(missing=[1]), updates_before=4
    )
    assert plan.summary() == (
        "plan: 1 to create (1 after drift), 0 to update, 0 to delete, 0 unchanged, "
        "0 blocked; 0 update(s), estimated 0 event credits"
    )
