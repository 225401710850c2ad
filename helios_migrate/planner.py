"""Planning: turn the changes a user asked for into lock-safe, re-runnable, reversible steps.

:func:`plan_changes` takes changes (from Alembic operations or SQL), the server version, live
facts about the tables, and a :class:`PlanPolicy`, and returns a :class:`~helios_migrate.plan.Plan`
whose steps follow these rules:

* a step that takes a lock blocking reads or writes on an existing table runs in a short
  transaction of its own with ``lock_timeout`` and retries (``TransactionMode.OWN``);
* work proportional to the table (validation, index builds, backfills) never happens under such a
  lock: ``NOT VALID`` + ``VALIDATE`` in separate transactions, ``CONCURRENTLY`` in autocommit,
  batched keyset backfills;
* every step can run again after an interrupted upgrade (``IF [NOT] EXISTS``, ``done_when``);
* every constraint and index carries an explicit name (PostgreSQL's own default when the model
  gave none), so the inverse can drop it;
* tables created by the same plan are empty and invisible until commit: they keep plain forms.

Each planner is a small function registered for one change class; a change no planner handles
runs as written, in its own short transaction when it locks an existing table.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import changes as c
from .changes import Change, ColumnDef, Constraint, ConstraintKind, QualifiedName
from .config import Config, TableOverride
from .effects import WorkClass
from .knowledge import SchemaLookup, effect_of
from .plan import (
    Backfill,
    ConversionCheck,
    Origin,
    Phase,
    Plan,
    RetryPolicy,
    Step,
    TransactionMode,
    acknowledge,
)
from .sqltext import (
    base_type,
    dollar_quote,
    duration_text,
    index_element_name,
    quote_ident,
    quote_literal,
    quote_qualified,
)
from .sqltext import duration_ms as _ms
from .versions import PgVersion

__all__ = [
    "PlanPolicy",
    "PlannerFacts",
    "StaticFacts",
    "constraint_name",
    "duration_text",
    "index_name",
    "plan_changes",
    "quote_ident",
    "sql_name",
]

NAMEDATALEN = 63

# --- policy and facts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanPolicy:
    """How plans are built; read from ``[tool.helios-migrate]`` by :meth:`from_config`."""

    lock_timeout: str = "2s"
    statement_timeout: str | None = "30s"
    """For short steps; scans (VALIDATE) and index builds run without one."""
    attempts: int = 5
    backoff_s: float = 0.5
    backoff_max_s: float = 10.0
    batch_size: int = 10_000
    pause_ms: int = 50
    index_on_fk: bool = True
    """Build an index on a new foreign key's referencing columns when none covers them."""
    small_tables: tuple[str, ...] = ()
    """Tables exempt from the lock-safe forms (plain DDL in the migration transaction)."""
    small_table_rows: int | None = None
    """Tables estimated below this many rows get the plain forms too (default: off)."""
    table_overrides: Mapping[str, TableOverride] = field(default_factory=dict)
    """Per table (``"orders"`` or ``"public.orders"``), validated by :mod:`helios_migrate.config`."""

    @classmethod
    def from_config(cls, config: Config) -> PlanPolicy:
        """From the configuration: the project-wide timeouts, retries and batches, and the
        planning settings of ``[tool.helios-migrate.autogenerate]``."""
        settings = config.autogenerate
        return cls(
            lock_timeout=config.lock_timeout,
            statement_timeout=config.statement_timeout,
            attempts=max(1, config.lock_retries),
            batch_size=config.backfill_batch_size,
            pause_ms=config.backfill_pause_ms,
            index_on_fk=settings.index_on_fk,
            small_tables=config.tables.small,
            small_table_rows=settings.small_table_rows,
            table_overrides=settings.tables,
        )

    def for_table(self, table: QualifiedName) -> PlanPolicy:
        """This policy with the overrides configured for ``table`` applied."""
        override = self.table_overrides.get(str(table)) or self.table_overrides.get(table.name)
        if override is None:
            return self
        fields: dict[str, Any] = {
            "lock_timeout": override.lock_timeout,
            "statement_timeout": override.statement_timeout,
            "attempts": None if override.lock_retries is None else max(1, override.lock_retries),
            "batch_size": override.backfill_batch_size,
            "pause_ms": override.backfill_pause_ms,
            "index_on_fk": override.index_on_fk,
        }
        return dataclasses.replace(self, **{k: v for k, v in fields.items() if v is not None})

    def retry(self, *, statement_timeout: bool = True) -> RetryPolicy:
        return RetryPolicy(
            lock_timeout_ms=_ms(self.lock_timeout),
            statement_timeout_ms=_ms(self.statement_timeout)
            if statement_timeout and self.statement_timeout
            else None,
            attempts=self.attempts,
            backoff_initial_s=self.backoff_s,
            backoff_max_s=self.backoff_max_s,
        )

    def is_small(self, table: QualifiedName) -> bool:
        return any(
            QualifiedName.parse(p).name == table.name
            and (QualifiedName.parse(p).schema in (None, table.schema))
            for p in self.small_tables
        )


def _below_threshold(table: QualifiedName, ctx: _Ctx) -> bool:
    """Is the table known to hold fewer rows than ``small_table_rows``?"""
    limit = ctx.policy.small_table_rows
    if limit is None or ctx.facts is None:
        return False
    estimate: int | None = None
    if hasattr(ctx.facts, "row_estimate"):
        estimate = ctx.facts.row_estimate(table)
    elif hasattr(ctx.facts, "table"):  # helios_migrate.facts.DatabaseFacts
        known = ctx.facts.table(table)
        estimate = None if known is None else int(known.row_estimate)
    return estimate is not None and estimate < limit


class PlannerFacts(Protocol):
    """What the planner needs to know about existing tables (``None``: unknown)."""

    def has_rows(self, table: QualifiedName) -> bool | None: ...

    def covering_index(self, table: QualifiedName, columns: Sequence[str]) -> str | None: ...

    def primary_key(self, table: QualifiedName) -> tuple[str, ...] | None: ...


@dataclass(frozen=True)
class StaticFacts:
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


class LiveFacts:
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
        """The planner's row estimate (``reltuples``; pages when never analyzed)."""
        value = self._one(
            "SELECT CASE WHEN reltuples >= 0 THEN reltuples::bigint "
            "ELSE (pg_relation_size(oid) / current_setting('block_size')::int) * 100 END "
            "FROM pg_class WHERE oid = to_regclass(%s)",
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
        whose columns are all NOT NULL: keys a keyset backfill can walk without missing a row."""
        key = self.primary_key(table)
        if key:
            return key
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
        return None


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

    def column_details(self, table: QualifiedName, column: str) -> tuple[bool, str | None, tuple[tuple[str, str], ...]]:
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
                return False, None, ()
            cur.execute(
                "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = to_regclass(%s) AND i.indisvalid AND (%s = ANY (i.indkey::int2[]) "
                "OR pg_get_indexdef(i.indexrelid) ~ ('(^|[^[:alnum:]_\"$])' || %s || '($|[^[:alnum:]_\"$])')) "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) ORDER BY 1",
                (regclass, row[2], re.escape(quote_ident(column))),
            )
            indexes = tuple((str(r[0]), str(r[1])) for r in cur.fetchall())
        return bool(row[0]), None if row[1] is None else str(row[1]), indexes


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


def _regclass_literal(table: QualifiedName) -> str:
    return sql_name(table)


# --- SQL text -----------------------------------------------------------------------------------


def sql_name(name: QualifiedName) -> str:
    """A schema-qualified name as SQL text (see :mod:`helios_migrate.sqltext`)."""
    return quote_qualified(name.schema, name.name)


_literal = quote_literal


def _truncate(name: str) -> str:
    return name[:NAMEDATALEN]


def index_name(table: QualifiedName, columns: Sequence[str], *, unique: bool = False) -> str:
    """PostgreSQL's default index name: ``<table>_<cols>_idx`` (``_key`` for a UNIQUE constraint)."""
    cols = "_".join(
        re.sub(r"\W+", "_", index_element_name(col) or col.split()[0]).strip("_") or "expr"
        for col in columns
    )
    return _truncate(f"{table.name}_{cols}_{'key' if unique else 'idx'}")


def constraint_name(table: QualifiedName, constraint: Constraint) -> str:
    """The constraint's name, or PostgreSQL's default for it."""
    if constraint.name:
        return constraint.name
    cols = "_".join(constraint.columns)
    suffix = {
        ConstraintKind.FOREIGN_KEY: "fkey",
        ConstraintKind.UNIQUE: "key",
        ConstraintKind.PRIMARY_KEY: "pkey",
        ConstraintKind.CHECK: "check",
        ConstraintKind.NOT_NULL: "not_null",
        ConstraintKind.EXCLUDE: "excl",
    }[constraint.kind]
    if constraint.kind is ConstraintKind.PRIMARY_KEY or not cols:
        return _truncate(f"{table.name}_{suffix}")
    return _truncate(f"{table.name}_{cols}_{suffix}")


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
    elif k.kind is ConstraintKind.UNIQUE:
        body = f"UNIQUE ({cols})"
    elif k.kind is ConstraintKind.PRIMARY_KEY:
        body = f"PRIMARY KEY ({cols})"
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


def _index_qname(table: QualifiedName, name: str) -> QualifiedName:
    return QualifiedName(name, table.schema)


def _constraint_exists(table: QualifiedName, name: str) -> str:
    return (
        "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = "
        f"to_regclass({_literal(sql_name(table))}) AND conname = {_literal(name)})"
    )


def _column_exists(table: QualifiedName, column: str) -> str:
    return (
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = "
        f"to_regclass({_literal(sql_name(table))}) AND attname = {_literal(column)} AND NOT attisdropped)"
    )


def _changes_of(sql: Iterable[str]) -> tuple[Change, ...]:
    try:
        from .sql_parse import changes_from_sql

        return tuple(ch for s in sql for ch in changes_from_sql(s))
    except Exception:
        return ()


# --- the planner --------------------------------------------------------------------------------


@dataclass
class _Ctx:
    version: PgVersion
    catalog: SchemaLookup | None
    facts: PlannerFacts | None
    policy: PlanPolicy
    new_tables: set[QualifiedName]
    new_indexes: list[c.CreateIndex]
    recreate: Mapping[Change, Sequence[Change]]
    notes: list[str]

    def own(
        self,
        description: str,
        sql: Sequence[str],
        *,
        phase: Phase = Phase.EXPAND,
        inverse: Sequence[str] | None = (),
        reason: str = "",
        done_when: str | None = None,
        scan: bool = False,
        **extra: Any,
    ) -> Step:
        """A step in a short transaction of its own, with lock_timeout and retries."""
        return Step(
            description=description,
            phase=phase,
            sql=tuple(sql),
            changes=_changes_of(sql),
            transaction=TransactionMode.OWN,
            retry=self.policy.retry(statement_timeout=not scan),
            inverse=None if inverse is None else tuple(inverse),
            inverse_transaction=TransactionMode.OWN,
            reason=reason,
            done_when=done_when,
            **extra,
        )

    def has_rows(self, table: QualifiedName) -> bool:
        if self.facts is None:
            return True
        known = self.facts.has_rows(table)
        return True if known is None else known


_Planner = Callable[[Any, _Ctx], list[Step]]
_PLANNERS: dict[type[Change], _Planner] = {}


def _plans(*kinds: type[Change]) -> Callable[[_Planner], _Planner]:
    def register(fn: _Planner) -> _Planner:
        for kind in kinds:
            _PLANNERS[kind] = fn
        return fn

    return register


def plan_changes(
    changes: Sequence[Change],
    version: PgVersion,
    *,
    catalog: SchemaLookup | None = None,
    facts: PlannerFacts | None = None,
    policy: PlanPolicy | None = None,
    recreate: Mapping[Change, Sequence[Change]] | None = None,
    new_tables: Iterable[QualifiedName] = (),
    new_indexes: Iterable[c.CreateIndex] = (),
) -> Plan:
    """The lock-safe plan for ``changes`` on a server of ``version``.

    ``facts`` says whether tables have rows and which indexes exist (unknown: assume rows and no
    index).  ``recreate`` maps a drop (``DropIndex``, ``DropColumn``, ``DropTable``) to the
    changes that re-create what it drops, for the downgrade.  ``new_tables`` are created earlier
    in the same revision (tables created by ``changes`` are added automatically), and
    ``new_indexes`` indexes built elsewhere in it (they can support a new foreign key).
    """
    ctx = _Ctx(
        version=version,
        catalog=catalog,
        facts=facts,
        policy=policy or PlanPolicy(),
        new_tables=set(new_tables) | {ch.on for ch in changes if isinstance(ch, c.CreateTable)},
        new_indexes=[*new_indexes, *(ch for ch in changes if isinstance(ch, c.CreateIndex))],
        recreate=recreate or {},
        notes=[],
    )
    steps: list[Step] = []
    for change in changes:
        steps.extend(plan_one(change, ctx))
    return Plan(steps=tuple(steps), source=tuple(changes), notes=tuple(ctx.notes))


def plan_one(change: Change, ctx: _Ctx) -> list[Step]:
    table = change.table
    if table is not None:
        ctx = dataclasses.replace(ctx, policy=ctx.policy.for_table(table))
    if table is not None and (
        table in ctx.new_tables or ctx.policy.is_small(table) or _below_threshold(table, ctx)
    ):
        return [_as_written(change, ctx, in_migration=True)]
    planner = _PLANNERS.get(type(change))
    if planner is None:
        return [_as_written(change, ctx)]
    return planner(change, ctx)


def _sql_of(change: Change) -> tuple[str, ...]:
    """SQL for a change the planner keeps as written."""
    render = _RENDER.get(type(change))
    if render is None:
        raw = change.sql if isinstance(change, c.RawStatement) else None
        return (raw,) if raw else ()
    return render(change)


def _as_written(change: Change, ctx: _Ctx, *, in_migration: bool = False) -> Step:
    """The change as the user wrote it: in the migration transaction when it locks nothing that
    anyone uses, otherwise in a short transaction of its own."""
    sql = _sql_of(change)
    eff = effect_of(change, ctx.version, ctx.catalog)
    blocking = eff.blocks_reads or eff.blocks_writes
    if in_migration or not blocking:
        return Step(
            description=f"{change.kind.replace('_', ' ')} on {change.table}",
            phase=Phase.EXPAND,
            sql=sql,
            changes=(change,),
            transaction=TransactionMode.MIGRATION,
            inverse=None,
            irreversible_reason="kept as written; its inverse is Alembic's own",
            origin=Origin.AS_WRITTEN,
        )
    return dataclasses.replace(
        ctx.own(
            f"{change.kind.replace('_', ' ')} on {change.table}",
            sql,
            scan=eff.work is not WorkClass.METADATA,
            inverse=None,
            reason=f"takes {eff.strongest.sql_name if eff.strongest else 'a'} lock: "
            "short transaction with lock_timeout",
        ),
        changes=(change,),
        irreversible_reason="kept as written; its inverse is Alembic's own",
        origin=Origin.AS_WRITTEN,
    )


# --- rendering of changes kept as written ------------------------------------------------------

_RENDER: dict[type[Change], Callable[[Any], tuple[str, ...]]] = {
    c.DropNotNull: lambda ch: (
        f"ALTER TABLE {sql_name(ch.on)} ALTER COLUMN {quote_ident(ch.column)} DROP NOT NULL",
    ),
    c.SetDefault: lambda ch: (
        f"ALTER TABLE {sql_name(ch.on)} ALTER COLUMN {quote_ident(ch.column)} SET DEFAULT {ch.default}",
    ),
    c.DropDefault: lambda ch: (
        f"ALTER TABLE {sql_name(ch.on)} ALTER COLUMN {quote_ident(ch.column)} DROP DEFAULT",
    ),
    c.RenameTable: lambda ch: (
        f"ALTER TABLE {sql_name(ch.on)} RENAME TO {quote_ident(ch.new_name)}",
    ),
    c.RenameColumn: lambda ch: (
        f"ALTER TABLE {sql_name(ch.on)} RENAME COLUMN {quote_ident(ch.column)} TO {quote_ident(ch.new_name)}",
    ),
    c.DropConstraint: lambda ch: (
        f"ALTER TABLE {sql_name(ch.on)} DROP CONSTRAINT IF EXISTS {quote_ident(ch.name)}",
    ),
}


# --- NOT NULL -----------------------------------------------------------------------------------


def _not_null_steps(table: QualifiedName, column: str, ctx: _Ctx, why: str) -> list[Step]:
    """NOT NULL on an existing column without holding ACCESS EXCLUSIVE during the scan."""
    t, col = sql_name(table), quote_ident(column)
    name = _truncate(f"{table.name}_{column}_not_null")
    qn = quote_ident(name)
    if ctx.version.major >= 18:
        return [
            ctx.own(
                f"NOT NULL on {table}.{column}, not yet checked for existing rows",
                [f"ALTER TABLE {t} ADD CONSTRAINT {qn} NOT NULL {col} NOT VALID"],
                inverse=[f"ALTER TABLE {t} ALTER COLUMN {col} DROP NOT NULL"],
                inverse_acknowledged=_nullable_again(table, column),
                done_when=_constraint_exists(table, name),
                reason=f"{why}; NOT VALID takes ACCESS EXCLUSIVE for a moment only (PostgreSQL 18)",
            ),
            ctx.own(
                f"validate NOT NULL on {table}.{column}",
                [f"ALTER TABLE {t} VALIDATE CONSTRAINT {qn}"],
                scan=True,
                reason="VALIDATE scans the table under SHARE UPDATE EXCLUSIVE: reads and writes go on",
                on_failure=(f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {qn}",),
                on_failure_description=f"dropped the NOT VALID constraint {name} (rows with NULL in "
                f"{table}.{column} exist; the column stays nullable)",
            ),
        ]
    return [
        ctx.own(
            f"CHECK ({column} IS NOT NULL) on {table}, not yet checked for existing rows",
            [f"ALTER TABLE {t} ADD CONSTRAINT {qn} CHECK ({col} IS NOT NULL) NOT VALID"],
            inverse=[f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {qn}"],
            done_when=_constraint_exists(table, name),
            reason=f"{why}; NOT VALID takes ACCESS EXCLUSIVE for a moment only",
        ),
        ctx.own(
            f"validate CHECK ({column} IS NOT NULL) on {table}",
            [f"ALTER TABLE {t} VALIDATE CONSTRAINT {qn}"],
            scan=True,
            reason="VALIDATE scans the table under SHARE UPDATE EXCLUSIVE: reads and writes go on",
            on_failure=(f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {qn}",),
            on_failure_description=f"dropped the NOT VALID constraint {name} (rows with NULL in "
            f"{table}.{column} exist; the column stays nullable)",
        ),
        ctx.own(
            f"SET NOT NULL on {table}.{column} (proved by the CHECK: no scan), drop the CHECK",
            [
                f"ALTER TABLE {t} ALTER COLUMN {col} SET NOT NULL",
                f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {qn}",
            ],
            inverse=[f"ALTER TABLE {t} ALTER COLUMN {col} DROP NOT NULL"],
            inverse_acknowledged=_nullable_again(table, column),
            reason="a validated CHECK (col IS NOT NULL) lets SET NOT NULL skip its scan (PostgreSQL 12+)",
        ),
    ]


def _nullable_again(table: QualifiedName, column: str) -> Any:
    return acknowledge("HM305", reason=f"undo: {table}.{column} was nullable before this revision")


def _added_dropped(table: QualifiedName, column: str) -> Any:
    return acknowledge("HM303", reason=f"undo: drops {table}.{column}, which this revision added")


_OWN_TRIGGER = "the plan's own sync trigger and its function, dropped in one short transaction"


@_plans(c.SetNotNull)
def _set_not_null(ch: c.SetNotNull, ctx: _Ctx) -> list[Step]:
    return _not_null_steps(ch.on, ch.column, ctx, "SET NOT NULL alone would scan every row under ACCESS EXCLUSIVE")


# --- columns ------------------------------------------------------------------------------------


@_plans(c.AddColumn)
def _add_column(ch: c.AddColumn, ctx: _Ctx) -> list[Step]:
    col = ch.column
    t = sql_name(ch.on)
    eff = effect_of(ch, ctx.version, ctx.catalog)
    drop = f"ALTER TABLE {t} DROP COLUMN IF EXISTS {quote_ident(col.name)}"
    has_rows = ctx.has_rows(ch.on)
    plain = eff.work is WorkClass.METADATA and not eff.rewrites_table
    if plain or (not has_rows and not eff.rewrites_table and col.nullable):
        return [
            ctx.own(
                f"add column {ch.on}.{col.name}",
                [f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {column_sql(col)}"],
                inverse=[drop],
                inverse_acknowledged=_added_dropped(ch.on, col.name),
                reason="catalog-only change: ACCESS EXCLUSIVE for a moment, in a short transaction",
            )
        ]
    if col.identity is not None or col.generated is not None or col.type in {"serial", "bigserial", "smallserial"}:
        ctx.notes.append(
            f"{ch.on}.{col.name}: identity, serial and generated columns are added as written "
            "(they fill every row): consider a plain column with a sequence default and a backfill"
        )
        return [_as_written(ch, ctx)]
    steps = [
        ctx.own(
            f"add column {ch.on}.{col.name} as nullable, without a default",
            [f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {column_sql(col, nullable=True, default=False)}"],
            inverse=[drop],
            inverse_acknowledged=_added_dropped(ch.on, col.name),
            reason=(
                "adding it "
                + ("with a volatile default rewrites the table" if eff.rewrites_table else "NOT NULL scans the table")
                + " under ACCESS EXCLUSIVE; a nullable column without a default is catalog-only"
            ),
        )
    ]
    if col.default is not None:
        steps.append(
            ctx.own(
                f"default {col.default} for new rows of {ch.on}",
                [f"ALTER TABLE {t} ALTER COLUMN {quote_ident(col.name)} SET DEFAULT {col.default}"],
                reason="new rows get the default from now on; existing rows are backfilled next",
            )
        )
    if has_rows:
        steps.append(_backfill_step(ch.on, col.name, col.default, ctx))
    if not col.nullable:
        steps.extend(_not_null_steps(ch.on, col.name, ctx, "the model says NOT NULL"))
    return steps


def _backfill_step(
    table: QualifiedName, column: str, expression: str | None, ctx: _Ctx, *, where: str | None = None
) -> Step:
    fill = Backfill(
        table=table,
        column=column,
        expression=expression or "",
        key=_batch_key(table, ctx),
        where=where,
        batch_size=ctx.policy.batch_size,
        pause_ms=ctx.policy.pause_ms,
    )
    if expression is None:
        ctx.notes.append(
            f"{table}.{column}: NOT NULL without a server_default: existing rows need a value; "
            "fill in the backfill expression in the revision"
        )
    return Step(
        description=f"backfill {table}.{column} in batches",
        phase=Phase.BACKFILL,
        transaction=TransactionMode.AUTOCOMMIT,
        retry=ctx.policy.retry(),
        backfill=fill,
        reason=(
            f"batches of {ctx.policy.batch_size} rows by primary key, each its own transaction, "
            f"{ctx.policy.pause_ms} ms apart: row locks on one batch at a time, never a table lock"
        ),
    )


@_plans(c.DropColumn)
def _drop_column(ch: c.DropColumn, ctx: _Ctx) -> list[Step]:
    t = sql_name(ch.on)
    restore = [r for r in ctx.recreate.get(ch, ()) if isinstance(r, c.AddColumn)]
    inverse: tuple[str, ...] | None = None
    if restore:
        col = restore[0].column
        inverse = (f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {column_sql(col, nullable=True)}",)
    details = getattr(ctx.facts, "column_details", None)
    not_null, default, _ = details(ch.on, ch.column) if details is not None else (False, None, ())
    expand: list[Step] = []
    if not_null and default is None:
        # Code deployed before the contract no longer writes the column: while it still exists,
        # NOT NULL without a default would refuse every insert of that code.
        expand.append(ctx.own(
            f"let {ch.on}.{ch.column} be NULL until it is dropped",
            [f"ALTER TABLE {t} ALTER COLUMN {quote_ident(ch.column)} DROP NOT NULL"],
            inverse=(),
            # Done once the column is nullable -- or gone: a re-run after the drop skips it.
            done_when=(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = "
                f"to_regclass({_literal(sql_name(ch.on))}) AND attname = {_literal(ch.column)} "
                "AND NOT attisdropped AND attnotnull)"
            ),
            reason="expand: code that no longer writes the column can insert before the contract drops it",
            acknowledged=acknowledge(
                "HM305", reason=f"the column is dropped in the contract phase; inserts without {ch.column} must work until then"
            ),
        ))
    return [
        *expand,
        ctx.own(
            f"drop column {ch.on}.{ch.column}",
            [f"ALTER TABLE {t} DROP COLUMN IF EXISTS {quote_ident(ch.column)}"],
            phase=Phase.CONTRACT,
            inverse=inverse,
            irreversible_reason=f"the values of {ch.on}.{ch.column} are gone; downgrade re-creates the column empty"
            + ("" if restore else " (its definition is unknown here)"),
            inverse_loses_data=inverse is not None,
            reason="contract: deploy code that no longer reads or writes the column first",
            acknowledged=acknowledge(
                "HM303", reason=f"contract phase: deploy code that no longer reads {ch.column} first"
            ),
        )
    ]


@_plans(c.DropTable)
def _drop_table(ch: c.DropTable, ctx: _Ctx) -> list[Step]:
    return [
        ctx.own(
            f"drop table {ch.on}",
            [f"DROP TABLE IF EXISTS {sql_name(ch.on)}"],
            phase=Phase.CONTRACT,
            inverse=None,
            irreversible_reason=f"the rows of {ch.on} are gone",
            reason="contract: deploy code that no longer uses the table first",
        )
    ]


@_plans(c.AlterColumnType)
def _alter_type(ch: c.AlterColumnType, ctx: _Ctx) -> list[Step]:
    eff = effect_of(ch, ctx.version, ctx.catalog)
    t, col = sql_name(ch.on), quote_ident(ch.column)
    old = ch.old_type or (ctx.catalog.column_type(ch.on, ch.column) if ctx.catalog else None)
    collate = f" COLLATE {quote_ident(ch.collation)}" if ch.collation else ""
    using = f" USING {ch.using}" if ch.using else ""
    if not eff.rewrites_table and eff.work is WorkClass.METADATA:
        dependents_of = getattr(ctx.facts, "column_dependents", None)
        deps: ColumnDependents = dependents_of(ch.on, ch.column) if dependents_of is not None else ColumnDependents()
        if deps.view_definitions:
            # Catalog-only, but PostgreSQL refuses to change a column that views use: the views are
            # dropped and re-created around it, in the same short transaction.
            return _in_place_type(ch, old, ctx, deps, rewrites=False)
        return [
            ctx.own(
                f"type of {ch.on}.{ch.column} to {ch.new_type}",
                [f"ALTER TABLE {t} ALTER COLUMN {col} TYPE {ch.new_type}{collate}{using}"],
                inverse=None if old is None else [f"ALTER TABLE {t} ALTER COLUMN {col} TYPE {old}"],
                irreversible_reason=None if old is not None else "the old type is unknown",
                reason=f"{eff.notes[0] if eff.notes else 'no rewrite'}: catalog-only, a moment of ACCESS EXCLUSIVE",
                acknowledged=acknowledge("HM204", reason=f"{old} to {ch.new_type} is catalog-only: no rewrite"),
                inverse_acknowledged=acknowledge(
                    "HM204", reason=f"undo: back to {old}; a narrower type scans or rewrites {ch.on}"
                ),
            )
        ]
    return _expand_contract_type(ch, old, ctx)


def _expand_contract_type(ch: c.AlterColumnType, old: str | None, ctx: _Ctx) -> list[Step]:
    """New column + sync trigger + backfill now; the swap in a later contract phase."""
    t, col = sql_name(ch.on), quote_ident(ch.column)
    new_name = _truncate(f"{ch.column}__new")
    new = quote_ident(new_name)
    fn_name = _truncate(f"{ch.on.name}_{ch.column}_sync")
    fn = quote_qualified(ch.on.schema, fn_name)
    trig = quote_ident(_truncate(f"{ch.on.name}_{ch.column}_sync"))
    convert = (ch.using or f"{col}").replace(col, "NEW." + col) if ch.using else f"NEW.{col}"
    expr = ch.using or col
    dependents_of = getattr(ctx.facts, "column_dependents", None)
    deps: ColumnDependents = dependents_of(ch.on, ch.column) if dependents_of is not None else ColumnDependents()
    if deps.blockers:
        return _in_place_type(ch, old, ctx, deps)
    # An explicit cast to the type without its modifier, then assignment to the column: a value
    # too long for varchar(n) is an error (as in a plain ALTER COLUMN TYPE), never truncated.
    base = base_type(ch.new_type)
    details = getattr(ctx.facts, "column_details", None)
    not_null, default, indexes = details(ch.on, ch.column) if details is not None else (False, None, ())
    key = _batch_key(ch.on, ctx)
    rebuilt: list[Step] = []
    swap_extra: list[str] = []
    for name, definition in indexes:
        new_ix = _truncate(f"{name}__new")
        head, _, tail = definition.partition(" USING ")
        unique = "UNIQUE " if head.startswith("CREATE UNIQUE ") else ""
        sql = re.sub(r"^CREATE (UNIQUE )?INDEX \S+ ON ",
                     f"CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS {quote_ident(new_ix)} ON ", head)
        # pg_get_indexdef() spells the column as quote_ident() does.
        sql += " USING " + re.sub(
            rf'(?<![\w"$]){re.escape(col)}(?![\w"$])', lambda _: new, tail
        )
        rebuilt.append(Step(
            description=f"build index {new_ix} on {ch.on}.{new_name} concurrently (replaces {name})",
            phase=Phase.EXPAND, sql=(sql,), changes=_changes_of([sql]), transaction=TransactionMode.AUTOCOMMIT,
            inverse=(f"DROP INDEX CONCURRENTLY IF EXISTS {sql_name(_index_qname(ch.on, new_ix))}",),
            inverse_transaction=TransactionMode.AUTOCOMMIT, index=_index_qname(ch.on, new_ix),
            inverse_retry=ctx.policy.retry(statement_timeout=False),
            reason=f"the converted column needs the index {name} has on {ch.column} before the swap",
        ))
        swap_extra.append(f"ALTER INDEX IF EXISTS {sql_name(_index_qname(ch.on, new_ix))} RENAME TO {quote_ident(name)}")
    if not_null:
        rebuilt[:0] = _not_null_steps(ch.on, new_name, ctx, f"{ch.column} is NOT NULL")
    if default is not None:
        swap_extra.append(f"ALTER TABLE {t} ALTER COLUMN {col} SET DEFAULT {default}")
    carried = _carry_constraints(ch, deps, new, ctx)
    rebuilt += carried.steps
    swap_extra += carried.swap
    check = [] if _always_converts(old, ch.new_type) or ch.using else [Step(
        description=f"check that every value of {ch.on}.{ch.column} converts to {ch.new_type}",
        phase=Phase.EXPAND,
        transaction=TransactionMode.AUTOCOMMIT,
        conversion_check=ConversionCheck(ch.on, ch.column, ch.new_type, tuple(key)),
        reason="reads only; refuses before anything changes, naming the rows that do not fit",
    )]
    undo_expand = (
        f"DROP TRIGGER IF EXISTS {trig} ON {t}",
        f"DROP FUNCTION IF EXISTS {fn}()",
        f"ALTER TABLE {t} DROP COLUMN IF EXISTS {new}",
    )
    way_back = None if old is None else _way_back(
        ch, old, ctx, key=tuple(key), not_null=not_null, default=default, indexes=indexes, deps=deps
    )
    backfill = dataclasses.replace(
        _backfill_step(ch.on, new_name, f"({expr})::{base}", ctx, where=f"{new} IS DISTINCT FROM ({expr})::{base}"),
        on_failure=undo_expand,
        on_failure_description=f"dropped the sync trigger {trig} on {ch.on}, its function and the new column "
        f"{new_name}",
    )
    ctx.notes.append(
        f"{ch.on}.{ch.column} moves to the end of the table's columns with the swap: code that inserts "
        f"without a column list (INSERT INTO {ch.on.name} VALUES (...)) or reads SELECT * by position "
        "must name its columns first"
    )
    steps = [
        *check,
        ctx.own(
            f"add column {ch.on}.{new_name} of type {ch.new_type}",
            [f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {new} {ch.new_type}"],
            inverse=[f"ALTER TABLE {t} DROP COLUMN IF EXISTS {new}"],
            inverse_acknowledged=_added_dropped(ch.on, new_name),
            reason=f"changing the type in place rewrites the table under ACCESS EXCLUSIVE ({ch.column}: "
            f"{old or '?'} -> {ch.new_type}): expand/contract instead",
        ),
        ctx.own(
            f"keep {ch.on}.{new_name} in sync with {ch.column} on every write",
            [
                f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS "
                + dollar_quote(f"BEGIN NEW.{new} := ({convert})::{base}; RETURN NEW; END"),
                f"DROP TRIGGER IF EXISTS {trig} ON {t}",
                f"CREATE TRIGGER {trig} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {fn}()",
            ],
            inverse=[f"DROP TRIGGER IF EXISTS {trig} ON {t}", f"DROP FUNCTION IF EXISTS {fn}()"],
            inverse_acknowledged=acknowledge("HM403", "HM903", reason=f"undo: {_OWN_TRIGGER}"),
            reason="writes by running code reach the new column while the backfill runs",
        ),
        backfill,
        *rebuilt,
        ctx.own(
            f"swap {ch.on}.{ch.column} for the converted column",
            [
                f"DROP TRIGGER IF EXISTS {trig} ON {t}",
                f"DROP FUNCTION IF EXISTS {fn}()",
                f"ALTER TABLE {t} DROP COLUMN {col}",
                f"ALTER TABLE {t} RENAME COLUMN {new} TO {col}",
                *swap_extra,
            ],
            phase=Phase.CONTRACT,
            done_when=f"SELECT NOT ({_column_exists(ch.on, new_name)[7:]})",
            inverse=None if way_back is None else way_back.swap,
            inverse_done_when=None if way_back is None else way_back.done,
            acknowledged=(
                *acknowledge("HM301", "HM303", reason=f"swap: {new_name}, this plan's converted copy, "
                             f"takes the name {ch.column}; deploy code that works with the new type first"),
                *acknowledge("HM403", "HM903", reason=f"swap: {_OWN_TRIGGER} with the renames"),
            ),
            inverse_acknowledged=() if way_back is None else (
                *acknowledge("HM301", reason=f"swap back: {ch.column} takes its old type back by renames"),
                *acknowledge("HM403", "HM903", reason=f"swap back: {_OWN_TRIGGER} with the renames"),
            ),
            irreversible_reason=None if way_back is not None else "the old type is unknown",
            reason="contract: indexes, defaults and NOT NULL of the old column must be re-created "
            "for the new one; deploy code that works with the new type first",
        ),
        *(way_back.steps if way_back is not None else ()),
    ]
    if deps.format_type is None:
        return steps
    # Once the swap is done, a re-run (after a later step of the revision failed) must not start
    # the expand phase again on the swapped column.
    swapped = (
        f"SELECT NOT ({_column_exists(ch.on, new_name)[7:]}) AND EXISTS (SELECT 1 FROM pg_attribute "
        f"WHERE attrelid = to_regclass({_literal(sql_name(ch.on))}) AND attname = {_literal(ch.column)} "
        f"AND NOT attisdropped AND format_type(atttypid, atttypmod) <> {_literal(deps.format_type)})"
    )
    return [
        s if s.phase is Phase.CONTRACT else dataclasses.replace(s, done_when=_either(swapped, s.done_when))
        for s in steps
    ]


def _either(first: str, second: str | None) -> str:
    """A ``done_when`` true when either ``SELECT`` is."""
    return first if second is None else f"SELECT ({first}) OR ({second})"


@dataclass(frozen=True)
class _WayBack:
    """The downgrade of a type change's swap: an expand/contract in reverse."""

    steps: tuple[Step, ...]
    """No SQL going up; their inverses (run in reverse order, before the swap's inverse) re-create
    the old column beside the converted one: check, add, sync trigger, backfill, constraints and
    indexes."""
    swap: tuple[str, ...]
    """The swap back: catalog-only statements in one short transaction."""
    done: str
    """True once the swap back is done (the converted column is named ``<column>__new`` again)."""


def _flipped(step: Step, description: str) -> Step:
    """A step with no SQL going up whose inverse is ``step``: a downgrade runs ``step``."""
    return Step(
        description=description,
        phase=Phase.CONTRACT,
        transaction=step.transaction,
        retry=step.retry,
        inverse=step.sql,
        inverse_transaction=step.transaction,
        inverse_backfill=step.backfill,
        inverse_index=step.index,
        inverse_conversion_check=step.conversion_check,
        inverse_on_failure=step.on_failure,
        inverse_on_failure_description=step.on_failure_description,
        inverse_done_when=step.done_when,
        inverse_acknowledged=step.acknowledged,
    )


def _way_back(
    ch: c.AlterColumnType,
    old: str,
    ctx: _Ctx,
    *,
    key: tuple[str, ...],
    not_null: bool,
    default: str | None,
    indexes: Sequence[tuple[str, str]],
    deps: ColumnDependents,
) -> _WayBack:
    """The reverse expand/contract of a type change: values that do not convert back are refused
    first (naming the rows); then the old column is re-added nullable beside the converted one,
    kept in sync by a trigger, backfilled in time-bounded batches, given its NOT NULL, CHECK and
    FOREIGN KEY constraints (NOT VALID + VALIDATE) and indexes (concurrently), and the swap back
    is catalog-only.  Nothing is lost, so no opt-in is needed; no table-wide UPDATE runs under a
    table lock."""
    t, col = sql_name(ch.on), quote_ident(ch.column)
    new_name = _truncate(f"{ch.column}__new")
    new = quote_ident(new_name)
    old_name = _truncate(f"{ch.column}__old")
    oq = quote_ident(old_name)
    old_base = base_type(old)
    fn_name = _truncate(f"{ch.on.name}_{ch.column}_back")
    fn, trig = quote_qualified(ch.on.schema, fn_name), quote_ident(fn_name)
    done = f"SELECT {_column_exists(ch.on, new_name)[7:]}"

    def once(step: Step) -> Step:
        own = step.done_when
        return dataclasses.replace(step, done_when=done if own is None else f"SELECT ({done}) OR ({own})")

    back = f"({col})::{old_base}"
    undo = (
        f"DROP TRIGGER IF EXISTS {trig} ON {t}",
        f"DROP FUNCTION IF EXISTS {fn}()",
        f"ALTER TABLE {t} DROP COLUMN IF EXISTS {oq}",
    )
    down: list[Step] = []
    if not _always_converts(ch.new_type, old):
        down.append(Step(
            description=f"check that every value of {ch.on}.{ch.column} converts back to {old}",
            phase=Phase.CONTRACT, transaction=TransactionMode.AUTOCOMMIT,
            conversion_check=ConversionCheck(ch.on, ch.column, old, key),
        ))
    down += [
        ctx.own(f"add column {ch.on}.{old_name} of type {old}", [f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {oq} {old}"]),
        ctx.own(
            f"keep {ch.on}.{old_name} in sync with {ch.column} on every write",
            [
                f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS "
                + dollar_quote(f"BEGIN NEW.{oq} := (NEW.{col})::{old_base}; RETURN NEW; END"),
                f"DROP TRIGGER IF EXISTS {trig} ON {t}",
                f"CREATE TRIGGER {trig} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {fn}()",
            ],
        ),
        dataclasses.replace(
            _backfill_step(ch.on, old_name, back, ctx, where=f"{oq} IS DISTINCT FROM {back}"),
            on_failure=undo,
            on_failure_description=f"dropped the sync trigger {fn_name} on {ch.on}, its function and the "
            f"column {old_name}",
        ),
    ]
    if not_null:
        down += _not_null_steps(ch.on, old_name, ctx, f"{ch.column} was NOT NULL")
    swap: list[str] = [f"DROP TRIGGER IF EXISTS {trig} ON {t}", f"DROP FUNCTION IF EXISTS {fn}()"]
    renames: list[str] = []
    for name, definition in indexes:
        temp = _truncate(f"{name}__old")
        head, _, tail = definition.partition(" USING ")
        unique = "UNIQUE " if head.startswith("CREATE UNIQUE ") else ""
        sql = re.sub(r"^CREATE (UNIQUE )?INDEX \S+ ON ",
                     f"CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS {quote_ident(temp)} ON ", head)
        sql += " USING " + re.sub(rf'(?<![\w"$]){re.escape(col)}(?![\w"$])', lambda _: oq, tail)
        down.append(Step(
            description=f"build index {temp} on {ch.on}.{old_name} concurrently (for {name})",
            phase=Phase.CONTRACT, sql=(sql,), transaction=TransactionMode.AUTOCOMMIT,
            index=_index_qname(ch.on, temp),
        ))
        renames += [
            f"ALTER INDEX IF EXISTS {sql_name(_index_qname(ch.on, name))} RENAME TO {quote_ident(_truncate(f'{name}__new'))}",
            f"ALTER INDEX IF EXISTS {sql_name(_index_qname(ch.on, temp))} RENAME TO {quote_ident(name)}",
        ]

    def on_old(text: str) -> str:
        return re.sub(rf'(?<![\w"$]){re.escape(col)}(?![\w"$])', lambda _: oq, text)

    for name, definition in (*deps.checks, *deps.foreign_keys):
        temp = _truncate(f"{name}__old")
        body = definition.removesuffix(" NOT VALID")
        head, sep, tail = body.partition(" REFERENCES ")
        qt = quote_ident(temp)
        down += [
            ctx.own(
                f"constraint {temp} on {ch.on}.{old_name}, not yet checked for existing rows",
                [f"ALTER TABLE {t} ADD CONSTRAINT {qt} {on_old(head) + sep + tail} NOT VALID"],
                done_when=_constraint_exists(ch.on, temp),
            ),
            ctx.own(
                f"validate {temp} on {ch.on}", [f"ALTER TABLE {t} VALIDATE CONSTRAINT {qt}"], scan=True,
                on_failure=(f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {qt}",),
                on_failure_description=f"dropped the NOT VALID constraint {temp} (rows violate it)",
            ),
        ]
        renames += [
            f"ALTER TABLE {t} RENAME CONSTRAINT {quote_ident(name)} TO {quote_ident(_truncate(f'{name}__new'))}",
            f"ALTER TABLE {t} RENAME CONSTRAINT {qt} TO {quote_ident(name)}",
        ]
    for name, columns in deps.uniques:
        temp = _truncate(f"{name}__old")
        cols = ", ".join(oq if c_ == ch.column else quote_ident(c_) for c_ in columns)
        down.append(Step(
            description=f"build unique index {temp} on {ch.on}.{old_name} concurrently (for {name})",
            phase=Phase.CONTRACT, transaction=TransactionMode.AUTOCOMMIT, index=_index_qname(ch.on, temp),
            sql=(f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {quote_ident(temp)} ON {t} ({cols})",),
        ))
        swap.append(f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {quote_ident(name)}")
        renames.append(f"ALTER TABLE {t} ADD CONSTRAINT {quote_ident(name)} UNIQUE USING INDEX {quote_ident(temp)}")
    swap += [f"ALTER TABLE {t} RENAME COLUMN {col} TO {new}", f"ALTER TABLE {t} RENAME COLUMN {oq} TO {col}"]
    if default is not None:
        swap += [f"ALTER TABLE {t} ALTER COLUMN {new} DROP DEFAULT", f"ALTER TABLE {t} ALTER COLUMN {col} SET DEFAULT {default}"]
    if not_null:
        # Code of the old version inserts without the converted column: it must accept NULL.
        swap.append(f"ALTER TABLE {t} ALTER COLUMN {new} DROP NOT NULL")
    swap += renames
    steps = [_flipped(once(s), f"{ch.on}.{ch.column} back to {old}: {s.description}") for s in down]
    return _WayBack(steps=tuple(reversed(steps)), swap=tuple(swap), done=done)


def _batch_key(table: QualifiedName, ctx: _Ctx) -> tuple[str, ...]:
    """The columns a batched backfill of ``table`` walks: its primary key, else a unique index on
    NOT NULL columns.  A table known to have neither is refused: batches cannot be bounded."""
    if ctx.facts is None:
        return ("id",)
    find = getattr(ctx.facts, "batch_key", None) or ctx.facts.primary_key
    key = find(table)
    if key:
        return tuple(key)
    if getattr(ctx.facts, "batch_key", None) is not None and ctx.facts.has_rows(table) is not None:
        raise _refusal(
            f"{table} has no primary key and no unique index on NOT NULL columns, so its rows "
            "cannot be updated in bounded batches. Add one first, in a revision of its own: a "
            f"UNIQUE index built concurrently on NOT NULL columns (CREATE UNIQUE INDEX CONCURRENTLY "
            f"... ON {table} (...)) or a primary key; then run autogenerate again"
        )
    ctx.notes.append(f"{table}: no primary key known; the backfill assumes a key column id")
    return ("id",)


class PlanRefused(ValueError):
    """No lock-safe plan exists for a change as the table stands; the message says what to add."""


def _refusal(message: str) -> PlanRefused:
    """A :class:`PlanRefused` that Alembic's command line also reports without a traceback."""
    try:
        from alembic.util import CommandError
    except ImportError:  # pragma: no cover - alembic is a dependency
        return PlanRefused(message)

    class Refused(PlanRefused, CommandError):
        pass

    return Refused(message)


_WIDENINGS = {
    ("smallint", "integer"), ("smallint", "bigint"), ("integer", "bigint"),
    ("real", "double precision"), ("date", "timestamp with time zone"),
}


def _always_converts(old: str | None, new: str) -> bool:
    """Conversions no value can fail (the check's scan is skipped for them)."""
    if old is None:
        return False
    aliases = {"int": "integer", "int4": "integer", "int8": "bigint", "int2": "smallint",
               "float8": "double precision", "float4": "real", "timestamptz": "timestamp with time zone"}
    a, b = (aliases.get(x.strip().lower(), x.strip().lower()) for x in (old, new))
    return (a, b) in _WIDENINGS or b == "text" or a == b


def _in_place_type(
    ch: c.AlterColumnType, old: str | None, ctx: _Ctx, deps: ColumnDependents, *, rewrites: bool = True
) -> list[Step]:
    """A type change that a converted copy cannot take over: in place, the lock stated plainly."""
    t, col = sql_name(ch.on), quote_ident(ch.column)
    using = f" USING {ch.using}" if ch.using else ""
    why = "; ".join(deps.blockers)
    # PostgreSQL refuses to change the type of a column a view uses: the views are dropped and
    # re-created, with their options and grants, in the same short transaction.
    views = deps.view_definitions
    drops = [v.drop for v in reversed(views)]
    creates = [statement for v in views for statement in v.create]
    sql = [*drops, f"ALTER TABLE {t} ALTER COLUMN {col} TYPE {ch.new_type}{using}", *creates]
    if deps.owned_sequence and base_type(ch.new_type).lower() in ("bigint", "int8") and deps.sequence_type != "bigint":
        # A serial's sequence stays AS integer when its column is widened: it would still end at 2^31.
        sql.append(f"ALTER SEQUENCE {deps.owned_sequence} AS bigint")
    if any(v.materialized for v in views):
        ctx.notes.append(
            f"{ch.on}.{ch.column}: the materialized view(s) "
            f"{', '.join(v.name for v in views if v.materialized)} are re-created and filled again in the "
            "same transaction, under the same lock"
        )
    if rewrites:
        ctx.notes.append(
            f"{ch.on}.{ch.column}: the type change runs in place -- it rewrites the table under ACCESS "
            f"EXCLUSIVE, blocking reads and writes while it runs -- because {why}: a converted copy "
            "could not take over keys, sequences, referencing keys or views without dropping them. Run "
            "it when the table is quiet, or raise statement_timeout for this step on a large table."
        )
    else:
        ctx.notes.append(
            f"{ch.on}.{ch.column}: catalog-only type change; {why}, so they are dropped and re-created "
            "around it in the same short transaction (a moment of ACCESS EXCLUSIVE)"
        )
    return [
        ctx.own(
            f"type of {ch.on}.{ch.column} to {ch.new_type}, in place",
            sql,
            # USING: going back may need an explicit cast (text -> integer has no automatic one).
            inverse=None if old is None else [
                *drops, f"ALTER TABLE {t} ALTER COLUMN {col} TYPE {old} USING {col}::{old}", *creates
            ],
            irreversible_reason=None if old is not None else "the old type is unknown",
            reason=f"in place because {why}" + (" (rewrites the table under ACCESS EXCLUSIVE)" if rewrites else " (catalog-only)"),
        )
    ]


@dataclass(frozen=True)
class _Carried:
    steps: list[Step]
    swap: list[str]
    unswap: list[str]
    restore: list[str]


def _carry_constraints(ch: c.AlterColumnType, deps: ColumnDependents, new: str, ctx: _Ctx) -> _Carried:
    """CHECK, UNIQUE and FOREIGN KEY constraints of the old column, built on the converted one
    (NOT VALID + VALIDATE, or a unique index built concurrently) and renamed by the swap."""
    t, col = sql_name(ch.on), quote_ident(ch.column)
    steps: list[Step] = []
    swap: list[str] = []
    unswap: list[str] = []
    restore: list[str] = []

    def on_new(text: str) -> str:
        return re.sub(rf'(?<![\w"$]){re.escape(col)}(?![\w"$])', lambda _: new, text)

    def validated(name: str, definition: str, what: str) -> None:
        temp = _truncate(f"{name}__new")
        qt, drop = quote_ident(temp), f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {quote_ident(temp)}"
        steps.append(ctx.own(
            f"{what} {temp} on {ch.on}.{new}, not yet checked for existing rows",
            [f"ALTER TABLE {t} ADD CONSTRAINT {qt} {definition} NOT VALID"],
            inverse=[drop], done_when=_constraint_exists(ch.on, temp),
            reason=f"the converted column keeps {name}; NOT VALID holds the lock for a moment only",
        ))
        steps.append(ctx.own(
            f"validate {temp} on {ch.on}", [f"ALTER TABLE {t} VALIDATE CONSTRAINT {qt}"], scan=True,
            reason="VALIDATE scans under SHARE UPDATE EXCLUSIVE: reads and writes go on",
            on_failure=(drop,),
            on_failure_description=f"dropped the NOT VALID constraint {temp} (existing rows violate it)",
        ))
        swap.append(f"ALTER TABLE {t} RENAME CONSTRAINT {qt} TO {quote_ident(name)}")
        unswap.append(f"ALTER TABLE {t} RENAME CONSTRAINT {quote_ident(name)} TO {qt}")

    for name, definition in deps.checks:
        body = definition.removesuffix(" NOT VALID")
        validated(name, on_new(body), "CHECK")
        restore.append(f"ALTER TABLE {t} ADD CONSTRAINT {quote_ident(name)} {body}")
    for name, definition in deps.foreign_keys:
        body = definition.removesuffix(" NOT VALID")
        head, sep, tail = body.partition(" REFERENCES ")
        validated(name, on_new(head) + sep + tail, "FOREIGN KEY")
        restore.append(f"ALTER TABLE {t} ADD CONSTRAINT {quote_ident(name)} {body}")
    for name, columns in deps.uniques:
        temp = _truncate(f"{name}__new")
        cols = ", ".join(new if c_ == ch.column else quote_ident(c_) for c_ in columns)
        index = _index_qname(ch.on, temp)
        sql = f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {quote_ident(temp)} ON {t} ({cols})"
        steps.append(Step(
            description=f"build unique index {temp} on {ch.on}.{new} concurrently (for {name})",
            phase=Phase.EXPAND, sql=(sql,), changes=_changes_of([sql]), transaction=TransactionMode.AUTOCOMMIT,
            inverse=(f"DROP INDEX CONCURRENTLY IF EXISTS {sql_name(index)}",),
            inverse_transaction=TransactionMode.AUTOCOMMIT, index=index,
            reason=f"the converted column keeps the UNIQUE constraint {name}; the swap adopts this index",
        ))
        swap.append(f"ALTER TABLE {t} ADD CONSTRAINT {quote_ident(name)} UNIQUE USING INDEX {quote_ident(temp)}")
        unswap.append(f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {quote_ident(name)}")
        original = ", ".join(quote_ident(c_) for c_ in columns)
        restore.append(f"ALTER TABLE {t} ADD CONSTRAINT {quote_ident(name)} UNIQUE ({original})")
    return _Carried(steps, swap, unswap, restore)


# --- constraints --------------------------------------------------------------------------------


@_plans(c.AddConstraint)
def _add_constraint(ch: c.AddConstraint, ctx: _Ctx) -> list[Step]:
    k = ch.constraint
    name = constraint_name(ch.on, k)
    t, qn = sql_name(ch.on), quote_ident(name)
    drop = f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {qn}"
    undone = acknowledge("HM309", reason=f"undo: drops {name}, which this revision added") \
        if k.kind in (ConstraintKind.FOREIGN_KEY, ConstraintKind.UNIQUE) else ()
    partitioned = bool(_partitions(ch.on, ctx))
    plain_reason = ""
    if partitioned and k.kind in (ConstraintKind.UNIQUE, ConstraintKind.PRIMARY_KEY):
        plain_reason = (
            "a UNIQUE or PRIMARY KEY constraint cannot adopt an index built concurrently on a "
            "partitioned table (USING INDEX is refused there)"
        )
    elif partitioned and k.kind is ConstraintKind.FOREIGN_KEY and ctx.version.major < 18:
        plain_reason = f"PostgreSQL {ctx.version} cannot add a NOT VALID foreign key to a partitioned table (18 can)"
    if plain_reason:
        ctx.notes.append(
            f"{ch.on}.{name}: added in one step because {plain_reason}: it checks every row while "
            "it holds a lock that blocks writes (SHARE ROW EXCLUSIVE for a foreign key, SHARE for a "
            "unique index build); run it when the table is quiet"
        )
        support = _fk_index(ch, ctx) if k.kind is ConstraintKind.FOREIGN_KEY and ctx.policy.index_on_fk else []
        return [*support, ctx.own(
            f"{k.kind.value} {name} on the partitioned table {ch.on}",
            [f"ALTER TABLE {t} ADD CONSTRAINT {qn} {constraint_body(dataclasses.replace(k, name=name))}"],
            inverse=[drop], done_when=_constraint_exists(ch.on, name), scan=True, inverse_acknowledged=undone,
            reason=f"in one step: {plain_reason}",
        )]
    if k.kind in (ConstraintKind.UNIQUE, ConstraintKind.PRIMARY_KEY):
        ix = c.CreateIndex(
            on=ch.on, name=name, columns=tuple(quote_ident(x) for x in k.columns), unique=True,
            concurrently=True,
        )
        kind = "PRIMARY KEY" if k.kind is ConstraintKind.PRIMARY_KEY else "UNIQUE"
        return [
            _create_index_step(ix, name, ctx, reason=f"the {kind} constraint adopts this index next, "
                               "so its build does not hold a lock that blocks writes"),
            ctx.own(
                f"{kind} constraint {name} on {ch.on} using the index",
                [f"ALTER TABLE {t} ADD CONSTRAINT {qn} {kind} USING INDEX {qn}"
                 + (" DEFERRABLE" if k.deferrable else "")],
                inverse=[drop],
                inverse_acknowledged=undone,
                done_when=_constraint_exists(ch.on, name),
                reason="USING INDEX adopts the built index: ACCESS EXCLUSIVE for a moment only",
            ),
        ]
    if k.kind in (ConstraintKind.FOREIGN_KEY, ConstraintKind.CHECK) and not k.not_valid and k.enforced:
        steps: list[Step] = []
        if k.kind is ConstraintKind.FOREIGN_KEY and ctx.policy.index_on_fk:
            steps.extend(_fk_index(ch, ctx))
        body = constraint_body(dataclasses.replace(k, name=name))
        steps += [
            ctx.own(
                f"{k.kind.value} {name} on {ch.on}, not yet checked for existing rows",
                [f"ALTER TABLE {t} ADD CONSTRAINT {qn} {body} NOT VALID"],
                inverse=[drop],
                inverse_acknowledged=undone,
                done_when=_constraint_exists(ch.on, name),
                reason="NOT VALID skips the check of existing rows, so the lock is held for a moment"
                + (" (on both tables)" if k.kind is ConstraintKind.FOREIGN_KEY else ""),
            ),
            ctx.own(
                f"validate {name} on {ch.on}",
                [f"ALTER TABLE {t} VALIDATE CONSTRAINT {qn}"],
                scan=True,
                reason="in its own transaction: VALIDATE takes SHARE UPDATE EXCLUSIVE, reads and writes go on",
                on_failure=(drop,),
                on_failure_description=f"dropped the NOT VALID constraint {name} (existing rows violate it)",
            ),
        ]
        return steps
    step = ctx.own(
        f"{k.kind.value} {name} on {ch.on}",
        [f"ALTER TABLE {t} ADD CONSTRAINT {qn} {constraint_body(k)}" + (" NOT VALID" if k.not_valid else "")],
        inverse=[drop],
        done_when=_constraint_exists(ch.on, name),
    )
    return [step]


def _fk_index(ch: c.AddConstraint, ctx: _Ctx) -> list[Step]:
    cols = ch.constraint.columns
    for ix in ctx.new_indexes:
        named = tuple(index_element_name(x) for x in ix.columns[: len(cols)])
        if ix.on == ch.on and named == tuple(cols):
            return []
    if ctx.facts is not None and ctx.facts.covering_index(ch.on, cols) is not None:
        return []
    name = index_name(ch.on, cols)
    ctx.notes.append(
        f"{ch.on}: index {name} supports the new foreign key (deletes and updates on the referenced "
        "table would otherwise scan it); autogenerate keeps it while the models declare no index on "
        f"({', '.join(cols)}); to declare it, keep its name:\n{_model_index_code(name, cols)}"
    )
    ix = c.CreateIndex(on=ch.on, name=name, columns=tuple(quote_ident(x) for x in cols), concurrently=True)
    return _index_steps(ix, name, ctx, reason="no index covers the foreign key's columns")


def _model_index_code(name: str, columns: Sequence[str]) -> str:
    """The SQLAlchemy model line that declares index ``name`` on ``columns``."""
    return "sa.Index(" + ", ".join(json.dumps(x) for x in (name, *columns)) + ")"


# --- indexes ------------------------------------------------------------------------------------


def _create_index_step(ix: c.CreateIndex, name: str, ctx: _Ctx, *, reason: str = "") -> Step:
    qname = _index_qname(ix.on, name)
    sql = create_index_sql(ix, name, concurrently=True)
    return Step(
        description=f"build index {name} on {ix.on} concurrently",
        phase=Phase.EXPAND,
        sql=(sql,),
        changes=_changes_of([sql]),
        transaction=TransactionMode.AUTOCOMMIT,
        inverse=(f"DROP INDEX CONCURRENTLY IF EXISTS {sql_name(qname)}",),
        inverse_transaction=TransactionMode.AUTOCOMMIT,
        index=qname,
        reason=reason or "CONCURRENTLY builds without blocking writes; it cannot run in a transaction",
        inverse_retry=ctx.policy.retry(statement_timeout=False),
    )


@_plans(c.CreateIndex)
def _create_index(ch: c.CreateIndex, ctx: _Ctx) -> list[Step]:
    name = ch.name or index_name(ch.on, ch.columns)
    return _index_steps(ch, name, ctx)


def _partitions(table: QualifiedName, ctx: _Ctx) -> tuple[QualifiedName, ...] | None:
    """The partitions of ``table`` when it is partitioned (``None``: not partitioned, or unknown)."""
    lookup = getattr(ctx.facts, "partitions", None)
    return lookup(table) if lookup is not None else None


def _index_steps(ix: c.CreateIndex, name: str, ctx: _Ctx, *, reason: str = "") -> list[Step]:
    """The index built without blocking writes; on a partitioned table (where CONCURRENTLY is
    refused) as PostgreSQL documents it: an index ON ONLY the parent, each partition's index built
    concurrently, then attached -- the parent's index is valid once every partition has one."""
    partitions = _partitions(ix.on, ctx)
    if not partitions:
        return [_create_index_step(ix, name, ctx, reason=reason)]
    qname = _index_qname(ix.on, name)
    parent = create_index_sql(ix, name, concurrently=False, only=True)
    valid = (
        "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = "
        f"to_regclass({_literal(sql_name(qname))}) AND indisvalid)"
    )
    steps = [
        ctx.own(
            f"index {name} on only the partitioned table {ix.on} (valid once every partition has one)",
            [parent],
            inverse=[f"DROP INDEX IF EXISTS {sql_name(qname)}"],
            done_when=valid,
            reason="ON ONLY builds nothing: the partitions' indexes are built concurrently next",
        )
    ]
    attach = []
    for number, part in enumerate(partitions, start=1):
        part_name = _truncate(f"{name}_p{number}")
        part_ix = dataclasses.replace(ix, on=part, name=part_name)
        steps.append(dataclasses.replace(
            _create_index_step(part_ix, part_name, ctx, reason=f"partition {part} of {ix.on}"),
            done_when=valid, inverse=(),
        ))
        attach.append(f"ALTER INDEX {sql_name(qname)} ATTACH PARTITION {sql_name(_index_qname(part, part_name))}")
    steps.append(ctx.own(
        f"attach the partitions' indexes to {name}", attach, done_when=valid,
        reason="attaching takes a moment's lock on each index; the parent index becomes valid",
    ))
    ctx.notes.append(
        f"{ix.on} is partitioned: its index is built partition by partition "
        f"({len(partitions)} partition(s) known now; partitions added later get it automatically)"
    )
    return steps


@_plans(c.DropIndex)
def _drop_index(ch: c.DropIndex, ctx: _Ctx) -> list[Step]:
    restore = [r for r in ctx.recreate.get(ch, ()) if isinstance(r, c.CreateIndex)]
    inverse: tuple[str, ...] | None = None
    inverse_index = None
    if restore:
        ix = restore[0]
        name = ix.name or ch.index.name
        inverse = (create_index_sql(ix, name, concurrently=True),)
        inverse_index = _index_qname(ix.on, name)
    table = restore[0].on if restore else (ctx.catalog.index_table(ch.index) if ctx.catalog is not None else None)
    if table is not None and _partitions(table, ctx):
        # DROP INDEX CONCURRENTLY is refused on a partitioned index: a plain drop, in a short
        # transaction with lock_timeout (it takes ACCESS EXCLUSIVE on the parent and each partition
        # for the moment of the catalog change), rebuilt partition by partition on the way back.
        # The way back builds it again in one statement (it blocks writes while it builds).
        rebuild = [create_index_sql(restore[0], ch.index.name, concurrently=False)] if restore else None
        return [
            ctx.own(
                f"drop index {ch.index} of the partitioned table {table}",
                [f"DROP INDEX IF EXISTS {sql_name(ch.index)}"],
                phase=Phase.CONTRACT,
                inverse=rebuild,
                irreversible_reason=None if rebuild else "the index definition is unknown",
                reason="CONCURRENTLY is refused on a partitioned index: ACCESS EXCLUSIVE for a moment",
            )
        ]
    return [
        Step(
            description=f"drop index {ch.index} concurrently",
            phase=Phase.CONTRACT,
            sql=(f"DROP INDEX CONCURRENTLY IF EXISTS {sql_name(ch.index)}",),
            changes=_changes_of([f"DROP INDEX CONCURRENTLY IF EXISTS {sql_name(ch.index)}"]),
            transaction=TransactionMode.AUTOCOMMIT,
            inverse=inverse,
            inverse_transaction=TransactionMode.AUTOCOMMIT,
            inverse_index=inverse_index,
            irreversible_reason=None if restore else "the index definition is unknown",
            reason="CONCURRENTLY waits for running queries instead of blocking them; its last "
            "moment takes ACCESS EXCLUSIVE on the index: lock_timeout and retries",
            retry=ctx.policy.retry(statement_timeout=False),
        )
    ]


@_plans(c.AddEnumValue)
def _add_enum_value(ch: c.AddEnumValue, ctx: _Ctx) -> list[Step]:
    where = ""
    if ch.before:
        where = f" BEFORE {_literal(ch.before)}"
    elif ch.after:
        where = f" AFTER {_literal(ch.after)}"
    sql = f"ALTER TYPE {sql_name(ch.name)} ADD VALUE IF NOT EXISTS {_literal(ch.value)}{where}"
    return [
        Step(
            description=f"add value {ch.value!r} to enum {ch.name}",
            phase=Phase.EXPAND,
            sql=(sql,),
            changes=_changes_of([sql]),
            transaction=TransactionMode.AUTOCOMMIT,
            retry=ctx.policy.retry(),
            inverse=None,
            irreversible_reason="PostgreSQL cannot remove a value from an enum type",
            reason="a new enum value cannot be used in the transaction that adds it: committed on its own",
        )
    ]


# --- renames ------------------------------------------------------------------------------------

RENAME_STRATEGIES = ("expand-contract", "rename-with-view")


def _context(
    version: PgVersion,
    catalog: SchemaLookup | None,
    facts: PlannerFacts | None,
    policy: PlanPolicy | None,
) -> _Ctx:
    return _Ctx(version, catalog, facts, policy or PlanPolicy(), set(), [], {}, [])


def plan_column_rename(
    table: QualifiedName,
    old: ColumnDef,
    new: ColumnDef,
    version: PgVersion,
    *,
    strategy: str = "expand-contract",
    catalog: SchemaLookup | None = None,
    facts: PlannerFacts | None = None,
    policy: PlanPolicy | None = None,
) -> Plan:
    """A column renamed from ``old`` to ``new`` without losing a value.

    ``expand-contract``: add ``new``, a trigger keeping both columns equal on every write (old code
    writing ``old``, new code writing ``new``), a batched backfill, NOT NULL through the lock-safe
    path when the model asks for it; the contract phase drops the trigger and ``old``.  Downgrade
    re-creates ``old`` and copies the values back in batches (nothing is lost).

    ``rename-with-view``: ``RENAME COLUMN`` in a short transaction, as a contract step (code using
    the old name breaks at once).  A compatibility view cannot stand in for a column of a table
    that keeps its name, so no view is made for a column.
    """
    if strategy not in RENAME_STRATEGIES:
        raise ValueError(f"unknown rename strategy {strategy!r}")
    ctx = _context(version, catalog, facts, policy)
    t, o, n = sql_name(table), quote_ident(old.name), quote_ident(new.name)
    what = f"{table}.{old.name} renamed to {new.name}"
    if strategy == "rename-with-view":
        steps = [
            ctx.own(
                f"rename column {table}.{old.name} to {new.name}",
                [f"ALTER TABLE {t} RENAME COLUMN {o} TO {n}"],
                phase=Phase.CONTRACT,
                inverse=[f"ALTER TABLE {t} RENAME COLUMN {n} TO {o}"],
                acknowledged=acknowledge("HM301", reason=f"contract phase: deploy code that uses {new.name} with it"),
                inverse_acknowledged=acknowledge("HM301", reason=f"undo: {old.name} gets its name back"),
                done_when=f"SELECT {_column_exists(table, new.name)[7:]}",
                reason="catalog-only, ACCESS EXCLUSIVE for a moment; code using the old name breaks "
                "at once (a column has no compatibility view): deploy code using the new name with it",
            )
        ]
        ctx.notes.append(f"{what}: rename in place (rename_strategy = \"rename-with-view\")")
        return Plan(steps=tuple(steps), notes=tuple(ctx.notes))
    fn_name = _truncate(f"{table.name}_{old.name}_{new.name}_sync")
    fn = quote_qualified(table.schema, fn_name)
    trig = quote_ident(fn_name)
    function = (
        f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS "
    ) + dollar_quote(
        "BEGIN "
        f"IF TG_OP = 'INSERT' THEN "
        f"IF NEW.{n} IS NULL THEN NEW.{n} := NEW.{o}; ELSIF NEW.{o} IS NULL THEN NEW.{o} := NEW.{n}; END IF; "
        f"ELSIF NEW.{n} IS DISTINCT FROM OLD.{n} THEN NEW.{o} := NEW.{n}; "
        f"ELSIF NEW.{o} IS DISTINCT FROM OLD.{o} THEN NEW.{n} := NEW.{o}; "
        # Neither written: fill whichever side the backfill has not reached yet (the new column
        # on upgrade, the re-created old one on downgrade).
        f"ELSIF NEW.{n} IS NULL THEN NEW.{n} := NEW.{o}; "
        f"ELSIF NEW.{o} IS NULL THEN NEW.{o} := NEW.{n}; END IF; RETURN NEW; END"
    )
    sync = [
        function,
        f"DROP TRIGGER IF EXISTS {trig} ON {t}",
        f"CREATE TRIGGER {trig} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {fn}()",
    ]
    unsync = [f"DROP TRIGGER IF EXISTS {trig} ON {t}", f"DROP FUNCTION IF EXISTS {fn}()"]
    new_plain = dataclasses.replace(new, nullable=True, default=None)
    fill = dict(key=_batch_key(table, ctx), batch_size=ctx.policy.batch_size, pause_ms=ctx.policy.pause_ms)
    steps = [
        ctx.own(
            f"add column {table}.{new.name} (renamed from {old.name})",
            [f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {column_sql(new_plain)}"],
            inverse=[f"ALTER TABLE {t} DROP COLUMN IF EXISTS {n}"],
            inverse_acknowledged=_added_dropped(table, new.name),
            reason=f"{what}: expand/contract keeps every value and lets old and new code run side by side",
        ),
        ctx.own(
            f"keep {table}.{old.name} and {new.name} equal on every write",
            sync,
            inverse=unsync,
            inverse_acknowledged=acknowledge("HM403", "HM903", reason=f"undo: {_OWN_TRIGGER}"),
            reason="old code writes the old name, new code the new one; the trigger copies each way",
        ),
        Step(
            description=f"backfill {table}.{new.name} from {old.name} in batches",
            phase=Phase.BACKFILL,
            transaction=TransactionMode.AUTOCOMMIT,
            retry=ctx.policy.retry(),
            backfill=Backfill(table, new.name, o, where=f"{n} IS DISTINCT FROM {o}", **fill),  # type: ignore[arg-type]
            inverse_transaction=TransactionMode.AUTOCOMMIT,
            reason="batches sized by time, each its own transaction: row locks on one batch at a time",
        ),
    ]
    if not new.nullable:
        steps.extend(_not_null_steps(table, new.name, ctx, "the model says NOT NULL"))
    contract = [*unsync, f"ALTER TABLE {t} DROP COLUMN IF EXISTS {o}"]
    restore = [f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {column_sql(dataclasses.replace(old, nullable=True, default=None))}"]
    if old.default is not None:
        restore.append(f"ALTER TABLE {t} ALTER COLUMN {o} SET DEFAULT {old.default}")
    if new.default is not None:
        contract.append(f"ALTER TABLE {t} ALTER COLUMN {n} SET DEFAULT {new.default}")
        restore.append(f"ALTER TABLE {t} ALTER COLUMN {n} DROP DEFAULT")
    # The way back, in the contract phase (a split contract revision undoes alone): after the old
    # column is re-created nullable with the sync trigger, its values are copied back in batches,
    # then its NOT NULL comes back through NOT VALID + VALIDATE.
    back = [Step(
        description=f"copy {table}.{new.name} back into {old.name} in batches",
        phase=Phase.CONTRACT, transaction=TransactionMode.AUTOCOMMIT, retry=ctx.policy.retry(),
        backfill=Backfill(table, old.name, n, where=f"{o} IS DISTINCT FROM {n}", **fill),  # type: ignore[arg-type]
    )]
    if not old.nullable:
        back += _not_null_steps(table, old.name, ctx, f"{old.name} was NOT NULL")
    steps += [_flipped(s, f"{table}.{old.name} back: {s.description}") for s in reversed(back)]
    steps.append(
        ctx.own(
            f"drop the sync trigger and the old column {table}.{old.name}",
            contract,
            phase=Phase.CONTRACT,
            inverse=[*restore, *sync],
            acknowledged=(
                *acknowledge("HM303", reason=f"contract phase: deploy code that no longer reads {old.name} first"),
                *acknowledge("HM403", "HM903", reason=f"contract phase: {_OWN_TRIGGER} with the old column"),
            ),
            reason="contract: deploy code that uses the new name first; downgrade re-creates the old "
            "column (nullable), copies the values back in batches and restores its NOT NULL",
        )
    )
    return Plan(steps=tuple(steps), notes=tuple(ctx.notes))


def plan_table_rename(
    old: QualifiedName,
    new: QualifiedName,
    version: PgVersion,
    *,
    policy: PlanPolicy | None = None,
) -> Plan:
    """A table renamed from ``old`` to ``new``: rename plus a view under the old name (simple views
    are updatable, so old code keeps reading and writing); the contract phase drops the view.

    Used for both rename strategies: copying a whole table under writes is neither safer nor
    cheaper than a catalog-only rename that a view bridges.
    """
    ctx = _context(version, None, None, policy)
    o, n = sql_name(old), sql_name(new)
    view = f"CREATE OR REPLACE VIEW {o} AS SELECT * FROM {n}"
    steps = [
        ctx.own(
            f"rename table {old} to {new.name}, with a view under the old name",
            [f"ALTER TABLE {o} RENAME TO {quote_ident(new.name)}", view],
            inverse=[f"DROP VIEW IF EXISTS {o}", f"ALTER TABLE {n} RENAME TO {quote_ident(old.name)}"],
            acknowledged=acknowledge("HM302", reason=f"a view named {old.name} keeps old code working"),
            inverse_acknowledged=acknowledge("HM302", reason=f"undo: {old.name} gets its name back"),
            done_when=f"SELECT to_regclass({_literal(n)}) IS NOT NULL",
            reason="catalog-only, ACCESS EXCLUSIVE for a moment; the updatable view keeps old code working",
        ),
        ctx.own(
            f"drop the compatibility view {old}",
            [f"DROP VIEW IF EXISTS {o}"],
            phase=Phase.CONTRACT,
            inverse=[view],
            reason="contract: deploy code that uses the new table name first",
        ),
    ]
    return Plan(steps=tuple(steps))


# --- LLM proposals for what the rules cannot plan --------------------------------------------------

Proposer = Callable[[str], Any]
"""``sql -> ProposalResult`` (:func:`helios_migrate.llm.propose_plan` bound to a context)."""


def unplannable(change: Change) -> bool:
    """A change no planner handles that the rules cannot judge safe as written: raw SQL the
    knowledge base does not model, and data migrations."""
    return type(change) not in _PLANNERS and isinstance(change, (c.RawStatement, c.ModifyRows))


def plan_with_proposer(
    changes: Sequence[Change],
    sql: str,
    version: PgVersion,
    proposer: Proposer | None,
    **kwargs: Any,
) -> Plan:
    """:func:`plan_changes`, and when a change is :func:`unplannable` and a ``proposer`` is given,
    the proposed plan for ``sql`` instead -- only when it passed validation (its steps are marked
    ``LLM-proposed:``).  A rejected proposal leaves the deterministic plan, with the reasons in a note."""
    plan = plan_changes(changes, version, **kwargs)
    if proposer is None or not sql.strip() or not any(unplannable(ch) for ch in changes):
        return plan
    result = proposer(sql)
    accepted = getattr(result, "accepted", None)
    if accepted is None:
        return dataclasses.replace(plan, notes=(*plan.notes, str(getattr(result, "message", result))))
    return Plan(steps=accepted.steps, source=tuple(changes), notes=(*accepted.notes, *plan.notes))


def llm_proposer(version: PgVersion, *, catalog: SchemaLookup | None = None, config: Any = None,
                 where: str = "autogenerate", facts: PlannerFacts | None = None) -> Proposer | None:
    """A :data:`Proposer` when an LLM is configured (``[tool.helios-migrate.llm]`` or the
    environment), else ``None``: without one, planning stays deterministic."""
    try:
        from .llm import LlmClient, PlanContext, load_llm_config, propose_plan

        llm = load_llm_config()
        if not llm.enabled:
            return None
        client = LlmClient(llm)
    except Exception:
        return None
    from .config import Config

    context = PlanContext(
        client=client,
        version=version,
        config=config or Config(),
        catalog=catalog,
        where=where,
        primary_key=facts.primary_key if facts is not None else None,
    )
    return lambda sql: propose_plan(sql, context)
