"""What the docs show beyond the objects ``diff`` compares: the column order, the comments on
tables and columns, and -- for a live database -- each table's size and row estimate.

The objects themselves come from :func:`helios_migrate.diff.catalog.read_objects`; this module
reads only what that reader does not carry, on the same connection, with plain ``SELECT`` s.
Sizes and row estimates are the catalog facts every command uses
(:func:`helios_migrate.facts.collect_facts`, whose row estimate is ``facts.row_estimate_sql``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from ..changes import QualifiedName
from ..facts import collect_facts

_COLUMNS = """
SELECT n.nspname, c.relname, a.attname, a.attnum, col_description(c.oid, a.attnum)
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
"""

_TABLES = """
SELECT n.nspname, c.relname, obj_description(c.oid, 'pg_class')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
"""


@dataclass(frozen=True)
class TableSize:
    total_bytes: int
    row_estimate: int


@dataclass
class Extras:
    """Keyed by qualified names as the diff catalog spells them (``public.orders``,
    ``public.orders.total``)."""

    positions: dict[str, int] = field(default_factory=dict)
    column_comments: dict[str, str] = field(default_factory=dict)
    table_comments: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, TableSize] = field(default_factory=dict)


def read_extras(conn: psycopg.Connection[Any], *, sizes_of: list[str] | None = None) -> Extras:
    """Column order and comments; with ``sizes_of`` (qualified table names), their live sizes."""
    out = Extras()
    with conn.cursor() as cur:
        for schema, table, column, position, comment in cur.execute(_COLUMNS):
            key = f"{schema}.{table}.{column}"
            out.positions[key] = int(position)
            if comment:
                out.column_comments[key] = comment
        for schema, table, comment in cur.execute(_TABLES):
            if comment:
                out.table_comments[f"{schema}.{table}"] = comment
    if sizes_of:
        names = [QualifiedName.parse(name) for name in sizes_of]
        facts = collect_facts(conn, names, write_sample_s=None)
        for t in facts.tables:
            out.sizes[f"{t.name.schema or 'public'}.{t.name.name}"] = TableSize(t.total_bytes, t.row_estimate)
    return out
