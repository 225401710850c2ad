"""What SQL a model may propose, judged on PostgreSQL's own parse tree.

A proposed statement is accepted only when all of these hold:

* it is exactly one statement, and its kind is one the planner itself emits: ``ALTER TABLE`` with
  an allow-listed subcommand, ``CREATE INDEX``, ``DROP`` of an index, table, view or type (never
  ``CASCADE``), ``ALTER ... RENAME``, ``UPDATE``/``INSERT``/``DELETE``, ``SET`` of a timeout-like
  setting, and ``CREATE TABLE``/``CREATE VIEW``/``CREATE TYPE ... AS ENUM``/``ALTER TYPE`` of objects
  the user's own SQL names;
* every relation it reads or writes is one the user's SQL names (a model cannot reach into other
  tables, let alone the catalogs);
* every function it calls is on an allow-list of ordinary value functions (no ``pg_read_file``,
  ``lo_*``, ``dblink*``, ``pg_terminate_backend``, ``set_config``, ...);
* every name fits in 63 bytes (PostgreSQL would truncate it silently).

What runs is the statement re-deparsed from the tree that was judged, never the model's text, so
what was checked is exactly what executes.  Everything else -- ``COPY``, ``DO``, ``CREATE
FUNCTION`` in any language, ``CREATE TRIGGER``, ``ALTER SYSTEM``, ``SET ROLE``, ``GRANT``,
``LOAD``, ``CALL``, ``SELECT`` -- is rejected with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pglast import ast, enums, parse_sql
from pglast.parser import ParseError, scan
from pglast.stream import RawStream

from ..sqltext import NAMEDATALEN

_ALTER_TABLE_SUBCOMMANDS = frozenset(
    {
        "AT_AddColumn",
        "AT_ColumnDefault",
        "AT_DropNotNull",
        "AT_SetNotNull",
        "AT_AddConstraint",
        "AT_ValidateConstraint",
        "AT_DropConstraint",
        "AT_AlterColumnType",
        "AT_DropColumn",
        "AT_AddIndexConstraint",
        "AT_SetStatistics",
        "AT_AttachPartition",
        "AT_DetachPartition",
        "AT_DetachPartitionFinalize",
    }
)
"""``ALTER TABLE`` subcommands a plan may use (no trigger, owner, RLS, storage or replica changes)."""

_DROPPABLE = {
    enums.ObjectType.OBJECT_INDEX: "index",
    enums.ObjectType.OBJECT_TABLE: "table",
    enums.ObjectType.OBJECT_VIEW: "view",
    enums.ObjectType.OBJECT_TYPE: "type",
}
_RENAMABLE = frozenset(
    {
        enums.ObjectType.OBJECT_COLUMN,
        enums.ObjectType.OBJECT_TABLE,
        enums.ObjectType.OBJECT_INDEX,
        enums.ObjectType.OBJECT_TABCONSTRAINT,
    }
)
SETTINGS = frozenset(
    {
        "lock_timeout",
        "statement_timeout",
        "idle_in_transaction_session_timeout",
        "maintenance_work_mem",
        "max_parallel_maintenance_workers",
        "work_mem",
    }
)
"""Session settings a plan may set."""

FUNCTIONS = frozenset(
    {
        # text
        "lower", "upper", "initcap", "btrim", "ltrim", "rtrim", "trim", "length", "char_length",
        "character_length", "octet_length", "substring", "substr", "left", "right", "replace",
        "concat", "concat_ws", "format", "lpad", "rpad", "reverse", "translate", "split_part",
        "strpos", "position", "regexp_replace", "regexp_match", "starts_with", "md5", "sha256",
        "encode", "decode", "to_char", "quote_ident", "quote_literal",
        # numbers
        "abs", "round", "floor", "ceil", "ceiling", "trunc", "mod", "sign", "greatest", "least",
        "random", "width_bucket",
        # time
        "now", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "date_trunc",
        "date_part", "extract", "to_date", "to_timestamp", "make_date", "make_interval",
        "make_timestamp", "make_timestamptz", "age", "timezone", "justify_interval",
        # identifiers and sequences
        "gen_random_uuid", "uuid_generate_v4", "nextval",
        # json and arrays
        "to_json", "to_jsonb", "jsonb_build_object", "jsonb_build_array", "json_build_object",
        "jsonb_set", "jsonb_extract_path", "jsonb_extract_path_text", "jsonb_typeof",
        "jsonb_strip_nulls", "array_length", "array_to_string", "string_to_array", "cardinality",
        "array_append", "array_remove", "unnest",
        # aggregates, in a subquery over a table the SQL names
        "count", "min", "max", "sum", "avg", "bool_and", "bool_or", "string_agg", "array_agg",
    }
)
"""Functions a proposed expression may call: value functions that touch nothing but their
arguments (plus the clock, random numbers and sequences)."""


class GuardError(ValueError):
    """A proposed statement is not acceptable; the message says why."""


@dataclass(frozen=True)
class Scope:
    """The objects the user's SQL names: all a proposal may act on."""

    relations: frozenset[str]
    """Tables and views, as ``name`` and ``schema.name`` (lower-case as PostgreSQL folds them)."""
    types: frozenset[str]

    def has_relation(self, schema: str | None, name: str) -> bool:
        return (f"{schema}.{name}" if schema else name) in self.relations or (
            schema in (None, "public") and name in self.relations
        )


def scope_of(sql: str) -> Scope:
    """The relations and types that ``sql`` (the user's own, trusted) names."""
    relations: set[str] = set()
    types: set[str] = set()
    for raw in parse_sql(sql):
        for node in walk(raw.stmt):
            if isinstance(node, ast.RangeVar) and node.relname:
                relations.add(node.relname)
                if node.schemaname:
                    relations.add(f"{node.schemaname}.{node.relname}")
            elif isinstance(node, ast.TypeName) and node.names:
                types.add(".".join(_strings(node.names)))
            elif isinstance(node, ast.CreateEnumStmt | ast.AlterEnumStmt) and node.typeName:
                types.add(".".join(_strings(node.typeName)))
    return Scope(frozenset(relations), frozenset(types))


@dataclass(frozen=True)
class Judged:
    """A statement that passed: its tree and the SQL re-deparsed from it (what will run)."""

    node: Any
    sql: str


def judge(text: str, scope: Scope) -> Judged:
    """Parse one proposed statement and judge it; raise :class:`GuardError` saying why not."""
    try:
        raws = parse_sql(text)
    except ParseError as exc:
        raise GuardError(f"SQL does not parse: {exc}") from None
    if len(raws) != 1:
        raise GuardError(f"give exactly one statement per item, not {len(raws)}")
    node = raws[0].stmt
    _judge_statement(node, scope)
    for sub in walk(node):
        _judge_node(sub, scope)
    _judge_names(text)
    return Judged(node, deparse(node))


def _judge_statement(node: Any, scope: Scope) -> None:
    kind = type(node).__name__
    if isinstance(node, ast.AlterTableStmt):
        if node.objtype != enums.ObjectType.OBJECT_TABLE:
            raise GuardError(f"ALTER {_object(node.objtype)} is not something a plan may do")
        for cmd in node.cmds or ():
            name = cmd.subtype.name if hasattr(cmd.subtype, "name") else str(cmd.subtype)
            if name not in _ALTER_TABLE_SUBCOMMANDS:
                raise GuardError(
                    f"ALTER TABLE subcommand {name.removeprefix('AT_')} is not something a plan may do"
                )
            if getattr(cmd, "behavior", None) == enums.DropBehavior.DROP_CASCADE:
                raise GuardError("CASCADE would drop objects the SQL does not name")
    elif isinstance(node, ast.DropStmt):
        if node.removeType not in _DROPPABLE:
            raise GuardError(f"DROP {_object(node.removeType)} is not something a plan may do")
        if node.behavior == enums.DropBehavior.DROP_CASCADE:
            raise GuardError("DROP ... CASCADE would drop objects the SQL does not name")
    elif isinstance(node, ast.RenameStmt):
        if node.renameType not in _RENAMABLE:
            raise GuardError(f"RENAME of a {_object(node.renameType)} is not something a plan may do")
    elif isinstance(node, ast.VariableSetStmt):
        if (node.name or "").lower() not in SETTINGS:
            allowed = ", ".join(sorted(SETTINGS))
            raise GuardError(f"SET {node.name} is not allowed (a plan may set only {allowed})")
    elif isinstance(node, ast.CreateStmt | ast.ViewStmt):
        rel = node.relation if isinstance(node, ast.CreateStmt) else node.view
        if rel is None or not scope.has_relation(rel.schemaname, str(rel.relname)):
            raise GuardError(f"creates {rel and rel.relname}, which the SQL does not create")
    elif isinstance(node, ast.CreateEnumStmt | ast.AlterEnumStmt):
        name = ".".join(_strings(node.typeName))
        if name not in scope.types:
            raise GuardError(f"changes type {name}, which the SQL does not name")
    elif not isinstance(node, ast.IndexStmt | ast.UpdateStmt | ast.InsertStmt | ast.DeleteStmt):
        raise GuardError(f"{_statement_name(kind)} is not a statement a plan may contain")


def _judge_node(node: Any, scope: Scope) -> None:
    if isinstance(node, ast.RangeVar):
        if node.relname and not scope.has_relation(node.schemaname, node.relname):
            shown = f"{node.schemaname}.{node.relname}" if node.schemaname else node.relname
            raise GuardError(f"acts on {shown}, which the SQL does not name")
    elif isinstance(node, ast.FuncCall):
        parts = _strings(node.funcname)
        name = parts[-1].lower() if parts else ""
        schema = parts[-2].lower() if len(parts) > 1 else None
        if name not in FUNCTIONS or schema not in (None, "pg_catalog", "public"):
            raise GuardError(f"calls {'.'.join(parts)}(), which is not on the list of functions a plan may use")
    elif isinstance(node, ast.RangeFunction | ast.RangeTableFunc):
        raise GuardError("a function in FROM is not allowed")
    elif isinstance(node, ast.TypeName):
        type_name = ".".join(_strings(node.names)).lower()
        if type_name.removeprefix("pg_catalog.").startswith("reg"):
            raise GuardError(f"casts to {type_name} are not allowed")


def _judge_names(text: str) -> None:
    """PostgreSQL truncates a name over 63 bytes with only a NOTICE: refuse such names instead."""
    for token in scan(text):
        if token.name != "IDENT":
            continue
        raw = text[token.start : token.end + 1]
        name = raw[1:-1].replace('""', '"') if raw.startswith('"') else raw
        if len(name.encode()) > NAMEDATALEN:
            shown = name[:40]
            raise GuardError(f"name {shown!r}... is longer than 63 bytes (PostgreSQL would truncate it)")


def walk(node: Any) -> Iterator[Any]:
    """Every node under ``node``, depth first, skipping constant values (they are data)."""
    if isinstance(node, list | tuple):
        for item in node:
            yield from walk(item)
        return
    if not isinstance(node, ast.Node):
        return
    yield node
    if isinstance(node, ast.A_Const):
        return
    for attr in getattr(type(node), "__slots__", ()):
        yield from walk(getattr(node, attr, None))


def deparse(node: Any) -> str:
    """SQL text of a judged tree (or a part of one), as PostgreSQL's grammar prints it."""
    return str(RawStream()(node))


def _strings(nodes: Any) -> list[str]:
    return [str(n.sval) for n in nodes or () if isinstance(n, ast.String)]


def _object(value: Any) -> str:
    name = getattr(value, "name", str(value))
    return str(name).removeprefix("OBJECT_").replace("_", " ")


def _statement_name(kind: str) -> str:
    known = {
        "CopyStmt": "COPY",
        "DoStmt": "DO",
        "CreateFunctionStmt": "CREATE FUNCTION",
        "CreateTrigStmt": "CREATE TRIGGER",
        "AlterSystemStmt": "ALTER SYSTEM",
        "GrantStmt": "GRANT/REVOKE",
        "GrantRoleStmt": "GRANT/REVOKE of a role",
        "LoadStmt": "LOAD",
        "CallStmt": "CALL",
        "SelectStmt": "SELECT",
        "CreateExtensionStmt": "CREATE EXTENSION",
        "CreateRoleStmt": "CREATE ROLE",
        "AlterRoleStmt": "ALTER ROLE",
        "TransactionStmt": "transaction control",
        "CreateTableAsStmt": "CREATE TABLE AS",
        "VacuumStmt": "VACUUM/ANALYZE",
        "TruncateStmt": "TRUNCATE",
        "LockStmt": "LOCK",
    }
    return known.get(kind, kind.removesuffix("Stmt"))
