"""Declarative sync: make an account's groups match a desired set, safely and resumably.

```python
from asyncgroups.sync import DesiredGroup, SyncState, apply, plan

with SyncState("groups.sync.db") as state:
    the_plan = await plan(client, desired, state, prune=True)
    print(the_plan.summary())
    report = await apply(client, the_plan, state)
```

`plan` reads what it compares of the account (`refresh`: each owned group it compares,
only the listing's pages, or nothing) and decides, per key, to create, update (with
the minimal patch), delete (only with `prune`, only owned groups), adopt (by exact name,
when asked), leave unchanged, or block (with the reason). `apply` carries a plan out
through the client's limiter, writing the SQLite state file after every item, so an
interrupted apply resumes without duplicates. Uses only the public client API (and
the client's telemetry, for the `sync.plan` and `sync.apply` spans).
"""

from ._apply import SyncProgressCallback, apply
from ._desired import DesiredGroup, DesiredInput, read_desired
from ._errors import (
    AmbiguousCreateError,
    DesiredStateError,
    MassDeleteError,
    OutOfCreditsError,
    Problem,
    StalePlanError,
    StateAccountError,
    StateFileError,
    StateLockedError,
    SyncError,
    VanishedGroupsError,
)
from ._plan import WRITE_ACTIONS, Action, Change, Plan, PlanItem, Refresh
from ._read import plan
from ._records import plan_record, result_record
from ._report import ItemOutcome, ItemResult, SyncProgress, SyncReport
from ._rows import StateRow
from ._state import SyncState

# What a user calls, receives or catches (the docs' sync page, the CLI). The
# machinery (build_plan, LiveView, StateSnapshot, PendingCreate, the attempt counts)
# stays in the private modules.
__all__ = [
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
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith("asyncgroups.sync."):
        _obj.__module__ = __name__
del _name, _obj
