"""The Groups API's data as frozen attrs classes, validated when they are built.

Models know nothing of JSON: the wire shape lives in `_convert.py`. Every rule here
raises `ValidationError` naming the field, before any request is made.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, Literal, TypeVar

import attrs

from ._text import check_cal_url, check_name, check_text, validate_prokey
from .errors import ValidationError

__all__ = [
    "UNSET",
    "Group",
    "GroupPatch",
    "GroupStatus",
    "GroupSummary",
    "NewGroup",
    "Subscription",
    "UnsetType",
    "validate_prokey",
]


class Subscription(enum.StrEnum):
    """How a group offers its events as a calendar subscription."""

    NO = "no"
    EXTERNAL = "external"
    CHILDREN = "children"


class GroupStatus(enum.StrEnum):
    """Whether a group is live."""

    PUBLISHED = "published"
    DRAFT = "draft"


class UnsetType(enum.Enum):
    """The type of `UNSET`: a patch field that is not sent (unlike `None`, sent as null)."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> Literal[False]:
        return False


#: A `GroupPatch` field left as `UNSET` is not sent; `None` sets the field to null.
UNSET: Final = UnsetType.UNSET

_E = TypeVar("_E", bound=enum.Enum)


def _to_enum(enum_type: type[_E], field: str) -> Any:
    def convert(value: object) -> Any:
        if isinstance(value, enum_type) or value is UNSET:
            return value
        try:
            return enum_type(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in enum_type)
            raise ValidationError(
                f"{field} must be one of {allowed}, not {value!r}", field=field
            ) from None

    return convert


def _to_subscription(value: object) -> Any:
    return _to_enum(Subscription, "subscription")(value)


def _to_status(value: object) -> Any:
    return _to_enum(GroupStatus, "status")(value)


#: The optional text fields of a create or a patch, and its flags (true, false or None).
_OPTIONAL_TEXT: Final = ("internal_note", "layout", "cta_block", "landingpage")
_OPTIONAL_FLAGS: Final = ("cta", "public_event_overview")


def _check_optionals(model: object) -> None:
    """Check the optional fields of a `NewGroup` or `GroupPatch` for their types and text."""
    for field in _OPTIONAL_TEXT:
        _check_optional_str(field, getattr(model, field))
    for field in _OPTIONAL_FLAGS:
        _check_optional_bool(field, getattr(model, field))


def _check_optional_str(field: str, value: object) -> None:
    if isinstance(value, str):
        check_text(field, value)
    elif value is not None and value is not UNSET:
        raise ValidationError(
            f"{field} must be a string or None, not {type(value).__name__}", field=field
        )


def _check_optional_bool(field: str, value: object) -> None:
    if value is not None and value is not UNSET and not isinstance(value, bool):
        raise ValidationError(
            f"{field} must be true, false or None, not {type(value).__name__}", field=field
        )


def _check_subscription(subscription: object, cal_url: object, *, in_patch: bool) -> None:
    """Apply the subscription rules to whatever of the pair is present."""
    if cal_url is not UNSET and cal_url is not None:
        check_cal_url(cal_url)
    if subscription is Subscription.EXTERNAL:
        if cal_url is None or (cal_url is UNSET and not in_patch):
            raise ValidationError(
                'subscription "external" needs a subscription_cal_url',
                field="subscription_cal_url",
            )
    elif subscription is not UNSET and cal_url is not UNSET and cal_url is not None:
        raise ValidationError(
            f'subscription_cal_url is only allowed with subscription "external", '
            f"not {str(subscription)!r}",
            field="subscription_cal_url",
        )


#: The `extra` of every model that has none. Read-only, so one is shared by all: a bulk
#: read of 100,000 groups then holds 200,000 fewer objects for the garbage collector.
_NO_EXTRA: Final[Mapping[str, Any]] = MappingProxyType({})


def _freeze(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not mapping:
        return _NO_EXTRA
    return MappingProxyType(dict(mapping))


_WithExtra = TypeVar("_WithExtra", "Group", "GroupSummary")


def _reduce_with_extra(obj: _WithExtra) -> tuple[Any, ...]:
    # A mappingproxy cannot be pickled or deep-copied: rebuild `extra` from a plain dict.
    fields = {**attrs.asdict(obj, recurse=False), "extra": dict(obj.extra)}
    return (_rebuild_with_extra, (type(obj), fields))


def _rebuild_with_extra(cls: type[_WithExtra], fields: dict[str, Any]) -> _WithExtra:
    return cls(**fields)


class _WebModel:
    """What makes a model a FastAPI (pydantic) type: return it, or take it as a body.

    pydantic asks the class for its schema (`asyncgroups._pydantic`, imported only then):
    the attrs fields, checked by the model's own rules, shown as `to_jsonable` shows it.
    """

    __slots__ = ()

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from ._pydantic import model_schema

        return model_schema(cls, handler)


@attrs.frozen(eq=True, hash=False)
class Group(_WebModel):
    """A group as the server holds it.

    Decoded leniently: an unknown `status` or `subscription` value stays a plain string,
    and fields this library does not know are kept in `extra`. `landingpage` is the id of
    a landing-page template; `public_event_overview` true makes the group's button list
    all its events.
    """

    prokey: str
    name: str
    status: GroupStatus | str | None = None
    internal_note: str | None = None
    subscription: Subscription | str | None = None
    subscription_cal_url: str | None = None
    layout: str | None = None
    cta: bool | None = None
    cta_block: str | None = None
    # Keyword-only, so the positions of the fields before and after them stay as they were.
    landingpage: str | None = attrs.field(default=None, kw_only=True)
    public_event_overview: bool | None = attrs.field(default=None, kw_only=True)
    date_created: datetime | None = None
    date_updated: datetime | None = None
    event_prokeys: tuple[str, ...] = ()
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze)

    @property
    def has_events(self) -> bool:
        """True when events are linked (the subscription setting is then locked)."""
        return bool(self.event_prokeys)

    def __reduce__(self) -> tuple[Any, ...]:
        return _reduce_with_extra(self)


@attrs.frozen(eq=True, hash=False)
class GroupSummary(_WebModel):
    """One entry of `GET /group/all`; `name` is None when the listing gives ids only."""

    prokey: str
    name: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze)

    def __reduce__(self) -> tuple[Any, ...]:
        return _reduce_with_extra(self)


@attrs.frozen(kw_only=False)
class NewGroup(_WebModel):
    """The fields of a group to create; fields left as None are not sent."""

    name: str
    internal_note: str | None = None
    subscription: Subscription = attrs.field(
        default=Subscription.NO, converter=_to_subscription
    )
    subscription_cal_url: str | None = None
    layout: str | None = None
    cta: bool | None = None
    cta_block: str | None = None
    landingpage: str | None = None
    public_event_overview: bool | None = None

    def __attrs_post_init__(self) -> None:
        check_name(self.name)
        _check_optionals(self)
        _check_subscription(self.subscription, self.subscription_cal_url, in_patch=False)


@attrs.frozen(kw_only=False)
class PartialNewGroup(NewGroup):
    """A `NewGroup` that sends only the fields named in `sends` (not public: sync's creates).

    A sync record that leaves a field out does not manage it, so its create must not send
    it either, not even `subscription`'s default `"no"`: the server's own default applies.
    `NewGroup` itself keeps its documented contract (its `subscription` is always sent).
    """

    sends: frozenset[str] = attrs.field(kw_only=True)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        fields = {a.name for a in attrs.fields(NewGroup)}
        if not isinstance(self.sends, frozenset) or not {"name"} <= self.sends <= fields:
            raise ValidationError(
                f"sends must name the name field and only fields of NewGroup, "
                f"not {sorted(self.sends)}",
                field="sends",
            )


#: The fields of a group a client may write (create or patch), in the order they are sent.
WRITABLE_FIELDS: Final = (
    "name",
    "status",
    "internal_note",
    "subscription",
    "subscription_cal_url",
    "layout",
    "cta",
    "cta_block",
    "landingpage",
    "public_event_overview",
)


@attrs.frozen(kw_only=True)
class GroupPatch(_WebModel):
    """A change to a group: only fields given a value are sent; `None` sets null.

    The rules of creation apply to the fields the patch carries. `subscription=EXTERNAL`
    without a URL is allowed (the group may already have one: the server decides).
    """

    name: str | UnsetType = UNSET
    status: GroupStatus | UnsetType = attrs.field(
        default=UNSET, converter=_to_status
    )
    internal_note: str | UnsetType | None = UNSET
    subscription: Subscription | UnsetType = attrs.field(
        default=UNSET, converter=_to_subscription
    )
    subscription_cal_url: str | UnsetType | None = UNSET
    layout: str | UnsetType | None = UNSET
    cta: bool | UnsetType | None = UNSET
    cta_block: str | UnsetType | None = UNSET
    landingpage: str | UnsetType | None = UNSET
    public_event_overview: bool | UnsetType | None = UNSET

    def __attrs_post_init__(self) -> None:
        if self.name is not UNSET:
            check_name(self.name)
        _check_optionals(self)
        if self.subscription is None:
            raise ValidationError("subscription cannot be set to null", field="subscription")
        if self.status is None:
            raise ValidationError("status cannot be set to null", field="status")
        _check_subscription(self.subscription, self.subscription_cal_url, in_patch=True)

    def changes(self) -> dict[str, Any]:
        """The fields this patch carries, by name (`None` values included)."""
        return {f: v for f in WRITABLE_FIELDS if (v := getattr(self, f)) is not UNSET}

    def is_empty(self) -> bool:
        """True when the patch carries no field (updating with it sends nothing)."""
        return not self.changes()

    def changes_subscription(self) -> bool:
        """True when the patch carries `subscription` (locked while events are linked)."""
        return self.subscription is not UNSET

    def without_unchanged(self, current: Group) -> GroupPatch:
        """A patch holding only the fields whose value differs from `current`."""
        differing = {
            f: v for f, v in self.changes().items() if not _same(getattr(current, f), v)
        }
        return GroupPatch(**differing)


def _same(current: object, wanted: object) -> bool:
    if isinstance(current, enum.Enum):
        current = current.value
    if isinstance(wanted, enum.Enum):
        wanted = wanted.value
    return current == wanted
