"""``design --from models.py``: the user's own models, as the schema description ``design`` refines.

The file is the user's (trusted, as any module of their project): it is imported to get its
``MetaData``, and every table is converted to the :mod:`.design_doc` document.  What the
description's vocabulary cannot express (a column type, a default, an index form) is refused with a
message naming the table and column, so nothing of the user's schema is silently dropped.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from .design_doc import DEFAULT_FUNCTIONS, index_name

_counter = itertools.count(1)


class DescribeError(Exception):
    """The models cannot be loaded or described; the message names the file, table and column."""


def load_models_metadata(path: Path) -> sa.MetaData:
    """Import the user's models file and return the one ``MetaData`` its tables are defined on."""
    if not path.is_file():
        raise DescribeError(f"{path}: no such file")
    name = f"helios_design_user_models_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise DescribeError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise DescribeError(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.modules.pop(name, None)
    found: dict[int, sa.MetaData] = {}
    for value in vars(module).values():
        md = getattr(value, "metadata", None) if isinstance(value, type) else value
        if isinstance(md, sa.MetaData) and md.tables:
            found[id(md)] = md
    if len(found) != 1:
        raise DescribeError(f"{path}: expected tables on exactly one MetaData, found {len(found)}")
    return next(iter(found.values()))


def describe_metadata(metadata: sa.MetaData) -> dict[str, Any]:
    """The schema description document for ``metadata`` (raises :class:`DescribeError`)."""
    enums: dict[str, list[str]] = {}
    tables = [_table(t, enums) for t in metadata.sorted_tables]
    return {
        "enums": [{"name": n, "labels": labels} for n, labels in enums.items()],
        "tables": tables,
        "notes": [],
    }


def _sql(clause: Any) -> str:
    dialect: Any = postgresql.dialect(paramstyle="named")  # type: ignore[no-untyped-call]
    return str(clause.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _table(table: sa.Table, enums: dict[str, list[str]]) -> dict[str, Any]:
    if table.schema:
        raise DescribeError(f"table {table.schema}.{table.name}: tables outside the default schema are not supported")
    where = f"table {table.name!r}"
    columns = [_column(c, f"{where} column {c.name!r}", enums) for c in table.columns]
    foreign_keys, unique, checks = [], [], []
    for constraint in sorted(table.constraints, key=lambda c: str(c.name or "")):
        name = constraint.name if isinstance(constraint.name, str) else None
        if isinstance(constraint, sa.ForeignKeyConstraint):
            foreign_keys.append({
                "name": name,
                "columns": [c.name for c in constraint.columns],
                "references_table": constraint.elements[0].column.table.name,
                "references_columns": [e.column.name for e in constraint.elements],
                "on_delete": (constraint.ondelete or "no action").lower(),
                "on_update": (constraint.onupdate or "no action").lower(),
            })
        elif isinstance(constraint, sa.UniqueConstraint):
            unique.append({"name": name, "columns": [c.name for c in constraint.columns]})
        elif isinstance(constraint, sa.CheckConstraint):
            checks.append({"name": name, "expression": _sql(constraint.sqltext)})
    indexes = [_index(i, where) for i in sorted(table.indexes, key=lambda i: str(i.name or ""))]
    return {
        "name": table.name,
        "comment": table.comment,
        "columns": columns,
        "primary_key": [c.name for c in table.primary_key.columns],
        "foreign_keys": foreign_keys,
        "unique": unique,
        "checks": checks,
        "indexes": indexes,
    }


def _index(index: sa.Index, where: str) -> dict[str, Any]:
    elements = []
    for expr in index.expressions:
        if isinstance(expr, sa.Column):
            elements.append({"column": expr.name, "expression": None})
        else:
            elements.append({"column": None, "expression": _sql(expr)})
    options = index.dialect_options["postgresql"]
    method = str(options.get("using") or "btree").lower()
    predicate = options.get("where")
    name: str | None = str(index.name) if isinstance(index.name, str) else None
    if name is None:
        name = index_name(index.table.name if index.table is not None else "", [
            e["column"] or "expr" for e in elements
        ])
    return {
        "name": name,
        "unique": bool(index.unique),
        "method": method,
        "elements": elements,
        "where": None if predicate is None else _sql(predicate),
    }


def _column(column: sa.Column[Any], where: str, enums: dict[str, list[str]]) -> dict[str, Any]:
    ctype = _type(column.type, where, enums)
    identity = None
    if isinstance(column.identity, sa.Identity):
        identity = "always" if column.identity.always else "by_default"
    elif column.autoincrement is True or (
        column.autoincrement == "auto" and column.primary_key
        and len(column.table.primary_key.columns) == 1 and ctype["name"] in ("bigint", "integer", "smallint")
        and column.server_default is None and not column.foreign_keys
    ):
        # SQLAlchemy would create a serial column; the description says identity (its successor).
        identity = "by_default"
    return {
        "name": column.name,
        "type": ctype,
        "nullable": bool(column.nullable) and not column.primary_key,
        "identity": identity,
        "default": _default(column, ctype, where),
        "comment": column.comment,
    }


_FUNCTIONS = {sql.lower(): key for key, (sql, _) in DEFAULT_FUNCTIONS.items()}
_FUNCTIONS.update({key.lower(): key for key in DEFAULT_FUNCTIONS})


def _default(column: sa.Column[Any], ctype: dict[str, Any], where: str) -> dict[str, Any] | None:
    default = column.server_default
    if default is None or isinstance(default, sa.Identity):
        return None
    if not isinstance(default, sa.DefaultClause):
        raise DescribeError(f"{where}: server default {default!r} cannot be described")
    arg = default.arg
    if isinstance(arg, str):
        return {"function": None, "value": _typed_literal(arg, ctype)}
    text = _sql(arg).strip()
    lowered = text.lower()
    if lowered in _FUNCTIONS:
        return {"function": _FUNCTIONS[lowered], "value": None}
    if lowered in ("true", "false"):
        return {"function": None, "value": lowered == "true"}
    try:
        return {"function": None, "value": int(text)}
    except ValueError:
        pass
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return {"function": None, "value": _typed_literal(text[1:-1].replace("''", "'"), ctype)}
    raise DescribeError(
        f"{where}: the server default {text!r} is not a literal or one of "
        f"{', '.join(DEFAULT_FUNCTIONS)}, which is all a schema description can hold"
    )


def _typed_literal(value: str, ctype: dict[str, Any]) -> str | int | float | bool:
    if ctype["name"] in ("bigint", "integer", "smallint"):
        try:
            return int(value)
        except ValueError:
            return value
    if ctype["name"] in ("real", "double"):
        try:
            return float(value)
        except ValueError:
            return value
    if ctype["name"] == "boolean" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _type(sql_type: Any, where: str, enums: dict[str, list[str]]) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "", "length": None, "precision": None, "scale": None, "enum": None, "array": False}
    if isinstance(sql_type, sa.ARRAY):
        inner = _type(sql_type.item_type, where, enums)
        if inner["array"] or inner["name"] == "enum":
            raise DescribeError(f"{where}: arrays of {inner['name']} are not supported")
        return {**inner, "array": True}
    if isinstance(sql_type, sa.Enum):
        if not sql_type.name:
            raise DescribeError(f"{where}: an enum type needs a name")
        enums.setdefault(sql_type.name, list(sql_type.enums))
        return {**base, "name": "enum", "enum": sql_type.name}
    simple: list[tuple[type[Any], str]] = [
        (sa.BigInteger, "bigint"), (sa.SmallInteger, "smallint"), (sa.Integer, "integer"),
        (sa.Boolean, "boolean"), (postgresql.JSONB, "jsonb"), (sa.JSON, "json"),
        (postgresql.INTERVAL, "interval"), (sa.Interval, "interval"), (postgresql.INET, "inet"),
        (sa.Uuid, "uuid"), (sa.LargeBinary, "bytea"), (sa.Date, "date"), (sa.Time, "time"),
        (sa.Double, "double"), (sa.REAL, "real"),
    ]
    if isinstance(sql_type, sa.DateTime):
        return {**base, "name": "timestamptz" if sql_type.timezone else "timestamp"}
    for kind, name in simple:
        if isinstance(sql_type, kind):
            return {**base, "name": name}
    if isinstance(sql_type, sa.Float):
        return {**base, "name": "double"}
    if isinstance(sql_type, sa.Numeric):
        return {**base, "name": "numeric", "precision": sql_type.precision, "scale": sql_type.scale}
    if isinstance(sql_type, sa.Text) or (isinstance(sql_type, sa.String) and sql_type.length is None):
        return {**base, "name": "text"}
    if isinstance(sql_type, sa.String):
        return {**base, "name": "varchar", "length": sql_type.length}
    raise DescribeError(
        f"{where}: type {sql_type!r} is not in the schema description's vocabulary "
        "(bigint, integer, smallint, text, varchar, boolean, numeric, real, double, date, timestamp, "
        "timestamptz, time, interval, uuid, jsonb, json, bytea, inet, enum, arrays)"
    )
