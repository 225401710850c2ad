"""Canonical spellings of SQL types and expressions, shared by both change front ends.

Alembic renders ``sa.String(100)`` as ``VARCHAR(100)``, a hand-written migration says
``character varying(100)``, pglast reports ``pg_catalog.varchar``: these must compare equal.  Both
front ends pass every type and expression through this module, which uses PostgreSQL's own grammar
(pglast) so that the canonical text is what the server would understand.
"""

from __future__ import annotations

import functools

from pglast import ast, parse_sql
from pglast.stream import RawStream

# Internal (pg_catalog) type names and SQL-standard aliases -> the spelling we store.
_TYPE_ALIASES: dict[str, str] = {
    "int2": "smallint",
    "smallint": "smallint",
    "int4": "integer",
    "int": "integer",
    "integer": "integer",
    "int8": "bigint",
    "bigint": "bigint",
    "float4": "real",
    "real": "real",
    "float8": "double precision",
    "double precision": "double precision",
    "bool": "boolean",
    "boolean": "boolean",
    "varchar": "varchar",
    "character varying": "varchar",
    "bpchar": "char",
    "char": "char",
    "character": "char",
    "decimal": "numeric",
    "numeric": "numeric",
    "timestamptz": "timestamptz",
    "timestamp with time zone": "timestamptz",
    "timestamp": "timestamp",
    "timestamp without time zone": "timestamp",
    "timetz": "timetz",
    "time with time zone": "timetz",
    "time": "time",
    "time without time zone": "time",
    "serial4": "serial",
    "serial8": "bigserial",
    "serial2": "smallserial",
}


class NormalizeError(ValueError):
    """The text is not a valid PostgreSQL type or expression."""


def type_name_to_text(type_name: ast.TypeName) -> str:
    """Canonical text of a pglast ``TypeName`` node."""
    names = [str(n.sval).lower() for n in type_name.names or ()]
    if len(names) > 1 and names[0] == "pg_catalog":
        names = names[1:]
    base = ".".join(names)
    base = _TYPE_ALIASES.get(base, base)
    mods = ""
    if type_name.typmods:
        parts = [RawStream()(m) for m in type_name.typmods]
        if base == "interval":
            # interval typmods are an internal bitmask; keep the original spelling instead.
            return RawStream()(type_name).lower()
        mods = "(" + ",".join(p.strip() for p in parts) + ")"
    elif base == "char":
        mods = "(1)"  # "char" without a length means char(1)
    arrays = "[]" * len(type_name.arrayBounds or ())
    return f"{base}{mods}{arrays}"


@functools.lru_cache(maxsize=4096)
def normalize_type(text: str) -> str:
    """``"VARCHAR(100)"`` -> ``"varchar(100)"``, ``"TIMESTAMP WITH TIME ZONE"`` -> ``"timestamptz"``."""
    try:
        stmt = parse_sql(f"SELECT NULL::{text}")[0].stmt
    except Exception as exc:  # pglast raises ParseError; anything else is also "not a type"
        raise NormalizeError(f"not a PostgreSQL type: {text!r}") from exc
    target = stmt.targetList[0].val  # type: ignore[union-attr]
    if not isinstance(target, ast.TypeCast) or target.typeName is None:
        raise NormalizeError(f"not a PostgreSQL type: {text!r}")
    return type_name_to_text(target.typeName)


def expr_to_text(node: ast.Node) -> str:
    """Canonical text of a pglast expression node."""
    return str(RawStream()(node))


@functools.lru_cache(maxsize=4096)
def normalize_expr(text: str) -> str:
    """Canonical SQL text of an expression: ``"NOW( )"`` -> ``"now()"``."""
    try:
        stmt = parse_sql(f"SELECT {text}")[0].stmt
    except Exception as exc:
        raise NormalizeError(f"not a PostgreSQL expression: {text!r}") from exc
    targets = stmt.targetList  # type: ignore[union-attr]
    if len(targets) != 1 or targets[0].name:
        raise NormalizeError(f"not a single PostgreSQL expression: {text!r}")
    return expr_to_text(targets[0].val)


def normalize_ident(text: str) -> str:
    """Fold an identifier as PostgreSQL does: unquoted -> lower case, quoted -> as written."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('""', '"')
    return text.lower()
