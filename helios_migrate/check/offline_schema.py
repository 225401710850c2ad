"""The schema the revisions checked so far built, and an inspector that answers from it.

Revisions guard their operations with questions to the database: ``sa.inspect(op.get_bind())``
then ``get_table_names()``, ``get_columns(t)``, ``get_indexes(t)``...  Offline there is no
database, but ``check`` renders the history in upgrade order, so it knows every table, column,
index and constraint the earlier revisions (and the statements this revision emitted so far)
created: the database those revisions would have built.  :class:`OfflineInspector` answers from
that schema, the way SQLAlchemy's ``Inspector`` answers from a live one.

The answer is only as complete as the history: a table created by a helper of the application
(not installed, so not rendered) is unknown here, and a revision whose guard consulted the schema
is marked as rendered with placeholders, with that said in its detail.  A question this inspector
does not answer raises :class:`~.offline_bind.NeedsDatabase`, and the revision is read from its
source as before.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..changes import (
    AddColumn,
    AddConstraint,
    AlterColumnType,
    Change,
    ConstraintKind,
    CreateIndex,
    CreateTable,
    DropColumn,
    DropConstraint,
    DropDefault,
    DropIndex,
    DropNotNull,
    DropTable,
    QualifiedName,
    RenameColumn,
    RenameTable,
    SetDefault,
    SetNotNull,
)
from ..sql_parse import SqlSyntaxError, parse_statements
from ..sqltext import default_object_name, index_element_name
from .offline_bind import NeedsDatabase


_UNNAMED_AS_WRITTEN = frozenset({ConstraintKind.CHECK})
"""Kept unnamed when the SQL gave no name: PostgreSQL names a CHECK after the first column its
expression uses, which is not predicted here."""


@dataclass
class _Column:
    name: str
    type: str
    nullable: bool = True
    default: str | None = None


@dataclass
class _Constraint:
    name: str | None
    kind: ConstraintKind
    columns: tuple[str, ...] = ()
    referred_table: QualifiedName | None = None
    referred_columns: tuple[str, ...] = ()
    expression: str | None = None


@dataclass
class _Index:
    name: str
    columns: tuple[str, ...]
    unique: bool = False


@dataclass
class _Table:
    name: QualifiedName
    columns: dict[str, _Column] = field(default_factory=dict)
    constraints: list[_Constraint] = field(default_factory=list)
    indexes: dict[str, _Index] = field(default_factory=dict)


class OfflineSchema:
    """Tables, columns, indexes and constraints built by the statements given, in order."""

    def __init__(self) -> None:
        self._tables: dict[tuple[str | None, str], _Table] = {}

    # -- building ------------------------------------------------------------------------------

    def apply_sql(self, statements: Iterable[str], path: str = "<history>") -> None:
        """Apply statements (SQL text, ``BEGIN``/``COMMIT`` included) in order."""
        for sql in statements:
            text = sql.strip()
            if not text or text.upper().rstrip(";") in ("BEGIN", "COMMIT"):
                continue
            try:
                parsed = parse_statements(text, path)
            except SqlSyntaxError:
                continue
            for st in parsed:
                for change in st.changes:
                    self.apply(change)

    def apply(self, change: Change) -> None:
        handler = _APPLY.get(type(change))
        if handler is not None:
            handler(self, change)

    def _find(self, name: QualifiedName) -> _Table | None:
        exact = self._tables.get((name.schema, name.name))
        if exact is not None:
            return exact
        return next(
            (t for (schema, table), t in self._tables.items()
             if table == name.name and (name.schema is None or schema is None or schema == name.schema)),
            None,
        )

    def _create(self, ch: CreateTable) -> None:
        table = _Table(ch.on)
        for col in ch.columns:
            table.columns[col.name] = _Column(col.name, col.type, col.nullable and not col.primary_key, col.default)
            if col.primary_key:
                self._constraint(table, None, ConstraintKind.PRIMARY_KEY, (col.name,), None, None)
            if col.unique:
                self._constraint(table, None, ConstraintKind.UNIQUE, (col.name,), None, None)
            if col.references is not None:
                self._constraint(table, None, ConstraintKind.FOREIGN_KEY, (col.name,), col.references, None)
        for k in ch.constraints:
            self._constraint(table, k.name, k.kind, k.columns, k.references, k.expression)
        self._tables[(ch.on.schema, ch.on.name)] = table

    def _constraint(
        self, table: _Table, name: str | None, kind: ConstraintKind, columns: Sequence[str],
        references: Any, expression: str | None,
    ) -> None:
        if kind is ConstraintKind.NOT_NULL:
            for c in columns:
                if c in table.columns:
                    table.columns[c].nullable = False
            return
        if kind is ConstraintKind.PRIMARY_KEY:
            for c in columns:
                if c in table.columns:
                    table.columns[c].nullable = False
        if name is None and kind not in _UNNAMED_AS_WRITTEN:
            # Unnamed: the name PostgreSQL gives it, which a later revision drops it by.
            named = () if kind is ConstraintKind.PRIMARY_KEY else tuple(columns)
            name = default_object_name(table.name.name, named, kind.name_label)
        table.constraints.append(_Constraint(
            name, kind, tuple(columns),
            references.table if references is not None else None,
            tuple(references.columns) if references is not None else (),
            expression,
        ))

    def _drop(self, ch: DropTable) -> None:
        table = self._find(ch.on)
        if table is not None:
            del self._tables[(table.name.schema, table.name.name)]

    def _rename(self, ch: RenameTable) -> None:
        table = self._find(ch.on)
        if table is None or not ch.new_name:
            return
        del self._tables[(table.name.schema, table.name.name)]
        table.name = QualifiedName(ch.new_name, table.name.schema)
        self._tables[(table.name.schema, table.name.name)] = table

    def _on_table(self, ch: Any, fn: Callable[[_Table], None]) -> None:
        table = self._find(ch.on)
        if table is not None:
            fn(table)

    def _add_column(self, ch: AddColumn) -> None:
        def add(t: _Table) -> None:
            col = ch.column
            t.columns[col.name] = _Column(col.name, col.type, col.nullable and not col.primary_key, col.default)

        self._on_table(ch, add)

    def _drop_column(self, ch: DropColumn) -> None:
        def drop(t: _Table) -> None:
            t.columns.pop(ch.column, None)
            t.indexes = {n: i for n, i in t.indexes.items() if ch.column not in i.columns}
            t.constraints = [k for k in t.constraints if ch.column not in k.columns]

        self._on_table(ch, drop)

    def _rename_column(self, ch: RenameColumn) -> None:
        def rename(t: _Table) -> None:
            col = t.columns.pop(ch.column, None)
            if col is None:
                return
            col.name = ch.new_name
            t.columns = {**t.columns, ch.new_name: col}
            for i in t.indexes.values():
                i.columns = tuple(ch.new_name if c == ch.column else c for c in i.columns)
            for k in t.constraints:
                k.columns = tuple(ch.new_name if c == ch.column else c for c in k.columns)

        self._on_table(ch, rename)

    def _column_attr(self, ch: Any, **values: Any) -> None:
        def set_attr(t: _Table) -> None:
            col = t.columns.get(ch.column)
            if col is not None:
                for key, value in values.items():
                    setattr(col, key, value)

        self._on_table(ch, set_attr)

    def _add_constraint(self, ch: AddConstraint) -> None:
        k = ch.constraint

        def add(t: _Table) -> None:
            columns = k.columns
            if k.using_index is not None and k.using_index in t.indexes:
                columns = t.indexes.pop(k.using_index).columns
            self._constraint(t, k.name, k.kind, columns, k.references, k.expression)

        self._on_table(ch, add)

    def _drop_constraint(self, ch: DropConstraint) -> None:
        self._on_table(ch, lambda t: setattr(t, "constraints", [k for k in t.constraints if k.name != ch.name]))

    def _create_index(self, ch: CreateIndex) -> None:
        def add(t: _Table) -> None:
            name = ch.name or default_object_name(
                t.name.name, [index_element_name(c) or "expr" for c in ch.columns], "idx"
            )
            t.indexes[name] = _Index(name, ch.columns, ch.unique)

        self._on_table(ch, add)

    def _drop_index(self, ch: DropIndex) -> None:
        for table in self._tables.values():
            if ch.on is not None and table.name.name != ch.on.name:
                continue
            table.indexes.pop(ch.index.name, None)

    # -- answering -----------------------------------------------------------------------------

    def table(self, name: str, schema: str | None = None) -> _Table | None:
        return self._find(QualifiedName(name, schema))

    def table_names(self, schema: str | None = None) -> list[str]:
        return sorted(
            t.name.name for (s, _), t in self._tables.items()
            if schema is None or s is None or s == schema
        )


_APPLY: dict[type, Callable[[OfflineSchema, Any], None]] = {
    CreateTable: OfflineSchema._create,
    DropTable: OfflineSchema._drop,
    RenameTable: OfflineSchema._rename,
    AddColumn: OfflineSchema._add_column,
    DropColumn: OfflineSchema._drop_column,
    RenameColumn: OfflineSchema._rename_column,
    AlterColumnType: lambda s, ch: s._column_attr(ch, type=ch.new_type),
    SetNotNull: lambda s, ch: s._column_attr(ch, nullable=False),
    DropNotNull: lambda s, ch: s._column_attr(ch, nullable=True),
    SetDefault: lambda s, ch: s._column_attr(ch, default=ch.default),
    DropDefault: lambda s, ch: s._column_attr(ch, default=None),
    AddConstraint: OfflineSchema._add_constraint,
    DropConstraint: OfflineSchema._drop_constraint,
    CreateIndex: OfflineSchema._create_index,
    DropIndex: OfflineSchema._drop_index,
}


class OfflineInspector:
    """The subset of SQLAlchemy's ``Inspector`` that revisions use in guards, answered from the
    schema the history built.  Anything else needs a database."""

    def __init__(self, schema: Callable[[], OfflineSchema], dialect: Any, consulted: Callable[[str], None]) -> None:
        self._schema = schema
        self.dialect = dialect
        self.bind = None
        self._consulted = consulted
        self.default_schema_name = "public"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise NeedsDatabase(f"it asks the database inspector for {name}(), which needs a connection")

    def _table(self, table_name: str, schema: str | None) -> _Table:
        self._consulted(f"get_*({table_name})")
        table = self._schema().table(table_name, schema)
        if table is None:
            from sqlalchemy.exc import NoSuchTableError  # lazy: SQLAlchemy, off the check path

            raise NoSuchTableError(table_name)
        return table

    @contextlib.contextmanager
    def _inspection_context(self) -> Iterator[OfflineInspector]:
        yield self

    def _get_reflection_info(self, *args: Any, **kw: Any) -> None:
        return None

    def reflect_table(
        self, table: Any, include_columns: Collection[str] | None = None, exclude_columns: Collection[str] = (),
        resolve_fks: bool = True, _extend_on: Any = None, _reflect_info: Any = None,
    ) -> None:
        """``sa.Table(name, metadata, autoload_with=bind)``: columns, primary key, unique
        constraints and indexes from the schema (foreign keys are left out)."""
        import sqlalchemy as sa  # lazy: SQLAlchemy, off the check path

        known = self._table(table.name, table.schema)
        for col in known.columns.values():
            if (include_columns and col.name not in include_columns) or col.name in exclude_columns:
                continue
            if col.name in table.c:
                continue
            default = sa.text(col.default) if col.default is not None else None
            table.append_column(sa.Column(col.name, _sa_type(col.type), nullable=col.nullable, server_default=default))
        for k in known.constraints:
            if not k.columns or not all(c in table.c for c in k.columns):
                continue
            if k.kind is ConstraintKind.PRIMARY_KEY:
                table.append_constraint(sa.PrimaryKeyConstraint(*k.columns, name=k.name))
            elif k.kind is ConstraintKind.UNIQUE:
                table.append_constraint(sa.UniqueConstraint(*k.columns, name=k.name))
        for index in known.indexes.values():
            if index.columns and all(c in table.c for c in index.columns):
                sa.Index(index.name, *(table.c[c] for c in index.columns), unique=index.unique)

    def get_schema_names(self) -> list[str]:
        return ["public"]

    def get_table_names(self, schema: str | None = None, **kw: Any) -> list[str]:
        self._consulted("get_table_names()")
        return self._schema().table_names(schema)

    def has_table(self, table_name: str, schema: str | None = None, **kw: Any) -> bool:
        self._consulted(f"has_table({table_name})")
        return self._schema().table(table_name, schema) is not None

    def get_columns(self, table_name: str, schema: str | None = None, **kw: Any) -> list[dict[str, Any]]:
        table = self._table(table_name, schema)
        return [
            {"name": c.name, "type": _sa_type(c.type), "nullable": c.nullable, "default": c.default,
             "autoincrement": False, "comment": None}
            for c in table.columns.values()
        ]

    def get_indexes(self, table_name: str, schema: str | None = None, **kw: Any) -> list[dict[str, Any]]:
        table = self._table(table_name, schema)
        return [
            {"name": i.name, "column_names": list(i.columns), "unique": i.unique, "dialect_options": {}}
            for i in table.indexes.values()
        ]

    def has_index(self, table_name: str, index_name: str, schema: str | None = None, **kw: Any) -> bool:
        table = self._schema().table(table_name, schema)
        self._consulted(f"has_index({table_name}, {index_name})")
        return table is not None and (
            index_name in table.indexes
            or any(k.name == index_name for k in table.constraints
                   if k.kind in (ConstraintKind.UNIQUE, ConstraintKind.PRIMARY_KEY))
        )

    def _of_kind(self, table: _Table, kind: ConstraintKind) -> list[_Constraint]:
        return [k for k in table.constraints if k.kind is kind]

    def get_pk_constraint(self, table_name: str, schema: str | None = None, **kw: Any) -> dict[str, Any]:
        pks = self._of_kind(self._table(table_name, schema), ConstraintKind.PRIMARY_KEY)
        if not pks:
            return {"name": None, "constrained_columns": []}
        return {"name": pks[0].name, "constrained_columns": list(pks[0].columns)}

    def get_unique_constraints(self, table_name: str, schema: str | None = None, **kw: Any) -> list[dict[str, Any]]:
        return [
            {"name": k.name, "column_names": list(k.columns)}
            for k in self._of_kind(self._table(table_name, schema), ConstraintKind.UNIQUE)
        ]

    def get_foreign_keys(self, table_name: str, schema: str | None = None, **kw: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": k.name, "constrained_columns": list(k.columns),
                "referred_schema": k.referred_table.schema if k.referred_table else None,
                "referred_table": k.referred_table.name if k.referred_table else None,
                "referred_columns": list(k.referred_columns), "options": {},
            }
            for k in self._of_kind(self._table(table_name, schema), ConstraintKind.FOREIGN_KEY)
        ]

    def get_check_constraints(self, table_name: str, schema: str | None = None, **kw: Any) -> list[dict[str, Any]]:
        return [
            {"name": k.name, "sqltext": k.expression or ""}
            for k in self._of_kind(self._table(table_name, schema), ConstraintKind.CHECK)
        ]


def _sa_type(text: str) -> Any:
    """A SQLAlchemy type for a canonical PostgreSQL type name (``NullType`` when unknown)."""
    from sqlalchemy.dialects.postgresql.base import (
        ischema_names,  # lazy: SQLAlchemy, off the check path
    )
    from sqlalchemy.types import NullType  # lazy: SQLAlchemy, off the check path

    base, _, args = text.partition("(")
    is_array = base.endswith("[]")
    base = base.removesuffix("[]").strip()
    aliases = {"timestamptz": "timestamp with time zone", "timetz": "time with time zone",
               "varchar": "character varying", "int": "integer", "int4": "integer", "int8": "bigint",
               "int2": "smallint", "bool": "boolean", "float8": "double precision", "float4": "real"}
    cls = ischema_names.get(aliases.get(base, base))
    if cls is None:
        return NullType()
    try:
        length = int(args.rstrip(")")) if args and args.rstrip(")").isdigit() else None
        value = cls(length) if length is not None and base in ("varchar", "char", "character varying") else cls()
    except Exception:
        value = cls if not isinstance(cls, type) else NullType()
    if is_array:
        from sqlalchemy.dialects.postgresql import ARRAY  # lazy: SQLAlchemy, off the check path

        return ARRAY(value)
    return value


class HistorySchema:
    """The schema of the revisions rendered so far, parsed only when a revision inspects it."""

    def __init__(self) -> None:
        self._base = OfflineSchema()
        self._pending: list[str] = []
        self._cached: tuple[int, OfflineSchema] | None = None

    def add(self, statements: Iterable[str]) -> None:
        """Statements of the next revision in upgrade order (its ``upgrade()``)."""
        self._pending.extend(statements)
        self._cached = None

    def snapshot(self, current: Sequence[str]) -> OfflineSchema:
        """The schema before the revision being rendered, plus ``current`` (what it emitted so far)."""
        if self._pending:
            self._base.apply_sql(self._pending)
            self._pending = []
        if self._cached is not None and self._cached[0] == len(current):
            return self._cached[1]
        schema = copy.deepcopy(self._base)
        schema.apply_sql(current)
        self._cached = (len(current), schema)
        return schema
