"""The guards an apply checks before sending anything, as pure tables: how many deletes
a plan may make, and when every owned group gone means the wrong account."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from types import MappingProxyType

import pytest

from asyncgroups import APIError
from asyncgroups.sync import (
    DesiredGroup,
    MassDeleteError,
    OutOfCreditsError,
    Refresh,
    StateRow,
    SyncError,
    VanishedGroupsError,
)
from asyncgroups.sync._decide import LiveView, build_plan
from asyncgroups.sync._plan import all_vanished, delete_allowance
from asyncgroups.sync._rows import StateSnapshot


def prokey(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def snapshot(owned: int) -> StateSnapshot:
    """A state owning `owned` groups, keys "k0", "k1", …"""
    rows = {
        f"k{n}": StateRow(f"k{n}", prokey(n), "created", MappingProxyType({}), "2026-01-01")
        for n in range(owned)
    }
    return StateSnapshot(state_id="test", generation=1, rows=rows, pending={})


def desired(keys: Sequence[int], new: int = 0) -> list[DesiredGroup]:
    """Desired records for owned keys `keys`, plus `new` keys the state does not know."""
    return [DesiredGroup(f"k{n}", f"Group {n}") for n in keys] + [
        DesiredGroup(f"new{n}", f"New {n}") for n in range(new)
    ]


def gone(*numbers: int) -> LiveView:
    return LiveView(missing=frozenset(prokey(n) for n in numbers))


@pytest.mark.parametrize(
    ("desired_keys", "owned", "allowed"),
    [
        (0, 0, 0),  # an empty desired set deletes nothing, however large the account
        (0, 3, 0),
        (0, 5000, 0),
        (1, 0, 10),  # otherwise at least 10 ...
        (1, 50, 10),
        (40, 109, 10),
        (40, 110, 11),  # ... or 10% of the owned groups, rounded down
        (1, 1000, 100),
        (2000, 2000, 200),
    ],
)
def test_delete_allowance_is_zero_for_an_empty_set_else_ten_or_a_tenth(
    desired_keys: int, owned: int, allowed: int
) -> None:
    assert delete_allowance(desired_keys, owned) == allowed


@pytest.mark.parametrize(
    ("owned", "vanished", "refused"),
    [
        (0, 0, False),
        (1, 1, False),  # one group deleted by hand: ordinary drift
        (4, 4, False),  # a small state whose few groups all went
        (5, 5, True),  # five or more, all gone at once: another account, or emptied
        (6, 6, True),
        (6, 5, False),  # one still there: the state belongs to this account
        (1000, 999, False),
        (5, 0, False),
    ],
)
def test_all_vanished_only_when_every_one_of_several_owned_groups_is_gone(
    owned: int, vanished: int, refused: bool
) -> None:
    assert all_vanished(owned, vanished) is refused


@pytest.mark.parametrize(
    ("owned", "keep", "new", "max_deletes", "refused"),
    [
        (3, [], 0, None, (3, 0)),  # `true | sync --desired - --prune`: refused
        (3, [], 0, 3, None),  # unless the deletes are allowed explicitly
        (3, [], 0, 2, (3, 2)),
        (31, range(20), 0, None, (11, 10)),  # a cut-short set: 11 of 31 is too many
        (30, range(20), 0, None, None),  # 10 is allowed
        (30, range(20), 5, None, None),  # creates do not count
        (200, range(179), 0, None, (21, 20)),  # 10% of 200
        (200, range(180), 0, None, None),
        (31, range(20), 0, 0, (11, 0)),  # max_deletes=0: no delete at all
        (0, [], 4, 0, None),  # nothing deleted, nothing refused
    ],
)
def test_plan_refusal_counts_deletes_against_the_allowance(
    owned: int,
    keep: Sequence[int],
    new: int,
    max_deletes: int | None,
    refused: tuple[int, int] | None,
) -> None:
    the_plan = build_plan(desired(keep, new), snapshot(owned), live=LiveView(), prune=True)
    error = the_plan.refusal(max_deletes=max_deletes)
    if refused is None:
        assert error is None
        return
    assert isinstance(error, MassDeleteError)
    assert (error.deletes, error.allowed) == refused
    assert error.desired == len(keep) + new
    assert f"deletes {refused[0]} group(s)" in str(error)
    assert f"max_deletes={refused[0]}" in str(error)


def test_plan_refusal_without_prune_keeps_and_deletes_nothing() -> None:
    the_plan = build_plan([], snapshot(40), live=LiveView())
    assert len(the_plan.kept) == 40
    assert the_plan.refusal() is None


@pytest.mark.parametrize(
    ("owned", "missing", "refresh", "allow", "refused"),
    [
        (6, range(6), True, False, True),
        (6, range(6), True, True, False),  # said explicitly: they are made again
        (6, range(5), True, False, False),
        (4, range(4), True, False, False),
        (6, range(6), False, False, False),  # nothing read: nothing known to be gone
    ],
)
def test_plan_refusal_when_every_owned_group_vanished(
    owned: int, missing: Sequence[int], refresh: bool, allow: bool, refused: bool
) -> None:
    the_plan = build_plan(
        desired(range(owned)), snapshot(owned), live=gone(*missing), refresh=refresh
    )
    assert the_plan.vanished_count == (len(missing) if refresh else 0)
    error = the_plan.refusal(allow_vanished=allow)
    assert isinstance(error, VanishedGroupsError) is refused
    if refused:
        assert isinstance(error, VanishedGroupsError)
        assert error.owned == owned
        assert "allow_vanished=True" in str(error)
    elif refresh:
        assert len([i for i in the_plan.creates if i.drift]) == len(missing)


@pytest.mark.parametrize(
    ("refresh", "vanished", "refused"),
    [
        (Refresh.LISTING, 6, True),  # the listing shows none of the owned groups
        (Refresh.NONE, 0, False),  # nothing looked for: nothing known to be gone
    ],
)
def test_plan_refusal_when_the_listing_shows_no_owned_group(
    refresh: Refresh, vanished: int, refused: bool
) -> None:
    the_plan = build_plan(desired(range(6)), snapshot(6), live=gone(*range(6)), refresh=refresh)
    assert the_plan.vanished_count == vanished
    assert isinstance(the_plan.refusal(), VanishedGroupsError) is refused


def test_plan_refusal_counts_only_the_owned_groups_the_plan_looked_for() -> None:
    # Without prune a full refresh reads only the owned groups it compares: 5 of 8. All
    # 5 gone is what another account looks like, although 3 were not looked for.
    the_plan = build_plan(desired(range(5)), snapshot(8), live=gone(*range(5)))
    error = the_plan.refusal()
    assert isinstance(error, VanishedGroupsError)
    assert (error.owned, error.checked) == (8, 5)
    assert str(error).startswith(
        "all 5 of the 8 groups this state owns that the plan could check are gone from the "
        "account"
    )
    assert build_plan(desired(range(5)), snapshot(8), live=gone(*range(4))).refusal() is None


@pytest.mark.parametrize(
    ("owned", "missing", "unread", "refused"),
    [
        (20, range(19), [19], True),  # one read failed (a 503): the 19 answered all 404
        (20, range(1, 20), [0], True),
        (20, range(5), range(5, 20), True),  # 5 answered, all gone: enough to refuse
        (20, range(4), range(4, 20), False),  # 4 answered: too few to tell
        (20, range(18), [18], False),  # one answered and was there: this account
        (6, [], range(6), False),  # nothing answered: nothing known to be gone
    ],
)
def test_plan_refusal_when_every_owned_group_that_answered_vanished(
    owned: int, missing: Sequence[int], unread: Sequence[int], refused: bool
) -> None:
    # A read that failed says nothing about the account; it must not hide the others.
    failed = {prokey(n): APIError("Unavailable", status=503, method="GET", url="u") for n in unread}
    live = LiveView(missing=frozenset(prokey(n) for n in missing), failed=failed)
    the_plan = build_plan(desired(range(owned)), snapshot(owned), live=live)
    assert (the_plan.checked_count, the_plan.vanished_count) == (
        owned - len(unread),
        len(missing),
    )
    error = the_plan.refusal()
    assert isinstance(error, VanishedGroupsError) is refused
    if isinstance(error, VanishedGroupsError):
        assert (error.owned, error.checked) == (owned, owned - len(unread))
        assert str(error).startswith(
            f"all {owned - len(unread)} of the {owned} groups this state owns that the plan "
            "could check are gone from the account"
        )


def test_plan_refusal_names_the_vanished_account_before_the_deletes() -> None:
    # An empty set against a state whose groups are all gone: the account is the news.
    the_plan = build_plan([], snapshot(8), live=gone(*range(8)), prune=True)
    assert isinstance(the_plan.refusal(), VanishedGroupsError)
    deletes = the_plan.refusal(allow_vanished=True)
    assert isinstance(deletes, MassDeleteError)
    assert deletes.deletes == 8
    assert the_plan.refusal(allow_vanished=True, max_deletes=8) is None


def test_guard_errors_pickle_with_their_counts() -> None:
    cause = APIError("Not enough event credits", status=402, method="PATCH", url="http://x/g")
    for error in (
        MassDeleteError(12, 0, desired=0, basis="the desired set is empty"),
        VanishedGroupsError(6),
        OutOfCreditsError(cause),
    ):
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes)
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert vars(copy).keys() == vars(error).keys()
    assert isinstance(error, SyncError)
    assert isinstance(copy, OutOfCreditsError)
    assert copy.cause.status == 402
