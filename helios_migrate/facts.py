"""Catalog facts for impact estimates: sizes, row counts, statistics, sessions and locks.

Everything here is a read-only ``SELECT`` on the system catalogs and statistics views (plus
``set_config`` of this session's own ``lock_timeout``/``statement_timeout`` while the facts are
read, restored afterwards).  Nothing runs DDL on the user's database, not even inside a rolled-back
savepoint: that would take the very lock being estimated.

:func:`collect_facts` reads the facts for the tables a plan touches; :class:`DatabaseFacts` and the
dataclasses it holds are plain values, so tests and offline callers can build them by hand.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from .changes import ConstraintKind, QualifiedName
from .locks import LockMode
from .sqltext import quote_qualified
from .versions import PgVersion

DEFAULT_WRITE_SAMPLE_S = 1.0
"""Interval between the two samples of ``pg_stat_user_tables`` that give each table's write rate."""

STALE_MODIFIED_FRACTION = 0.2
"""Statistics are reported stale when more than this share of rows changed since the last ANALYZE."""

SETTING_NAMES: tuple[str, ...] = (
    "block_size",
    "maintenance_work_mem",
    "max_parallel_maintenance_workers",
    "max_wal_size",
    "lock_timeout",
    "statement_timeout",
    "idle_in_transaction_session_timeout",
    "wal_level",
    "full_page_writes",
    "shared_buffers",
    "work_mem",
    "checkpoint_timeout",
)

_CONTYPE = {
    "c": ConstraintKind.CHECK,
    "f": ConstraintKind.FOREIGN_KEY,
    "u": ConstraintKind.UNIQUE,
    "p": ConstraintKind.PRIMARY_KEY,
    "x": ConstraintKind.EXCLUDE,
    "n": ConstraintKind.NOT_NULL,
}

_UNIT_BYTES = {"B": 1, "kB": 1024, "8kB": 8192, "16kB": 16384, "32kB": 32768, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "min": 60_000.0, "h": 3_600_000.0, "d": 86_400_000.0}


# --- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    name: str
    value: str
    """``pg_settings.setting`` as text, in the setting's base unit."""
    unit: str | None = None

    @property
    def bytes(self) -> int | None:
        """The value in bytes for memory and size settings, else ``None``."""
        factor = _UNIT_BYTES.get(self.unit or "")
        if factor is None:
            return None
        try:
            return int(float(self.value) * factor)
        except ValueError:
            return None

    @property
    def milliseconds(self) -> float | None:
        """The value in milliseconds for time settings (``0`` means disabled), else ``None``."""
        factor = _UNIT_MS.get(self.unit or "")
        if factor is None:
            return None
        try:
            return float(self.value) * factor
        except ValueError:
            return None


@dataclass(frozen=True)
class ServerFacts:
    version: PgVersion
    settings: dict[str, Setting] = field(default_factory=dict)
    system_identifier: str | None = None
    """From ``pg_control_system()``; ``None`` when the role may not read it."""
    host: str = ""
    database: str = ""

    @property
    def block_size(self) -> int:
        setting = self.settings.get("block_size")
        try:
            return int(setting.value) if setting else 8192
        except ValueError:
            return 8192

    def bytes_setting(self, name: str) -> int | None:
        setting = self.settings.get(name)
        return setting.bytes if setting else None

    def ms_setting(self, name: str) -> float | None:
        setting = self.settings.get(name)
        return setting.milliseconds if setting else None


@dataclass(frozen=True)
class IndexFacts:
    name: QualifiedName
    size_bytes: int
    valid: bool = True
    """``pg_index.indisvalid``: False for the leftover of a failed ``CREATE INDEX CONCURRENTLY``."""
    ready: bool = True
    unique: bool = False
    primary: bool = False
    definition: str = ""
    columns: tuple[str, ...] = ()
    """Key columns in index order (expression columns left out)."""
    referenced: tuple[str, ...] = ()
    """Every column the index reads: keys, INCLUDE columns, and those its expressions or
    predicate use (an UPDATE that changes one of them cannot be HOT)."""
    keys: tuple[str, ...] = ()
    """Each key as ``pg_get_indexdef(index, n)`` prints it: a column name or an expression."""
    predicate: str | None = None
    """The WHERE clause of a partial index."""


@dataclass(frozen=True)
class ConstraintFacts:
    name: str
    kind: ConstraintKind | None
    validated: bool = True
    definition: str = ""
    references: QualifiedName | None = None
    """The referenced table of a foreign key."""


@dataclass(frozen=True)
class ColumnFacts:
    name: str
    type: str
    not_null: bool = False
    null_frac: float | None = None
    """``pg_stats.null_frac``; ``None`` when the column has no statistics."""
    avg_width: int | None = None
    n_distinct: float | None = None
    collation: str | None = None
    """The column's own collation when it is not the database default (``C``, ``en-x-icu``)."""
    most_common: tuple[tuple[str, float], ...] = ()
    """``pg_stats.most_common_vals`` (as text) with ``most_common_freqs``."""
    correlation: float | None = None
    """``pg_stats.correlation``: 1.0 when the rows are stored in the column's order."""

    @property
    def bytewise(self) -> bool:
        """Text compared byte by byte (the "C" or "POSIX" collation) rather than by a locale."""
        return (self.collation or "").upper() in {"C", "POSIX"}


class RowSource:
    STATISTICS = "statistics"
    """reltuples / relpages of the last VACUUM or ANALYZE, scaled to the current page count."""
    PAGES = "page count"
    """Never analyzed: pages times the tuples per page the column widths allow (as the planner does)."""
    EMPTY = "empty"


@dataclass(frozen=True)
class TableFacts:
    name: QualifiedName
    """Schema-qualified, as the catalog names it."""
    relkind: str = "r"
    total_bytes: int = 0
    heap_bytes: int = 0
    index_bytes: int = 0
    toast_bytes: int = 0
    pages: int = 0
    reltuples: float = -1.0
    row_estimate: int = 0
    row_source: str = RowSource.STATISTICS
    last_analyze: datetime | None = None
    n_live_tup: int | None = None
    n_dead_tup: int | None = None
    n_mod_since_analyze: int | None = None
    indexes: tuple[IndexFacts, ...] = ()
    constraints: tuple[ConstraintFacts, ...] = ()
    columns: tuple[ColumnFacts, ...] = ()
    write_rate: float | None = None
    """Rows inserted, updated or deleted per second over the sampling interval."""
    read_rate: float | None = None
    """Sequential plus index scans started per second over the sampling interval."""

    @property
    def never_analyzed(self) -> bool:
        return self.row_source == RowSource.PAGES

    @property
    def stale_statistics(self) -> str | None:
        """Why the row estimate may be off, or ``None`` when the statistics look current."""
        if self.never_analyzed:
            return (
                f"{self.name} has never been analyzed: rows estimated from its "
                f"{self.pages:,} pages ({self.row_estimate:,}); run ANALYZE {self.name}"
            )
        if self.n_mod_since_analyze is not None and self.reltuples > 0:
            share = self.n_mod_since_analyze / max(self.reltuples, 1.0)
            if share > STALE_MODIFIED_FRACTION:
                return (
                    f"{self.name}: {self.n_mod_since_analyze:,} rows changed since the last ANALYZE "
                    f"({share:.0%} of {int(self.reltuples):,}); estimate scaled to the current size "
                    f"({self.row_estimate:,} rows); run ANALYZE {self.name}"
                )
        return None

    @property
    def invalid_indexes(self) -> tuple[IndexFacts, ...]:
        return tuple(i for i in self.indexes if not i.valid)

    def column(self, name: str) -> ColumnFacts | None:
        for col in self.columns:
            if col.name == name:
                return col
        return None

    @property
    def tuple_bytes(self) -> float:
        """Average heap bytes per row (page overhead included)."""
        return self.heap_bytes / self.row_estimate if self.row_estimate > 0 else 0.0

    @property
    def stored_row_bytes(self) -> float | None:
        """Average size of one stored row version from ``pg_stats`` (header, values as stored,
        out-of-line values as 18-byte TOAST pointers), or ``None`` without statistics."""
        if not self.columns or any(c.avg_width is None for c in self.columns):
            return None
        data = sum((c.avg_width or 0) * (1.0 - (c.null_frac or 0.0)) for c in self.columns)
        return 24.0 + math.ceil(data / 8) * 8

    def indexed_columns(self) -> frozenset[str]:
        """Columns any valid index reads (an UPDATE of them is never HOT)."""
        return frozenset(col for i in self.indexes for col in (i.referenced or i.columns))


@dataclass(frozen=True)
class SessionFacts:
    pid: int
    application_name: str = ""
    user: str = ""
    state: str = ""
    """``active``, ``idle in transaction``, ``idle in transaction (aborted)``..."""
    xact_age_s: float | None = None
    state_age_s: float | None = None
    query: str = ""
    wait_event_type: str | None = None

    @property
    def idle_in_transaction(self) -> bool:
        return self.state.startswith("idle in transaction")

    def describe(self) -> str:
        app = self.application_name or "no application_name"
        age = f", transaction open {format_seconds(self.xact_age_s)}" if self.xact_age_s is not None else ""
        return f"pid {self.pid} ({app}, {self.state or 'unknown state'}{age})"


@dataclass(frozen=True)
class LockHolder:
    """A lock another session holds (or waits for) on a table the plan touches."""

    pid: int
    relation: QualifiedName
    mode: LockMode
    granted: bool = True


@dataclass(frozen=True)
class DatabaseFacts:
    server: ServerFacts
    tables: tuple[TableFacts, ...] = ()
    sessions: tuple[SessionFacts, ...] = ()
    """Other sessions of this database with an open transaction."""
    locks: tuple[LockHolder, ...] = ()
    write_sample_s: float | None = None
    missing: tuple[QualifiedName, ...] = ()
    """Tables asked for that do not exist (yet)."""
    search_path_schemas: tuple[str, ...] = ("public",)

    @property
    def version(self) -> PgVersion:
        return self.server.version

    def table(self, name: QualifiedName | None) -> TableFacts | None:
        """The facts of ``name``; an unqualified name resolves through the search path."""
        if name is None:
            return None
        schemas = (name.schema,) if name.schema else self.search_path_schemas
        for schema in schemas:
            for t in self.tables:
                if t.name.name == name.name and t.name.schema == schema:
                    return t
        if name.schema is None:
            matches = [t for t in self.tables if t.name.name == name.name]
            if len(matches) == 1:
                return matches[0]
        return None

    # The planner's PlannerFacts protocol: the same facts decide the plan and estimate it.

    def has_rows(self, table: QualifiedName) -> bool | None:
        t = self.table(table)
        return None if t is None else (t.row_estimate > 0 or t.pages > 0)

    def covering_index(self, table: QualifiedName, columns: Sequence[str]) -> str | None:
        t = self.table(table)
        if t is None:
            return None
        for index in t.indexes:
            if index.valid and index.columns[: len(columns)] == tuple(columns):
                return index.name.name
        return None

    def primary_key(self, table: QualifiedName) -> tuple[str, ...] | None:
        t = self.table(table)
        if t is None:
            return None
        return next((i.columns for i in t.indexes if i.primary and i.columns), None)

    def session(self, pid: int) -> SessionFacts | None:
        for s in self.sessions:
            if s.pid == pid:
                return s
        return None

    def holders_on(self, table: QualifiedName) -> tuple[tuple[LockHolder, SessionFacts | None], ...]:
        resolved = self.table(table)
        target = resolved.name if resolved else table
        return tuple(
            (lk, self.session(lk.pid))
            for lk in self.locks
            if lk.relation == target or (target.schema is None and lk.relation.name == target.name)
        )


def format_seconds(seconds: float | None) -> str:
    """``0.4 s``, ``12 s``, ``3 min``, ``2.5 h``."""
    if seconds is None:
        return "?"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds < 0.1 else f"{seconds:.1f} s"
    if seconds < 100:
        return f"{seconds:.0f} s"
    if seconds < 6000:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 100 else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # pragma: no cover


# --- reading ----------------------------------------------------------------------------------


Rows = list[tuple[Any, ...]]
Query = Callable[[str, Sequence[Any]], Rows]


def query_function(conn: Any) -> Query:
    """A ``(sql, params) -> rows`` function over a psycopg connection or a SQLAlchemy connection
    (its DBAPI must use ``%s`` parameters, as psycopg and psycopg2 do)."""
    if hasattr(conn, "exec_driver_sql"):

        def run_sa(sql: str, params: Sequence[Any]) -> Rows:
            result = conn.exec_driver_sql(sql, tuple(params)) if params else conn.exec_driver_sql(sql)
            return [tuple(r) for r in result.fetchall()] if result.returns_rows else []

        return run_sa

    def run_pg(sql: str, params: Sequence[Any]) -> Rows:
        with conn.cursor() as cur:
            cur.execute(sql, tuple(params) if params else None)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []

    return run_pg


def _regclass(name: QualifiedName) -> str:
    return quote_qualified(name.schema, name.name)


def row_estimate_sql(pg_class: str = "c") -> str:
    """The planner's row estimate of the ``pg_class`` row aliased ``pg_class``, as a SQL
    expression (``bigint``): the one formula every command uses.

    As ``estimate_rel_size`` does: the tuple density seen by the last VACUUM/ANALYZE
    (``reltuples / relpages``) times the table's current number of pages.  A table never vacuumed
    or analyzed (``reltuples = -1`` from PostgreSQL 14, or ``relpages = 0``) gets a density from its
    column widths, as ``get_rel_data_width`` does: (block size - page header) / (tuple header +
    line pointer + the attribute widths, 32 bytes for variable-length types), at least one row per
    page.  (The planner gives a ``varchar(n)`` a width from its declared length; this, 32 bytes.)
    """
    c = pg_class
    pages = f"(pg_relation_size({c}.oid) / current_setting('block_size')::int)"
    width = (
        "(SELECT 24 + 4 + coalesce(sum(CASE WHEN a.attlen > 0 THEN a.attlen ELSE 32 END), 0) "
        f"FROM pg_attribute a WHERE a.attrelid = {c}.oid AND a.attnum > 0 AND NOT a.attisdropped)"
    )
    return (
        f"(CASE WHEN {pages} = 0 THEN 0 "
        f"WHEN {c}.reltuples >= 0 AND {c}.relpages > 0 "
        f"THEN round({c}.reltuples::float8 / {c}.relpages * {pages}) "
        f"ELSE greatest(1, floor((current_setting('block_size')::int - 24) / {width}::float8)) * {pages} "
        "END)::bigint"
    )


_TABLE_SQL = f"""
SELECT c.oid, n.nspname, c.relname, c.relkind,
       pg_total_relation_size(c.oid), pg_relation_size(c.oid), pg_indexes_size(c.oid),
       coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),
       pg_relation_size(c.oid) / current_setting('block_size')::int,
       c.reltuples::float8, c.relpages,
       {row_estimate_sql("c")},
       greatest(s.last_analyze, s.last_autoanalyze), s.n_live_tup, s.n_dead_tup,
       s.n_mod_since_analyze
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
 WHERE c.oid = to_regclass(%s)
"""

_INDEXES_SQL = """
SELECT n.nspname, ic.relname, pg_relation_size(i.indexrelid), i.indisvalid, i.indisready,
       i.indisunique, i.indisprimary, pg_get_indexdef(i.indexrelid),
       ARRAY(SELECT a.attname::text
               FROM unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              ORDER BY k.ord),
       ARRAY(SELECT a.attname::text FROM pg_attribute a
              WHERE a.attrelid = i.indrelid AND a.attnum > 0
                AND (a.attnum = ANY(i.indkey::int2[])
                     OR EXISTS (SELECT 1 FROM pg_depend d
                                 WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                                   AND d.refclassid = 'pg_class'::regclass
                                   AND d.refobjid = i.indrelid AND d.refobjsubid = a.attnum))
              ORDER BY a.attnum),
       ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) k),
       pg_get_expr(i.indpred, i.indrelid, true)
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = ic.relnamespace
 WHERE i.indrelid = %s
 ORDER BY ic.relname
"""

_CONSTRAINTS_SQL = """
SELECT k.conname, k.contype, k.convalidated, pg_get_constraintdef(k.oid), rn.nspname, r.relname
  FROM pg_constraint k
  LEFT JOIN pg_class r ON r.oid = k.confrelid
  LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
 WHERE k.conrelid = %s ORDER BY k.conname
"""

_COLUMNS_SQL = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       s.null_frac::float8, s.avg_width, s.n_distinct::float8,
       (SELECT CASE WHEN k.collname = 'default' THEN
                 (SELECT CASE WHEN d.datcollate IN ('C', 'POSIX') THEN d.datcollate END
                    FROM pg_database d WHERE d.datname = current_database())
               ELSE k.collname END
          FROM pg_collation k WHERE k.oid = a.attcollation),
       s.most_common_vals::text::text[], s.most_common_freqs::float8[], s.correlation::float8
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
                      AND s.attname = a.attname AND NOT s.inherited
 WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum
"""

_ACTIVITY_SQL = """
SELECT pid, coalesce(application_name, ''), coalesce(usename::text, ''),
       coalesce(state, ''),
       extract(epoch FROM clock_timestamp() - xact_start)::float8,
       extract(epoch FROM clock_timestamp() - state_change)::float8,
       left(coalesce(query, ''), 200), wait_event_type
  FROM pg_stat_activity
 WHERE datname = current_database()
   AND pid <> pg_backend_pid()
   AND xact_start IS NOT NULL
   AND coalesce(backend_type, 'client backend') = 'client backend'
 ORDER BY xact_start
"""

_LOCKS_SQL = """
SELECT l.pid, n.nspname, c.relname, l.mode, l.granted
  FROM pg_locks l
  JOIN pg_class c ON c.oid = l.relation
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE l.locktype = 'relation'
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.pid <> pg_backend_pid()
   AND l.relation = ANY(%s::oid[])
 ORDER BY l.pid, c.relname
"""

_STATS_SQL = """
SELECT relid, coalesce(n_tup_ins, 0) + coalesce(n_tup_upd, 0) + coalesce(n_tup_del, 0),
       coalesce(seq_scan, 0) + coalesce(idx_scan, 0), extract(epoch FROM clock_timestamp())::float8
  FROM pg_stat_user_tables WHERE relid = ANY(%s::oid[])
"""


def read_server(q: Query) -> ServerFacts:
    version = PgVersion.parse(int(q("SELECT current_setting('server_version_num')::int", ())[0][0]))
    settings = {
        str(name): Setting(str(name), str(value), None if unit is None else str(unit))
        for name, value, unit in q(
            "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", (list(SETTING_NAMES),)
        )
    }
    sysid: str | None = None
    try:
        rows = q(
            "SELECT CASE WHEN has_function_privilege('pg_control_system()', 'execute') "
            "THEN (SELECT system_identifier::text FROM pg_control_system()) END",
            (),
        )
        sysid = None if not rows or rows[0][0] is None else str(rows[0][0])
    except Exception:  # an old or restricted server: identity falls back to host and version
        sysid = None
    host_rows = q(
        "SELECT coalesce(host(inet_server_addr()), ''), coalesce(inet_server_port(), 0), "
        "current_database()",
        (),
    )
    host, port, database = host_rows[0] if host_rows else ("", 0, "")
    return ServerFacts(version, settings, sysid, f"{host or 'local'}:{port}", str(database))


def _row_source(curpages: int, reltuples: float, relpages: int) -> str:
    """Which branch of :func:`row_estimate_sql` gave the estimate."""
    if curpages == 0:
        return RowSource.EMPTY
    return RowSource.STATISTICS if reltuples >= 0 and relpages > 0 else RowSource.PAGES


def _sample_stats(q: Query, oids: list[int]) -> dict[int, tuple[int, int, float]]:
    q("SELECT pg_stat_clear_snapshot()", ())
    return {int(r[0]): (int(r[1]), int(r[2]), float(r[3])) for r in q(_STATS_SQL, (oids,))}


def collect_facts(
    conn: Any,
    tables: Iterable[QualifiedName],
    *,
    write_sample_s: float | None = DEFAULT_WRITE_SAMPLE_S,
    lock_timeout_ms: int = 1000,
) -> DatabaseFacts:
    """Read the facts for ``tables`` on ``conn`` (psycopg or SQLAlchemy connection).

    ``write_sample_s`` is the interval between the two samples of ``pg_stat_user_tables`` that
    give write rates; ``None`` or ``0`` skips the sampling.  While reading, this session's
    ``lock_timeout`` is set to ``lock_timeout_ms`` (``pg_relation_size`` takes ACCESS SHARE and
    must not queue behind a running migration); the previous value is restored afterwards.
    """
    q = query_function(conn)
    server = read_server(q)  # before this session's own lock_timeout changes
    previous = q("SELECT current_setting('lock_timeout')", ())[0][0]
    q("SELECT set_config('lock_timeout', %s, false)", (f"{int(lock_timeout_ms)}ms",))
    try:
        return _collect(q, server, tables, write_sample_s)
    finally:
        q("SELECT set_config('lock_timeout', %s, false)", (str(previous),))


def _collect(
    q: Query, server: ServerFacts, tables: Iterable[QualifiedName], write_sample_s: float | None
) -> DatabaseFacts:
    search_path = tuple(str(r[0]) for r in q("SELECT unnest(current_schemas(false))", ()))
    wanted = list(dict.fromkeys(tables))
    found: dict[int, TableFacts] = {}
    missing: list[QualifiedName] = []
    for name in wanted:
        rows = q(_TABLE_SQL, (_regclass(name),))
        if not rows:
            missing.append(name)
            continue
        (oid, schema, relname, relkind, total, heap, idx, toast, curpages, reltuples, relpages, estimate,
         analyzed, live, dead, mods) = rows[0]
        if int(oid) in found:
            continue
        source = _row_source(int(curpages), float(reltuples), int(relpages))
        indexes = tuple(
            IndexFacts(QualifiedName(str(r[1]), str(r[0])), int(r[2]), bool(r[3]), bool(r[4]),
                       bool(r[5]), bool(r[6]), str(r[7]), tuple(str(x) for x in (r[8] or ())),
                       tuple(str(x) for x in (r[9] or ())), tuple(str(x) for x in (r[10] or ())),
                       None if r[11] is None else str(r[11]))
            for r in q(_INDEXES_SQL, (oid,))
        )
        constraints = tuple(
            ConstraintFacts(str(r[0]), _CONTYPE.get(str(r[1])), bool(r[2]), str(r[3]),
                            None if r[5] is None else QualifiedName(str(r[5]), str(r[4])))
            for r in q(_CONSTRAINTS_SQL, (oid,))
        )
        columns = tuple(
            ColumnFacts(str(r[0]), str(r[1]), bool(r[2]),
                        None if r[3] is None else float(r[3]),
                        None if r[4] is None else int(r[4]),
                        None if r[5] is None else float(r[5]),
                        None if r[6] is None else str(r[6]),
                        tuple((str(v), float(f)) for v, f in zip(r[7] or (), r[8] or (), strict=False)),
                        None if r[9] is None else float(r[9]))
            for r in q(_COLUMNS_SQL, (oid,))
        )
        found[int(oid)] = TableFacts(
            QualifiedName(str(relname), str(schema)), str(relkind), int(total), int(heap), int(idx),
            int(toast), int(curpages), float(reltuples), int(estimate), source, analyzed,
            None if live is None else int(live), None if dead is None else int(dead),
            None if mods is None else int(mods), indexes, constraints, columns,
        )
    oids = list(found)
    if oids and write_sample_s:
        first = _sample_stats(q, oids)
        time.sleep(write_sample_s)
        second = _sample_stats(q, oids)
        for oid, (writes, scans, at) in second.items():
            before = first.get(oid)
            if before is None:
                continue
            elapsed = max(at - before[2], 1e-3)
            found[oid] = _with_rates(found[oid], (writes - before[0]) / elapsed, (scans - before[1]) / elapsed)
    sessions = tuple(
        SessionFacts(int(r[0]), str(r[1]), str(r[2]), str(r[3]),
                     None if r[4] is None else float(r[4]), None if r[5] is None else float(r[5]),
                     str(r[6]), None if r[7] is None else str(r[7]))
        for r in q(_ACTIVITY_SQL, ())
    )
    locks: list[LockHolder] = []
    if oids:
        for pid, schema, relname, mode, granted in q(_LOCKS_SQL, (oids,)):
            try:
                lock_mode = LockMode.from_pg_locks(str(mode))
            except ValueError:
                continue
            locks.append(LockHolder(int(pid), QualifiedName(str(relname), str(schema)), lock_mode, bool(granted)))
    return DatabaseFacts(
        server, tuple(found.values()), sessions, tuple(locks),
        write_sample_s if oids and write_sample_s else None, tuple(missing),
        search_path or ("public",),
    )


def _with_rates(t: TableFacts, writes: float, reads: float) -> TableFacts:
    return replace(t, write_rate=max(writes, 0.0), read_rate=max(reads, 0.0))
