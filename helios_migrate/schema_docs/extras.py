"""What the docs show beyond the objects ``diff`` compares: the column order, and -- for a live
database -- each table's size and row estimate.

The objects themselves (comments included) come from
:func:`helios_migrate.diff.catalog.read_objects`; this module reads only what that reader does not
carry, with plain ``SELECT`` s.
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
SELECT n.nspname, c.relname, a.attname, a.attnum
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND NOT c.relispartition
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
    sizes: dict[str, TableSize] = field(default_factory=dict)


def read_extras(conn: psycopg.Connection[Any], *, sizes_of: list[str] | None = None) -> Extras:
    """Column order; with ``sizes_of`` (qualified table names), their live sizes."""
    out = Extras()
    with conn.cursor() as cur:
        for schema, table, column, position in cur.execute(_COLUMNS):
            out.positions[f"{schema}.{table}.{column}"] = int(position)
    if sizes_of:
        names = [QualifiedName.parse(name) for name in sizes_of]
        facts = collect_facts(conn, names, write_sample_s=None)
        for t in facts.tables:
            out.sizes[f"{t.name.schema or 'public'}.{t.name.name}"] = TableSize(t.total_bytes, t.row_estimate)
    return out
