"""Sync's public surface: exactly the names a user needs, and its objects pickle through
`asyncgroups.sync` (its `__all__` order and `__module__`s are checked with the package's,
in tests/test_exported_members.py)."""

from __future__ import annotations

import pickle

from asyncgroups import sync


def test_sync_records_and_plans_pickle_through_the_public_path() -> None:
    record = sync.DesiredGroup("k", "Team", status="draft", internal_note=None)
    item = sync.PlanItem(
        "k", sync.Action.UPDATE, desired=record, changes=(sync.Change("name", "a", "Team"),)
    )
    for obj in (record, item, sync.Plan(items=(item,), state_id="s", state_generation=1)):
        assert pickle.loads(pickle.dumps(obj)) == obj  # noqa: S301 (our own bytes)


#: What a user calls, receives or catches: the docs' sync page and the `sync`
#: command use nothing else. Adding a name here is a decision about the public API.
PUBLIC = {
    "WRITE_ACTIONS",
    "Action",
    "AmbiguousCreateError",
    "Change",
    "DesiredGroup",
    "DesiredInput",
    "DesiredStateError",
    "ItemOutcome",
    "ItemResult",
    "MassDeleteError",
    "OutOfCreditsError",
    "Plan",
    "PlanItem",
    "Problem",
    "Refresh",
    "StalePlanError",
    "StateAccountError",
    "StateFileError",
    "StateLockedError",
    "StateRow",
    "SyncError",
    "SyncProgress",
    "SyncProgressCallback",
    "SyncReport",
    "SyncState",
    "VanishedGroupsError",
    "apply",
    "plan",
    "plan_record",
    "read_desired",
    "result_record",
}


def test_sync_exports_what_a_user_calls_and_not_its_machinery() -> None:
    assert set(sync.__all__) == PUBLIC
    for internal in ("build_plan", "LiveView", "StateSnapshot", "PendingCreate", "FIELDS"):
        assert not hasattr(sync, internal)


def test_sync_write_actions_are_the_actions_an_apply_works_on() -> None:
    assert {sync.Action.CREATE, sync.Action.ADOPT, sync.Action.UPDATE, sync.Action.DELETE} == (
        sync.WRITE_ACTIONS
    )
