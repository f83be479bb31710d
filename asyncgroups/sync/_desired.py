"""The desired state: `DesiredGroup` records, and reading them from JSON Lines. No I/O.

A record names a group by a caller-chosen stable `key` (the id in the caller's own
system) and gives the fields the group should have. A field left out is not managed:
sync never sends it and never reports a difference in it, so a value set by hand in the
web application survives. A field given as null is managed and means "empty".
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any, Final

import attrs

from .. import (
    UNSET,
    WRITABLE_FIELDS,
    GroupPatch,
    GroupStatus,
    NewGroup,
    Subscription,
    UnsetType,
    ValidationError,
)

# Core names sync uses that are not public: models.py keeps them private on purpose (a
# create that sends only the managed fields; the one rule for text that can be sent and
# stored); see tests/sync/test_sync_imports.py.
from .._text import check_text
from ..models import PartialNewGroup
from ._errors import DesiredStateError, Problem

__all__ = [
    "FIELDS",
    "DesiredGroup",
    "DesiredInput",
    "check_unique",
    "collect_desired",
    "read_desired",
]

#: The group fields a desired record may manage, in the order they are shown.
FIELDS: Final = WRITABLE_FIELDS

#: The longest `key` accepted: keys are ids, and a runaway value is a bug upstream.
MAX_KEY_LENGTH: Final = 512

#: What `plan()` takes as the desired state.
DesiredInput = Iterable["DesiredGroup"] | AsyncIterable["DesiredGroup"]


def _to_key(value: object) -> Any:
    # Database ids are often integers; they name the same record as their decimal text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _check_key(_: object, __: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str):
        raise ValidationError(
            f"key must be a string or an integer, not {type(value).__name__}", field="key"
        )
    if not value.strip():
        raise ValidationError("key must not be empty", field="key")
    check_text("key", value)  # written to the state file: the same rule as text sent
    if len(value) > MAX_KEY_LENGTH:
        raise ValidationError(
            f"key is {len(value)} characters long; at most {MAX_KEY_LENGTH} are allowed",
            field="key",
        )


# A desired status or subscription follows a patch's rule for the field (the same enum,
# the same message naming it); a patch would read None as "set to null", refused here.


def _status(value: object) -> Any:
    if value is None:
        raise ValidationError("status cannot be null", field="status")
    return GroupPatch(status=value).status


def _subscription(value: object) -> Any:
    if value is None:
        raise ValidationError("subscription cannot be null", field="subscription")
    return GroupPatch(subscription=value).subscription


@attrs.frozen
class DesiredGroup:
    """One group as it should be, under the caller's stable `key`.

    `key` and `name` are required (and may be given by position); every other field is
    keyword-only and defaults to `UNSET`, meaning "not managed".
    The rules of `NewGroup` apply (a blank name, `subscription="external"` without a
    URL, or a URL without `"external"` are refused), and `status` may be given too.
    Invalid values raise `ValidationError` naming the field.
    """

    key: str = attrs.field(converter=_to_key, validator=_check_key)
    name: str
    status: GroupStatus | UnsetType = attrs.field(default=UNSET, converter=_status, kw_only=True)
    internal_note: str | UnsetType | None = attrs.field(default=UNSET, kw_only=True)
    subscription: Subscription | UnsetType = attrs.field(
        default=UNSET, converter=_subscription, kw_only=True
    )
    subscription_cal_url: str | UnsetType | None = attrs.field(default=UNSET, kw_only=True)
    layout: str | UnsetType | None = attrs.field(default=UNSET, kw_only=True)
    cta: bool | UnsetType | None = attrs.field(default=UNSET, kw_only=True)
    cta_block: str | UnsetType | None = attrs.field(default=UNSET, kw_only=True)
    landingpage: str | UnsetType | None = attrs.field(default=UNSET, kw_only=True)
    public_event_overview: bool | UnsetType | None = attrs.field(default=UNSET, kw_only=True)

    def __attrs_post_init__(self) -> None:
        # The same rules as a create (and, for status, a patch), so that whatever is
        # accepted here can always be sent.
        self.new_group()
        GroupPatch(**self.managed())

    def managed(self) -> dict[str, Any]:
        """The managed fields, by name, in `FIELDS` order (enums as enum members)."""
        return {f: v for f in FIELDS if (v := getattr(self, f)) is not UNSET}

    def values(self) -> dict[str, Any]:
        """The managed fields as plain JSON values (enums as their strings)."""
        return {f: plain(v) for f, v in self.managed().items()}

    def new_group(self) -> NewGroup:
        """The create request for this group: the managed fields a create can send.

        Nothing else is sent, not even `NewGroup`'s default `subscription`: a field the
        record leaves out is not managed, on create as on update. (A create sends no
        `status` and no null; `followup()` patches those.)
        """
        fields = {
            f: v
            for f, v in self.managed().items()
            if f != "status" and v is not None and f != "name"
        }
        return PartialNewGroup(self.name, **fields, sends=frozenset({"name", *fields}))

    def followup(self) -> GroupPatch:
        """What a create cannot say and must be patched right after it.

        A create has no `status` (new groups are published) and cannot send a null
        (an omitted `cta` becomes false), so a managed draft status or a managed null
        `cta` needs one PATCH after the create. Usually this patch is empty.
        """
        fields: dict[str, Any] = {}
        if self.status is not UNSET and self.status is not GroupStatus.PUBLISHED:
            fields["status"] = self.status
        if self.cta is None:
            fields["cta"] = None
        return GroupPatch(**fields)

    def created_values(self) -> dict[str, Any]:
        """The managed fields a create alone sets: all but those of `followup()`."""
        later = self.followup().changes()
        return {f: v for f, v in self.values().items() if f not in later}

    def full_patch(self) -> GroupPatch:
        """A patch carrying every managed field (used with `skip_unchanged`)."""
        return GroupPatch(**self.managed())

    @classmethod
    def from_record(cls, record: object) -> DesiredGroup:
        """Build a record from a decoded JSON object; unknown fields are an error.

        Raises `ValidationError` naming the field (a typo such as `"nmae"` is reported,
        not silently ignored).
        """
        if not isinstance(record, Mapping):
            raise ValidationError(
                f"a desired group must be a JSON object, not {_json_type(record)}"
            )
        unknown = [name for name in record if name not in _RECORD_FIELDS]
        if unknown:
            raise ValidationError(
                f"unknown field; the fields are {', '.join(_RECORD_FIELDS)}",
                field=str(unknown[0]),
            )
        for required in ("key", "name"):
            if required not in record:
                raise ValidationError(f"{required} is required", field=required)
        return cls(**{str(k): v for k, v in record.items()})


_RECORD_FIELDS: Final = ("key", *FIELDS)


def plain(value: Any) -> Any:
    """A field value as JSON has it: an enum member becomes its string."""
    if isinstance(value, Subscription | GroupStatus):
        return value.value
    return value


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number" if isinstance(value, int | float) else type(value).__name__


def _json_error(error: ValueError, line: str) -> str:
    """What is wrong with one JSON Lines record, placed by its column in the line.

    JSON's own "line 2 column 1" counts the record's line ending as a new line, and
    would contradict the file's line number the message starts with.
    """
    if not isinstance(error, json.JSONDecodeError):
        return str(error)  # not a syntax error (an integer too long, say): no position
    if error.pos >= len(line.rstrip("\r\n")):
        return f"{error.msg} at the end of the line"
    return f"{error.msg} at column {error.pos + 1}"


def read_desired(lines: Iterable[str], *, source: str = "<desired>") -> list[DesiredGroup]:
    """Read desired groups from JSON Lines: one object per line, blank lines skipped.

    Every line is checked before anything is returned; all problems (bad JSON, unknown
    or invalid fields, duplicate keys) are raised together as `DesiredStateError`, each
    naming `source:line` and the field.
    """
    records: list[DesiredGroup] = []
    where: list[str] = []
    problems: list[Problem] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        at = f"{source}:{number}"
        try:
            data = json.loads(line)
        except ValueError as err:
            problems.append(Problem(at, f"not valid JSON ({_json_error(err, line)})"))
            continue
        key = data.get("key") if isinstance(data, Mapping) else None
        try:
            records.append(DesiredGroup.from_record(data))
        except ValidationError as err:
            problems.append(Problem(at, str(err), err.field, _key_text(key)))
            continue
        where.append(at)
    problems.extend(_duplicates(records, where))
    if problems:
        raise DesiredStateError(problems)
    return records


def check_unique(records: Iterable[object]) -> list[DesiredGroup]:
    """The records as a list, after checking each is a `DesiredGroup` with a unique key.

    Raises `DesiredStateError` naming the items ("item 3") at fault.
    """
    good: list[DesiredGroup] = []
    where: list[str] = []
    problems: list[Problem] = []
    for index, record in enumerate(records):
        if not isinstance(record, DesiredGroup):
            problems.append(
                Problem(f"item {index}", f"expected a DesiredGroup, not {type(record).__name__}")
            )
            continue
        good.append(record)
        where.append(f"item {index}")
    problems.extend(_duplicates(good, where))
    if problems:
        raise DesiredStateError(problems)
    return good


async def collect_desired(desired: object) -> list[DesiredGroup]:
    """Gather the desired records from an iterable or async iterable and check them."""
    if isinstance(desired, DesiredGroup | str | bytes | Mapping):
        raise ValidationError(
            f"pass an iterable of DesiredGroup records, not a single {type(desired).__name__}",
            field="desired",
        )
    if isinstance(desired, AsyncIterable):
        return check_unique([record async for record in desired])
    if isinstance(desired, Iterable):
        return check_unique(desired)
    raise ValidationError(
        f"desired must be an iterable or async iterable of DesiredGroup, "
        f"not {type(desired).__name__}",
        field="desired",
    )


def _duplicates(records: list[DesiredGroup], where: list[str]) -> list[Problem]:
    first: dict[str, str] = {}
    problems = []
    for record, at in zip(records, where, strict=True):
        if record.key in first:
            seen = first[record.key]
            problems.append(
                Problem(at, f"duplicate key {record.key!r} (first at {seen})", "key", record.key)
            )
        else:
            first[record.key] = at
    return problems


def _key_text(key: object) -> str | None:
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    return None
