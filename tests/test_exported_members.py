"""The public surface: `__all__` lists every public name, shown as `asyncgroups.X`.

That every `__all__` is sorted is ruff's RUF022, run over the whole package.
"""

from __future__ import annotations

import importlib.metadata
import pickle
import types

import pytest

import asyncgroups
from asyncgroups import sync

#: Dunder names that are public anyway (httpx keeps `__version__` in `__all__` too).
INCLUDED_PRIVATE_MEMBERS = {"__version__"}


#: Every public namespace: the package, and the sync feature (imported by path).
NAMESPACES = [asyncgroups, sync]


def _public_members(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not isinstance(value, types.ModuleType)  # asyncgroups.errors, .models, .testing ...
        and (not name.startswith("_") or name in INCLUDED_PRIVATE_MEMBERS)
    }


@pytest.mark.parametrize("module", NAMESPACES, ids=lambda m: m.__name__)
def test_all_lists_exactly_the_public_members(module: types.ModuleType) -> None:
    assert set(module.__all__) == _public_members(module)
    assert len(module.__all__) == len(set(module.__all__))


@pytest.mark.parametrize(
    ("module", "name"),
    [
        (module, name)
        for module in NAMESPACES
        for name in module.__all__
        if isinstance(getattr(module, name), type)
    ],
    ids=lambda v: v.__name__ if isinstance(v, types.ModuleType) else v,
)
def test_public_classes_live_in_the_public_namespace(module: types.ModuleType, name: str) -> None:
    cls = getattr(module, name)
    assert cls.__module__ == module.__name__
    assert cls.__qualname__ == name  # tracebacks and pickles show the public path


def test_public_objects_pickle_through_the_public_path() -> None:
    objects = [
        asyncgroups.RetryPolicy(max_attempts=5),
        asyncgroups.NewGroup("Team"),
        asyncgroups.GroupPatch(name="x", internal_note=None),
        asyncgroups.Subscription.EXTERNAL,
        asyncgroups.UNSET,
        asyncgroups.GroupSummary(prokey="31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa", name="Team"),
        asyncgroups.Group(
            prokey="31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa",
            name="Team",
            landingpage="lp-1",
            public_event_overview=True,
            extra={"rsvp": 1},
        ),
    ]
    for obj in objects:
        assert pickle.loads(pickle.dumps(obj)) == obj  # noqa: S301 (our own bytes)


def test_version_is_the_installed_distributions() -> None:
    # Not the 0.0.0 fallback of a source tree that was never installed.
    assert asyncgroups.__version__ == importlib.metadata.version("asyncgroups")
    assert asyncgroups.__version__ != "0.0.0"
