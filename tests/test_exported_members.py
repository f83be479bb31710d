"""The public surface: one sorted `__all__`, and public classes shown as `asyncgroups.X`."""

from __future__ import annotations

import pickle
import types

import pytest

import asyncgroups

#: Dunder names that are public anyway (httpx keeps `__version__` in `__all__` too).
INCLUDED_PRIVATE_MEMBERS = {"__version__"}


def _order(name: str) -> tuple[int, str]:
    """Ruff's isort-style `__all__` order (RUF022), used by every module of the package:
    SCREAMING_CASE constants, then CamelCase classes, then everything else."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def _public_members() -> set[str]:
    return {
        name
        for name, value in vars(asyncgroups).items()
        if not isinstance(value, types.ModuleType)  # asyncgroups.errors, .models, .testing ...
        and (not name.startswith("_") or name in INCLUDED_PRIVATE_MEMBERS)
    }


def test_all_lists_exactly_the_public_members() -> None:
    assert set(asyncgroups.__all__) == _public_members()
    assert len(asyncgroups.__all__) == len(set(asyncgroups.__all__))


def test_all_is_sorted() -> None:
    assert asyncgroups.__all__ == sorted(_public_members(), key=_order)


@pytest.mark.parametrize(
    "name",
    [n for n in asyncgroups.__all__ if isinstance(getattr(asyncgroups, n), type)],
)
def test_public_classes_live_in_the_public_namespace(name: str) -> None:
    cls = getattr(asyncgroups, name)
    assert cls.__module__ == "asyncgroups"
    assert cls.__qualname__ == name  # tracebacks and pickles show asyncgroups.<name>


def test_public_objects_pickle_through_the_public_path() -> None:
    objects = [
        asyncgroups.RetryPolicy(max_attempts=5),
        asyncgroups.NewGroup("Team"),
        asyncgroups.GroupPatch(name="x", internal_note=None),
        asyncgroups.Subscription.EXTERNAL,
        asyncgroups.UNSET,
        asyncgroups.GroupSummary(prokey="31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa", name="Team"),
        asyncgroups.Group(
            prokey="31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa", name="Team", extra={"landingpage": 1}
        ),
    ]
    for obj in objects:
        assert pickle.loads(pickle.dumps(obj)) == obj  # noqa: S301 (our own bytes)


def test_version_is_a_string() -> None:
    assert isinstance(asyncgroups.__version__, str)
    assert asyncgroups.__version__
