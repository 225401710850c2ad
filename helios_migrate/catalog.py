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
from .effects import IndexRebuild
from .normalize import NormalizeError, normalize_type
from .sqltext import quote_ident, quote_qualified
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


_INDEXES_ON_COLUMN_SQL = """
SELECT n.nspname, ic.relname, i.indisvalid, i.indexprs IS NOT NULL, i.indpred IS NOT NULL,
       i.indkey::int2[], i.indclass::oid[], i.indcollation::oid[], i.indnkeyatts, ic.relam
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = ic.relnamespace
 WHERE i.indrelid = %(rel)s
   AND (%(attnum)s = ANY (i.indkey::int2[])
        OR EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                      AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid
                      AND d.refobjsubid = %(attnum)s))
 ORDER BY ic.relname
"""

# GetDefaultOpClass (src/backend/commands/indexcmds.c): the default operator class of an access
# method for the base type, an exact input-type match first, else a binary-coercible or
# polymorphic one (the preferred type first, as text for varchar).
_DEFAULT_OPCLASS_SQL = """
WITH RECURSIVE base(oid, typbasetype) AS (
    SELECT t.oid, t.typbasetype FROM pg_type t WHERE t.oid = %(type)s
    UNION ALL
    SELECT t.oid, t.typbasetype FROM pg_type t JOIN base b ON t.oid = b.typbasetype
)
SELECT opc.oid
  FROM pg_opclass opc
  JOIN pg_type it ON it.oid = opc.opcintype
  CROSS JOIN (SELECT t.* FROM pg_type t JOIN base b ON t.oid = b.oid
               WHERE b.typbasetype = 0 LIMIT 1) AS t
 WHERE opc.opcmethod = %(am)s AND opc.opcdefault
   AND (opc.opcintype = t.oid
        OR EXISTS (SELECT 1 FROM pg_cast c WHERE c.castsource = t.oid
                     AND c.casttarget = opc.opcintype AND c.castmethod = 'b')
        OR (it.typname = 'anyarray' AND t.typcategory = 'A')
        OR (it.typname = 'anyenum' AND t.typtype = 'e')
        OR (it.typname = 'anyrange' AND t.typtype = 'r')
        OR (it.typname = 'anymultirange' AND t.typtype = 'm'))
 ORDER BY opc.opcintype = t.oid DESC, it.typispreferred DESC
 LIMIT 1
"""


class LiveCatalog:
    """Lookups against a live server through one psycopg connection (results are cached).

    The catalog stands for the session the migration runs in: a ``SET`` in the migration
    (``SET TIME ZONE ...``) is applied with :meth:`apply_setting` and seen by later lookups.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._settings: dict[str, str | None] = {}

    def apply_setting(self, name: str, value: str | None) -> None:
        """A ``SET name = value`` (``value`` ``None``: ``RESET``) earlier in the same migration."""
        key = name.lower()
        if key in {"all", "session authorization"}:
            self._settings.clear()
            return
        if value is None:
            self._settings.pop(key, None)
        else:
            self._settings[key] = value.strip().strip("'\"")

    def _one(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> Any:
        with self._conn.cursor() as cur:
            cur.execute(sql, params)
            row = cur.fetchone()
        return None if row is None else row[0]

    @functools.cached_property
    def version(self) -> PgVersion:
        return PgVersion.parse(int(self._one("SELECT current_setting('server_version_num')::int")))

    def session_timezone(self) -> str | None:
        """The migration session's ``TimeZone``: its own ``SET TIME ZONE``, else the server's."""
        if "timezone" in self._settings:
            return self._settings["timezone"]
        return self._server_timezone()

    @functools.cache  # noqa: B019 - one catalog object per connection
    def _server_timezone(self) -> str | None:
        value = self._one("SELECT current_setting('TimeZone')")
        return None if value is None else str(value)

    @functools.cache  # noqa: B019
    def _default_opclass(self, access_method: int, type_oid: int) -> int | None:
        value = self._one(_DEFAULT_OPCLASS_SQL, {"am": access_method, "type": type_oid})
        return None if value is None else int(value)

    @functools.cache  # noqa: B019
    def type_change_index_rebuilds(
        self, table: QualifiedName, column: str, new_type: str, collation: str | None
    ) -> tuple[IndexRebuild, ...] | None:
        """The indexes that ``ALTER COLUMN column TYPE new_type [COLLATE collation]`` rebuilds
        when the table itself is not rewritten; ``None`` when the column or type is unknown.

        PostgreSQL keeps an index's file only when its definition re-parsed for the new type gives
        the same operator classes and collations, and it never keeps an index with an expression
        or a predicate on the column (``CheckIndexCompatible`` in ``indexcmds.c``).  A default
        operator class follows the type (``timestamp_ops`` -> ``timestamptz_ops``); without
        ``COLLATE`` the column takes the new type's default collation, and an index collation equal
        to the column's follows it.
        """
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT a.attrelid::bigint, a.attnum, a.atttypid::bigint, a.attcollation::bigint "
                "FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attname = %s "
                "AND NOT a.attisdropped",
                (_regclass(table), column),
            )
            col = cur.fetchone()
            cur.execute(
                "SELECT t.oid::bigint, t.typcollation::bigint FROM pg_type t WHERE t.oid = to_regtype(%s)",
                (new_type,),
            )
            typ = cur.fetchone()
        if col is None or typ is None:
            return None
        rel, attnum, old_type, old_coll = (int(x) for x in col)
        new_type_oid, new_coll = int(typ[0]), int(typ[1])
        if collation is not None:
            regname = ".".join(quote_ident(p) for p in collation.split("."))
            value = self._one("SELECT to_regcollation(%s)::oid::bigint", (regname,))
            if value is None:
                return None
            new_coll = int(value)
        with self._conn.cursor() as cur:
            cur.execute(_INDEXES_ON_COLUMN_SQL, {"rel": rel, "attnum": attnum})
            rows = cur.fetchall()
        out: list[IndexRebuild] = []
        for schema, name, valid, has_exprs, has_pred, keys, classes, colls, nkey, am in rows:
            index = QualifiedName(str(name), str(schema))
            reason = None
            if has_exprs or has_pred:
                reason = "its expression or predicate is re-evaluated for the new type"
            elif not valid:
                reason = "it is invalid"
            for pos in range(int(nkey)):
                if reason is not None:
                    break
                if int(keys[pos]) != attnum:
                    continue
                opclass, index_coll = int(classes[pos]), int(colls[pos])
                if opclass == self._default_opclass(int(am), old_type):
                    new_opclass = self._default_opclass(int(am), new_type_oid)
                    if new_opclass != opclass:
                        reason = "its operator class changes with the type"
                if reason is None and index_coll == old_coll and new_coll != old_coll:
                    reason = "its collation follows the column's, which changes"
            if reason is not None:
                out.append(IndexRebuild(index, reason))
        return tuple(out)

    @functools.cache  # noqa: B019
    def domain_base(self, type_text: str) -> tuple[str, bool] | None:
        """``(base type, has CHECK or NOT NULL constraints)`` when ``type_text`` is a domain."""
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT format_type(t.typbasetype, t.typtypmod), t.typnotnull "
                "OR EXISTS (SELECT 1 FROM pg_constraint c WHERE c.contypid = t.oid) "
                "FROM pg_type t WHERE t.oid = to_regtype(%s) AND t.typtype = 'd'",
                (type_text,),
            )
            row = cur.fetchone()
        if row is None:
            return None
        try:
            base = normalize_type(str(row[0]))
        except NormalizeError:
            base = str(row[0])
        return base, bool(row[1])

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
    def index_columns(self, index: QualifiedName) -> tuple[str, ...] | None:
        """The key columns of an index, in order; ``None`` when it is unknown or has an expression."""
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT a.attname FROM pg_index i "
                "CROSS JOIN LATERAL unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, n) "
                "LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
                "WHERE i.indexrelid = to_regclass(%s) ORDER BY k.n",
                (_regclass(index),),
            )
            rows = cur.fetchall()
        if not rows or any(r[0] is None for r in rows):
            return None
        return tuple(str(r[0]) for r in rows)

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

    @functools.cache  # noqa: B019
    def partition_parent(self, table: QualifiedName) -> QualifiedName | None:
        """The partitioned table ``table`` is a partition of, if it is one."""
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT n.nspname, p.relname FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
                "JOIN pg_namespace n ON n.oid = p.relnamespace "
                "WHERE i.inhrelid = to_regclass(%s) AND c.relispartition",
                (_regclass(table),),
            )
            row = cur.fetchone()
        return None if row is None else QualifiedName(str(row[1]), str(row[0]))

    @functools.cache  # noqa: B019
    def partitions(self, table: QualifiedName) -> tuple[QualifiedName, ...]:
        """Every partition of a partitioned table, sub-partitions included (none otherwise)."""
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT n.nspname, c.relname FROM pg_partition_tree(to_regclass(%s)) t "
                "JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE t.level > 0 ORDER BY t.level, c.relname",
                (_regclass(table),),
            )
            return tuple(QualifiedName(str(r[1]), str(r[0])) for r in cur.fetchall())

    @functools.cache  # noqa: B019
    def clustered_index(self, table: QualifiedName) -> QualifiedName | None:
        """The index ``CLUSTER table`` (without ``USING``) orders by."""
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT n.nspname, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE i.indrelid = to_regclass(%s) AND i.indisclustered",
                (_regclass(table),),
            )
            row = cur.fetchone()
        return None if row is None else QualifiedName(str(row[1]), str(row[0]))
