"""Models as JSON-ready dicts: the one output encoding of the CLI and of web apps.

The API's wire shape belongs to the client's converter; this is the shape asyncgroups
*shows* a model in, named after the model's fields so it reads the same as the Python
API: `prokey` included, enums as their values, datetimes as ISO 8601 UTC (`...Z`),
`event_prokeys` as a list, and fields the library does not know nested under `extra`
(never merged, so an unknown field can never shadow a documented one).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

import attrs

from .._timestamp import iso_utc
from ..models import UNSET

__all__ = ["to_jsonable"]


def to_jsonable(model: attrs.AttrsInstance) -> dict[str, Any]:
    """A `Group`, `GroupSummary` (or any attrs model) as a dict `json.dumps` can write.

    Keys follow the model's field order: `to_jsonable(group)["event_prokeys"]`. A
    `GroupPatch` shows only the fields it carries (those left `UNSET` are not sent).
    """
    if not attrs.has(type(model)):
        raise TypeError(f"to_jsonable() takes an attrs model, not {type(model).__name__}")
    return {
        field.name: _jsonable(value)
        for field in attrs.fields(type(model))
        if (value := getattr(model, field.name)) is not UNSET
    }


def _jsonable(value: object) -> Any:
    if isinstance(value, enum.Enum):  # before str: a StrEnum member is also a str
        return value.value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    if attrs.has(type(value)):
        return to_jsonable(cast(attrs.AttrsInstance, value))
    return str(value)


def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, milliseconds unless finer digits are there to keep."""
    return iso_utc(moment, keep_microseconds=True)
