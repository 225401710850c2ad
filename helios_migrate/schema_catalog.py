"""A live database's schema as a :class:`~helios_migrate.schema_model.Schema`, from the catalogs.

Every query is a plain ``SELECT`` on the system catalogs and statistics views, so a read-only
connection (:func:`helios_migrate.db.connect_read_only`) is enough.  Partitions are left out (their
parent stands for them); system schemas and ``pg_toast`` are never read.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg

from .changes import IdentityKind, QualifiedName
from .normalize import NormalizeError, normalize_expr, normalize_type
from .schema_model import Column, ForeignKey, Index, Schema, SchemaSource, SequenceState, Table

_USER_RELATION = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'"
)

_TABLES = f"""
SELECT c.oid, n.nspname, c.relname, c.relkind = 'p', c.reltuples::bigint, s.n_tup_ins
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {_USER_RELATION}
 ORDER BY n.nspname, c.relname
"""

_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity,
       (SELECT max(st.null_frac) FROM pg_stats st
         WHERE st.schemaname = n.nspname AND st.tablename = c.relname AND st.attname = a.attname)
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = ANY(%(oids)s) AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attrelid, a.attnum
"""

_CONSTRAINTS = """
SELECT con.conrelid, con.contype, con.conname,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord),
       fn.nspname, fc.relname,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
               JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord),
       con.confdeltype
  FROM pg_constraint con
  LEFT JOIN pg_class fc ON fc.oid = con.confrelid
  LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
 WHERE con.contype IN ('p', 'f') AND con.conrelid = ANY(%(oids)s)
 ORDER BY con.conrelid, con.conname
"""

_INDEXES = """
SELECT i.indrelid, ic.relname, i.indisunique, i.indisprimary, i.indisvalid, am.amname,
       pg_get_expr(i.indpred, i.indrelid),
       ARRAY(SELECT CASE WHEN i.indkey[k - 1] <> 0
                         THEN (SELECT a.attname::text FROM pg_attribute a
                                WHERE a.attrelid = i.indrelid AND a.attnum = i.indkey[k - 1])
                         ELSE pg_get_indexdef(i.indexrelid, k, true) END
               FROM generate_series(1, i.indnatts) k ORDER BY k),
       ARRAY(SELECT i.indkey[k - 1] <> 0 FROM generate_series(1, i.indnatts) k ORDER BY k),
       i.indnkeyatts, i.indclass::oid[]::bigint[], con.conname, pg_get_indexdef(i.indexrelid),
       pg_relation_size(i.indexrelid), st.idx_scan, i.indexrelid
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  LEFT JOIN pg_stat_user_indexes st ON st.indexrelid = i.indexrelid
  JOIN pg_am am ON am.oid = ic.relam
  LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
                             AND con.contype IN ('p', 'u', 'x')
 WHERE i.indrelid = ANY(%(oids)s)
 ORDER BY i.indrelid, ic.relname
"""

_SEQUENCES = """
SELECT s.schemaname, s.sequencename, s.data_type::text, s.max_value, s.increment_by, s.last_value,
       tn.nspname, t.relname, a.attname, d.deptype = 'a', t.oid
  FROM pg_sequences s
  JOIN pg_namespace sn ON sn.nspname = s.schemaname
  JOIN pg_class sc ON sc.relnamespace = sn.oid AND sc.relname = s.sequencename
  LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = sc.oid
                       AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                       AND d.refobjsubid > 0
  LEFT JOIN pg_class t ON t.oid = d.refobjid
  LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
  LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
 WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema')
 ORDER BY s.schemaname, s.sequencename
"""

_PARTITIONS = """
SELECT i.inhparent, n.nspname, c.relname
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE i.inhparent = ANY(%(oids)s) AND c.relispartition
 ORDER BY i.inhparent, n.nspname, c.relname
"""

_WINDOW = """
SELECT coalesce(d.stats_reset, pg_postmaster_start_time()), now(),
       current_setting('server_version_num')::int
  FROM pg_stat_database d WHERE d.datname = current_database()
"""

_BLOAT_TABLES = """
WITH widths AS (
  SELECT c.oid, count(*) AS ncols, count(st.attname) AS nstats,
         sum((1 - coalesce(st.null_frac, 0)) * coalesce(st.avg_width, 0)) AS data_width,
         bool_or(coalesce(st.null_frac, 0) > 0) AS has_nulls
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_stats st ON st.schemaname = n.nspname AND st.tablename = c.relname
                         AND st.attname = a.attname AND NOT st.inherited
   WHERE c.oid = ANY(%(oids)s) AND c.relkind = 'r'
   GROUP BY c.oid
), shape AS (
  SELECT c.oid, c.relpages, c.reltuples, w.ncols, w.nstats,
         current_setting('block_size')::int AS bs,
         coalesce((SELECT substring(o FROM 'fillfactor=([0-9]+)')::int FROM unnest(c.reloptions) o
                    WHERE o LIKE 'fillfactor=%%'), 100) AS fillfactor,
         -- heap tuple: 23-byte header + null bitmap, aligned to 8, then the data aligned to 8,
         -- and a 4-byte line pointer
         ceil((23 + CASE WHEN w.has_nulls THEN ceil(w.ncols / 8.0) ELSE 0 END) / 8.0) * 8
           + ceil(w.data_width / 8.0) * 8 + 4 AS tuple_bytes
    FROM pg_class c JOIN widths w ON w.oid = c.oid
)
SELECT oid, relpages::bigint * bs,
       CASE WHEN nstats = ncols AND reltuples > 0 THEN
         greatest(0, relpages - ceil(reltuples / greatest(1, floor((bs - 24) * fillfactor / 100.0 / tuple_bytes))))::bigint * bs
       END
  FROM shape
"""

# B-tree indexes on plain columns: an 8-byte index tuple header plus the key and INCLUDE columns'
# average widths aligned to 8, a 4-byte line pointer; pages less the header and the B-tree
# special space, filled to the leaf fillfactor (90 by default); plus the metapage.
_BLOAT_INDEXES = """
WITH keys AS (
  SELECT i.indexrelid, i.indrelid, bool_and(k.attnum <> 0) AS plain, count(st.attname) AS nstats,
         count(*) AS nkeys, sum(coalesce(st.avg_width, 0)) AS width
    FROM pg_index i
    CROSS JOIN LATERAL unnest(i.indkey::int2[]) AS k(attnum)
    JOIN pg_class t ON t.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    LEFT JOIN pg_stats st ON st.schemaname = n.nspname AND st.tablename = t.relname
                         AND st.attname = a.attname AND NOT st.inherited
   WHERE i.indrelid = ANY(%(oids)s)
   GROUP BY i.indexrelid, i.indrelid
)
SELECT ic.oid,
       CASE WHEN k.plain AND k.nstats = k.nkeys AND ic.reltuples > 0 THEN
         greatest(0, ic.relpages - 1 - ceil(ic.reltuples / greatest(1, floor(
           (current_setting('block_size')::int - 24 - 16)
           * coalesce((SELECT substring(o FROM 'fillfactor=([0-9]+)')::int FROM unnest(ic.reloptions) o
                        WHERE o LIKE 'fillfactor=%%'), 90) / 100.0
           / (8 + ceil(k.width / 8.0) * 8 + 4)))))::bigint * current_setting('block_size')::int
       END
  FROM keys k
  JOIN pg_class ic ON ic.oid = k.indexrelid
  JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
 WHERE ic.relkind = 'i'
"""

_ON_DELETE = {"a": None, "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
_IDENTITY = {"a": IdentityKind.ALWAYS, "d": IdentityKind.BY_DEFAULT}


def _type(text: str) -> str:
    try:
        return normalize_type(text)
    except NormalizeError:
        return text


def _expr(text: str) -> str:
    try:
        return normalize_expr(text)
    except NormalizeError:
        return text


_SERIAL = {"integer": "serial", "bigint": "bigserial", "smallint": "smallserial"}


def _as_serial(column: Column) -> Column:
    """A column fed by a sequence it owns through its ``nextval()`` default is what ``serial``
    creates (as pg_dump and psql read it): say so, as the models do."""
    if column.type in _SERIAL and (column.default or "").startswith("nextval("):
        return replace(column, type=_SERIAL[column.type])
    return column


def read_schema(conn: psycopg.Connection[Any], *, label: str = "") -> Schema:
    """The schema of the database ``conn`` is connected to (user schemas only)."""
    with conn.cursor() as cur:
        tables = cur.execute(_TABLES).fetchall()
        oids = [row[0] for row in tables]
        table_bloat = {oid: (size, bloat) for oid, size, bloat in cur.execute(_BLOAT_TABLES, {"oids": oids})}
        index_bloat = dict(cur.execute(_BLOAT_INDEXES, {"oids": oids}).fetchall())
        columns: dict[int, list[Column]] = {}
        for relid, name, type_, notnull, default, identity, null_frac in cur.execute(_COLUMNS, {"oids": oids}):
            columns.setdefault(relid, []).append(
                Column(name, _type(type_), nullable=not notnull, default=default,
                       identity=_IDENTITY.get(identity or ""),
                       null_frac=None if null_frac is None else float(null_frac))
            )
        keys: dict[int, tuple[str, ...]] = {}
        fks: dict[int, list[ForeignKey]] = {}
        for relid, kind, name, cols, ref_schema, ref_table, ref_cols, deltype in cur.execute(
            _CONSTRAINTS, {"oids": oids}
        ):
            if kind == "p":
                keys[relid] = tuple(cols)
            else:
                fks.setdefault(relid, []).append(
                    ForeignKey(name, tuple(cols), QualifiedName(ref_table, ref_schema), tuple(ref_cols),
                               on_delete=_ON_DELETE.get(deltype))
                )
        indexes: dict[int, list[Index]] = {}
        for (relid, name, unique, primary, valid, method, predicate, elements, plain, nkey, opclasses,
             constraint, definition, size, scans, index_oid) in cur.execute(_INDEXES, {"oids": oids}):
            key_elements = tuple(e if p else _expr(e) for e, p in zip(elements[:nkey], plain, strict=False))
            indexes.setdefault(relid, []).append(
                Index(
                    name=name, elements=key_elements, unique=unique, primary=primary, method=method,
                    predicate=_expr(predicate) if predicate else None, include=tuple(elements[nkey:]),
                    valid=valid, constraint=constraint, definition=definition, size_bytes=size,
                    operator_classes=tuple(int(o) for o in opclasses[:nkey]),
                    scans=None if scans is None else int(scans),
                    bloat_bytes=index_bloat.get(index_oid),
                )
            )
        partitions: dict[int, list[QualifiedName]] = {}
        for parent, part_schema, part_name in cur.execute(_PARTITIONS, {"oids": oids}):
            partitions.setdefault(parent, []).append(QualifiedName(part_name, part_schema))
        sequences = []
        for (schema, name, data_type, max_value, increment, last, table_schema, table, column, serial,
             table_oid) in cur.execute(_SEQUENCES):
            sequences.append(SequenceState(
                name=QualifiedName(name, schema), data_type=_type(data_type), max_value=int(max_value),
                increment=int(increment), last_value=None if last is None else int(last),
                owned_by=(QualifiedName(table, table_schema), column) if table else None,
            ))
            if serial:
                columns[table_oid] = [_as_serial(col) if col.name == column else col for col in columns[table_oid]]
        stats_since, now, version_num = cur.execute(_WINDOW).fetchone() or (None, None, None)
    return Schema(
        source=SchemaSource.DATABASE,
        tables=tuple(
            Table(
                name=QualifiedName(relname, schema),
                columns=tuple(columns.get(oid, ())),
                primary_key=keys.get(oid, ()),
                foreign_keys=tuple(fks.get(oid, ())),
                indexes=tuple(indexes.get(oid, ())),
                partitioned=partitioned,
                partitions=tuple(partitions.get(oid, ())),
                row_estimate=reltuples if reltuples is not None and reltuples >= 0 else None,
                inserts=inserts,
                size_bytes=table_bloat.get(oid, (None, None))[0],
                bloat_bytes=table_bloat.get(oid, (None, None))[1],
            )
            for oid, schema, relname, partitioned, reltuples, inserts in tables
        ),
        sequences=tuple(sequences),
        server_version_num=version_num,
        stats_since=stats_since,
        observed_at=now,
        label=label,
    )

