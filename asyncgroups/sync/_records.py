"""Plans and reports as plain JSON-able records (one per item), for JSON Lines output.

Kept apart from the classes, as `_convert.py` keeps the wire shape apart from the
models: the records are a presentation, and may grow fields without touching them.
"""

from __future__ import annotations

from typing import Any

from .. import UNSET
from .._timestamp import iso_utc
from ._plan import Action, PlanItem
from ._report import ItemResult

__all__ = ["plan_record", "result_record"]


def plan_record(item: PlanItem) -> dict[str, Any]:
    """One plan item as a JSON-able dict: key, action, and only the details it has.

    A create carries the `fields` it sends; an update or adoption carries `changes`
    as `{field: {"old": …, "new": …}}` (`old` left out when it is not known).
    """
    record: dict[str, Any] = {"key": item.key, "action": item.action.value}
    if item.prokey is not None:
        record["prokey"] = item.prokey
    if item.intended is not None:
        record["intended"] = item.intended.value
    if item.action is Action.CREATE and item.desired is not None:
        record["fields"] = item.desired.values()
    if item.changes:
        record["changes"] = {
            c.field: ({"new": c.new} if c.old is UNSET else {"old": c.old, "new": c.new})
            for c in item.changes
        }
    if item.drift:
        record["drift"] = True
    if item.resume:
        record["resume"] = True
    if item.reason is not None:
        record["reason"] = item.reason
    return record


def result_record(result: ItemResult) -> dict[str, Any]:
    """One apply result as a JSON-able dict: key, action, outcome, prokey, error, note,
    and for a waiting item `decide_after`."""
    record: dict[str, Any] = {
        "key": result.key,
        "action": result.action.value,
        "outcome": result.outcome.value,
    }
    if result.prokey is not None:
        record["prokey"] = result.prokey
    if result.error is not None:
        record["error"] = str(result.error)
        record["error_type"] = type(result.error).__name__
    if result.note is not None:
        record["note"] = result.note
    if result.decide_after is not None:
        record["decide_after"] = iso_utc(result.decide_after)
    return record
