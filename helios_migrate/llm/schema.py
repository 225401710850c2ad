"""The JSON schemas models answer in, and a strict validator for them.

The same schema is sent as ``response_format`` (servers that support structured output then
constrain the answer) and checked here on every answer, whatever the server claims: every
object is closed (unknown keys are errors), every key is required, types and enumerations are
exact.  The validator understands the subset of JSON Schema these schemas use.
"""

from __future__ import annotations

from typing import Any

from ..changes import (
    AddColumn,
    AddConstraint,
    AddEnumValue,
    AlterColumnType,
    Change,
    CreateEnum,
    CreateIndex,
    CreateTable,
    CreateTrigger,
    CreateView,
    DropColumn,
    DropConstraint,
    DropDefault,
    DropEnum,
    DropIndex,
    DropNotNull,
    DropTable,
    DropTrigger,
    DropView,
    ModifyRows,
    RawStatement,
    RenameColumn,
    RenameTable,
    SetDefault,
    SetNotNull,
    SetSetting,
    ValidateConstraint,
)
from ..plan import Phase

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "array": (list,),
    "object": (dict,),
    "boolean": (bool,),
    "null": (type(None),),
    "integer": (int,),
    "number": (int, float),
}


def validate(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Every way ``value`` violates ``schema``, as ``path: problem`` strings (empty when valid)."""
    problems: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        ok = any(
            isinstance(value, _TYPES[n]) and not (n in ("integer", "number") and isinstance(value, bool))
            for n in names
        )
        if not ok:
            return [f"{path}: expected {' or '.join(names)}, got {_json_type(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(repr(v) for v in schema["enum"])
        problems.append(f"{path}: {value!r} is not one of {allowed}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            problems.append(f"{path}: must not be empty")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{path}: longer than {schema['maxLength']} characters")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            problems.append(f"{path}: needs at least {schema['minItems']} item(s)")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append(f"{path}: at most {schema['maxItems']} item(s) allowed")
        items = schema.get("items")
        if items is not None:
            for i, item in enumerate(value):
                problems += validate(item, items, f"{path}[{i}]")
    if isinstance(value, dict):
        properties: dict[str, Any] = schema.get("properties", {})
        for key in value:
            if key not in properties and schema.get("additionalProperties", True) is False:
                problems.append(f"{path}: unknown key {key!r}")
        for key in schema.get("required", ()):
            if key not in value:
                problems.append(f"{path}: missing key {key!r}")
        for key, sub in properties.items():
            if key in value:
                problems += validate(value[key], sub, f"{path}.{key}")
    return problems


def _json_type(value: Any) -> str:
    for name, kinds in _TYPES.items():
        if isinstance(value, kinds) and not (name == "integer" and isinstance(value, bool)):
            return name
    return type(value).__name__


def closed_object(properties: dict[str, Any]) -> dict[str, Any]:
    """An object schema in the form strict structured output requires: every key required, no others."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


_STR = {"type": "string", "minLength": 1}
_SQL_LIST = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 20000}}

STEP_KINDS: dict[str, tuple[type[Change], ...]] = {
    "create_table": (CreateTable,),
    "add_column": (AddColumn,),
    "add_constraint_not_valid": (AddConstraint,),
    "validate_constraint": (ValidateConstraint,),
    "create_index_concurrently": (CreateIndex, DropIndex),
    "drop_index_concurrently": (DropIndex,),
    "set_not_null": (SetNotNull, AddConstraint, ValidateConstraint, DropConstraint),
    "column_metadata": (SetDefault, DropDefault, DropNotNull, AlterColumnType, RawStatement),
    "backfill_batch": (ModifyRows,),
    "data_migration": (ModifyRows,),
    "create_object": (CreateEnum, AddEnumValue, CreateView, CreateTrigger, RawStatement),
    "rename": (RenameColumn, RenameTable),
    "drop": (DropColumn, DropTable, DropConstraint, DropIndex, DropView, DropEnum, DropTrigger),
    "session_setting": (SetSetting,),
    "other": (),
}
"""Step kinds a model may use, with the change kinds each may contain (``other``: any)."""

TRANSACTIONS = ("migration", "own", "autocommit")

STEP_SCHEMA = closed_object(
    {
        "kind": {"type": "string", "enum": list(STEP_KINDS)},
        "phase": {"type": "string", "enum": [p.value for p in Phase]},
        "description": _STR,
        "sql": {**_SQL_LIST, "minItems": 1},
        "transaction": {"type": "string", "enum": list(TRANSACTIONS)},
        "inverse_sql": {"type": ["array", "null"], "items": _SQL_LIST["items"]},
        "irreversible_reason": {"type": ["string", "null"]},
        "rationale": _STR,
    }
)

PLAN_SCHEMA = closed_object(
    {
        "steps": {"type": "array", "items": STEP_SCHEMA, "minItems": 1, "maxItems": 30},
        "notes": {"type": "array", "items": {"type": "string"}},
    }
)

RENAME_SCHEMA = closed_object(
    {
        "is_rename": {"type": "boolean"},
        "confidence": {"type": "string", "enum": ["low", "medium", "high"]},
        "reason": _STR,
    }
)

EXPLAIN_SCHEMA = closed_object(
    {
        "summary": _STR,
        "locks": _STR,
        "duration": _STR,
        "watch": {"type": "array", "items": {"type": "string"}},
    }
)

CHECK_SCHEMA = closed_object({"ok": {"type": "boolean"}})
