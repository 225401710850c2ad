"""``verify --load``: application-like writers and readers on the tables while a migration runs.

One :class:`helios_migrate.workload.Workload` per table (up to :data:`MAX_TABLES`, tables with a
single-column primary key), one writer and one reader each.  Writers only ``UPDATE`` a row to its own
values, so the stairway's data comparison is not disturbed.  Each traced statement gets the longest
write and read stall among the operations that overlapped it.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import psycopg

from ..workload import Workload, WorkloadError
from .compare import Finding, Severity
from .trace import TracedStatement

MAX_TABLES = 4
MAX_DURATION_S = 600.0


def _loadable_tables(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    rows = conn.execute(
        """SELECT n.nspname, c.relname FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary AND i.indnatts = 1
           WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND n.nspname NOT LIKE 'pg_%%' AND c.relname <> 'alembic_version'
           ORDER BY c.reltuples DESC, 1, 2 LIMIT %s""",
        (MAX_TABLES,),
    ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


class TableLoad:
    """Workloads on the application's tables for the duration of a ``with`` block."""

    def __init__(self, url: str, conn: psycopg.Connection[Any]) -> None:
        self.url = url
        self.conn = conn
        self.loads: list[Any] = []
        self.problems: list[str] = []

    def __enter__(self) -> TableLoad:
        for schema, table in _loadable_tables(self.conn):
            load = Workload(
                self.url, table, schema=schema, writers=1, readers=1, inserts=False,
                max_duration_s=MAX_DURATION_S, pause_s=0.002, seed=1,
            )
            try:
                load.start()
            except (WorkloadError, ValueError) as exc:
                self.problems.append(f"{schema}.{table}: {exc}")
                continue
            self.loads.append(load)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for load in self.loads:
            try:
                load.stop()
            except Exception as err:  # a load that cannot stop cleanly must not hide the run's result
                self.problems.append(f"{load.table}: {err}")

    def attribute(self, statements: Sequence[TracedStatement]) -> None:
        """Set each statement's longest write and read stall (seconds)."""
        for st in statements:
            if not st.ended:
                continue
            write = read = 0.0
            for load in self.loads:
                stalls = load.stalls_between(st.started, st.ended)
                write, read = max(write, stalls.write_s), max(read, stalls.read_s)
            st.write_stall_s, st.read_stall_s = write, read

    def note_problems(self, result: Any) -> None:
        for problem in self.problems:
            result.findings.append(Finding(Severity.INFO, "load", f"no load on {problem}", result.revision))
        self.problems.clear()
