"""What a live review reads beyond the catalog snapshot: enum types, and bounded samples of values.

Everything here is read-only and bounded.  A sample is one ``SELECT`` of at most
:data:`SAMPLE_ROWS` non-NULL values of one column, from a ``TABLESAMPLE SYSTEM`` of the pages
when the table is large, in a ``READ ONLY`` transaction with a short ``statement_timeout`` and
``lock_timeout``; at most :data:`MAX_SAMPLED_COLUMNS` columns are sampled in one review.  A sample
that fails (no SELECT privilege, the timeout) is skipped: the rules that would use it stay silent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from ..changes import QualifiedName
from ..db import first_line
from ..schema_model import Schema
from ..sqltext import quote_qualified

SAMPLE_ROWS = 200
"""Values read per sampled column."""
MAX_SAMPLED_COLUMNS = 300
"""Columns sampled in one review at most (the rest are not judged)."""
SAMPLE_TIMEOUT_MS = 2000
"""``statement_timeout`` of one sample."""
MAX_VALUE_CHARS = 500
"""Only the start of a long value is read."""

_ENUMS = """
SELECT n.nspname, t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
  FROM pg_type t
  JOIN pg_namespace n ON n.oid = t.typnamespace
  JOIN pg_enum e ON e.enumtypid = t.oid
 GROUP BY n.nspname, t.typname
"""


def read_enum_types(conn: psycopg.Connection[Any]) -> dict[str, tuple[str, ...]]:
    """Enum types by bare and schema-qualified name, with their labels in order."""
    out: dict[str, tuple[str, ...]] = {}
    for schema, name, labels in conn.execute(_ENUMS):
        out[f"{schema}.{name}"] = tuple(labels)
        out.setdefault(name, tuple(labels))
    return out


class ColumnSampler:
    """Reads bounded samples of column values from a live database (see the module docstring)."""

    def __init__(self, conn: psycopg.Connection[Any], schema: Schema) -> None:
        self._conn = conn
        self._rows = {t.name: t.row_estimate for t in schema.tables}
        self._taken = 0
        self.failed: list[str] = []
        """``table.column: why`` for each sample that could not be read."""
        self.skipped = 0
        """Columns asked for after :data:`MAX_SAMPLED_COLUMNS`."""

    def __call__(self, table: QualifiedName, column: str) -> Sequence[str] | None:
        if self._taken >= MAX_SAMPLED_COLUMNS:
            self.skipped += 1
            return None
        self._taken += 1
        try:
            return self._read(table, column)
        except psycopg.Error as exc:
            self.failed.append(f"{table}.{column}: {first_line(exc)}")
            return None

    def _read(self, table: QualifiedName, column: str) -> list[str]:
        rows = self._rows.get(table)
        col = quote_qualified(None, column)
        sample = ""
        if rows is not None and rows > 20 * SAMPLE_ROWS:
            percent = max(0.01, min(100.0, 100.0 * 20 * SAMPLE_ROWS / rows))
            sample = f" TABLESAMPLE SYSTEM ({percent:.4f})"
        query = (
            f"SELECT left({col}::text, {MAX_VALUE_CHARS}) FROM {quote_qualified(table.schema, table.name)}{sample} "
            f"WHERE {col} IS NOT NULL LIMIT {SAMPLE_ROWS}"
        )
        with self._conn.transaction():
            self._conn.execute("SET TRANSACTION READ ONLY")
            self._conn.execute(f"SET LOCAL statement_timeout = {SAMPLE_TIMEOUT_MS}")
            self._conn.execute("SET LOCAL lock_timeout = 500")
            return [value for (value,) in self._conn.execute(query.encode()) if value is not None]
