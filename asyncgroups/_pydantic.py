"""The models as pydantic (and so FastAPI) sees them: read off their attrs fields.

Imported only when pydantic asks a model for its schema (`models._WebModel`), so the
core keeps its three runtime dependencies. One source of truth: each attrs field is a
property of the schema, typed by its annotation, required when it has no default; a
field added to a model is in the schema with no edit here. A body is checked by pydantic
for types, then built by the model's own constructor, whose `ValidationError` becomes a
pydantic error located at the field it names (a 422 in FastAPI naming `body.name`, say).
A model is written as `asyncgroups.contrib.jsonable.to_jsonable` writes it.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Callable
from typing import Any

import attrs
from pydantic import GetCoreSchemaHandler
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema
from pydantic_core import ValidationError as PydanticValidationError

from . import models
from .contrib.jsonable import to_jsonable
from .errors import ValidationError
from .models import UnsetType

__all__ = ["model_schema"]


def model_schema(cls: type[Any], handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
    """The core schema of attrs model `cls`: validated into `cls`, shown by `to_jsonable`."""
    # The models' names first: a public model's `__module__` is `asyncgroups`, which
    # lacks them. Then those of the module of `cls`, for a subclass defined elsewhere.
    module = vars(sys.modules[cls.__module__])
    hints = typing.get_type_hints(cls, globalns=module, localns=vars(models))
    fields = {field.name: (field, hints[field.name]) for field in attrs.fields(cls)}
    body = _typed_dict(cls, handler, fields, shown=False)
    shown = _typed_dict(cls, handler, fields, shown=True)
    return core_schema.no_info_wrap_validator_function(
        _accepting_instances(cls),
        core_schema.no_info_after_validator_function(_builder(cls), body),
        ref=f"{cls.__module__}.{cls.__qualname__}",
        serialization=core_schema.plain_serializer_function_ser_schema(
            to_jsonable, return_schema=shown
        ),
    )


def _typed_dict(
    cls: type[Any],
    handler: GetCoreSchemaHandler,
    fields: dict[str, tuple[attrs.Attribute[Any], Any]],
    *,
    shown: bool,
) -> core_schema.TypedDictSchema:
    """The model's fields as a JSON object: as a body (`shown=False`) or as written.

    A body may leave out a field that has a default, and nothing else; written, every
    field is there except a patch's, which carries only the fields it sets.
    """
    properties = {
        name: core_schema.typed_dict_field(
            _strict_flag(handler.generate_schema(_without_unset(hint))),
            required=not _may_be_unset(hint) if shown else field.default is attrs.NOTHING,
        )
        for name, (field, hint) in fields.items()
    }
    if not shown:
        return core_schema.typed_dict_schema(properties, cls=cls, extra_behavior="forbid")
    # Written by `to_jsonable` already: the schema describes it, and passes it on as it is.
    as_is = core_schema.plain_serializer_function_ser_schema(_as_is)
    return core_schema.typed_dict_schema(properties, cls=cls, serialization=as_is)


def _strict_flag(schema: Any) -> Any:
    """A flag's schema taking only true, false (or null): the models refuse "yes" or 1.

    Lax, pydantic would read "false", "no" or 0 as False before the model could refuse it.
    """
    if schema.get("type") == "nullable":
        return {**schema, "schema": _strict_flag(schema["schema"])}
    return {**schema, "strict": True} if schema.get("type") == "bool" else schema


def _as_is(value: Any) -> Any:
    return value


def _may_be_unset(hint: Any) -> bool:
    return UnsetType in typing.get_args(hint)


def _without_unset(hint: Any) -> Any:
    """`hint` without `UnsetType`: leaving a field out of a patch is how it is unset."""
    if not _may_be_unset(hint):
        return hint
    kept = tuple(arg for arg in typing.get_args(hint) if arg is not UnsetType)
    return kept[0] if len(kept) == 1 else typing.Union[kept]  # noqa: UP007


def _accepting_instances(cls: type[Any]) -> Callable[[Any, Any], Any]:
    """A model instance is valid as it is (a return value, or Python input)."""

    def validate(value: Any, validate_fields: Any) -> Any:
        return value if isinstance(value, cls) else validate_fields(value)

    return validate


def _builder(cls: type[Any]) -> Callable[[dict[str, Any]], Any]:
    """Build the model from fields pydantic checked; its rules' refusal named at the field.

    The field is named even when it was left out (`subscription_cal_url`, which
    `subscription: "external"` needs), as pydantic names a missing field. The input is
    shown as UTF-8 can write it: FastAPI repeats it in its 422, which a lone surrogate
    the rules refused would otherwise turn into a 500.
    """
    names = frozenset(field.name for field in attrs.fields(cls))

    def build(values: dict[str, Any]) -> Any:
        try:
            return cls(**values)
        except ValidationError as err:
            field = err.field if err.field in names else None
            line: InitErrorDetails = {
                "type": PydanticCustomError("value_error", "{reason}", {"reason": str(err)}),
                "loc": (field,) if field else (),
                "input": _writable(values.get(field) if field else values),
            }
            raise PydanticValidationError.from_exception_data(cls.__name__, [line]) from None

    return build


def _writable(value: Any) -> Any:
    """`value` with every string's lone surrogates written as `\\udXXX` escapes."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {name: _writable(item) for name, item in value.items()}
    return value
