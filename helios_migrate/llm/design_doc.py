"""The schema description ``design`` works on: a closed JSON document and its typed form.

The LLM answers this document, never code.  :data:`DESIGN_SCHEMA` is sent as the answer format and
checked strictly (unknown keys are errors); :func:`parse_design` then checks what a JSON schema
cannot say -- types and their parameters, defaults that fit their column, references between
tables, duplicate names, PostgreSQL's 63-byte name limit -- and re-parses every CHECK, index and
predicate expression through :mod:`.design_expr`.  The result is a :class:`Design` made of frozen
dataclasses, the only input of the renderers in :mod:`.design_render`.

Names (tables, columns, constraints, enum types and labels) may be any non-empty string of at
most 63 bytes: they are data, quoted wherever they are used.
"""

from __future__ import annotations

import datetime
import decimal
import ipaddress
import json
import math
import uuid
from dataclasses import dataclass
from typing import Any

from .design_expr import SYSTEM_COLUMNS, ExpressionRejected, check_expression
from .schema import closed_object, validate

NAME_BYTES = 63
MAX_TABLES = 100
MAX_COLUMNS = 200
MAX_COMMENT = 2000
MAX_TEXT_DEFAULT = 2000

SCALAR_TYPES = (
    "bigint", "integer", "smallint", "text", "varchar", "boolean", "numeric", "real", "double",
    "date", "timestamp", "timestamptz", "time", "interval", "uuid", "jsonb", "json", "bytea", "inet",
)
TYPE_NAMES = (*SCALAR_TYPES, "enum")
INTEGER_TYPES = frozenset({"bigint", "integer", "smallint"})

DEFAULT_FUNCTIONS: dict[str, tuple[str, frozenset[str]]] = {
    "now()": ("now()", frozenset({"timestamptz", "timestamp", "date"})),
    "current_timestamp": ("CURRENT_TIMESTAMP", frozenset({"timestamptz", "timestamp", "date"})),
    "current_date": ("CURRENT_DATE", frozenset({"date", "timestamp", "timestamptz"})),
    "gen_random_uuid()": ("gen_random_uuid()", frozenset({"uuid"})),
}
"""Default functions a column may use: the SQL written for each, and the column types it fits."""

REFERENTIAL_ACTIONS = ("no action", "restrict", "cascade", "set null", "set default")
INDEX_METHODS = ("btree", "gin", "gist", "hash", "brin")

_NAME = {"type": "string", "minLength": 1, "maxLength": NAME_BYTES}
_NULLABLE_NAME = {"type": ["string", "null"], "minLength": 1, "maxLength": NAME_BYTES}
_NAMES = {"type": "array", "items": _NAME, "minItems": 1, "maxItems": 32}
_COMMENT = {"type": ["string", "null"], "maxLength": MAX_COMMENT}
_EXPRESSION = {"type": "string", "minLength": 1, "maxLength": 2000}
_SMALL_INT = {"type": ["integer", "null"]}

TYPE_SCHEMA = closed_object({
    "name": {"type": "string", "enum": list(TYPE_NAMES)},
    "length": _SMALL_INT,
    "precision": _SMALL_INT,
    "scale": _SMALL_INT,
    "enum": _NULLABLE_NAME,
    "array": {"type": "boolean"},
})
DEFAULT_SCHEMA = {
    **closed_object({
        "function": {"type": ["string", "null"], "enum": [*DEFAULT_FUNCTIONS, None]},
        "value": {"type": ["string", "number", "boolean", "null"], "maxLength": MAX_TEXT_DEFAULT},
    }),
    "type": ["object", "null"],
}
COLUMN_SCHEMA = closed_object({
    "name": _NAME,
    "type": TYPE_SCHEMA,
    "nullable": {"type": "boolean"},
    "identity": {"type": ["string", "null"], "enum": ["always", "by_default", None]},
    "default": DEFAULT_SCHEMA,
    "comment": _COMMENT,
})
FOREIGN_KEY_SCHEMA = closed_object({
    "name": _NULLABLE_NAME,
    "columns": _NAMES,
    "references_table": _NAME,
    "references_columns": _NAMES,
    "on_delete": {"type": "string", "enum": list(REFERENTIAL_ACTIONS)},
    "on_update": {"type": "string", "enum": list(REFERENTIAL_ACTIONS)},
})
UNIQUE_SCHEMA = closed_object({"name": _NULLABLE_NAME, "columns": _NAMES})
CHECK_SCHEMA = closed_object({"name": _NULLABLE_NAME, "expression": _EXPRESSION})
INDEX_ELEMENT_SCHEMA = closed_object({
    "column": _NULLABLE_NAME,
    "expression": {**_EXPRESSION, "type": ["string", "null"]},
})
INDEX_SCHEMA = closed_object({
    "name": _NULLABLE_NAME,
    "unique": {"type": "boolean"},
    "method": {"type": "string", "enum": list(INDEX_METHODS)},
    "elements": {"type": "array", "items": INDEX_ELEMENT_SCHEMA, "minItems": 1, "maxItems": 32},
    "where": {**_EXPRESSION, "type": ["string", "null"]},
})
TABLE_SCHEMA = closed_object({
    "name": _NAME,
    "comment": _COMMENT,
    "columns": {"type": "array", "items": COLUMN_SCHEMA, "minItems": 1, "maxItems": MAX_COLUMNS},
    "primary_key": {"type": "array", "items": _NAME, "maxItems": 32},
    "foreign_keys": {"type": "array", "items": FOREIGN_KEY_SCHEMA, "maxItems": 64},
    "unique": {"type": "array", "items": UNIQUE_SCHEMA, "maxItems": 64},
    "checks": {"type": "array", "items": CHECK_SCHEMA, "maxItems": 64},
    "indexes": {"type": "array", "items": INDEX_SCHEMA, "maxItems": 64},
})
ENUM_SCHEMA = closed_object({
    "name": _NAME,
    "labels": {"type": "array", "items": _NAME, "minItems": 1, "maxItems": 200},
})
DESIGN_SCHEMA = closed_object({
    "enums": {"type": "array", "items": ENUM_SCHEMA, "maxItems": 50},
    "tables": {"type": "array", "items": TABLE_SCHEMA, "minItems": 1, "maxItems": MAX_TABLES},
    "notes": {"type": "array", "items": {"type": "string", "maxLength": MAX_COMMENT}, "maxItems": 50},
})
"""The answer ``design`` accepts: a description of enum types and tables, and notes for the reader."""


# -- the typed description ---------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnType:
    name: str
    """One of :data:`TYPE_NAMES`."""
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    enum: str | None = None
    array: bool = False


@dataclass(frozen=True)
class Default:
    function: str | None = None
    """A key of :data:`DEFAULT_FUNCTIONS`."""
    value: str | int | float | bool | None = None


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool
    identity: str | None = None
    """``always``, ``by_default`` or None."""
    default: Default | None = None
    comment: str | None = None


@dataclass(frozen=True)
class ForeignKey:
    name: str | None
    columns: tuple[str, ...]
    references_table: str
    references_columns: tuple[str, ...]
    on_delete: str = "no action"
    on_update: str = "no action"


@dataclass(frozen=True)
class Unique:
    name: str | None
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Check:
    name: str | None
    expression: str
    """Deparsed from the accepted pglast tree."""


@dataclass(frozen=True)
class IndexElement:
    column: str | None = None
    expression: str | None = None
    """Deparsed from the accepted pglast tree (when not a plain column)."""


@dataclass(frozen=True)
class Index:
    name: str
    unique: bool
    method: str
    elements: tuple[IndexElement, ...]
    where: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    comment: str | None = None
    foreign_keys: tuple[ForeignKey, ...] = ()
    unique: tuple[Unique, ...] = ()
    checks: tuple[Check, ...] = ()
    indexes: tuple[Index, ...] = ()


@dataclass(frozen=True)
class EnumType:
    name: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Design:
    tables: tuple[Table, ...]
    enums: tuple[EnumType, ...] = ()
    notes: tuple[str, ...] = ()

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)


# -- parsing and checking ----------------------------------------------------------------------


def parse_design(document: Any) -> tuple[Design | None, list[str]]:
    """The typed :class:`Design` of ``document``, or ``(None, every reason it is rejected)``."""
    problems = validate(document, DESIGN_SCHEMA)
    if problems:
        return None, problems
    checker = _Checker()
    enums = tuple(checker.enum(e, f"enums[{i}]") for i, e in enumerate(document["enums"]))
    checker.enum_labels = {e.name: e.labels for e in enums}
    tables = tuple(checker.table(t, f"tables[{i}]") for i, t in enumerate(document["tables"]))
    checker.relations(tables, enums)
    if checker.problems:
        return None, checker.problems
    notes = tuple(" ".join(str(n).split()) for n in document["notes"])
    return Design(tables, enums, notes), []


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a PostgreSQL identifier (None when it can)."""
    if not name:
        return "a name must not be empty"
    if "\x00" in name:
        return "a name must not contain a NUL character"
    if len(name.encode("utf-8")) > NAME_BYTES:
        return f"{name[:20]!r}... is longer than {NAME_BYTES} bytes (PostgreSQL would truncate it)"
    return None


def index_name(table: str, parts: list[str]) -> str:
    """A name for an unnamed index: ``<table>_<columns>_idx``, cut to 63 bytes on a character."""
    base = "_".join([table, *parts, "idx"])
    encoded = base.encode("utf-8")[:NAME_BYTES]
    return encoded.decode("utf-8", errors="ignore")


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.enum_labels: dict[str, tuple[str, ...]] = {}

    def fail(self, where: str, problem: str) -> None:
        self.problems.append(f"{where}: {problem}")

    def name(self, value: str, where: str) -> str:
        problem = name_problem(value)
        if problem:
            self.fail(where, problem)
        return value

    def text(self, value: str | None, where: str) -> str | None:
        if value is not None and "\x00" in value:
            self.fail(where, "text must not contain a NUL character")
        return value

    def enum(self, obj: dict[str, Any], where: str) -> EnumType:
        name = self.name(obj["name"], f"{where}.name")
        labels = tuple(self.name(label, f"{where}.labels") for label in obj["labels"])
        for label in _duplicates(labels):
            self.fail(f"{where}.labels", f"label {label!r} appears more than once")
        return EnumType(name, labels)

    def table(self, obj: dict[str, Any], where: str) -> Table:
        name = self.name(obj["name"], f"{where}.name")
        columns = tuple(self.column(c, f"{where}.columns[{i}]") for i, c in enumerate(obj["columns"]))
        names = [c.name for c in columns]
        known = set(names)
        for dup in _duplicates(names):
            self.fail(f"{where}.columns", f"column {dup!r} appears more than once in table {name!r}")

        def cols(values: list[str], at: str) -> tuple[str, ...]:
            for value in values:
                if value not in known:
                    self.fail(at, f"column {value!r} is not a column of table {name!r}")
            for dup in _duplicates(values):
                self.fail(at, f"column {dup!r} is listed twice")
            return tuple(values)

        primary_key = cols(obj["primary_key"], f"{where}.primary_key")
        if not primary_key:
            self.fail(f"{where}.primary_key", f"table {name!r} has no primary key; give it one "
                      "(a mapped class needs one, and so do replication and most tools)")
        for column in columns:
            if column.name in primary_key and column.nullable:
                self.fail(where, f"primary key column {column.name!r} must not be nullable")
        foreign_keys = tuple(
            ForeignKey(
                self.optional_name(fk["name"], f"{where}.foreign_keys[{i}].name"),
                cols(fk["columns"], f"{where}.foreign_keys[{i}].columns"),
                self.name(fk["references_table"], f"{where}.foreign_keys[{i}].references_table"),
                tuple(self.name(c, f"{where}.foreign_keys[{i}].references_columns")
                      for c in fk["references_columns"]),
                fk["on_delete"],
                fk["on_update"],
            )
            for i, fk in enumerate(obj["foreign_keys"])
        )
        unique = tuple(
            Unique(self.optional_name(u["name"], f"{where}.unique[{i}].name"),
                   cols(u["columns"], f"{where}.unique[{i}].columns"))
            for i, u in enumerate(obj["unique"])
        )
        checks = tuple(
            Check(self.optional_name(c["name"], f"{where}.checks[{i}].name"),
                  self.expression(c["expression"], known, f"{where}.checks[{i}].expression", name))
            for i, c in enumerate(obj["checks"])
        )
        indexes = tuple(self.index(x, known, name, f"{where}.indexes[{i}]") for i, x in enumerate(obj["indexes"]))
        comment = self.text(obj["comment"], f"{where}.comment")
        return Table(name, columns, primary_key, comment, foreign_keys, unique, checks, indexes)

    def optional_name(self, value: str | None, where: str) -> str | None:
        return None if value is None else self.name(value, where)

    def expression(self, text: str, columns: set[str], where: str, table: str) -> str:
        try:
            return check_expression(text, columns).sql
        except ExpressionRejected as exc:
            self.fail(where, f"{exc} (in {text[:200]!r} on table {table!r})")
            return ""

    def index(self, obj: dict[str, Any], columns: set[str], table: str, where: str) -> Index:
        elements: list[IndexElement] = []
        parts: list[str] = []
        for i, element in enumerate(obj["elements"]):
            at = f"{where}.elements[{i}]"
            column, expression = element["column"], element["expression"]
            if (column is None) == (expression is None):
                self.fail(at, "give exactly one of 'column' and 'expression'")
            elif column is not None:
                if column not in columns:
                    self.fail(at, f"column {column!r} is not a column of table {table!r}")
                elements.append(IndexElement(column=column))
                parts.append(column)
            else:
                assert expression is not None
                elements.append(IndexElement(expression=self.expression(expression, columns, at, table)))
                parts.append("expr")
        where_sql = None
        if obj["where"] is not None:
            where_sql = self.expression(obj["where"], columns, f"{where}.where", table)
        name = obj["name"]
        if name is None:
            name = index_name(table, parts)
        return Index(self.name(name, f"{where}.name"), obj["unique"], obj["method"], tuple(elements), where_sql)

    def column(self, obj: dict[str, Any], where: str) -> Column:
        name = self.name(obj["name"], f"{where}.name")
        if name in SYSTEM_COLUMNS:
            self.fail(f"{where}.name", f"{name!r} is the name of a PostgreSQL system column")
        ctype = self.column_type(obj["type"], f"{where}.type")
        identity = obj["identity"]
        if identity is not None:
            if ctype.name not in INTEGER_TYPES or ctype.array:
                self.fail(f"{where}.identity", "only bigint, integer and smallint columns can be identity columns")
            if obj["nullable"]:
                self.fail(f"{where}.identity", "an identity column cannot be nullable")
            if obj["default"] is not None:
                self.fail(f"{where}.default", "an identity column cannot also have a default")
        default = None
        if obj["default"] is not None:
            default = self.default(obj["default"], ctype, f"{where}.default")
        return Column(name, ctype, obj["nullable"], identity, default, self.text(obj["comment"], f"{where}.comment"))

    def column_type(self, obj: dict[str, Any], where: str) -> ColumnType:
        name = obj["name"]
        length, precision, scale, enum = obj["length"], obj["precision"], obj["scale"], obj["enum"]
        if name == "varchar":
            if length is None or not 1 <= length <= 10485760:
                self.fail(where, "varchar needs a length between 1 and 10485760")
        elif length is not None:
            self.fail(where, f"'length' is only for varchar, not {name}")
        if name == "numeric":
            if (precision is None) != (scale is None) and precision is None:
                self.fail(where, "numeric with a scale needs a precision")
            if precision is not None and not 1 <= precision <= 1000:
                self.fail(where, "numeric precision must be between 1 and 1000")
            if precision is not None and scale is not None and not 0 <= scale <= precision:
                self.fail(where, "numeric scale must be between 0 and the precision")
        elif precision is not None or scale is not None:
            self.fail(where, f"'precision' and 'scale' are only for numeric, not {name}")
        if name == "enum":
            if enum is None:
                self.fail(where, "an enum column names its enum type in 'enum'")
            elif enum not in self.enum_labels:
                self.fail(where, f"enum type {enum!r} is not declared in 'enums'")
            if obj["array"]:
                self.fail(where, "arrays of enum types are not supported")
        elif enum is not None:
            self.fail(where, f"'enum' is only for enum columns, not {name}")
        return ColumnType(name, length, precision, scale, enum, obj["array"])

    def default(self, obj: dict[str, Any], ctype: ColumnType, where: str) -> Default | None:
        function, value = obj["function"], obj["value"]
        if (function is None) == (value is None):
            self.fail(where, "give exactly one of 'function' and 'value' (or null for no default)")
            return None
        if ctype.array:
            self.fail(where, "defaults on array columns are not supported")
            return None
        if function is not None:
            fits = DEFAULT_FUNCTIONS[function][1]
            if ctype.name not in fits:
                self.fail(where, f"{function} is not a default for a {ctype.name} column")
            return Default(function=function)
        problem = _literal_problem(value, ctype, self.enum_labels)
        if problem:
            self.fail(where, problem)
            return None
        return Default(value=value)

    def relations(self, tables: tuple[Table, ...], enums: tuple[EnumType, ...]) -> None:
        by_name = {t.name: t for t in tables}
        for dup in _duplicates([t.name for t in tables]):
            self.fail("tables", f"table {dup!r} appears more than once")
        for dup in _duplicates([e.name for e in enums]):
            self.fail("enums", f"enum type {dup!r} appears more than once")
        for enum in enums:
            if enum.name in by_name:
                self.fail("enums", f"enum type {enum.name!r} has the name of a table (tables are types too)")
        relations = [t.name for t in tables]
        relations += [i.name for t in tables for i in t.indexes]
        relations += [u.name for t in tables for u in t.unique if u.name]
        for dup in _duplicates(relations):
            self.fail("tables", f"{dup!r} names more than one table, index or unique constraint")
        for table in tables:
            constraint_names = [n for n in (*(c.name for c in table.foreign_keys), *(c.name for c in table.checks),
                                            *(c.name for c in table.unique)) if n]
            for dup in _duplicates(constraint_names):
                self.fail(f"table {table.name!r}", f"constraint name {dup!r} is used more than once")
            for i, fk in enumerate(table.foreign_keys):
                where = f"table {table.name!r} foreign_keys[{i}]"
                target = by_name.get(fk.references_table)
                if target is None:
                    self.fail(where, f"references table {fk.references_table!r}, which is not in the design")
                    continue
                if len(fk.columns) != len(fk.references_columns):
                    self.fail(where, f"{len(fk.columns)} column(s) reference {len(fk.references_columns)} column(s)")
                    continue
                target_columns = {c.name: c for c in target.columns}
                for column in fk.references_columns:
                    if column not in target_columns:
                        self.fail(where, f"column {column!r} is not a column of table {target.name!r}")
                keys = [set(target.primary_key)] + [set(u.columns) for u in target.unique]
                keys += [{e.column or "" for e in x.elements} for x in target.indexes
                         if x.unique and x.where is None and all(e.column for e in x.elements)]
                if set(fk.references_columns) not in keys:
                    self.fail(where, f"the referenced columns {list(fk.references_columns)} of table "
                              f"{target.name!r} are not its primary key or a unique key")
                if fk.on_delete == "set null" or fk.on_update == "set null":
                    own = {c.name: c for c in table.columns}
                    for column in fk.columns:
                        if column in own and not own[column].nullable:
                            self.fail(where, f"SET NULL on a NOT NULL column {column!r}")


def _duplicates(values: list[str] | tuple[str, ...]) -> list[str]:
    seen: set[str] = set()
    dups: list[str] = []
    for value in values:
        if value in seen and value not in dups:
            dups.append(value)
        seen.add(value)
    return dups


def _literal_problem(
    value: str | int | float | bool, ctype: ColumnType, enums: dict[str, tuple[str, ...]]
) -> str | None:
    """Why ``value`` cannot be the default of a ``ctype`` column (None when it can)."""
    kind = ctype.name
    if kind == "boolean":
        return None if isinstance(value, bool) else "a boolean column's default is true or false"
    if isinstance(value, bool):
        return f"true/false is not a default for a {kind} column"
    if kind in INTEGER_TYPES:
        limit = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}[kind]
        if not isinstance(value, int) or not -limit <= value < limit:
            return f"the default of a {kind} column must be an integer in its range"
        return None
    if kind in ("real", "double", "numeric"):
        if isinstance(value, str) and kind == "numeric":
            try:
                number = decimal.Decimal(value)
            except decimal.InvalidOperation:
                return f"{value[:40]!r} is not a number"
            return None if number.is_finite() else "the default must be a finite number"
        if isinstance(value, (int, float)) and math.isfinite(value):
            return None
        return f"the default of a {kind} column must be a finite number"
    if not isinstance(value, str):
        return f"the default of a {kind} column must be a string"
    if "\x00" in value:
        return "a default must not contain a NUL character"
    return _string_literal_problem(value, ctype, enums)


def _string_literal_problem(value: str, ctype: ColumnType, enums: dict[str, tuple[str, ...]]) -> str | None:
    kind = ctype.name
    try:
        if kind == "varchar" and ctype.length is not None and len(value) > ctype.length:
            return f"the default is longer than varchar({ctype.length})"
        if kind == "enum" and value not in enums.get(ctype.enum or "", ()):
            return f"{value!r} is not a label of enum type {ctype.enum!r}"
        if kind == "uuid":
            uuid.UUID(value)
        elif kind == "date":
            datetime.date.fromisoformat(value)
        elif kind in ("timestamp", "timestamptz"):
            datetime.datetime.fromisoformat(value)
        elif kind == "time":
            datetime.time.fromisoformat(value)
        elif kind == "inet":
            ipaddress.ip_interface(value)
        elif kind in ("json", "jsonb"):
            json.loads(value)
        elif kind == "bytea" and not value.startswith("\\x"):
            return "a bytea default is written in hex: \\x0a1b..."
    except ValueError:
        return f"{value[:40]!r} is not a valid {kind} value"
    return None


def default_sql(default: Default) -> str | None:
    """The SQL of a default that is not a plain string (functions, numbers, booleans), else None."""
    if default.function is not None:
        return DEFAULT_FUNCTIONS[default.function][0]
    value = default.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return None
