"""Read-only catalog lookups the lock knowledge base uses to be exact instead of conservative.

Every query here is a plain ``SELECT`` on the system catalogs.  Nothing in this module runs DDL on
the user's database, not even inside a rolled-back savepoint: that would take the very lock we are
trying to predict.
"""

from __future__ import annotations

import functools
from typing import Any

import psycopg

from .changes import ConstraintKind, QualifiedName
from .normalize import NormalizeError, normalize_type
from .sqltext import quote_qualified
from .versions import PgVersion

_CONTYPE = {
    "c": ConstraintKind.CHECK,
    "f": ConstraintKind.FOREIGN_KEY,
    "u": ConstraintKind.UNIQUE,
    "p": ConstraintKind.PRIMARY_KEY,
    "x": ConstraintKind.EXCLUDE,
    "n": ConstraintKind.NOT_NULL,
}


def _regclass(name: QualifiedName) -> str:
    """A ``regclass`` literal that survives mixed-case names."""
    return quote_qualified(name.schema, name.name)


class LiveCatalog:
    """Lookups against a live server through one psycopg connection (results are cached)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        with self._conn.cursor() as cur:
            cur.execute(sql, params)
            row = cur.fetchone()
        return None if row is None else row[0]

    @functools.cached_property
    def version(self) -> PgVersion:
        return PgVersion.parse(int(self._one("SELECT current_setting('server_version_num')::int")))

    @functools.cache  # noqa: B019 - one catalog object per connection
    def session_timezone(self) -> str | None:
        value = self._one("SELECT current_setting('TimeZone')")
        return None if value is None else str(value)

    @functools.cache  # noqa: B019
    def cast_method(self, source: str, target: str) -> str | None:
        value = self._one(
            "SELECT castmethod FROM pg_cast "
            "WHERE castsource = to_regtype(%s) AND casttarget = to_regtype(%s)",
            (source, target),
        )
        return None if value is None else str(value)

    @functools.cache  # noqa: B019
    def column_type(self, table: QualifiedName, column: str) -> str | None:
        value = self._one(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attname = %s AND NOT attisdropped",
            (_regclass(table), column),
        )
        if value is None:
            return None
        try:
            return normalize_type(str(value))
        except NormalizeError:
            return str(value)

    @functools.cache  # noqa: B019
    def has_valid_not_null_check(self, table: QualifiedName, column: str) -> bool:
        """A validated ``CHECK (column IS NOT NULL)`` lets ``SET NOT NULL`` skip its scan (PG 12+)."""
        value = self._one(
            "SELECT count(*) FROM pg_constraint "
            "WHERE conrelid = to_regclass(%s) AND contype = 'c' AND convalidated "
            "AND pg_get_constraintdef(oid) = format('CHECK ((%%I IS NOT NULL))', %s::text)",
            (_regclass(table), column),
        )
        return bool(value)

    @functools.cache  # noqa: B019
    def column_not_null(self, table: QualifiedName, column: str) -> bool | None:
        value = self._one(
            "SELECT attnotnull FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attname = %s AND NOT attisdropped",
            (_regclass(table), column),
        )
        return None if value is None else bool(value)

    @functools.cache  # noqa: B019
    def constraint(
        self, table: QualifiedName, name: str
    ) -> tuple[ConstraintKind, QualifiedName | None] | None:
        """The kind of a named constraint and, for a foreign key, the table it references."""
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT c.contype, rn.nspname, r.relname FROM pg_constraint c "
                "LEFT JOIN pg_class r ON r.oid = c.confrelid "
                "LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace "
                "WHERE c.conrelid = to_regclass(%s) AND c.conname = %s",
                (_regclass(table), name),
            )
            row = cur.fetchone()
        if row is None:
            return None
        kind = _CONTYPE.get(str(row[0]))
        if kind is None:
            return None
        ref = QualifiedName(str(row[2]), str(row[1])) if row[2] is not None else None
        return kind, ref

    @functools.cache  # noqa: B019
    def index_table(self, index: QualifiedName) -> QualifiedName | None:
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT n.nspname, t.relname FROM pg_index i "
                "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
                "WHERE i.indexrelid = to_regclass(%s)",
                (_regclass(index),),
            )
            row = cur.fetchone()
        return None if row is None else QualifiedName(str(row[1]), str(row[0]))

    @functools.cache  # noqa: B019
    def table_indexes(self, table: QualifiedName) -> tuple[QualifiedName, ...]:
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT n.nspname, c.relname FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE i.indrelid = to_regclass(%s) ORDER BY c.relname",
                (_regclass(table),),
            )
            return tuple(QualifiedName(str(r[1]), str(r[0])) for r in cur.fetchall())

    @functools.cache  # noqa: B019
    def function_volatility(self, name: str) -> str | None:
        """``pg_proc.provolatile`` (``i``/``s``/``v``) of the most volatile overload of ``name``."""
        value = self._one(
            "SELECT max(provolatile) FROM pg_proc WHERE proname = %s",  # 'v' > 's' > 'i'
            (name.rpartition(".")[2],),
        )
        return None if value is None else str(value)

    @functools.cache  # noqa: B019
    def is_partitioned(self, table: QualifiedName) -> bool:
        kind = self._one("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (_regclass(table),))
        return bool(kind == "p")

    @functools.cache  # noqa: B019
    def default_partition(self, table: QualifiedName) -> QualifiedName | None:
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT n.nspname, c.relname FROM pg_partitioned_table p "
                "JOIN pg_class c ON c.oid = p.partdefid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE p.partrelid = to_regclass(%s)",
                (_regclass(table),),
            )
            row = cur.fetchone()
        return None if row is None else QualifiedName(str(row[1]), str(row[0]))

    @functools.cache  # noqa: B019
    def referenced_tables(self, table: QualifiedName) -> tuple[QualifiedName, ...]:
        """Tables that ``table``'s foreign keys reference (dropping it locks them too)."""
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT DISTINCT n.nspname, r.relname FROM pg_constraint c "
                "JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace n ON n.oid = r.relnamespace "
                "WHERE c.conrelid = to_regclass(%s) AND c.contype = 'f' AND c.confrelid <> c.conrelid "
                "ORDER BY 1, 2",
                (_regclass(table),),
            )
            return tuple(QualifiedName(str(r[1]), str(r[0])) for r in cur.fetchall())
