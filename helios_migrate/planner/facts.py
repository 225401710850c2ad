"""What the planner knows about existing tables: one typed interface, :class:`PlannerFacts`,
answered from fixed values (:class:`StaticFacts`), a live server (:class:`LiveFacts`) or the
catalog facts of an impact estimate (:func:`planner_facts`).  ``None`` always means unknown."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..changes import QualifiedName
from ..facts import DatabaseFacts, row_estimate_sql
from ..sqltext import quote_ident
from .sqlgen import sql_name


@dataclass(frozen=True)
class DependentView:
    """A view (or materialized view) that uses a column: what it takes to drop and re-create it."""

    name: str
    materialized: bool
    definition: str
    options: str
    grants: tuple[str, ...]

    @property
    def drop(self) -> str:
        return f"DROP {'MATERIALIZED VIEW' if self.materialized else 'VIEW'} {self.name}"

    @property
    def create(self) -> list[str]:
        options = f" WITH ({self.options})" if self.options else ""
        kind = "MATERIALIZED VIEW" if self.materialized else "VIEW"
        return [f"CREATE {kind} {self.name}{options} AS {self.definition}", *self.grants]


@dataclass(frozen=True)
class ColumnDependents:
    """What hangs on a column besides its NOT NULL, default and plain indexes (read from
    ``pg_constraint``, ``pg_depend``, ``pg_class``): what a type change must carry or respect."""

    primary_key: bool = False
    identity: bool = False
    owned_sequence: str | None = None
    sequence_type: str | None = None
    referenced_by: tuple[str, ...] = ()
    """Foreign keys of other tables (or this one) that reference the column."""
    views: tuple[str, ...] = ()
    partitioned: bool = False
    checks: tuple[tuple[str, str], ...] = ()
    """``(name, pg_get_constraintdef)`` of each CHECK that uses the column."""
    uniques: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """``(name, columns)`` of each UNIQUE constraint that includes the column."""
    foreign_keys: tuple[tuple[str, str], ...] = ()
    """``(name, pg_get_constraintdef)`` of each foreign key from the column."""
    format_type: str | None = None
    """The column's type as ``format_type`` spells it (how a re-run recognises a finished swap)."""
    view_definitions: tuple[DependentView, ...] = ()

    @property
    def blockers(self) -> list[str]:
        """Why the column cannot be swapped for a converted copy without a long lock."""
        out = []
        if self.primary_key:
            out.append("it is (part of) the primary key")
        if self.identity:
            out.append("it is an identity column")
        if self.owned_sequence:
            out.append(f"it owns the sequence {self.owned_sequence}")
        if self.referenced_by:
            out.append(f"foreign keys reference it ({', '.join(self.referenced_by)})")
        if self.views:
            out.append(f"views use it ({', '.join(self.views)})")
        if self.partitioned:
            out.append("the table is partitioned")
        return out


@dataclass(frozen=True)
class ColumnDetails:
    """What a type change carries over from the old column to its converted copy."""

    known: bool = False
    """The column was found (the other fields are facts, not defaults)."""
    not_null: bool = False
    default: str | None = None
    """The default expression (``pg_get_expr``), ``None`` when there is none."""
    indexes: tuple[tuple[str, str], ...] = ()
    """``(name, pg_get_indexdef)`` of each index using the column that is not behind a constraint
    (those are left to the user)."""


class PlannerFacts(Protocol):
    """What the planner asks about existing tables (``None``: unknown, and the planner assumes
    the worst: rows exist, no index covers, no key is known)."""

    def has_rows(self, table: QualifiedName) -> bool | None: ...

    def row_estimate(self, table: QualifiedName) -> int | None: ...

    def covering_index(self, table: QualifiedName, columns: Sequence[str]) -> str | None: ...

    def primary_key(self, table: QualifiedName) -> tuple[str, ...] | None: ...

    def batch_key(self, table: QualifiedName) -> tuple[str, ...] | None:
        """The columns a keyset backfill walks; ``()`` when the table is known to have none."""
        ...

    def partitions(self, table: QualifiedName) -> tuple[QualifiedName, ...] | None: ...

    def index_columns(self, index: QualifiedName) -> tuple[str, ...] | None:
        """The key columns of an existing index, in order (``None``: unknown, or an expression)."""
        ...

    def column_details(self, table: QualifiedName, column: str) -> ColumnDetails: ...

    def column_dependents(self, table: QualifiedName, column: str) -> ColumnDependents: ...


class UnknownFacts:
    """A :class:`PlannerFacts` that knows nothing: the base of the ones that know a part."""

    def has_rows(self, table: QualifiedName) -> bool | None:
        return None

    def row_estimate(self, table: QualifiedName) -> int | None:
        return None

    def covering_index(self, table: QualifiedName, columns: Sequence[str]) -> str | None:
        return None

    def primary_key(self, table: QualifiedName) -> tuple[str, ...] | None:
        return None

    def batch_key(self, table: QualifiedName) -> tuple[str, ...] | None:
        """The primary key when one is known (nothing says the table has no other key)."""
        return self.primary_key(table)

    def partitions(self, table: QualifiedName) -> tuple[QualifiedName, ...] | None:
        return None

    def index_columns(self, index: QualifiedName) -> tuple[str, ...] | None:
        return None

    def column_details(self, table: QualifiedName, column: str) -> ColumnDetails:
        return ColumnDetails()

    def column_dependents(self, table: QualifiedName, column: str) -> ColumnDependents:
        return ColumnDependents()


@dataclass(frozen=True)
class StaticFacts(UnknownFacts):
    """:class:`PlannerFacts` from fixed values (offline planning and tests)."""

    rows: Mapping[str, bool] = field(default_factory=dict)
    indexes: Mapping[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    """Per table, the leading columns of each existing index."""
    keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per table, its primary key columns."""

    def primary_key(self, table: QualifiedName) -> tuple[str, ...] | None:
        return self.keys.get(str(table), self.keys.get(table.name))

    def has_rows(self, table: QualifiedName) -> bool | None:
        return self.rows.get(str(table), self.rows.get(table.name))

    def covering_index(self, table: QualifiedName, columns: Sequence[str]) -> str | None:
        for cols in self.indexes.get(str(table), self.indexes.get(table.name, ())):
            if tuple(cols[: len(columns)]) == tuple(columns):
                return ",".join(cols)
        return None


class LiveFacts(UnknownFacts):
    """:class:`PlannerFacts` read from a live server (plain ``SELECT`` on the catalogs)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        with self._conn.cursor() as cur:
            # No parameters, no placeholder parsing: a table name may hold a "%".
            cur.execute(sql, params or None)
            row = cur.fetchone()
        return None if row is None else row[0]

    def has_rows(self, table: QualifiedName) -> bool | None:
        regclass = _regclass_literal(table)
        if self._one("SELECT to_regclass(%s) IS NOT NULL", (regclass,)) is not True:
            return None
        # One row is enough to know; this reads at most one page.
        return bool(self._one(f"SELECT EXISTS (SELECT 1 FROM {sql_name(table)})", ()))

    def row_estimate(self, table: QualifiedName) -> int | None:
        """PostgreSQL's row estimate (:func:`helios_migrate.facts.row_estimate_sql`, the formula
        every command uses)."""
        value = self._one(
            f"SELECT {row_estimate_sql('c')} FROM pg_class c WHERE c.oid = to_regclass(%s)",
            (_regclass_literal(table),),
        )
        return None if value is None else int(value)

    def covering_index(self, table: QualifiedName, columns: Sequence[str]) -> str | None:
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT c.relname, array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(n, o) "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o)::text[] "
                "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = to_regclass(%s) AND i.indisvalid AND i.indpred IS NULL",
                (_regclass_literal(table),),
            )
            for name, cols in cur.fetchall():
                if tuple(cols[: len(columns)]) == tuple(columns):
                    return str(name)
        return None

    def primary_key(self, table: QualifiedName) -> tuple[str, ...] | None:
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT a.attname FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(n, o) "
                "JOIN pg_attribute a ON a.attnum = k.n "
                "WHERE i.indrelid = to_regclass(%s) AND i.indisprimary AND a.attrelid = i.indrelid "
                "ORDER BY k.o",
                (_regclass_literal(table),),
            )
            cols = tuple(str(r[0]) for r in cur.fetchall())
        return cols or None

    def batch_key(self, table: QualifiedName) -> tuple[str, ...] | None:
        """The primary key, else the smallest valid unique index (no expression, no predicate)
        whose columns are all NOT NULL: keys a keyset backfill can walk without missing a row;
        ``()`` when the table has none, ``None`` when there is no such table."""
        key = self.primary_key(table)
        if key:
            return key
        if self._one("SELECT to_regclass(%s) IS NOT NULL", (_regclass_literal(table),)) is not True:
            return None
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(n, o) "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o)::text[], "
                "(SELECT bool_and(a2.attnotnull) FROM pg_attribute a2 WHERE a2.attrelid = i.indrelid "
                "AND a2.attnum = ANY (i.indkey)) FROM pg_index i WHERE i.indrelid = to_regclass(%s) "
                "AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL "
                "ORDER BY i.indnatts, i.indexrelid",
                (_regclass_literal(table),),
            )
            for cols, not_null in cur.fetchall():
                if not_null:
                    return tuple(str(c_) for c_ in cols)
        return ()


    def partitions(self, table: QualifiedName) -> tuple[QualifiedName, ...] | None:
        """The partitions of a partitioned table, in bound order; ``None`` when it is not one."""
        regclass = _regclass_literal(table)
        if self._one("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)", (regclass,)) is not True:
            return None
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT n.nspname, c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.inhparent = to_regclass(%s) "
                "ORDER BY pg_get_expr(c.relpartbound, c.oid), c.relname",
                (regclass,),
            )
            return tuple(QualifiedName(str(name), str(schema)) for schema, name in cur.fetchall())

    def index_columns(self, index: QualifiedName) -> tuple[str, ...] | None:
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT array(SELECT a.attname FROM unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY k(n, o) "
                "LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o)::text[], "
                "i.indexprs IS NULL FROM pg_index i WHERE i.indexrelid = to_regclass(%s)",
                (_regclass_literal(index),),
            )
            row = cur.fetchone()
        if row is None or not row[1]:
            return None
        return tuple(str(col) for col in row[0])

    def column_dependents(self, table: QualifiedName, column: str) -> ColumnDependents:
        """Keys, identity, sequences, constraints, referencing keys and views on ``column``."""
        regclass = _regclass_literal(table)
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT a.attnum, a.attidentity <> '', c.relkind = 'p' OR c.relispartition, "
                "pg_get_serial_sequence(%s, a.attname), format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid "
                "WHERE a.attrelid = to_regclass(%s) AND a.attname = %s AND NOT a.attisdropped",
                (regclass, regclass, column),
            )
            row = cur.fetchone()
            if row is None:
                return ColumnDependents()
            attnum, identity, partitioned, sequence, type_text = row
            cur.execute(
                "SELECT k.conname, k.contype, pg_get_constraintdef(k.oid), "
                "array(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, o) "
                "JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o)::text[] "
                "FROM pg_constraint k WHERE k.conrelid = to_regclass(%s) AND %s = ANY (k.conkey) "
                "ORDER BY k.conname",
                (regclass, attnum),
            )
            constraints = cur.fetchall()
            cur.execute(
                "SELECT k.conname FROM pg_constraint k WHERE k.contype = 'f' AND "
                "k.confrelid = to_regclass(%s) AND %s = ANY (k.confkey) ORDER BY 1",
                (regclass, attnum),
            )
            referenced_by = tuple(str(r[0]) for r in cur.fetchall())
            cur.execute(
                "SELECT v.oid::regclass::text, v.relkind = 'm', pg_get_viewdef(v.oid, true), "
                "coalesce(array_to_string(v.reloptions, ', '), ''), "
                "coalesce((SELECT array_agg(format('GRANT %%s ON %%s TO %%s', a.privilege_type, "
                "v.oid::regclass, CASE WHEN a.grantee = 0 THEN 'PUBLIC' "
                "ELSE quote_ident(pg_get_userbyid(a.grantee)) END) ORDER BY a.grantee, a.privilege_type) "
                "FROM aclexplode(v.relacl) a WHERE a.grantee <> v.relowner), '{}')::text[] "
                "FROM pg_class v WHERE v.oid IN (SELECT r.ev_class FROM pg_depend d JOIN pg_rewrite r "
                "ON r.oid = d.objid WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = to_regclass(%s) "
                "AND d.refobjsubid = %s AND r.ev_class <> d.refobjid) ORDER BY 1",
                (regclass, attnum),
            )
            view_rows = cur.fetchall()
            views = tuple(str(r[0]) for r in view_rows)
            view_definitions = tuple(
                DependentView(str(name), bool(materialized), str(definition).rstrip().rstrip(";"), str(options),
                              tuple(str(g) for g in grants))
                for name, materialized, definition, options, grants in view_rows
            )
            sequence_type = None
            if sequence:
                cur.execute("SELECT seqtypid::regtype::text FROM pg_sequence WHERE seqrelid = to_regclass(%s)",
                            (sequence,))
                found = cur.fetchone()
                sequence_type = None if found is None else str(found[0])
        return ColumnDependents(
            primary_key=any(kind == "p" for _, kind, _, _ in constraints),
            identity=bool(identity),
            owned_sequence=None if identity or not sequence else str(sequence),
            sequence_type=sequence_type,
            referenced_by=referenced_by,
            views=views,
            partitioned=bool(partitioned),
            checks=tuple((str(n), str(d)) for n, kind, d, _ in constraints if kind == "c"),
            uniques=tuple((str(n), tuple(cols)) for n, kind, _, cols in constraints if kind == "u"),
            foreign_keys=tuple((str(n), str(d)) for n, kind, d, _ in constraints if kind == "f"),
            format_type=str(type_text),
            view_definitions=view_definitions,
        )

    def column_details(self, table: QualifiedName, column: str) -> ColumnDetails:
        """NOT NULL, default expression, and ``(name, definition)`` of each index using the
        column that is not behind a constraint (those are left to the user)."""
        regclass = _regclass_literal(table)
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attnum FROM pg_attribute a "
                "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
                "WHERE a.attrelid = to_regclass(%s) AND a.attname = %s AND NOT a.attisdropped",
                (regclass, column),
            )
            row = cur.fetchone()
            if row is None:
                return ColumnDetails()
            cur.execute(
                "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = to_regclass(%s) AND i.indisvalid AND (%s = ANY (i.indkey::int2[]) "
                "OR pg_get_indexdef(i.indexrelid) ~ ('(^|[^[:alnum:]_\"$])' || %s || '($|[^[:alnum:]_\"$])')) "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) ORDER BY 1",
                (regclass, row[2], re.escape(quote_ident(column))),
            )
            indexes = tuple((str(r[0]), str(r[1])) for r in cur.fetchall())
        return ColumnDetails(True, bool(row[0]), None if row[1] is None else str(row[1]), indexes)


def _regclass_literal(table: QualifiedName) -> str:
    return sql_name(table)


@dataclass(frozen=True)
class _CatalogFacts(UnknownFacts):
    """:class:`PlannerFacts` from the catalog facts read for an impact estimate."""

    facts: DatabaseFacts

    def has_rows(self, table: QualifiedName) -> bool | None:
        return self.facts.has_rows(table)

    def row_estimate(self, table: QualifiedName) -> int | None:
        known = self.facts.table(table)
        return None if known is None else int(known.row_estimate)

    def covering_index(self, table: QualifiedName, columns: Sequence[str]) -> str | None:
        return self.facts.covering_index(table, columns)

    def primary_key(self, table: QualifiedName) -> tuple[str, ...] | None:
        return self.facts.primary_key(table)


def planner_facts(facts: PlannerFacts | DatabaseFacts | None) -> PlannerFacts | None:
    """``facts`` as the planner asks them (the catalog facts of an impact estimate adapted)."""
    if isinstance(facts, DatabaseFacts):
        return _CatalogFacts(facts)
    return facts
