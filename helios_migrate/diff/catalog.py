"""A database's schema as comparable objects, read from the catalogs with plain ``SELECT`` s.

Each object has a kind (``table``, ``column``, ``constraint``, ``index``, ``sequence``, ``enum``,
``view``, ``function``, ``trigger``, ``extension``, ``comment``, ``rls``, ``policy``, ``grant``,
``owner``), a qualified name and its attributes as PostgreSQL itself prints them
(``format_type``, ``pg_get_expr``, ``pg_get_constraintdef``, ``pg_get_indexdef``,
``pg_get_viewdef``, ``pg_get_functiondef``, ``pg_get_triggerdef``), so two sides read by the same server version compare exactly.  Objects that
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
 ORDER BY n.nspname, c.relname, a.attnum
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


_FUNCTIONS = f"""
SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
       CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END, pg_get_function_result(p.oid),
       l.lanname, CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END,
       p.prosecdef, p.proisstrict, p.proconfig, p.prosrc, pg_get_functiondef(p.oid)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
 WHERE p.prokind IN ('f', 'p') AND {_NS} AND {_not_extension('pg_proc', 'p.oid')}
"""

_TRIGGERS = f"""
SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid),
       CASE t.tgenabled WHEN 'O' THEN 'enabled' WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica'
                        WHEN 'A' THEN 'always' END
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND {_NS} AND c.relname <> %(version_table)s
   AND {_not_extension('pg_class', 'c.oid')} AND {_not_extension('pg_trigger', 't.oid')}
"""

_EXTENSIONS = """
SELECT e.extname, e.extversion, n.nspname
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
"""

_REL_KINDS = (
    "CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' "
    "WHEN 'i' THEN 'index' WHEN 'I' THEN 'index' ELSE 'table' END"
)

# one row per comment: what it is on (COMMENT ON <what>), the name's parts, the table, the text
_COMMENTS = f"""
SELECT CASE WHEN d.objsubid > 0 THEN 'column' ELSE {_REL_KINDS} END,
       ARRAY[n.nspname::text, c.relname::text] || CASE WHEN d.objsubid > 0 THEN ARRAY[a.attname::text]
                                                      ELSE ARRAY[]::text[] END,
       CASE WHEN c.relkind IN ('r', 'p') THEN format('%%s.%%s', n.nspname, c.relname)
            WHEN c.relkind IN ('i', 'I') THEN (SELECT format('%%s.%%s', n.nspname, t.relname)
                                               FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
                                              WHERE i.indexrelid = c.oid) END,
       d.description
  FROM pg_description d JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND c.oid = d.objoid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
 WHERE {_NS} AND c.relname <> %(version_table)s AND {_not_extension('pg_class', 'c.oid')}
   AND NOT (c.relkind IN ('r', 'p') AND c.relispartition)
UNION ALL
SELECT 'constraint', ARRAY[n.nspname::text, c.relname::text, k.conname::text],
       format('%%s.%%s', n.nspname, c.relname), d.description
  FROM pg_description d JOIN pg_constraint k ON d.classoid = 'pg_constraint'::regclass AND k.oid = d.objoid
  JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE {_NS} AND {_not_extension('pg_class', 'c.oid')}
UNION ALL
SELECT 'trigger', ARRAY[n.nspname::text, c.relname::text, t.tgname::text],
       format('%%s.%%s', n.nspname, c.relname), d.description
  FROM pg_description d JOIN pg_trigger t ON d.classoid = 'pg_trigger'::regclass AND t.oid = d.objoid
  JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE {_NS} AND {_not_extension('pg_class', 'c.oid')}
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
       ARRAY[n.nspname::text, p.proname::text, pg_get_function_identity_arguments(p.oid)], NULL, d.description
  FROM pg_description d JOIN pg_proc p ON d.classoid = 'pg_proc'::regclass AND p.oid = d.objoid
  JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE p.prokind IN ('f', 'p') AND {_NS} AND {_not_extension('pg_proc', 'p.oid')}
UNION ALL
SELECT 'type', ARRAY[n.nspname::text, t.typname::text], NULL, d.description
  FROM pg_description d JOIN pg_type t ON d.classoid = 'pg_type'::regclass AND t.oid = d.objoid
  JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE {_NS} AND {_not_extension('pg_type', 't.oid')}
"""

_RLS = f"""
SELECT n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND (c.relrowsecurity OR c.relforcerowsecurity) AND {_NS}
   AND {_not_extension('pg_class', 'c.oid')}
"""

_POLICIES = f"""
SELECT n.nspname, c.relname, p.polname, CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END,
       CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                     WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE r::regrole::text END
               FROM unnest(p.polroles) r ORDER BY 1),
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE {_NS} AND {_not_extension('pg_class', 'c.oid')}
"""

# The owner's own privileges are implicit (a revision built on a scratch server is owned by
# another role than production): only what is granted to other roles is compared.  A NULL ACL is
# the default one (acldefault), so "never granted" and "granted the defaults" read the same.
_GRANTS = f"""
SELECT {_REL_KINDS}, ARRAY[n.nspname::text, c.relname::text],
       CASE WHEN c.relkind IN ('r', 'p') THEN format('%%s.%%s', n.nspname, c.relname) END,
       CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END,
       array_agg(x.privilege_type || CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END
                 ORDER BY x.privilege_type)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
       aclexplode(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char",
                                                c.relowner))) x
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND NOT (c.relkind IN ('r', 'p') AND c.relispartition)
   AND x.grantee <> c.relowner AND {_NS} AND c.relname <> %(version_table)s
   AND {_not_extension('pg_class', 'c.oid')}
 GROUP BY 1, 2, 3, 4
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
       ARRAY[n.nspname::text, p.proname::text, pg_get_function_identity_arguments(p.oid)], NULL,
       CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END,
       array_agg(x.privilege_type || CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END
                 ORDER BY x.privilege_type)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace,
       aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) x
 WHERE p.prokind IN ('f', 'p') AND x.grantee <> p.proowner AND {_NS}
   AND {_not_extension('pg_proc', 'p.oid')}
 GROUP BY 1, 2, 3, 4
"""

_OWNERS = f"""
SELECT {_REL_KINDS}, ARRAY[n.nspname::text, c.relname::text],
       CASE WHEN c.relkind IN ('r', 'p') THEN format('%%s.%%s', n.nspname, c.relname) END,
       c.relowner::regrole::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND NOT (c.relkind IN ('r', 'p') AND c.relispartition)
   AND {_NS} AND c.relname <> %(version_table)s AND {_not_extension('pg_class', 'c.oid')}
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype = 'i')
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
       ARRAY[n.nspname::text, p.proname::text, pg_get_function_identity_arguments(p.oid)], NULL,
       p.proowner::regrole::text
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE p.prokind IN ('f', 'p') AND {_NS} AND {_not_extension('pg_proc', 'p.oid')}
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
    """The name's parts, unquoted (``("public", "orders", "total")``); a function's last part is its
    identity arguments (``("public", "f", "a integer")``); a comment's, grant's and owner's parts
    are those of the object they are on (:attr:`on`)."""
    on: str | None = None
    """For a comment, grant or owner: the kind of object it is on, as ``COMMENT ON`` / ``GRANT ...
    ON`` spell it (``table``, ``column``, ``view``, ``function``...)."""
    sql: str | None = None
    """The statement that creates the object as PostgreSQL prints it (a function's
    ``pg_get_functiondef``, a trigger's ``pg_get_triggerdef``), for a plan; not compared."""

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
    not_described: tuple[tuple[str, str], ...] = ()
    """Object kinds this side cannot describe, each with the reason (the models declare no
    grants or owners): a diff does not compare them."""


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
        for schema, name, data_type, start, minimum, maximum, increment, cycle, owner in cur.execute(_SEQUENCES, params):
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
    out.update(read_more_objects(conn, version_table=version_table))
    return SchemaObjects(label, out, int(row[0]) if row else None)


def _function_name(schema: str, name: str, arguments: str) -> str:
    return f"{schema}.{name}({arguments})"


def _dotted(parts: list[str], on: str) -> str:
    if on in ("function", "procedure") and len(parts) == 3:
        return _function_name(*parts)
    return ".".join(parts)


def read_more_objects(
    conn: psycopg.Connection[Any], *, version_table: str = "alembic_version"
) -> dict[str, SchemaObject]:
    """Functions, triggers, extensions, comments, row-level security, policies, grants and owners
    of the database ``conn`` is connected to, by key."""
    params = {"version_table": version_table}
    out: dict[str, SchemaObject] = {}

    def add(obj: SchemaObject) -> None:
        out[obj.key] = obj

    with conn.cursor() as cur:
        for (schema, name, args, kind, returns, language, volatility, definer, strict, config, body,
             definition) in cur.execute(_FUNCTIONS):
            add(SchemaObject(
                "function", _function_name(schema, name, args),
                (("kind", kind), ("returns", returns), ("language", language), ("volatility", volatility),
                 ("security_definer", bool(definer)), ("strict", bool(strict)),
                 # a SQL-standard body (BEGIN ATOMIC, 14+) has no prosrc: the whole definition stands for it
                 ("config", tuple(config) if config else None), ("body", body.strip() or definition.strip())),
                parts=(schema, name, args), sql=definition,
            ))
        for schema, table, name, definition, enabled in cur.execute(_TRIGGERS, params):
            add(SchemaObject(
                "trigger", f"{schema}.{table}.{name}", (("definition", definition), ("enabled", enabled)),
                f"{schema}.{table}", (schema, table, name), sql=definition,
            ))
        for name, version, schema in cur.execute(_EXTENSIONS):
            add(SchemaObject("extension", name, (("version", version), ("schema", schema)), parts=(name,)))
        for on, parts, table, text in cur.execute(_COMMENTS, params):
            add(SchemaObject(
                "comment", f"{on} {_dotted(list(parts), on)}", (("text", text),), table, tuple(parts), on=on,
            ))
        for schema, table, enabled, forced in cur.execute(_RLS):
            add(SchemaObject(
                "rls", f"{schema}.{table}", (("enabled", bool(enabled)), ("forced", bool(forced))),
                f"{schema}.{table}", (schema, table),
            ))
        for schema, table, name, permissive, command, roles, using, check in cur.execute(_POLICIES):
            add(SchemaObject(
                "policy", f"{schema}.{table}.{name}",
                (("as", permissive), ("command", command), ("roles", tuple(roles)), ("using", using),
                 ("with_check", check)),
                f"{schema}.{table}", (schema, table, name),
            ))
        for on, parts, table, grantee, privileges in cur.execute(_GRANTS, params):
            add(SchemaObject(
                "grant", f"{on} {_dotted(list(parts), on)} to {grantee}",
                (("grantee", grantee), ("privileges", tuple(privileges))), table, tuple(parts), on=on,
            ))
        for on, parts, table, owner in cur.execute(_OWNERS, params):
            add(SchemaObject(
                "owner", f"{on} {_dotted(list(parts), on)}", (("owner", owner),), table, tuple(parts), on=on,
            ))
    return out
