"""Declarative sync: make an account's groups match a desired set, safely and resumably.

```python
from asyncgroups.sync import DesiredGroup, SyncState, apply, plan

with SyncState("groups.sync.db") as state:
    the_plan = await plan(client, desired, state, prune=True)
    print(the_plan.summary())
    report = await apply(client, the_plan, state)
```

`plan` reads the groups the state owns and decides, per key, to create, update (with
the minimal patch), delete (only with `prune`, only owned groups), adopt (by exact name,
when asked), leave unchanged, or block (with the reason). `apply` carries a plan out
through the client's limiter, writing the SQLite state file after every item, so an
interrupted apply resumes without duplicates. Uses only the public client API.
"""

from ._apply import UPDATE_ATTEMPTS, SyncProgressCallback, apply
from ._creates import CREATE_ATTEMPTS
from ._decide import WRITE_ACTIONS, Action, Change, LiveView, Plan, PlanItem, build_plan
from ._desired import FIELDS, DesiredGroup, DesiredInput, read_desired
from ._errors import (
    AmbiguousCreateError,
    DesiredStateError,
    Problem,
    StalePlanError,
    StateFileError,
    StateLockedError,
    SyncError,
)
from ._read import plan
from ._records import plan_record, result_record
from ._report import ItemOutcome, ItemResult, SyncProgress, SyncReport
from ._state import Origin, PendingCreate, StateRow, StateSnapshot, SyncState

__all__ = [
    "CREATE_ATTEMPTS",
    "FIELDS",
    "UPDATE_ATTEMPTS",
    "WRITE_ACTIONS",
    "Action",
    "AmbiguousCreateError",
    "Change",
    "DesiredGroup",
    "DesiredInput",
    "DesiredStateError",
    "ItemOutcome",
    "ItemResult",
    "LiveView",
    "Origin",
    "PendingCreate",
    "Plan",
    "PlanItem",
    "Problem",
    "StalePlanError",
    "StateFileError",
    "StateLockedError",
    "StateRow",
    "StateSnapshot",
    "SyncError",
    "SyncProgress",
    "SyncProgressCallback",
    "SyncReport",
    "SyncState",
    "apply",
    "build_plan",
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
