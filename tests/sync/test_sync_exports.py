"""Sync's public objects pickle through `asyncgroups.sync` (its `__all__` is checked with
the package's, in tests/test_exported_members.py)."""

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
