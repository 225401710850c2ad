"""A normalised picture of a database's schema and data, for the stairway comparison.

:func:`snapshot_schema` reads tables, columns (type, nullability, default, identity, generated),
constraints and indexes by definition, enum types with their labels, triggers, views and sequences
from the catalog into sets of comparable lines; column order is not part of it (a downgrade that
re-adds a dropped column puts it last, which changes nothing an application sees).

:func:`snapshot_data` gives per table the row count and an ``md5`` over the rows' text, on the
columns named; :func:`compare_data` checks two snapshots on the columns both have.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

_SYSTEM = ("pg_catalog", "information_schema", "pg_toast")
_IGNORED_TABLES = ("alembic_version",)

_APP_NS = """n.nspname <> ALL(%(system)s) AND n.nspname NOT LIKE 'pg_temp%%'
  AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname <> 'helios_verify'"""

_QUERIES: dict[str, str] = {
    "table": f"""
SELECT format('%%s.%%s (%%s)', n.nspname, c.relname, c.relkind)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f') AND {_APP_NS} AND c.relname <> ALL(%(ignored)s)""",
    "column": f"""
SELECT format('%%s.%%s.%%s %%s%%s%%s%%s%%s', n.nspname, c.relname, a.attname,
              format_type(a.atttypid, a.atttypmod),
              CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
              coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), ''),
              CASE a.attidentity WHEN 'a' THEN ' IDENTITY ALWAYS' WHEN 'd' THEN ' IDENTITY BY DEFAULT'
                   ELSE '' END,
              CASE WHEN a.attgenerated <> '' THEN ' GENERATED ' || a.attgenerated::text ELSE '' END)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND {_APP_NS} AND c.relname <> ALL(%(ignored)s)""",
    "constraint": f"""
SELECT format('%%s.%%s %%s: %%s%%s', n.nspname, c.relname, k.conname, pg_get_constraintdef(k.oid),
              CASE WHEN k.convalidated THEN '' ELSE ' (not validated)' END)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_APP_NS} AND c.relname <> ALL(%(ignored)s)""",
    "index": f"""
SELECT pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' (INVALID)' END
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_APP_NS} AND c.relname <> ALL(%(ignored)s)""",
    "enum": f"""
SELECT format('%%s.%%s (%%s)', n.nspname, t.typname,
              (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
               FROM pg_enum e WHERE e.enumtypid = t.oid))
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'e' AND {_APP_NS}""",
    "trigger": f"""
SELECT pg_get_triggerdef(g.oid) || CASE WHEN g.tgenabled = 'D' THEN ' (disabled)' ELSE '' END
FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT g.tgisinternal AND {_APP_NS}""",
    "view": f"""
SELECT format('%%s.%%s (%%s): %%s', n.nspname, c.relname, c.relkind, pg_get_viewdef(c.oid))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND {_APP_NS}""",
    "sequence": f"""
SELECT format('%%s.%%s', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND {_APP_NS}""",
}


@dataclass(frozen=True)
class SchemaSnapshot:
    items: Mapping[str, frozenset[str]]

    def diff(self, other: SchemaSnapshot) -> list[str]:
        """Lines ``- kind: item`` (only in self) and ``+ kind: item`` (only in other)."""
        out: list[str] = []
        for kind in _QUERIES:
            mine, theirs = self.items.get(kind, frozenset()), other.items.get(kind, frozenset())
            out += [f"- {kind}: {x}" for x in sorted(mine - theirs)]
            out += [f"+ {kind}: {x}" for x in sorted(theirs - mine)]
        return out


def _params() -> dict[str, Any]:
    return {"system": list(_SYSTEM), "ignored": list(_IGNORED_TABLES)}


def snapshot_schema(conn: psycopg.Connection[Any]) -> SchemaSnapshot:
    items = {
        kind: frozenset(str(r[0]) for r in conn.execute(query, _params()).fetchall())
        for kind, query in _QUERIES.items()
    }
    return SchemaSnapshot(items)


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    columns: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def app_tables(conn: psycopg.Connection[Any]) -> list[TableInfo]:
    """Ordinary and partitioned tables of the application (partitions are read through their parent)."""
    rows = conn.execute(
        f"""
SELECT n.nspname, c.relname,
       array(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
             AND NOT a.attisdropped ORDER BY a.attnum)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {_APP_NS}
  AND c.relname <> ALL(%(ignored)s)
ORDER BY 1, 2""",
        _params(),
    ).fetchall()
    return [TableInfo(str(r[0]), str(r[1]), tuple(r[2])) for r in rows]


@dataclass(frozen=True)
class TableData:
    rows: int
    checksum: str
    columns: tuple[str, ...]
    non_null: Mapping[str, int] = field(default_factory=dict)


def table_data(conn: psycopg.Connection[Any], table: TableInfo, columns: Iterable[str]) -> TableData:
    cols = tuple(sorted(columns))
    ident = sql.Identifier(table.schema, table.name)
    if not cols:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
        return TableData(int(row[0]) if row else 0, "", cols)
    col_ids = [sql.Identifier(c) for c in cols]
    counts = sql.SQL(", ").join(sql.SQL("count({})").format(c) for c in col_ids)
    query = sql.SQL(
        "SELECT count(*), md5(coalesce(string_agg(r, E'\\n' ORDER BY r), '')), {counts} "
        "FROM (SELECT ROW({cols})::text AS r, {cols} FROM {t}) s"
    ).format(counts=counts, cols=sql.SQL(", ").join(col_ids), t=ident)
    row = conn.execute(query).fetchone()
    assert row is not None
    return TableData(int(row[0]), str(row[1]), cols, dict(zip(cols, (int(x) for x in row[2:]), strict=True)))


def snapshot_data(conn: psycopg.Connection[Any]) -> dict[str, tuple[TableInfo, TableData]]:
    return {t.qualified: (t, table_data(conn, t, t.columns)) for t in app_tables(conn)}


@dataclass(frozen=True)
class DataDifference:
    table: str
    message: str
    lost_columns: tuple[str, ...] = ()


def compare_data(
    conn: psycopg.Connection[Any],
    before: Mapping[str, tuple[TableInfo, TableData]],
) -> list[DataDifference]:
    """Compare the data now with ``before`` on the tables and columns both have."""
    now = {t.qualified: t for t in app_tables(conn)}
    out: list[DataDifference] = []
    for name, (info, old) in sorted(before.items()):
        cur = now.get(name)
        if cur is None:
            if old.rows:
                out.append(DataDifference(name, f"table is gone; it held {old.rows} rows"))
            continue
        common = set(info.columns) & set(cur.columns)
        new = table_data(conn, cur, common)
        if new.rows != old.rows:
            out.append(DataDifference(name, f"{old.rows} rows before, {new.rows} after"))
            continue
        lost = tuple(
            c for c in sorted(common) if old.non_null.get(c, 0) > 0 and new.non_null.get(c, 0) == 0
        )
        if lost:
            counts = ", ".join(str(old.non_null[c]) for c in lost)
            out.append(DataDifference(
                name, f"values of {', '.join(lost)} were not restored ({counts} non-null before, none after)",
                lost,
            ))
        elif set(old.columns) == common and new.checksum != old.checksum:
            out.append(DataDifference(name, "row contents differ (checksum over every column)"))
        elif set(old.columns) != common and any(
            old.non_null.get(c) != new.non_null.get(c) for c in common
        ):
            out.append(DataDifference(name, "non-null value counts differ"))
    return out
