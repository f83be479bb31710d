"""The models as pydantic (and FastAPI) types: schemas read off the attrs fields, bodies
checked by the models' own rules, values written as `to_jsonable` writes them. No I/O."""

from __future__ import annotations

import enum
import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from conftest import KEY
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from asyncgroups import (
    UNSET,
    Group,
    GroupPatch,
    GroupStatus,
    GroupSummary,
    NewGroup,
    Subscription,
    ValidationError,
)
from asyncgroups.contrib.jsonable import to_jsonable

MODELS = [Group, GroupSummary, NewGroup, GroupPatch]
GROUP = Group(
    prokey=KEY,
    name="Team",
    status=GroupStatus.PUBLISHED,
    subscription=Subscription.EXTERNAL,
    subscription_cal_url="https://example.com/c.ics",
    date_created=datetime(2023, 11, 24, 15, 5, 13, 7000, tzinfo=UTC),
    event_prokeys=("e1",),
    extra={"landingpage": {"active": False}},
)


def _errors(model: type[Any], body: object) -> list[dict[str, Any]]:
    with pytest.raises(PydanticValidationError) as caught:
        TypeAdapter(model).validate_json(json.dumps(body))
    return [{"loc": e["loc"], "type": e["type"], "msg": e["msg"]} for e in caught.value.errors()]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_model_schema_has_every_attrs_field(model: type[Any]) -> None:
    for mode in ("validation", "serialization"):
        schema = TypeAdapter(model).json_schema(mode=mode)  # type: ignore[arg-type]
        assert list(schema["properties"]) == [f.name for f in attrs.fields(model)]
        assert schema["title"] == model.__name__


class Shade(enum.StrEnum):
    """A type only this module knows, for a field a subclass adds."""

    DARK = "dark"


@attrs.frozen
class Extended(NewGroup):
    landingpage: str | None = None
    shade: Shade | None = None


def test_model_schema_picks_up_a_field_added_to_a_model() -> None:
    schema = TypeAdapter(Extended).json_schema()
    assert schema["properties"]["landingpage"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert schema["$defs"]["Shade"]["enum"] == ["dark"]
    body = '{"name": "a", "landingpage": "lp", "shade": "dark"}'
    assert TypeAdapter(Extended).validate_json(body) == Extended(
        "a", landingpage="lp", shade=Shade.DARK
    )


def test_model_schema_requires_fields_without_default_in_a_body() -> None:
    assert TypeAdapter(NewGroup).json_schema()["required"] == ["name"]
    assert "required" not in TypeAdapter(GroupPatch).json_schema()
    assert TypeAdapter(GroupSummary).json_schema()["required"] == ["prokey"]


def test_model_schema_shows_every_field_as_written_but_a_patch_s_unset_ones() -> None:
    written = TypeAdapter(Group).json_schema(mode="serialization")
    assert written["required"] == [f.name for f in attrs.fields(Group)]
    patch = TypeAdapter(GroupPatch).json_schema(mode="serialization")
    assert "required" not in patch
    assert "UNSET" not in json.dumps(patch)


def test_model_schema_of_enums_lists_their_values() -> None:
    schema = TypeAdapter(NewGroup).json_schema()
    assert schema["$defs"]["Subscription"]["enum"] == ["no", "external", "children"]


@pytest.mark.parametrize(
    "model",
    [GROUP, GroupSummary(KEY, None, extra={"x": [1]}), NewGroup("a"), GroupPatch(layout=None)],
    ids=lambda m: type(m).__name__,
)
def test_model_serialises_as_to_jsonable(model: Any) -> None:
    adapter = TypeAdapter(type(model))
    assert adapter.dump_python(model, mode="json") == to_jsonable(model)
    assert json.loads(adapter.dump_json(model)) == to_jsonable(model)


def test_model_instance_validates_as_itself() -> None:
    assert TypeAdapter(Group).validate_python(GROUP) is GROUP


def test_new_group_body_builds_the_model() -> None:
    body = {"name": "Team", "subscription": "external", "subscription_cal_url": "https://e.com/c"}
    new = TypeAdapter(NewGroup).validate_json(json.dumps(body))
    assert new == NewGroup("Team", subscription=Subscription.EXTERNAL,
                           subscription_cal_url="https://e.com/c")  # fmt: skip


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        ({"name": "   "}, ("name",), "value_error"),
        ({"name": " padded"}, ("name",), "value_error"),
        ({}, ("name",), "missing"),
        ({"name": 7}, ("name",), "string_type"),
        ({"name": "a", "subscription": "external"}, ("subscription_cal_url",), "value_error"),
        ({"name": "a", "subscription_cal_url": "ftp://"}, ("subscription_cal_url",), "value_error"),
        ({"name": "a", "subscription": "sometimes"}, ("subscription",), "enum"),
        ({"name": "a", "nmae": "typo"}, ("nmae",), "extra_forbidden"),
    ],
)
def test_new_group_body_refused_names_the_field(
    body: dict[str, Any], loc: tuple[str, ...], kind: str
) -> None:
    [error] = _errors(NewGroup, body)
    assert (error["loc"], error["type"]) == (loc, kind)



@pytest.mark.parametrize("model", [NewGroup, GroupPatch], ids=lambda m: m.__name__)
@pytest.mark.parametrize("field", ["cta", "public_event_overview"])
@pytest.mark.parametrize("value", ["yes", "false", "0", 1, 0])
def test_body_flag_takes_only_true_false_or_null_as_the_model_does(
    model: type[Any], field: str, value: object
) -> None:
    # "false" read as False, "yes" as True: pydantic's lax reading, which the models
    # themselves and sync's desired file refuse.
    [error] = _errors(model, {"name": "Team", field: value})
    assert (error["loc"], error["type"]) == ((field,), "bool_type")
    with pytest.raises(ValidationError, match=f"{field} must be true, false or None"):
        model(name="Team", **{field: value})
    assert TypeAdapter(model).validate_json(json.dumps({"name": "T", field: False})) == model(
        name="T", **{field: False}
    )

def test_new_group_body_refused_by_a_model_rule_says_the_rule() -> None:
    [error] = _errors(NewGroup, {"name": ""})
    assert error["msg"] == "name must not be empty"


def test_body_refused_for_a_lone_surrogate_shows_its_input_as_utf8_can_write_it() -> None:
    # As `json.loads` reads `"Team \\ud83d"` (FastAPI's parser); pydantic's own refuses it.
    with pytest.raises(PydanticValidationError) as caught:
        TypeAdapter(NewGroup).validate_python({"name": "Team \ud83d"})
    [error] = caught.value.errors()
    assert error["loc"] == ("name",)
    assert error["input"] == "Team \\ud83d"
    error["input"].encode("utf-8")  # what a 422 answer writes


def test_patch_body_leaves_out_what_it_does_not_set_and_null_clears() -> None:
    patch = TypeAdapter(GroupPatch).validate_json('{"name": "b", "layout": null}')
    assert patch == GroupPatch(name="b", layout=None)
    assert patch.internal_note is UNSET
    [error] = _errors(GroupPatch, {"subscription": "no", "subscription_cal_url": "https://e.com"})
    assert error["loc"] == ("subscription_cal_url",)


def test_models_import_without_pydantic() -> None:
    code = "import sys, asyncgroups.contrib.jsonable; sys.exit('pydantic' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0  # noqa: S603 - this interpreter
