"""A whole schema as ``review`` judges it: tables, columns, keys, foreign keys, indexes, sequences.

Two sources give the same values: the project's SQLAlchemy ``MetaData`` (through the Alembic
front end, :func:`schema_from_metadata`, no database needed) and a live database's catalog
(:mod:`helios_migrate.schema_catalog`, which adds what only a running server knows: index
validity, sequence positions, row estimates and insert rates).  :func:`schema_from_changes`
builds it from ``CREATE TABLE`` / ``CREATE INDEX`` / ``ADD CONSTRAINT`` changes, whatever front end
produced them.

Names follow the change model's conventions: identifiers unquoted as PostgreSQL stores them,
types in the canonical spelling of :func:`helios_migrate.normalize.normalize_type`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from . import changes as c
from .changes import QualifiedName
from .sqltext import index_element_name, quote_ident

INTEGER_RANGES: dict[str, int] = {"smallint": 32_767, "integer": 2_147_483_647, "bigint": 9_223_372_036_854_775_807}
"""The largest value of each integer type (the canonical spellings)."""

_INTEGER_ALIASES = {
    "int2": "smallint", "smallserial": "smallint", "serial2": "smallint",
    "int": "integer", "int4": "integer", "serial": "integer", "serial4": "integer",
    "int8": "bigint", "bigserial": "bigint", "serial8": "bigint",
}


def integer_type(type_: str) -> str | None:
    """``smallint``, ``integer`` or ``bigint`` for an integer type in any spelling, else ``None``."""
    name = _INTEGER_ALIASES.get(type_, type_)
    return name if name in INTEGER_RANGES else None


def comparable_type(type_: str) -> str:
    """The type a value of ``type_`` is stored as (``serial`` is ``integer``), for comparisons."""
    return integer_type(type_) or type_


class SchemaSource(str, enum.Enum):
    MODELS = "models"
    """SQLAlchemy models: the schema as the code declares it."""
    DATABASE = "database"
    """A live database's catalog, with statistics."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True
    default: str | None = None
    identity: c.IdentityKind | None = None
    null_frac: float | None = None
    """The share of NULLs in ANALYZE's sample (``pg_stats.null_frac``; live only, ``None`` when the
    column has no statistics)."""


@dataclass(frozen=True)
class ForeignKey:
    name: str | None
    columns: tuple[str, ...]
    references: QualifiedName
    referenced_columns: tuple[str, ...]
    on_delete: str | None = None


@dataclass(frozen=True)
class Index:
    """An index (a primary key's and a unique constraint's included)."""

    name: str | None
    elements: tuple[str, ...]
    """Column names (unquoted, as stored), or expression text, in index order."""
    unique: bool = False
    primary: bool = False
    method: str = "btree"
    predicate: str | None = None
    include: tuple[str, ...] = ()
    valid: bool = True
    """False for an index left INVALID by a failed ``CREATE INDEX CONCURRENTLY``."""
    constraint: str | None = None
    """The constraint the index enforces (primary key, unique, exclusion), if any."""
    definition: str | None = None
    """``pg_get_indexdef``: the statement that re-creates it (live only)."""
    size_bytes: int | None = None
    operator_classes: tuple[int, ...] = ()
    """The operator class of each key element (live only; empty when unknown)."""
    scans: int | None = None
    """Index scans since ``Schema.stats_since`` (``pg_stat_user_indexes.idx_scan``; live only)."""
    bloat_bytes: int | None = None
    """Estimated space beyond what its entries need (live, B-tree on columns only; ``None`` unknown)."""

    def leads_with(self, columns: Sequence[str]) -> bool:
        """Do the first ``len(columns)`` elements hold exactly ``columns`` (in any order)?

        Such an index serves lookups by ``columns`` (a foreign key's check, a join)."""
        n = len(columns)
        return n > 0 and self.predicate is None and sorted(self.elements[:n]) == sorted(columns)


@dataclass(frozen=True)
class SequenceState:
    """A sequence, and (live) how far it has counted."""

    name: QualifiedName
    data_type: str = "bigint"
    max_value: int | None = None
    increment: int = 1
    last_value: int | None = None
    """``None`` when the sequence was never used (or the model cannot know)."""
    owned_by: tuple[QualifiedName, str] | None = None
    """The (table, column) the sequence feeds: serial and identity columns."""


@dataclass(frozen=True)
class Table:
    name: QualifiedName
    columns: tuple[Column, ...] = ()
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    indexes: tuple[Index, ...] = ()
    partitioned: bool = False
    partitions: tuple[QualifiedName, ...] = ()
    """A partitioned table's partitions (live only)."""
    row_estimate: int | None = None
    """The planner's estimate (``pg_class.reltuples``; live only, ``None`` when never analysed)."""
    inserts: int | None = None
    """Rows inserted since ``Schema.stats_since`` (``pg_stat_user_tables.n_tup_ins``)."""
    size_bytes: int | None = None
    """The heap's size (``relpages`` as of the last VACUUM or ANALYZE; live only)."""
    bloat_bytes: int | None = None
    """Estimated heap space beyond what its rows need (live, analysed tables; ``None`` unknown)."""

    def column(self, name: str) -> Column | None:
        return next((col for col in self.columns if col.name == name), None)


@dataclass(frozen=True)
class Schema:
    source: SchemaSource
    tables: tuple[Table, ...] = ()
    sequences: tuple[SequenceState, ...] = ()
    server_version_num: int | None = None
    stats_since: datetime | None = None
    """When the activity counters started counting (the statistics reset, else server start)."""
    observed_at: datetime | None = None
    """The server's clock when the schema was read."""
    label: str = ""
    """What was reviewed, for reports (``app.models:metadata``, ``shop on localhost:5432``)."""

    def table(self, name: QualifiedName) -> Table | None:
        """The table called ``name`` (an unqualified name matches any schema)."""
        for t in self.tables:
            if t.name.name == name.name and (name.schema is None or t.name.schema in (None, name.schema)):
                return t
        return None

    def inserts_per_second(self, table: QualifiedName) -> float | None:
        """The table's average insert rate over the statistics window, when it can be known."""
        t = self.table(table)
        if t is None or t.inserts is None or self.stats_since is None or self.observed_at is None:
            return None
        seconds = (self.observed_at - self.stats_since).total_seconds()
        return t.inserts / seconds if seconds > 0 else None


# --- building a schema from changes ------------------------------------------------------------


def schema_from_changes(
    changes: Iterable[c.Change], *, source: SchemaSource = SchemaSource.MODELS, label: str = ""
) -> Schema:
    """The schema that ``CREATE TABLE``, ``CREATE INDEX`` and ``ADD CONSTRAINT`` changes declare
    (other changes are ignored)."""
    tables: dict[QualifiedName, Table] = {}
    order: list[QualifiedName] = []

    def find(name: QualifiedName) -> QualifiedName | None:
        if name in tables:
            return name
        return next((k for k in order if k.name == name.name and name.schema in (None, k.schema)), None)

    for change in changes:
        if isinstance(change, c.CreateTable):
            tables[change.on] = _table_of(change)
            order.append(change.on)
        elif isinstance(change, c.CreateIndex):
            key = find(change.on)
            if key is not None:
                ix = Index(
                    name=change.name, elements=tuple(_element(e) for e in change.columns), unique=change.unique,
                    method=change.method,
                    predicate=change.where, include=change.include,
                )
                tables[key] = replace(tables[key], indexes=(*tables[key].indexes, ix))
        elif isinstance(change, c.AddConstraint):
            key = find(change.on)
            if key is not None:
                tables[key] = _with_constraint(tables[key], change.constraint)
    return Schema(source=source, tables=tuple(tables[k] for k in order), label=label)


def _element(sql: str) -> str:
    """An index element of the change model (SQL text) as the schema model keeps it: a bare
    column name unquoted; an expression, or a name with options (DESC, an operator class), as is."""
    name = index_element_name(sql)
    return name if name is not None and sql.strip() in (name, quote_ident(name)) else sql


def _table_of(change: c.CreateTable) -> Table:
    columns = tuple(
        Column(col.name, col.type, nullable=col.nullable and not col.primary_key, default=col.default,
               identity=col.identity)
        for col in change.columns
    )
    table = Table(name=change.on, columns=columns, partitioned=change.partition_by is not None)
    for col in change.columns:
        if col.primary_key:
            table = _with_constraint(table, c.Constraint(c.ConstraintKind.PRIMARY_KEY, columns=(col.name,)))
        if col.unique:
            table = _with_constraint(table, c.Constraint(c.ConstraintKind.UNIQUE, columns=(col.name,)))
        if col.references is not None:
            table = _with_constraint(
                table, c.Constraint(c.ConstraintKind.FOREIGN_KEY, columns=(col.name,), references=col.references)
            )
    for constraint in change.constraints:
        table = _with_constraint(table, constraint)
    return table


def _with_constraint(table: Table, k: c.Constraint) -> Table:
    if k.kind is c.ConstraintKind.PRIMARY_KEY:
        columns = tuple(
            replace(col, nullable=False) if col.name in k.columns else col for col in table.columns
        )
        ix = Index(k.using_index or k.name, k.columns, unique=True, primary=True, constraint=k.name)
        return replace(table, columns=columns, primary_key=k.columns, indexes=(*table.indexes, ix))
    if k.kind is c.ConstraintKind.UNIQUE:
        ix = Index(k.using_index or k.name, k.columns, unique=True, constraint=k.name)
        return replace(table, indexes=(*table.indexes, ix))
    if k.kind is c.ConstraintKind.FOREIGN_KEY and k.references is not None:
        fk = ForeignKey(k.name, k.columns, k.references.table, k.references.columns, on_delete=k.on_delete)
        return replace(table, foreign_keys=(*table.foreign_keys, fk))
    return table


def resolve_referenced_columns(schema: Schema) -> Schema:
    """Foreign keys that name no referenced columns reference the primary key: fill them in."""
    tables = []
    for t in schema.tables:
        fks = []
        for fk in t.foreign_keys:
            target = schema.table(fk.references)
            if not fk.referenced_columns and target is not None:
                fk = replace(fk, referenced_columns=target.primary_key)
            fks.append(fk)
        tables.append(replace(t, foreign_keys=tuple(fks)))
    return replace(schema, tables=tuple(tables))


def schema_from_metadata(metadata: Any, *, label: str = "") -> Schema:
    """The schema a SQLAlchemy ``MetaData`` declares, read through the Alembic front end (the same
    changes autogenerate would emit to create it)."""
    from alembic.operations import ops  # lazy: check of a SQL file loads this module, not Alembic

    from .alembic_ops import changes_from_ops  # lazy: SQLAlchemy, as above

    operations: list[Any] = [ops.CreateTableOp.from_table(t) for t in metadata.sorted_tables]
    for table in metadata.sorted_tables:
        operations += [ops.CreateIndexOp.from_index(ix) for ix in sorted(table.indexes, key=lambda i: str(i.name))]
        # Foreign keys Alembic creates after the tables (use_alter, cycles).
        operations += [
            ops.CreateForeignKeyOp.from_constraint(fk)
            for fk in table.foreign_key_constraints
            if getattr(fk, "use_alter", False)
        ]
    schema = schema_from_changes(changes_from_ops(operations), source=SchemaSource.MODELS, label=label)
    return resolve_referenced_columns(schema)


__all__ = [
    "INTEGER_RANGES",
    "Column",
    "ForeignKey",
    "Index",
    "Schema",
    "SchemaSource",
    "SequenceState",
    "Table",
    "comparable_type",
    "integer_type",
    "resolve_referenced_columns",
    "schema_from_changes",
    "schema_from_metadata",
]
