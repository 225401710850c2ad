"""A database's schema as comparable objects, read from the catalogs with plain ``SELECT`` s.

Each object has a kind (``table``, ``column``, ``constraint``, ``index``, ``sequence``, ``enum``,
``view``), a qualified name and its attributes as PostgreSQL itself prints them
(``format_type``, ``pg_get_expr``, ``pg_get_constraintdef``, ``pg_get_indexdef``,
``pg_get_viewdef``), so two sides read by the same server version compare exactly.  Objects that
belong to an extension, indexes that back a constraint (the constraint stands for them), sequences
behind identity columns (the column's identity stands for them), system schemas and the Alembic
version table are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

_NS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'"
)


def _not_extension(classid: str, oid: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{classid}'::regclass "
        f"AND e.objid = {oid} AND e.deptype = 'e')"
    )


_TABLES = f"""
SELECT n.nspname, c.relname, CASE c.relkind WHEN 'p' THEN 'partitioned' ELSE 'ordinary' END
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {_NS}
   AND c.relname <> %(version_table)s AND {_not_extension('pg_class', 'c.oid')}
"""

_COLUMNS = f"""
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid),
       CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,
       CASE a.attgenerated WHEN 's' THEN 'stored' WHEN 'v' THEN 'virtual' END
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND {_NS} AND c.relname <> %(version_table)s AND {_not_extension('pg_class', 'c.oid')}
"""

_CONSTRAINTS = f"""
SELECT n.nspname, c.relname, k.conname,
       CASE k.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique' WHEN 'c' THEN 'check'
                      WHEN 'f' THEN 'foreign key' WHEN 'x' THEN 'exclusion' ELSE k.contype::text END,
       pg_get_constraintdef(k.oid), k.convalidated
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE k.contype IN ('p', 'u', 'c', 'f', 'x') AND NOT c.relispartition AND {_NS}
   AND c.relname <> %(version_table)s AND {_not_extension('pg_class', 'c.oid')}
"""

_INDEXES = f"""
SELECT n.nspname, ic.relname, c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition AND {_NS}
   AND c.relname <> %(version_table)s AND {_not_extension('pg_class', 'c.oid')}
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid
                    AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))
"""

_SEQUENCES = f"""
SELECT s.schemaname, s.sequencename, s.data_type::text, s.start_value, s.min_value, s.max_value,
       s.increment_by, s.cycle,
       (SELECT format('%%s.%%s.%%s', tn.nspname, t.relname, a.attname)
          FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
          JOIN pg_namespace tn ON tn.oid = t.relnamespace
          JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'a'
           AND d.refobjsubid > 0 LIMIT 1)
  FROM pg_sequences s
  JOIN pg_namespace n ON n.nspname = s.schemaname
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.sequencename
 WHERE {_NS} AND {_not_extension('pg_class', 'c.oid')}
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype = 'i')
"""

_ENUMS = f"""
SELECT n.nspname, t.typname,
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE t.typtype = 'e' AND {_NS} AND {_not_extension('pg_type', 't.oid')}
"""

_VIEWS = f"""
SELECT n.nspname, c.relname, CASE c.relkind WHEN 'm' THEN 'materialized' ELSE 'plain' END,
       pg_get_viewdef(c.oid, true)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('v', 'm') AND {_NS} AND {_not_extension('pg_class', 'c.oid')}
"""


@dataclass(frozen=True)
class SchemaObject:
    """One object of a schema: what it is, its name, its attributes and the table it belongs to."""

    kind: str
    name: str
    """Qualified: ``schema.table``, ``schema.table.column``, ``schema.table.constraint``,
    ``schema.index``, ``schema.sequence``, ``schema.type``, ``schema.view``."""
    attributes: tuple[tuple[str, Any], ...]
    table: str | None = None
    """The qualified table a column, constraint or index belongs to."""
    parts: tuple[str, ...] = ()
    """The name's parts, unquoted (``("public", "orders", "total")``)."""

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    def attribute(self, name: str) -> Any:
        return dict(self.attributes).get(name)


@dataclass(frozen=True)
class SchemaObjects:
    """Everything one side describes, by :attr:`SchemaObject.key`."""

    label: str
    objects: Mapping[str, SchemaObject]
    server_version_num: int | None = None


def _index_definition(definition: str) -> str:
    """``CREATE [UNIQUE] INDEX name ON table USING ...`` without the index's own name (the name is
    the object's key; the rest is what the index is)."""
    head, sep, rest = definition.partition(" ON ")
    unique = "UNIQUE " if head.startswith("CREATE UNIQUE") else ""
    return f"{unique}ON {rest}" if sep else definition


def read_objects(
    conn: psycopg.Connection[Any], *, label: str, version_table: str = "alembic_version"
) -> SchemaObjects:
    """The objects of the database ``conn`` is connected to (user schemas only)."""
    params = {"version_table": version_table}
    out: dict[str, SchemaObject] = {}

    def add(obj: SchemaObject) -> None:
        out[obj.key] = obj

    with conn.cursor() as cur:
        for schema, name, kind in cur.execute(_TABLES, params):
            add(SchemaObject("table", f"{schema}.{name}", (("kind", kind),), parts=(schema, name)))
        for schema, table, name, type_, nullable, default, identity, generated in cur.execute(_COLUMNS, params):
            attrs: tuple[tuple[str, Any], ...] = (
                ("type", type_), ("nullable", bool(nullable)), ("default", default), ("identity", identity),
            )
            if generated:
                attrs = (*attrs, ("generated", generated))
            add(SchemaObject("column", f"{schema}.{table}.{name}", attrs, f"{schema}.{table}", (schema, table, name)))
        for schema, table, name, kind, definition, validated in cur.execute(_CONSTRAINTS, params):
            add(SchemaObject(
                "constraint", f"{schema}.{table}.{name}",
                (("type", kind), ("definition", definition), ("validated", bool(validated))),
                f"{schema}.{table}", (schema, table, name),
            ))
        for schema, name, table, definition, valid in cur.execute(_INDEXES, params):
            add(SchemaObject(
                "index", f"{schema}.{name}",
                (("table", f"{schema}.{table}"), ("definition", _index_definition(definition)),
                 ("valid", bool(valid))),
                f"{schema}.{table}", (schema, table, name),
            ))
        for schema, name, data_type, start, minimum, maximum, increment, cycle, owner in cur.execute(_SEQUENCES):
            add(SchemaObject(
                "sequence", f"{schema}.{name}",
                (("type", data_type), ("start", int(start)), ("min", int(minimum)), ("max", int(maximum)),
                 ("increment", int(increment)), ("cycle", bool(cycle)), ("owned_by", owner)),
                parts=(schema, name),
            ))
        for schema, name, labels in cur.execute(_ENUMS):
            add(SchemaObject("enum", f"{schema}.{name}", (("values", tuple(labels)),), parts=(schema, name)))
        for schema, name, kind, definition in cur.execute(_VIEWS):
            add(SchemaObject("view", f"{schema}.{name}", (("kind", kind), ("definition", definition.strip())),
                                parts=(schema, name)))
        row = cur.execute("SELECT current_setting('server_version_num')::int").fetchone()
    return SchemaObjects(label, out, int(row[0]) if row else None)
