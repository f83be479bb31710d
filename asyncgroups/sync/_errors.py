"""The errors of `asyncgroups.sync`, all under `AsyncGroupsError`.

```
AsyncGroupsError
├── ValidationError
│   └── DesiredStateError      the desired records are invalid (line and field named)
└── SyncError                  the sync itself cannot go on
    ├── StateFileError         the state file is not usable (not ours, newer schema, …)
    │   └── StateAccountError  it belongs to another account (base URL) than the client's
    ├── StateLockedError       another apply holds the state file
    ├── StalePlanError         the state changed since the plan was made
    ├── AmbiguousCreateError   an interrupted create may have made one of several groups
    ├── MassDeleteError        the plan deletes more groups than allowed; nothing sent
    ├── VanishedGroupsError    every group the state owns is gone; nothing sent
    └── OutOfCreditsError      an update not sent: the account ran out of event credits
```

Whether a failed write may still have happened, sync asks the client's error itself
(`err.may_have_acted`, `err.may_still_be_running`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from .. import APIError, AsyncGroupsError, ValidationError

__all__ = [
    "AmbiguousCreateError",
    "DesiredStateError",
    "MassDeleteError",
    "OutOfCreditsError",
    "Problem",
    "StalePlanError",
    "StateAccountError",
    "StateFileError",
    "StateLockedError",
    "SyncError",
    "VanishedGroupsError",
]

#: How many problems a `DesiredStateError` message lists before "and N more".
_SHOWN_PROBLEMS = 20


@attrs.frozen
class Problem:
    """One thing wrong with the desired records: where, which field, and what."""

    #: Where the record came from: "desired.jsonl:12", or "item 3" for Python input.
    where: str
    message: str
    #: The field at fault, or None when the record as a whole is (bad JSON, say).
    field: str | None = None
    key: str | None = None

    def __str__(self) -> str:
        field = f" field {self.field!r}:" if self.field else ""
        return f"{self.where}:{field} {self.message}"


class DesiredStateError(ValidationError):
    """The desired records are not valid; `.problems` names each line and field.

    Raised before any request, so a bad input file never half-applies.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        shown = [str(p) for p in self.problems[:_SHOWN_PROBLEMS]]
        more = len(self.problems) - len(shown)
        if more:
            shown.append(f"… and {more} more problem(s)")
        count = len(self.problems)
        header = f"{count} problem(s) in the desired state:" if count != 1 else ""
        text = "\n  ".join([header, *shown]) if header else shown[0]
        first = self.problems[0].field if self.problems else None
        super().__init__(text, field=first)


class SyncError(AsyncGroupsError):
    """A sync cannot go on (its state file, its lock, or its plan is the problem)."""


class StateFileError(SyncError):
    """The state file cannot be used: not a sync state, a newer schema, or unreadable."""


class StateAccountError(StateFileError):
    """The state file belongs to the account at another base URL than the client's.

    Raised before any request that writes: one state file keeps one account's groups,
    and used with another it would create them all again there. `.state_url` is the URL
    the state is bound to, `.client_url` the client's (neither ever carries a key).
    """

    def __init__(self, path: str, state_url: str, client_url: str) -> None:
        self.state_url = state_url
        self.client_url = client_url
        super().__init__(
            f"the state file {path} belongs to the account at {state_url}, not "
            f"{client_url}: give --state a new file for that account (one state file per "
            f"account), or rebind this one if the account itself moved to {client_url}"
        )


class StateLockedError(SyncError):
    """Another apply holds the state file's lock; nothing was changed."""


class StalePlanError(SyncError):
    """The state file changed after the plan was made: make a new plan and apply that."""


class AmbiguousCreateError(SyncError):
    """A create whose reply was lost may have made any of several same-named groups.

    Nothing is guessed: the prokeys are listed so a person can keep one and delete the
    others (or delete all of them); the next apply then finds at most one.
    """

    def __init__(self, key: str, name: str, prokeys: Sequence[str]) -> None:
        self.key = key
        self.name = name
        self.prokeys = tuple(prokeys)
        super().__init__(
            f"key {key!r}: a create whose reply was lost may have made any of "
            f"{len(self.prokeys)} groups named {name!r} ({', '.join(self.prokeys)}); "
            "keep at most one of them and run the sync again"
        )


def _restore(cls: type[SyncError], args: tuple[Any, ...], state: dict[str, Any]) -> SyncError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class _PicklableError(SyncError):
    """Pickles by its message and attributes (a task queue carries it between
    processes), not by calling `__init__` again with the message."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.args, self.__dict__))


class MassDeleteError(_PicklableError):
    """The plan deletes more groups than the apply allows; nothing was sent.

    A desired set that came out empty or cut short (a failed export, a truncated
    file) would otherwise delete the account's groups and every event linked to them.
    `.deletes` is how many the plan deletes, `.allowed` how many the apply allowed
    (the rule: `Plan.delete_allowance`); `apply(..., max_deletes=N)` allows N.
    """

    def __init__(self, deletes: int, allowed: int, *, desired: int, basis: str) -> None:
        self.deletes = deletes
        self.allowed = allowed
        #: How many keys the desired set held (0: it was empty).
        self.desired = desired
        #: What the allowance rests on: "the desired set is empty", "by max_deletes", …
        self.basis = basis
        super().__init__(
            f"the plan deletes {deletes} group(s), and every event linked to them, more "
            f"than the {allowed} allowed ({basis}); nothing was sent. Check the desired "
            f"set, or apply with max_deletes={deletes} if these deletes are meant"
        )


class VanishedGroupsError(_PicklableError):
    """Every group the state owns is gone from the account at once; nothing was sent.

    That is what a state file used with another account's key (or base URL) looks
    like, or an account that was emptied: creating every group again would leave the
    originals orphaned in their own account. `.owned` is how many were owned, and
    `.checked` how many of them the plan could check (all of them gone: a read answered
    404, or the listing lacked them; a read that failed is not counted);
    `apply(..., allow_vanished=True)` creates them again.
    """

    def __init__(self, owned: int, *, checked: int | None = None) -> None:
        self.owned = owned
        self.checked = owned if checked is None else checked
        which = (
            f"all {owned} groups this state owns"
            if self.checked >= owned
            else f"all {self.checked} of the {owned} groups this state owns that the plan "
            "could check"
        )
        super().__init__(
            f"{which} are gone from the account: is the state file meant for another "
            "account (API key, base URL), or was the account emptied? Nothing was sent; "
            "if they were really deleted, apply with allow_vanished=True to create them "
            "again"
        )


class OutOfCreditsError(_PicklableError):
    """This update was not sent: the account ran out of event credits earlier in the
    apply (the service answered an update 402), and every further update would be
    refused the same way. `.cause` (also `__cause__`) is that 402."""

    def __init__(self, cause: APIError) -> None:
        self.cause = cause
        super().__init__(
            "not sent: the account ran out of event credits (an earlier update was "
            f"answered {cause.status} {cause.message})"
        )
        self.__cause__ = cause
