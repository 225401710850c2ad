"""SQL text of the planner: names as PostgreSQL defaults them, columns, constraint bodies,
index definitions, the ``done_when`` probes, and :func:`change_sql`, the one renderer of a change
kept as written (it raises on what it cannot render: a plan never holds an empty step)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .. import changes as c
from ..changes import Change, ColumnDef, Constraint, ConstraintKind, QualifiedName
from ..sql_parse import SqlSyntaxError, changes_from_sql
from ..sqltext import (
    NAMEDATALEN,
    default_object_name,
    index_element_name,
    quote_ident,
    quote_literal,
    quote_qualified,
)


def sql_name(name: QualifiedName) -> str:
    """A schema-qualified name as SQL text (see :mod:`helios_migrate.sqltext`)."""
    return quote_qualified(name.schema, name.name)


def truncate(name: str) -> str:
    return name[:NAMEDATALEN]


def index_name(table: QualifiedName, columns: Sequence[str]) -> str:
    """PostgreSQL's name for an index created without one, unique or not: ``<table>_<cols>_idx``."""
    cols = [
        re.sub(r"\W+", "_", index_element_name(col) or col.split()[0]).strip("_") or "expr"
        for col in columns
    ]
    return default_object_name(table.name, cols, "idx")


def constraint_name(table: QualifiedName, constraint: Constraint) -> str:
    """The constraint's name, or PostgreSQL's default for it."""
    if constraint.name:
        return constraint.name
    columns = () if constraint.kind is ConstraintKind.PRIMARY_KEY else tuple(constraint.columns)
    return default_object_name(table.name, columns, constraint.kind.name_label)


def column_sql(col: ColumnDef, *, nullable: bool | None = None, default: bool = True) -> str:
    parts = [quote_ident(col.name), col.type]
    if col.collation:
        parts.append(f"COLLATE {quote_ident(col.collation)}")
    if default and col.default is not None:
        parts.append(f"DEFAULT {col.default}")
    if col.identity is not None:
        parts.append(f"GENERATED {col.identity.value.upper()} AS IDENTITY")
    if col.generated is not None:
        kind = f" {col.generated_kind.value.upper()}" if col.generated_kind else ""
        parts.append(f"GENERATED ALWAYS AS ({col.generated}){kind}")
    if not (col.nullable if nullable is None else nullable):
        parts.append("NOT NULL")
    return " ".join(parts)


def constraint_body(k: Constraint) -> str:
    cols = ", ".join(quote_ident(x) for x in k.columns)
    if k.kind is ConstraintKind.CHECK:
        body = f"CHECK ({k.expression})"
    elif k.kind is ConstraintKind.FOREIGN_KEY:
        assert k.references is not None
        ref_cols = ", ".join(quote_ident(x) for x in k.references.columns)
        body = f"FOREIGN KEY ({cols}) REFERENCES {sql_name(k.references.table)}"
        body += f" ({ref_cols})" if ref_cols else ""
        if k.on_delete:
            body += f" ON DELETE {k.on_delete}"
        if k.on_update:
            body += f" ON UPDATE {k.on_update}"
    elif k.kind in (ConstraintKind.UNIQUE, ConstraintKind.PRIMARY_KEY):
        kind = "UNIQUE" if k.kind is ConstraintKind.UNIQUE else "PRIMARY KEY"
        body = f"{kind} USING INDEX {quote_ident(k.using_index)}" if k.using_index else f"{kind} ({cols})"
    elif k.kind is ConstraintKind.NOT_NULL:
        body = f"NOT NULL {cols}"
    else:
        body = f"EXCLUDE ({k.expression})"
    if k.deferrable:
        body += " DEFERRABLE"
    return body


def create_index_sql(ix: c.CreateIndex, name: str, *, concurrently: bool, only: bool = False) -> str:
    unique = "UNIQUE " if ix.unique else ""
    conc = "CONCURRENTLY " if concurrently else ""
    method = f" USING {ix.method}" if ix.method != "btree" else ""
    # Elements are SQL text already: a name as quote_ident() writes it, or an expression.
    cols = ", ".join(ix.columns)
    on = "ONLY " if only else ""
    # An index lives in its table's schema: its name is never qualified here.
    sql = f"CREATE {unique}INDEX {conc}IF NOT EXISTS {quote_ident(name)} ON {on}{sql_name(ix.on)}{method} ({cols})"
    if ix.include:
        sql += " INCLUDE (" + ", ".join(quote_ident(x) for x in ix.include) + ")"
    if ix.where:
        sql += f" WHERE {ix.where}"
    return sql


def index_qname(table: QualifiedName, name: str) -> QualifiedName:
    return QualifiedName(name, table.schema)


def constraint_exists(table: QualifiedName, name: str) -> str:
    return (
        "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = "
        f"to_regclass({quote_literal(sql_name(table))}) AND conname = {quote_literal(name)})"
    )


def column_exists(table: QualifiedName, column: str) -> str:
    return (
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = "
        f"to_regclass({quote_literal(sql_name(table))}) AND attname = {quote_literal(column)} AND NOT attisdropped)"
    )


def changes_of(sql: Iterable[str]) -> tuple[Change, ...]:
    """The changes the planner's own statements make, as the rules will judge them."""
    try:
        return tuple(ch for s in sql for ch in changes_from_sql(s))
    except SqlSyntaxError:
        return ()


# --- a change as written --------------------------------------------------------------------------


class UnrenderableChange(ValueError):
    """A change the change model does not hold enough of to write it back as SQL."""


def _table_column(col: ColumnDef) -> str:
    """A column of ``CREATE TABLE``/``ADD COLUMN`` with its inline constraints."""
    sql = column_sql(col)
    if col.primary_key:
        sql += " PRIMARY KEY"
    if col.unique:
        sql += " UNIQUE"
    if col.check is not None:
        sql += f" CHECK ({col.check})"
    if col.references is not None:
        sql += f" REFERENCES {sql_name(col.references.table)}"
        if col.references.columns:
            sql += " (" + ", ".join(quote_ident(x) for x in col.references.columns) + ")"
    return sql


def _written_constraint(k: Constraint) -> str:
    named = f"CONSTRAINT {quote_ident(k.name)} " if k.name else ""
    tail = (" NOT VALID" if k.not_valid else "") + ("" if k.enforced else " NOT ENFORCED")
    return f"{named}{constraint_body(k)}{tail}"


def _create_table(ch: c.CreateTable) -> str:
    head = f"CREATE TABLE {'IF NOT EXISTS ' if ch.if_not_exists else ''}{sql_name(ch.on)}"
    elements = [*(_table_column(col) for col in ch.columns), *(_written_constraint(k) for k in ch.constraints)]
    if ch.partition_of is not None:
        body = f" PARTITION OF {sql_name(ch.partition_of)}"
        body += f" ({', '.join(elements)})" if elements else ""
        body += f" {ch.partition_bound}" if ch.partition_bound else " DEFAULT"
    else:
        body = f" ({', '.join(elements)})"
    if ch.partition_by:
        body += f" PARTITION BY {ch.partition_by}"
    return head + body


def _setting(ch: c.SetSetting) -> str:
    scope = "LOCAL " if ch.local else ""
    if ch.value is None:
        return "RESET ALL" if ch.name == "all" else f"SET {scope}{ch.name} TO DEFAULT"
    values = ", ".join(quote_literal(v.strip()) for v in ch.value.split(","))
    return f"SET {scope}{ch.name} = {values}"


def _raw(ch: c.RawStatement) -> str:
    # A statement that is only a comment describes an operation it does not carry out.
    code = "\n".join(line for line in ch.sql.splitlines() if not line.strip().startswith("--"))
    if not code.strip():
        raise UnrenderableChange(
            f"no SQL is known for {ch.sql.strip().removeprefix('--').strip() or 'a raw statement'}: "
            "write it with op.execute() and its SQL"
        )
    return ch.sql


def _modify_rows(ch: c.ModifyRows) -> str:
    raise UnrenderableChange(
        f"a data migration ({ch.operation.value.upper()} on {ch.on}) keeps only its table and columns "
        "in the change model: plan it from its SQL (a raw statement), not from the change"
    )


def _only_if(flag: bool, text: str) -> str:
    return text if flag else ""


def _alter(table: QualifiedName, action: str) -> str:
    return f"ALTER TABLE {sql_name(table)} {action}"


_RENDER: dict[type[Change], Callable[[Any], str]] = {
    c.CreateTable: _create_table,
    c.DropTable: lambda ch: f"DROP TABLE {_only_if(ch.if_exists, 'IF EXISTS ')}{sql_name(ch.on)}"
    + _only_if(ch.cascade, " CASCADE"),
    c.RenameTable: lambda ch: _alter(ch.on, f"RENAME TO {quote_ident(ch.new_name)}"),
    c.TruncateTable: lambda ch: f"TRUNCATE TABLE {sql_name(ch.on)}"
    + _only_if(ch.restart_identity, " RESTART IDENTITY") + _only_if(ch.cascade, " CASCADE"),
    c.VacuumFull: lambda ch: f"VACUUM FULL {sql_name(ch.on)}",
    c.Cluster: lambda ch: f"CLUSTER {sql_name(ch.on)}" + (f" USING {quote_ident(ch.index)}" if ch.index else ""),
    c.AddColumn: lambda ch: _alter(
        ch.on, f"ADD COLUMN {_only_if(ch.if_not_exists, 'IF NOT EXISTS ')}{_table_column(ch.column)}"
    ),
    c.DropColumn: lambda ch: _alter(
        ch.on, f"DROP COLUMN {_only_if(ch.if_exists, 'IF EXISTS ')}{quote_ident(ch.column)}"
        + _only_if(ch.cascade, " CASCADE"),
    ),
    c.RenameColumn: lambda ch: _alter(ch.on, f"RENAME COLUMN {quote_ident(ch.column)} TO {quote_ident(ch.new_name)}"),
    c.AlterColumnType: lambda ch: _alter(
        ch.on, f"ALTER COLUMN {quote_ident(ch.column)} TYPE {ch.new_type}"
        + (f" COLLATE {quote_ident(ch.collation)}" if ch.collation else "")
        + (f" USING {ch.using}" if ch.using else ""),
    ),
    c.SetNotNull: lambda ch: _alter(ch.on, f"ALTER COLUMN {quote_ident(ch.column)} SET NOT NULL"),
    c.DropNotNull: lambda ch: _alter(ch.on, f"ALTER COLUMN {quote_ident(ch.column)} DROP NOT NULL"),
    c.SetDefault: lambda ch: _alter(ch.on, f"ALTER COLUMN {quote_ident(ch.column)} SET DEFAULT {ch.default}"),
    c.DropDefault: lambda ch: _alter(ch.on, f"ALTER COLUMN {quote_ident(ch.column)} DROP DEFAULT"),
    c.AddConstraint: lambda ch: _alter(ch.on, f"ADD {_written_constraint(ch.constraint)}"),
    c.DropConstraint: lambda ch: _alter(ch.on, f"DROP CONSTRAINT IF EXISTS {quote_ident(ch.name)}")
    + _only_if(ch.cascade, " CASCADE"),
    c.ValidateConstraint: lambda ch: _alter(ch.on, f"VALIDATE CONSTRAINT {quote_ident(ch.name)}"),
    c.CreateIndex: lambda ch: create_index_sql(
        ch, ch.name or index_name(ch.on, ch.columns), concurrently=ch.concurrently, only=ch.only
    ),
    c.DropIndex: lambda ch: f"DROP INDEX {_only_if(ch.concurrently, 'CONCURRENTLY ')}"
    f"{_only_if(ch.if_exists, 'IF EXISTS ')}{sql_name(ch.index)}" + _only_if(ch.cascade, " CASCADE"),
    c.Reindex: lambda ch: f"REINDEX {ch.target.value.upper()} {_only_if(ch.concurrently, 'CONCURRENTLY ')}"
    f"{sql_name(ch.name)}",
    c.CreateEnum: lambda ch: f"CREATE TYPE {sql_name(ch.name)} AS ENUM ("
    + ", ".join(quote_literal(v) for v in ch.values) + ")",
    c.DropEnum: lambda ch: f"DROP TYPE {_only_if(ch.if_exists, 'IF EXISTS ')}{sql_name(ch.name)}"
    + _only_if(ch.cascade, " CASCADE"),
    c.AddEnumValue: lambda ch: f"ALTER TYPE {sql_name(ch.name)} ADD VALUE "
    f"{_only_if(ch.if_not_exists, 'IF NOT EXISTS ')}{quote_literal(ch.value)}"
    + (f" BEFORE {quote_literal(ch.before)}" if ch.before else "")
    + (f" AFTER {quote_literal(ch.after)}" if ch.after else ""),
    c.RenameEnumValue: lambda ch: f"ALTER TYPE {sql_name(ch.name)} RENAME VALUE "
    f"{quote_literal(ch.old_value)} TO {quote_literal(ch.new_value)}",
    c.CreateTrigger: lambda ch: ch.written or f"CREATE {_only_if(ch.or_replace, 'OR REPLACE ')}TRIGGER {quote_ident(ch.name)} "
    f"{ch.timing.upper()} {' OR '.join(e.upper() for e in ch.events)} ON {sql_name(ch.on)} "
    f"FOR EACH {'ROW' if ch.for_each_row else 'STATEMENT'} EXECUTE FUNCTION "
    + ".".join(quote_ident(part) for part in ch.function.split("."))
    + "()",
    c.DropTrigger: lambda ch: f"DROP TRIGGER {_only_if(ch.if_exists, 'IF EXISTS ')}{quote_ident(ch.name)} "
    f"ON {sql_name(ch.on)}",
    c.CreateView: lambda ch: f"CREATE {_only_if(ch.or_replace, 'OR REPLACE ')}"
    f"{_only_if(ch.materialized, 'MATERIALIZED ')}VIEW {sql_name(ch.name)} AS {ch.definition}",
    c.DropView: lambda ch: f"DROP {_only_if(ch.materialized, 'MATERIALIZED ')}VIEW "
    f"{_only_if(ch.if_exists, 'IF EXISTS ')}{sql_name(ch.name)}" + _only_if(ch.cascade, " CASCADE"),
    c.RefreshMaterializedView: lambda ch: "REFRESH MATERIALIZED VIEW "
    f"{_only_if(ch.concurrently, 'CONCURRENTLY ')}{sql_name(ch.name)}",
    c.AttachPartition: lambda ch: _alter(ch.on, f"ATTACH PARTITION {sql_name(ch.partition)} {ch.bound}".rstrip()),
    c.DetachPartition: lambda ch: _alter(
        ch.on, f"DETACH PARTITION {sql_name(ch.partition)}"
        + _only_if(ch.concurrently, " CONCURRENTLY") + _only_if(ch.finalize, " FINALIZE"),
    ),
    c.ModifyRows: _modify_rows,
    c.SetSetting: _setting,
    c.TransactionControl: lambda ch: ch.action.value.upper(),
    c.RawStatement: _raw,
}


def change_sql(change: Change) -> tuple[str, ...]:
    """The SQL of a change the planner keeps as written; :class:`UnrenderableChange` when the
    change model does not hold enough to write it (never an empty step)."""
    render = _RENDER.get(type(change))
    if render is None:
        raise UnrenderableChange(f"no SQL renderer for the change kind {change.kind}")
    return (render(change),)
