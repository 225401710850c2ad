"""Facts read from a live database for ``check --database-url``: the server version, and each
table's size and row estimate.  Read-only ``SELECT``s on the system catalogs, nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..changes import QualifiedName
from ..versions import PgVersion
from .problems import CheckUsageError


@dataclass(frozen=True)
class TableSize:
    table: QualifiedName
    total_bytes: int
    """``pg_total_relation_size``: heap, TOAST and indexes (all partitions for a partitioned table)."""
    row_estimate: int
    """Rows as the planner estimates them (see :func:`table_sizes_sql`)."""


def table_sizes_sql() -> str:
    """Every table's total size and the planner's row estimate (the one formula,
    :func:`helios_migrate.facts.row_estimate_sql`); partitioned tables sum their leaves."""
    from ..facts import row_estimate_sql  # lazy: read with --database-url only

    return f"""
WITH est AS (
    SELECT c.oid, {row_estimate_sql("c")} AS rows FROM pg_class c WHERE c.relkind IN ('r', 'm')
)
SELECT n.nspname, c.relname,
       CASE WHEN c.relkind = 'p'
            THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)
                    FROM pg_partition_tree(c.oid) t WHERE t.isleaf)
            ELSE pg_total_relation_size(c.oid) END AS total_bytes,
       CASE WHEN c.relkind = 'p'
            THEN (SELECT coalesce(sum(e.rows), 0)
                    FROM pg_partition_tree(c.oid) t JOIN est e ON e.oid = t.relid WHERE t.isleaf)
            ELSE (SELECT e.rows FROM est e WHERE e.oid = c.oid) END AS row_estimate
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'm')
   AND NOT c.relispartition
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%'
 ORDER BY 1, 2
"""


@dataclass(frozen=True)
class LiveFacts:
    version: PgVersion
    tables: tuple[TableSize, ...]
    catalog: Any
    """A :class:`helios_migrate.catalog.LiveCatalog` on the same read-only connection."""


@contextmanager
def connect(database_url: str) -> Iterator[LiveFacts]:
    """Open a read-only connection and read the facts; :class:`CheckUsageError` when the server
    cannot be reached."""
    import psycopg  # lazy: psycopg is kept off the check path; needed with --database-url only

    from ..catalog import LiveCatalog  # lazy: imports psycopg (--database-url only)
    from ..db import DatabaseUnreachable, connect_read_only, first_line  # lazy: imports psycopg

    try:
        conn = connect_read_only(database_url)
    except DatabaseUnreachable as exc:
        raise CheckUsageError(str(exc)) from None
    try:
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW server_version_num")
                row = cur.fetchone()
                version = PgVersion.parse(int(row[0]) if row else 0)
                cur.execute(table_sizes_sql())
                tables = tuple(
                    TableSize(
                        QualifiedName(str(name), str(schema)),
                        int(total or 0),
                        round(float(rows or 0)),
                    )
                    for schema, name, total, rows in cur.fetchall()
                )
        except psycopg.Error as exc:
            raise CheckUsageError(
                f"cannot read catalog facts from the database given by --database-url: "
                f"{first_line(exc)}"
            ) from None
        yield LiveFacts(version, tables, LiveCatalog(conn))
    finally:
        conn.close()
