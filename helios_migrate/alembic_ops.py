"""Alembic operations -> :mod:`helios_migrate.changes` values.

This is the Alembic front end of the change model.  It reads the structured operation objects that
autogenerate produces (or that a revision builds by hand) and gives, for each, the same
:class:`~helios_migrate.changes.Change` values that :mod:`helios_migrate.sql_parse` gives for the
SQL Alembic would emit for that operation on PostgreSQL.  To stay faithful to that SQL it follows
Alembic's PostgreSQL implementation step by step:

* ``add_column`` emits ``ADD COLUMN`` and then, as separate statements, the column's foreign keys
  (unless ``inline_references``), its ``UNIQUE`` constraint and its indexes; its primary key only
  when ``inline_primary_key`` is set;
* ``alter_column`` emits ``TYPE`` first, then ``SET/DROP NOT NULL``, then ``SET/DROP DEFAULT``,
  then the comment, and the rename last;
* ``create_table`` renders the primary key, UNIQUE columns and foreign keys as table constraints
  (primary key first), then one ``CREATE INDEX`` per index;
* an integer primary key with SQLAlchemy's autoincrement becomes ``serial``/``bigserial``.

Types, defaults and expressions are compiled with SQLAlchemy's PostgreSQL dialect and then passed
through :mod:`helios_migrate.normalize`; identifiers are stored as PostgreSQL stores them: a name
the dialect would quote keeps its case, any other name is folded to lower case.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations, schemaobj
from alembic.operations import ops as alembic_ops
from alembic.runtime.migration import MigrationContext
from sqlalchemy.dialects.postgresql import ENUM as PG_ENUM
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.sql import operators
from sqlalchemy.sql.compiler import DDLCompiler
from sqlalchemy.sql.elements import ClauseElement, TextClause, UnaryExpression

from helios_migrate.changes import (
    AddColumn,
    AddConstraint,
    AlterColumnType,
    Change,
    ColumnDef,
    Constraint,
    ConstraintKind,
    CreateEnum,
    CreateIndex,
    CreateTable,
    DataOperation,
    DropColumn,
    DropConstraint,
    DropDefault,
    DropIndex,
    DropNotNull,
    DropTable,
    ForeignKeyTarget,
    GeneratedKind,
    IdentityKind,
    ModifyRows,
    QualifiedName,
    RawStatement,
    RenameColumn,
    RenameTable,
    SetDefault,
    SetNotNull,
)
from helios_migrate.normalize import normalize_expr, normalize_ident, normalize_type
from helios_migrate.sql_parse import changes_from_sql
from helios_migrate.sqltext import quote_ident

__all__ = ["changes_from_op", "changes_from_ops", "ident", "render_sql"]

_DIALECT: PGDialect = PGDialect()  # type: ignore[no-untyped-call]
_PREPARER = _DIALECT.identifier_preparer
_ORDERING = (
    operators.asc_op,
    operators.desc_op,
    operators.nulls_first_op,
    operators.nulls_last_op,
)
_PLAIN_IDENT = re.compile(r'^(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")$')


def _compiler() -> DDLCompiler:
    compiler: DDLCompiler = _DIALECT.ddl_compiler(_DIALECT, None)  # type: ignore[arg-type]
    return compiler


# --- identifiers, types, expressions ----------------------------------------------------------


def ident(name: str) -> str:
    """An identifier as PostgreSQL stores it, given a SQLAlchemy name.

    SQLAlchemy quotes a name that is not all lower case (or is reserved, or ``quoted_name(...,
    quote=True)``); a quoted name keeps its case, an unquoted one is folded to lower case.
    """
    return normalize_ident(_PREPARER.quote(name))


def _schema(schema: str | None) -> str | None:
    return None if schema is None else normalize_ident(_PREPARER.quote_schema(schema))


def _qname(name: str, schema: str | None) -> QualifiedName:
    return QualifiedName(ident(name), _schema(schema))


def _sql(element: Any) -> str:
    """SQL text of an expression, compiled as SQLAlchemy's PostgreSQL DDL compiler does."""
    if isinstance(element, str):
        return element
    return str(_compiler().sql_compiler.process(element, include_table=False, literal_binds=True))


def _expr(element: Any) -> str:
    return normalize_expr(_sql(element))


def _split_collation(
    type_: sa.types.TypeEngine[Any],
) -> tuple[sa.types.TypeEngine[Any], str | None]:
    collation = getattr(type_, "collation", None)
    if not collation:
        return type_, None
    plain = type_.copy()
    plain.collation = None  # type: ignore[attr-defined]
    return plain, str(collation)


def sql_type_text(type_: Any) -> str:
    """The canonical PostgreSQL spelling of a SQLAlchemy type (``sa.String(50)`` -> ``varchar(50)``)."""
    type_ = sa.types.to_instance(type_)
    return normalize_type(
        _DIALECT.type_compiler_instance.process(type_, identifier_preparer=_PREPARER)
    )


def _is_serial(column: sa.Column[Any]) -> str | None:
    """``serial``/``bigserial``/``smallserial`` when PostgreSQL's DDL compiler renders one."""
    impl = column.type.dialect_impl(_DIALECT)
    if isinstance(impl, sa.types.TypeDecorator):
        impl = impl.impl_instance
    table = column.table
    if not (
        column.primary_key
        and table is not None
        and column is table._autoincrement_column
        and column.identity is None
        and (
            column.default is None
            or (isinstance(column.default, sa.Sequence) and bool(column.default.optional))
        )
    ):
        return None
    if isinstance(impl, sa.BigInteger):
        return "bigserial"
    if isinstance(impl, sa.SmallInteger):
        return "smallserial"
    return "serial"


def _default_text(default: Any) -> str | None:
    """Canonical text of a server default as Alembic renders it (``None`` for none)."""
    if default is None:
        return None
    if isinstance(default, (sa.Identity, sa.Computed)):
        return None
    holder = sa.Column("x", sa.Integer(), server_default=default)
    text = _compiler().get_column_default_string(holder)
    return None if text is None else normalize_expr(text)


def _column_def(column: sa.Column[Any], *, inline_references: bool = False) -> ColumnDef:
    serial = _is_serial(column)
    collation: str | None = None
    default: str | None = None
    if serial is not None:
        type_text = serial
    else:
        plain, collation = _split_collation(column.type)
        type_text = sql_type_text(plain)
        default = _default_text(column.server_default)

    identity: IdentityKind | None = None
    if column.identity is not None:
        identity = IdentityKind.ALWAYS if column.identity.always else IdentityKind.BY_DEFAULT

    generated: str | None = None
    generated_kind: GeneratedKind | None = None
    if column.computed is not None:
        generated = _expr(column.computed.sqltext)
        persisted = column.computed.persisted
        if persisted is True:
            generated_kind = GeneratedKind.STORED
        elif persisted is False:
            generated_kind = GeneratedKind.VIRTUAL

    checks = [c for c in column.constraints if isinstance(c, sa.CheckConstraint)]
    check = _expr(checks[0].sqltext) if len(checks) == 1 else None

    references: ForeignKeyTarget | None = None
    if inline_references and len(column.foreign_keys) == 1:
        fk = next(iter(column.foreign_keys))
        if fk.constraint is not None and len(fk.constraint.columns) == 1:
            references = _fk_target([fk])

    return ColumnDef(
        name=ident(column.name),
        type=type_text,
        # An identity column is NOT NULL in PostgreSQL whether or not the DDL says so.
        nullable=bool(column.nullable) and identity is None,
        default=default,
        identity=identity,
        generated=generated,
        generated_kind=generated_kind,
        references=references,
        check=check,
        collation=collation,
    )


# --- constraints and indexes ------------------------------------------------------------------


def _constraint_name(constraint: sa.Constraint | sa.Index) -> str | None:
    if constraint.name is None:
        return None
    formatted = _PREPARER.format_constraint(constraint)
    return None if formatted is None else normalize_ident(formatted)


def _fk_target(elements: Sequence[sa.ForeignKey]) -> ForeignKeyTarget:
    remote = elements[0].column.table
    return ForeignKeyTarget(
        table=_qname(remote.name, getattr(remote, "schema", None)),
        columns=tuple(ident(e.column.name) for e in elements),
    )


def _rule(value: str | None) -> str | None:
    """``ON DELETE``/``ON UPDATE`` action as PostgreSQL spells it; ``NO ACTION`` is the default."""
    if value is None:
        return None
    action = " ".join(value.upper().split())
    return None if action == "NO ACTION" else action


def _not_valid(constraint: sa.Constraint) -> bool:
    try:
        return bool(constraint.dialect_options["postgresql"]["not_valid"])
    except KeyError:
        return False


def _constraint(constraint: sa.Constraint) -> Constraint:
    name = _constraint_name(constraint)
    deferrable = bool(constraint.deferrable)
    if isinstance(constraint, sa.PrimaryKeyConstraint):
        return Constraint(
            ConstraintKind.PRIMARY_KEY,
            name=name,
            columns=tuple(ident(c.name) for c in constraint.columns),
            deferrable=deferrable,
        )
    if isinstance(constraint, sa.UniqueConstraint):
        return Constraint(
            ConstraintKind.UNIQUE,
            name=name,
            columns=tuple(ident(c.name) for c in constraint.columns),
            deferrable=deferrable,
        )
    if isinstance(constraint, sa.ForeignKeyConstraint):
        return Constraint(
            ConstraintKind.FOREIGN_KEY,
            name=name,
            columns=tuple(ident(e.parent.name) for e in constraint.elements),
            references=_fk_target(constraint.elements),
            on_delete=_rule(constraint.ondelete),
            on_update=_rule(constraint.onupdate),
            not_valid=_not_valid(constraint),
            deferrable=deferrable,
        )
    if isinstance(constraint, sa.CheckConstraint):
        return Constraint(
            ConstraintKind.CHECK,
            name=name,
            expression=_expr(constraint.sqltext),
            not_valid=_not_valid(constraint),
            deferrable=deferrable,
        )
    raise TypeError(f"unsupported constraint {constraint!r}")


def _index_element(index: sa.Index, element: Any) -> str:
    """An index element as the SQL front end spells it: name or expression, then its options."""
    descending = False
    nulls: str | None = None
    inner = element
    while isinstance(inner, UnaryExpression) and inner.modifier in _ORDERING:
        if inner.modifier is operators.desc_op:
            descending = True
        elif inner.modifier is operators.nulls_first_op:
            nulls = "first"
        elif inner.modifier is operators.nulls_last_op:
            nulls = "last"
        inner = inner.element
    text = _sql(inner)
    out = quote_ident(normalize_ident(text)) if _PLAIN_IDENT.match(text) else normalize_expr(text)
    opclasses = index.dialect_options["postgresql"]["ops"] or {}
    key = getattr(element, "key", None)
    if key is not None and key in opclasses:
        out += f" {opclasses[key]}"
    if descending:
        out += " DESC"
    # Only the non-default NULLS ordering is kept (NULLS LAST is ASC's default, FIRST is DESC's).
    if nulls == "first" and not descending:
        out += " NULLS FIRST"
    elif nulls == "last" and descending:
        out += " NULLS LAST"
    return out


def _create_index(index: sa.Index, *, if_not_exists: bool = False) -> CreateIndex:
    table = index.table
    assert table is not None
    pg = index.dialect_options["postgresql"]
    where = pg["where"]
    include = pg["include"] or ()
    using = pg["using"]
    return CreateIndex(
        on=_qname(table.name, table.schema),
        name=_constraint_name(index),
        columns=tuple(_index_element(index, e) for e in index.expressions),
        unique=bool(index.unique),
        concurrently=bool(pg["concurrently"]),
        if_not_exists=bool(if_not_exists),
        where=None if where is None else _expr(where),
        method=str(using).lower() if using else "btree",
        include=tuple(ident(c if isinstance(c, str) else c.name) for c in include),
    )


def _comment_statement(ddl: sa.schema.ExecutableDDLElement) -> list[Change]:
    """``COMMENT ON ...``: not modelled, so it is exactly what the SQL front end makes of it."""
    return _parse_sql(str(ddl.compile(dialect=_DIALECT)).strip())


# --- per-operation mapping --------------------------------------------------------------------


def _add_column(op: alembic_ops.AddColumnOp) -> list[Change]:
    # Work on a copy: attaching the operation's own Column to a Table would change what Alembic
    # later renders for the same operation.
    column = op.column._copy()
    table = schemaobj.SchemaObjects().table(op.table_name, column, schema=op.schema)
    on = _qname(op.table_name, op.schema)
    inline_refs = bool(op.inline_references)
    coldef = _column_def(column, inline_references=inline_refs)
    if op.inline_primary_key and column.primary_key:
        coldef = _replace(coldef, primary_key=True)
    out: list[Change] = [AddColumn(on=on, column=coldef, if_not_exists=bool(op.if_not_exists))]
    for constraint in table._sorted_constraints:
        if isinstance(constraint, sa.PrimaryKeyConstraint):
            continue
        if (
            inline_refs
            and isinstance(constraint, sa.ForeignKeyConstraint)
            and len(column.foreign_keys) == 1
            and len(constraint.columns) == 1
        ):
            continue
        if isinstance(constraint, sa.CheckConstraint) and constraint in column.constraints:
            continue
        out.append(AddConstraint(on=on, constraint=_constraint(constraint)))
    out.extend(_create_index(ix) for ix in _sorted_indexes(table))
    if column.comment is not None:
        out.extend(_comment_statement(sa.schema.SetColumnComment(column)))
    return out


def _replace(coldef: ColumnDef, **changes: Any) -> ColumnDef:
    return dataclasses.replace(coldef, **changes)


def _sorted_indexes(table: sa.Table) -> list[sa.Index]:
    # ``table.indexes`` is a set; creation order is the order the model declared them in.
    return sorted(table.indexes, key=lambda ix: int(getattr(ix, "_creation_order", 0)))


def _drop_column(op: alembic_ops.DropColumnOp) -> list[Change]:
    return [
        DropColumn(
            on=_qname(op.table_name, op.schema),
            column=ident(op.column_name),
            if_exists=bool(op.if_exists),
        )
    ]


def _alter_column(op: alembic_ops.AlterColumnOp) -> list[Change]:
    on = _qname(op.table_name, op.schema)
    column = ident(op.column_name)
    out: list[Change] = []
    if op.modify_type is not None:
        new_type, collation = _split_collation(sa.types.to_instance(op.modify_type))
        using = op.kw.get("postgresql_using")
        old_type: str | None = None
        if op.existing_type is not None:
            old_plain, _ = _split_collation(sa.types.to_instance(op.existing_type))
            old_type = sql_type_text(old_plain)
        out.append(
            AlterColumnType(
                on=on,
                column=column,
                new_type=sql_type_text(new_type),
                using=None if using is None else _expr(using),
                collation=collation,
                old_type=old_type,
            )
        )
    if op.modify_nullable is not None:
        cls = DropNotNull if op.modify_nullable else SetNotNull
        out.append(cls(on=on, column=column))
    default = op.modify_server_default
    if default is not False:
        if default is None:
            out.append(DropDefault(on=on, column=column))
        elif isinstance(default, (sa.Identity, sa.Computed)):
            out.append(
                RawStatement(
                    sql=f"-- alter_column {on}.{column}: server_default={default!r}",
                    relations=(on,),
                )
            )
        else:
            text = _default_text(default)
            assert text is not None
            out.append(SetDefault(on=on, column=column, default=text))
    if op.modify_comment is not False:
        holder = sa.Table(
            op.table_name,
            sa.MetaData(),
            sa.Column(op.column_name, sa.types.NULLTYPE, comment=op.modify_comment),
            schema=op.schema,
        )
        out.extend(_comment_statement(sa.schema.SetColumnComment(holder.c[op.column_name])))
    if op.modify_name is not None:
        out.append(RenameColumn(on=on, column=column, new_name=ident(op.modify_name)))
    return out


def _create_table(op: alembic_ops.CreateTableOp) -> list[Change]:
    # Same as ``op.to_table()``, but on copies of unattached columns so that the operation's own
    # objects are left as they were (a second ``to_table()`` would otherwise lose their FKs).
    items = [_detached_copy(c) for c in op.columns]
    table = schemaobj.SchemaObjects().table(
        op.table_name,
        *items,
        schema=op.schema,
        prefixes=list(op.prefixes) if op.prefixes else [],
        comment=op.comment,
        info=dict(op.info) if op.info else {},
        _constraints_included=op._constraints_included,
        **op.kw,
    )
    on = _qname(table.name, table.schema)
    constraints: list[sa.Constraint] = []
    if table.primary_key:
        constraints.append(table.primary_key)
    constraints.extend(
        c
        for c in table._sorted_constraints
        if c is not table.primary_key
        and not getattr(c, "use_alter", False)
        and not any(c in col.constraints for col in table.columns)
    )
    # Like SQLAlchemy's before_create event: CREATE TYPE for each native enum of the table.
    out: list[Change] = _enum_types(table)
    out.append(
        CreateTable(
            on=on,
            columns=tuple(_column_def(c) for c in table.columns),
            constraints=tuple(_constraint(c) for c in constraints),
            if_not_exists=bool(op.if_not_exists),
        )
    )
    out.extend(_create_index(ix) for ix in _sorted_indexes(table))
    if table.comment is not None:
        out.extend(_comment_statement(sa.schema.SetTableComment(table)))
    for c in table.columns:
        if c.comment is not None:
            out.extend(_comment_statement(sa.schema.SetColumnComment(c)))
    return out


def _enum_types(table: sa.Table) -> list[Change]:
    out: list[Change] = []
    seen: set[QualifiedName] = set()
    for column in table.columns:
        impl = column.type.dialect_impl(_DIALECT)
        if not (isinstance(impl, PG_ENUM) and impl.native_enum and impl.create_type and impl.name):
            continue
        name = _qname(str(impl.name), impl.schema)
        if name not in seen:
            seen.add(name)
            out.append(CreateEnum(name=name, values=tuple(impl.enums)))
    return out


def _detached_copy(item: Any) -> Any:
    """A copy of a Column/Constraint/Index not yet attached to a table (others as they are)."""
    if isinstance(item, sa.Column):
        return item._copy() if item.table is None else item
    if isinstance(item, (sa.Constraint, sa.Index)) and getattr(item, "parent", None) is None:
        pending = list(getattr(item, "_pending_colargs", ()))
        if all(isinstance(p, str) for p in pending):
            return copy.deepcopy(item)
    return item


def _drop_table(op: alembic_ops.DropTableOp) -> list[Change]:
    return [DropTable(on=_qname(op.table_name, op.schema), if_exists=bool(op.if_exists))]


def _rename_table(op: alembic_ops.RenameTableOp) -> list[Change]:
    return [RenameTable(on=_qname(op.table_name, op.schema), new_name=ident(op.new_table_name))]


def _create_index_op(op: alembic_ops.CreateIndexOp) -> list[Change]:
    return [_create_index(op.to_index(), if_not_exists=bool(op.if_not_exists))]


def _drop_index(op: alembic_ops.DropIndexOp) -> list[Change]:
    return [
        DropIndex(
            index=_qname(str(op.index_name), op.schema),
            concurrently=bool(op.kw.get("postgresql_concurrently", False)),
            if_exists=bool(op.if_exists),
            on=None if op.table_name is None else _qname(op.table_name, op.schema),
        )
    ]


def _add_constraint(op: alembic_ops.AddConstraintOp) -> list[Change]:
    constraint = op.to_constraint()
    table = constraint.table
    assert isinstance(table, sa.Table)
    return [AddConstraint(on=_qname(table.name, table.schema), constraint=_constraint(constraint))]


def _drop_constraint(op: alembic_ops.DropConstraintOp) -> list[Change]:
    return [
        DropConstraint(
            on=_qname(op.table_name, op.schema),
            name=ident(str(op.constraint_name)),
            if_exists=bool(op.if_exists),
        )
    ]


def _parse_sql(sql: str) -> list[Change]:
    return list(changes_from_sql(sql))


def _execute(op: alembic_ops.ExecuteSQLOp) -> list[Change]:
    text = op.sqltext
    if isinstance(text, str):
        return _parse_sql(text)
    if isinstance(text, TextClause):
        return _parse_sql(text.text)
    if isinstance(text, ClauseElement):
        return _parse_sql(
            str(text.compile(dialect=_DIALECT, compile_kwargs={"literal_binds": True}))
        )
    return [RawStatement(sql=f"-- execute {text!r}")]


def _bulk_insert(op: alembic_ops.BulkInsertOp) -> list[Change]:
    if not op.rows:
        return []
    table = op.table
    keys: set[str] = set()
    for row in op.rows:
        keys.update(row)
    # SQLAlchemy lists the VALUES columns in the table's column order.
    columns = tuple(ident(c.name) for c in table.columns if c.key in keys)
    return [
        ModifyRows(
            on=_qname(table.name, getattr(table, "schema", None)),
            operation=DataOperation.INSERT,
            columns=columns,
        )
    ]


def _unknown(op: alembic_ops.MigrateOperation) -> list[Change]:
    """What the SQL front end makes of the SQL Alembic emits for ``op``; when it cannot be
    rendered offline, one RawStatement describing the operation."""
    try:
        sql = render_sql(op)
    except Exception:
        sql = ""
    if sql.strip():
        return _parse_sql(sql)
    table = getattr(op, "table_name", None)
    schema = getattr(op, "schema", None)
    relations = (_qname(table, schema),) if isinstance(table, str) else ()
    described = f"{type(op).__module__}.{type(op).__qualname__}"
    if relations:
        described += f" on {relations[0]}"
    return [RawStatement(sql=f"-- alembic operation {described}", relations=relations)]


def _handlers() -> list[tuple[type[Any], Callable[[Any], list[Change]]]]:
    return [
        (alembic_ops.AddColumnOp, _add_column),
        (alembic_ops.DropColumnOp, _drop_column),
        (alembic_ops.AlterColumnOp, _alter_column),
        (alembic_ops.CreateTableOp, _create_table),
        (alembic_ops.DropTableOp, _drop_table),
        (alembic_ops.RenameTableOp, _rename_table),
        (alembic_ops.CreateIndexOp, _create_index_op),
        (alembic_ops.DropIndexOp, _drop_index),
        (alembic_ops.AddConstraintOp, _add_constraint),
        (alembic_ops.DropConstraintOp, _drop_constraint),
        (alembic_ops.ExecuteSQLOp, _execute),
        (alembic_ops.BulkInsertOp, _bulk_insert),
    ]


def changes_from_op(op: alembic_ops.MigrateOperation) -> list[Change]:
    """The changes one Alembic operation makes, in the order Alembic emits them for PostgreSQL.

    Containers (``UpgradeOps``, ``DowngradeOps``, ``ModifyTableOps``) give the changes of their
    operations in order.  An operation this front end does not model gives one
    :class:`~helios_migrate.changes.RawStatement` describing it.
    """
    if isinstance(op, alembic_ops.OpContainer):
        return changes_from_ops(op.ops)
    for cls, handler in _handlers():
        if isinstance(op, cls):
            return handler(op)
    return _unknown(op)


def changes_from_ops(operations: Iterable[alembic_ops.MigrateOperation]) -> list[Change]:
    """The changes of several operations, in order (containers are walked recursively)."""
    out: list[Change] = []
    for op in operations:
        out.extend(changes_from_op(op))
    return out


def render_sql(op: alembic_ops.MigrateOperation) -> str:
    """The SQL Alembic emits for ``op`` on PostgreSQL in offline (``--sql``) mode."""
    buf = io.StringIO()
    ctx = MigrationContext.configure(
        dialect_name="postgresql",
        opts={"as_sql": True, "output_buffer": buf, "literal_binds": True},
    )
    Operations(ctx).invoke(op)
    return buf.getvalue()
