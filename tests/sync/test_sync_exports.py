"""The public surface of `asyncgroups.sync`: one sorted `__all__`, classes shown there."""

from __future__ import annotations

import pickle
import types

import pytest

from asyncgroups import sync


def _order(name: str) -> tuple[int, str]:
    """Ruff's isort-style `__all__` order, as every module of the package uses it."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def _public_members() -> set[str]:
    return {
        name
        for name, value in vars(sync).items()
        if not isinstance(value, types.ModuleType) and not name.startswith("_")
    }


def test_sync_all_lists_exactly_the_public_members_in_order() -> None:
    assert set(sync.__all__) == _public_members()
    assert sync.__all__ == sorted(_public_members(), key=_order)


@pytest.mark.parametrize("name", [n for n in sync.__all__ if isinstance(getattr(sync, n), type)])
def test_sync_public_classes_live_in_the_public_namespace(name: str) -> None:
    cls = getattr(sync, name)
    assert cls.__module__ == "asyncgroups.sync"
    assert cls.__qualname__ == name


def test_sync_records_and_plans_pickle_through_the_public_path() -> None:
    record = sync.DesiredGroup("k", "Team", status="draft", internal_note=None)
    item = sync.PlanItem(
        "k", sync.Action.UPDATE, desired=record, changes=(sync.Change("name", "a", "Team"),)
    )
    for obj in (record, item, sync.Plan(items=(item,), state_id="s", state_generation=1)):
        assert pickle.loads(pickle.dumps(obj)) == obj  # noqa: S301 (our own bytes)
