"""JSON <-> models: one private cattrs `Converter` owns every mapping. Performs no I/O.

The API answers reads in two real shapes (a one-element list holding an object whose
`events` are `{"prokey": ["k"]}` objects, and a bare object whose `events` are strings),
lists groups as objects or plain ids, and adds fields over time. All of that is absorbed
here, so the rest of the library sees only models.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeVar, cast

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .models import (
    Group,
    GroupPatch,
    GroupStatus,
    GroupSummary,
    NewGroup,
    PartialNewGroup,
    Subscription,
)

__all__ = [
    "ShapeError",
    "converter",
    "decode_created",
    "decode_group",
    "decode_summaries",
    "encode_new_group",
    "encode_patch",
    "loads",
]


def _json_loads() -> Callable[[bytes | str], Any]:
    """`json.loads`, or the same decoding done by orjson where it is installed.

    orjson (`pip install "asyncgroups[speedups]"`) saves about 4% of a read's
    instructions (20k of 458k, callgrind). The results stay `json`'s: orjson turns
    integers past 64 bits into floats, so a body with a run of 19 or more digits goes to
    `json`, and so does whatever orjson refuses but `json` reads (NaN, huge exponents, a
    BOM, UTF-16, lone surrogates).
    """
    try:
        orjson = importlib.import_module("orjson")
    except ImportError:
        return json.loads
    fast = orjson.loads
    # Digits kept, all else blanked: a substring test, not a regex (saves 62k, 13%).
    digits_only = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
    long_number = b"0" * 19

    def loads(data: bytes | str) -> Any:
        if isinstance(data, str) or long_number in data.translate(digits_only):
            return json.loads(data)
        try:
            return fast(data)
        except ValueError:
            return json.loads(data)

    return loads


#: Parse a JSON reply body.
loads: Final[Callable[[bytes | str], Any]] = _json_loads()

converter = cattrs.Converter(detailed_validation=True)

T = TypeVar("T")


class ShapeError(ValueError):
    """A reply does not have the shape of the API's documentation.

    The request pipeline turns it into `UnexpectedResponseError`, adding the request.
    """


#: What a JSON object may decode as: `dict` first, what `json` and orjson give, so the
#: usual case skips the `Mapping` ABC's instance check (saves 6k instructions, 1.2%).
_OBJECT: Final = (dict, Mapping)

# Simple types first: the order of hook registration matters.


def _structure_str(value: object, _: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ShapeError(f"expected a string, got {type(value).__name__}")


def _structure_bool(value: object, _: object) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1) and isinstance(value, int):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ShapeError(f"expected true or false, got {value!r}")


def _structure_datetime(value: object, _: object) -> datetime:
    if not isinstance(value, str):
        raise ShapeError(f"expected an ISO 8601 date string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ShapeError(f"expected an ISO 8601 date, got {value!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _lenient_enum(enum_type: type[Any]) -> Callable[[object, object], Any]:
    # A dict lookup, not `enum_type(value)` and a caught ValueError (saves 9k, 1.9%).
    members = {member.value: member for member in enum_type}

    def structure(value: object, _: object) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ShapeError(f"expected a string, got {type(value).__name__}")
        # A value newer than this library is kept as the plain string, never fatal.
        return members.get(value, value)

    return structure


def _optional_datetime(value: Any, type_: object) -> datetime | None:
    """A date that may be absent: null and an empty string both mean "no date"."""
    return None if value is None or value == "" else _structure_datetime(value, type_)


def _event_key(item: object) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, _OBJECT):
        key = item.get("prokey")
        if isinstance(key, list) and len(key) == 1:
            key = key[0]
        if isinstance(key, str):
            return key
    raise ShapeError(
        f'expected an event as "k", {{"prokey": "k"}} or {{"prokey": ["k"]}}, got {item!r}'
    )


def _structure_events(value: object, _: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ShapeError(f"expected a list of events, got {type(value).__name__}")
    return tuple([_event_key(item) for item in value])


for _enum in (Subscription, GroupStatus):
    converter.register_unstructure_hook(_enum, lambda member: member.value)
converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(bool, _structure_bool)
converter.register_structure_hook(datetime, _structure_datetime)
converter.register_structure_hook(datetime | None, _optional_datetime)
converter.register_structure_hook(GroupStatus | str | None, _lenient_enum(GroupStatus))
converter.register_structure_hook(Subscription | str | None, _lenient_enum(Subscription))


def _keep(value: Any, _: object) -> Any:
    return value


#: Field types whose hook gives back a value of this exact type as it is (and None as
#: None, where the type allows it): the fast path takes such a value without the call.
_TAKEN_AS_IS: Final[Mapping[Any, type]] = {str: str, str | None: str, bool | None: bool}


def _builder(cls: type[T]) -> Callable[..., T]:
    """A function making a `cls` from every field's value, in field order.

    It fills the slots of a subclass whose attribute setting is `object`'s, then makes
    the instance a `cls`: what the frozen `__init__` does with `object.__setattr__`,
    one call per field, in one Python frame (saves 19k instructions a read, 3.9%).
    `cls` may have no validator, no `__attrs_post_init__`, and converters only where
    the builder runs them too, so nothing of `__init__` is skipped.
    """
    fields = attrs.fields(cast(Any, cls))
    hooks = ("__attrs_pre_init__", "__attrs_post_init__")
    if any(hasattr(cls, hook) for hook in hooks) or any(a.validator for a in fields):
        raise TypeError(f"{cls.__name__} checks its fields: build it with __init__")
    names = [a.name for a in fields]
    globs: dict[str, Any] = {f"_convert_{a.name}": a.converter for a in fields}
    globs["_cls"] = cls
    body = "".join(
        f"    self.{n} = {f'_convert_{n}({n})' if a.converter else n}\n"
        for n, a in zip(names, fields, strict=True)
    )
    namespace: dict[str, Any] = {
        "__slots__": (),
        "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__,
    }
    source = f"def __init__(self, {', '.join(names)}):\n{body}    self.__class__ = _cls\n"
    exec(source, globs, namespace)  # noqa: S102  (generated, as attrs and cattrs do)
    return cast(Callable[..., T], type(f"_Build{cls.__name__}", (cls,), namespace))


def _fast_structure(cls: type[T], overrides: Mapping[str, Any]) -> Callable[[Any], T]:
    """Structure `cls` from a mapping with the same hooks as cattrs, without its bookkeeping.

    Each field's hook is called as cattrs calls it, except for a value the hook would
    give back as it is (`_TAKEN_AS_IS`); an absent field takes its default. It raises
    on anything that does not fit, and the caller then asks cattrs' detailed function.
    """
    namespace: dict[str, Any] = {"_build": _builder(cls), "_ABSENT": _ABSENT}
    lines = []
    for a in attrs.fields(attrs.resolve_types(cast(Any, cls))):
        given = overrides.get(a.name)
        wire = given.rename if given is not None and given.rename else a.name
        hook = given.struct_hook if given is not None and given.struct_hook else None
        namespace[f"_h_{a.name}"] = hook or converter.get_structure_hook(a.type)
        namespace[f"_t_{a.name}"] = a.type
        call = f"_h_{a.name}(v, _t_{a.name})"
        as_is = _TAKEN_AS_IS.get(a.type) if hook is None else None
        if as_is is not None:
            namespace[f"_p_{a.name}"] = as_is
            call = f"v if type(v) is _p_{a.name} else {call}"
        if a.default is attrs.NOTHING:
            lines.append(f"    v = o[{wire!r}]\n    f_{a.name} = {call}\n")
        elif a.default is None:
            lines.append(f"    v = o.get({wire!r})\n")
            lines.append(f"    f_{a.name} = None if v is None else {call}\n")
        else:
            factory = isinstance(a.default, attrs.Factory)  # type: ignore[arg-type]
            namespace[f"_d_{a.name}"] = a.default.factory if factory else a.default
            default = f"_d_{a.name}{'()' if factory else ''}"
            lines.append(f"    v = o.get({wire!r}, _ABSENT)\n")
            lines.append(f"    f_{a.name} = {default} if v is _ABSENT else {call}\n")
    values = ", ".join(f"f_{a.name}" for a in attrs.fields(cast(Any, cls)))
    exec(f"def fast(o):\n{''.join(lines)}    return _build({values})\n", namespace)  # noqa: S102
    return cast(Callable[[Any], T], namespace["fast"])


_ABSENT: Final = object()


def _with_extra(cls: type[T], **overrides: Any) -> Callable[[Mapping[str, Any], object], T]:
    """Structure `cls` from a mapping, gathering keys it does not know into `extra`."""
    renamed = {name: o.rename for name, o in overrides.items() if o.rename}
    known = frozenset(
        renamed.get(a.name, a.name) for a in attrs.fields(cast(Any, cls)) if a.name != "extra"
    )
    fields = {"extra": override(struct_hook=_keep), **overrides}
    # The same mapping twice: cattrs' detailed function names every field that does not
    # fit, at a cost on every call; the fast one is tried first (saves 7k, 1.5%).
    fast = _fast_structure(cls, fields)
    detailed = make_dict_structure_fn(cls, converter, **fields)

    def structure(obj: Mapping[str, Any], _: object) -> T:
        if not isinstance(obj, _OBJECT):
            raise ShapeError(f"expected an object, got {type(obj).__name__}")
        # It reads only the keys it knows, so `obj` goes in as it is; without unknown
        # keys (the usual case) `extra` keeps its empty default (saves 7k, 1.4%).
        if not known.issuperset(obj):
            obj = {**obj, "extra": {k: v for k, v in obj.items() if k not in known}}
        try:
            return fast(obj)
        except Exception:
            return detailed(obj, cls)  # raises, naming every field that does not fit

    return structure


_events = override(rename="events", struct_hook=_structure_events)
converter.register_structure_hook(Group, _with_extra(Group, event_prokeys=_events))
converter.register_structure_hook(GroupSummary, _with_extra(GroupSummary))

_unstructure_new = make_dict_unstructure_fn(NewGroup, converter)


def encode_new_group(new: NewGroup) -> dict[str, Any]:
    """The JSON body of `POST /group`: fields left as None are not sent.

    A `PartialNewGroup` (sync's creates) sends only the fields it names, so a field its
    record does not manage is left out even where `NewGroup` has a default for it.
    """
    body = {k: v for k, v in _unstructure_new(new).items() if v is not None}
    if isinstance(new, PartialNewGroup):
        return {k: v for k, v in body.items() if k in new.sends}
    return body


def encode_patch(patch: GroupPatch) -> dict[str, Any]:
    """The JSON body of `PATCH /group/{k}`: UNSET fields are omitted, None is sent as null."""
    return {name: converter.unstructure(value) for name, value in patch.changes().items()}


converter.register_unstructure_hook(NewGroup, encode_new_group)
converter.register_unstructure_hook(GroupPatch, encode_patch)


# Decoding whole replies ---------------------------------------------------------------


def _explain(err: Exception) -> str:
    if isinstance(err, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(err))
    return str(err)


def _unwrap_one(payload: Any) -> Mapping[str, Any]:
    if isinstance(payload, list):
        if len(payload) != 1:
            raise ShapeError(f"expected a list holding one group, got {len(payload)} items")
        payload = payload[0]
    if not isinstance(payload, _OBJECT):
        raise ShapeError(f"expected a group object, got {type(payload).__name__}")
    return payload


def decode_group(payload: Any, *, prokey: str | None = None) -> Group:
    """Decode a read of one group, in either real shape.

    `prokey` comes from the request when there is one (the documented reply has none);
    otherwise (`/group/latest`) it is read from the reply's `prokey` or `id`.
    """
    obj = dict(_unwrap_one(payload))
    key: Any = prokey
    for name in ("prokey", "id"):
        found = obj.pop(name, None)
        if key is None and found is not None:
            key = found[0] if isinstance(found, list) and len(found) == 1 else found
    if not isinstance(key, str) or not key:
        raise ShapeError("the group carries no prokey or id")
    obj["prokey"] = key
    try:
        return converter.structure(obj, Group)
    except Exception as err:  # cattrs gathers every field's error into one group
        raise ShapeError(_explain(err)) from err


def _summary(item: Any) -> GroupSummary:
    if isinstance(item, str):
        return GroupSummary(prokey=item)
    if not isinstance(item, Mapping):
        raise ShapeError(f"expected an id or an object, got {type(item).__name__}")
    obj = dict(item)
    key = obj.pop("prokey", None)
    if key is None:
        key = obj.pop("id", None)
    if isinstance(key, list) and len(key) == 1:
        key = key[0]
    if not isinstance(key, str) or not key:
        raise ShapeError(f"a listed group carries no prokey or id: {item!r}")
    name = obj.pop("name", None)
    label = obj.pop("label", None)
    obj["prokey"] = key
    obj["name"] = name if name is not None else label
    if name is not None and label is not None:
        obj["label"] = label
    return converter.structure(obj, GroupSummary)


def decode_summaries(payload: Any) -> list[GroupSummary]:
    """Decode the account's list of groups: objects with a key and a name, or plain ids."""
    if isinstance(payload, Mapping):
        for name in ("groups", "data", "items"):
            if isinstance(payload.get(name), list):
                payload = payload[name]
                break
    if not isinstance(payload, list):
        raise ShapeError(f"expected a list, got {type(payload).__name__}")
    try:
        return [_summary(item) for item in payload]
    except Exception as err:
        raise ShapeError(_explain(err)) from err


def decode_created(payload: Any) -> str:
    """The new group's prokey from `{"success": "Created", "id": "<prokey>"}`."""
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    if isinstance(payload, Mapping):
        key = payload.get("id", payload.get("prokey"))
        if isinstance(key, str) and key:
            return key
    # The reply itself is kept (masked, then truncated) on the error's `.body`; a slice
    # of it here could end halfway through an echoed API key, past any masking.
    raise ShapeError(f'expected {{"id": "<prokey>"}}, got {type(payload).__name__} without one')
