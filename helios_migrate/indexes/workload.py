"""The queries index advice is drawn from: ``pg_stat_statements`` of a live database, or a file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from pglast import parser


class WorkloadError(Exception):
    """The workload cannot be read; the message says why and what to do."""


@dataclass(frozen=True)
class Query:
    text: str
    calls: int = 1
    total_ms: float = 0.0
    """Total execution time (``pg_stat_statements.total_exec_time``); 0 when unknown."""
    source: str = ""
    """Where it came from: ``pg_stat_statements`` query id, or ``file:line``."""

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.calls if self.calls else 0.0


NOT_LOADED_HELP = (
    "pg_stat_statements records every statement's calls and time; enable it with "
    "shared_preload_libraries = 'pg_stat_statements' in postgresql.conf (a restart), then "
    "CREATE EXTENSION pg_stat_statements in this database, and let the workload run. Meanwhile, "
    "give the queries in a file: --queries FILE."
)

_STATEMENTS = """
SELECT s.queryid::text, s.query, s.calls, s.total_exec_time
  FROM pg_stat_statements s
 WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND s.calls > 0
 ORDER BY s.total_exec_time DESC
 LIMIT %(limit)s
"""

_DIRECTIVE = re.compile(r"--\s*calls\s*=\s*(\d+)(?:\s+mean_ms\s*=\s*([0-9.]+))?", re.IGNORECASE)


def from_pg_stat_statements(conn: psycopg.Connection[Any], *, limit: int = 500) -> list[Query]:
    """The most expensive statements of the current database (by total execution time)."""
    with conn.cursor() as cur:
        installed = cur.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_stat_statements'"
        ).fetchone()
    if installed is None:
        raise WorkloadError(f"pg_stat_statements is not installed in this database. {NOT_LOADED_HELP}")
    try:
        with conn.cursor() as cur:
            rows = cur.execute(_STATEMENTS, {"limit": limit}).fetchall()
    except psycopg.errors.ObjectNotInPrerequisiteState:
        raise WorkloadError(
            "pg_stat_statements is installed but not loaded (it is not in shared_preload_libraries). "
            + NOT_LOADED_HELP
        ) from None
    return [Query(text, int(calls), float(total), f"pg_stat_statements queryid {qid}") for qid, text, calls, total in rows]


def from_file(path: Path) -> list[Query]:
    """The statements of a SQL file, split on ``;`` by the PostgreSQL grammar.  A comment
    ``-- calls=N mean_ms=M`` before a statement gives its weight (default: 1 call, time unknown)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkloadError(f"--queries {path}: cannot read it: {exc}") from None
    try:
        statements = parser.split(text, with_parser=True)
    except parser.ParseError as exc:
        raise WorkloadError(f"--queries {path}: not SQL PostgreSQL parses: {exc}") from None
    out = []
    offset = 0
    for statement in statements:
        start = text.find(statement, offset)
        offset = start + len(statement) if start >= 0 else offset
        before = text[:start] if start >= 0 else ""
        line = before.count("\n") + 1
        last = before.rstrip().rsplit("\n", 1)[-1]
        directive = _DIRECTIVE.search(last) if last.lstrip().startswith("--") else None
        calls = int(directive.group(1)) if directive else 1
        mean = float(directive.group(2)) if directive and directive.group(2) else 0.0
        out.append(Query(statement.strip(), calls, calls * mean, f"{path.name}:{line}"))
    if not out:
        raise WorkloadError(f"--queries {path}: no statements")
    return out
