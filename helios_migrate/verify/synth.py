"""Synthetic rows for every empty application table, with set-based SQL.

Each table gets one ``INSERT ... SELECT ... FROM generate_series`` per batch (parents before children
in foreign-key order).  Values follow each column's type and are distinct per row (``g`` is the row
number), so primary keys and unique constraints hold; enum columns cycle through the labels; foreign
key columns pick existing parent rows (several foreign keys of one table walk their parents'
combinations, so a composite key over two foreign keys stays unique); CHECK constraints filter the
generated rows (``WHERE (check) IS NOT FALSE``), so a row that would violate one is not inserted.
Identity, serial and generated columns are left to the server.

When the full insert fails, a second attempt fills only what must be filled (NOT NULL columns, keys)
and leaves nullable columns to their defaults; when that fails too, the table is reported with the
server's error and left empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from ..sqltext import quote_ident, quote_literal, quote_qualified
from .schema import _APP_NS, _params

BATCH_ROWS = 50_000

Progress = Callable[[str, int, int], None]
"""``progress(table, rows_done, rows_wanted)``."""


@dataclass
class _Column:
    name: str
    type: str
    base_type: str
    typtype: str
    not_null: bool
    default: str | None
    identity: bool
    generated: bool
    in_fk: bool = False


@dataclass
class _ForeignKey:
    name: str
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]


@dataclass
class _Table:
    oid: int
    schema: str
    name: str
    columns: list[_Column] = field(default_factory=list)
    fks: list[_ForeignKey] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class FillResult:
    table: str
    rows: int
    wanted: int
    problem: str | None = None
    """Why the table could not be filled (or not completely)."""


def _read_tables(conn: psycopg.Connection[Any]) -> dict[str, _Table]:
    tables: dict[str, _Table] = {}
    by_oid: dict[int, _Table] = {}
    for oid, schema, name in conn.execute(
        f"""SELECT c.oid::bigint, n.nspname, c.relname FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {_APP_NS}
              AND c.relname <> ALL(%(ignored)s) ORDER BY 2, 3""",
        _params(),
    ).fetchall():
        t = _Table(int(oid), str(schema), str(name))
        tables[t.qualified] = t
        by_oid[t.oid] = t
    if not by_oid:
        return tables
    for rel, att, typ, base, typtype, notnull, default, identity, generated in conn.execute(
        """SELECT a.attrelid::bigint, a.attname, format_type(a.atttypid, a.atttypmod),
                  CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod)
                       ELSE format_type(a.atttypid, a.atttypmod) END,
                  t.typtype::text, a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
                  a.attidentity <> '', a.attgenerated <> ''
           FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
           ORDER BY a.attrelid, a.attnum""",
        (list(by_oid),),
    ).fetchall():
        by_oid[int(rel)].columns.append(
            _Column(str(att), str(typ), str(base), str(typtype), bool(notnull),
                    None if default is None else str(default), bool(identity), bool(generated))
        )
    for rel, name, contype, cols, parent, pcols, expr in conn.execute(
        """SELECT k.conrelid::bigint, k.conname, k.contype::text,
                  array(SELECT attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, o)
                        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY o),
                  (SELECT format('%%s.%%s', pn.nspname, pc.relname) FROM pg_class pc
                   JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE pc.oid = k.confrelid),
                  array(SELECT attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, o)
                        JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY o),
                  CASE WHEN k.contype = 'c' THEN pg_get_expr(k.conbin, k.conrelid) END
           FROM pg_constraint k WHERE k.conrelid = ANY(%s) AND k.contype IN ('f', 'c')
           ORDER BY k.conrelid, k.conname""",
        (list(by_oid),),
    ).fetchall():
        t = by_oid[int(rel)]
        if contype == "f":
            fk = _ForeignKey(str(name), tuple(cols), str(parent), tuple(pcols))
            t.fks.append(fk)
            for c in t.columns:
                if c.name in fk.columns:
                    c.in_fk = True
        elif expr is not None:
            t.checks.append(str(expr))
    return tables


def fk_order(tables: dict[str, _Table]) -> list[_Table]:
    """Parents before children; tables in a foreign-key cycle come last, in name order."""
    done: list[_Table] = []
    placed: set[str] = set()
    pending = dict(tables)
    while pending:
        ready = [
            t for t in pending.values()
            if all(fk.parent in placed or fk.parent == t.qualified or fk.parent not in tables for fk in t.fks)
        ]
        if not ready:
            ready = sorted(pending.values(), key=lambda t: t.qualified)[:1]
        for t in sorted(ready, key=lambda t: t.qualified):
            done.append(t)
            placed.add(t.qualified)
            del pending[t.qualified]
    return done


_TYPMOD = re.compile(r"\((\d+)(?:,\s*(\d+))?\)")


def _value(col: _Column, table: _Table) -> str | None:
    """A SQL expression of ``g`` (the row number) giving a distinct value of the column's type."""
    base = col.base_type
    if base.endswith("[]"):
        return f"'{{}}'::{col.type}"
    if col.typtype == "e":
        return (
            f"(enum_range(NULL::{col.type}))[1 + (g % array_length(enum_range(NULL::{col.type}), 1))::int]"
        )
    name = base.split("(")[0].strip()
    mod = _TYPMOD.search(base)
    expr: str | None
    if name == "smallint":
        expr = "(g % 32000)::smallint"
    elif name == "integer":
        expr = "g::integer"
    elif name == "bigint":
        expr = "g::bigint"
    elif name == "numeric":
        if mod and mod.group(1):
            p, s = int(mod.group(1)), int(mod.group(2) or 0)
            digits = min(max(p - s, 0), 15)
            expr = f"(g % {10 ** digits})::numeric" if digits else "0::numeric"
        else:
            expr = "g::numeric"
    elif name in ("real", "double precision"):
        expr = f"(g * 1.5)::{name}"
    elif name in ("text", "character varying", "character", "citext", "name", "bpchar"):
        length = int(mod.group(1)) if mod and mod.group(1) else None
        text = "(g::text || '_' || " + sql_literal(col.name) + ")"
        expr = f"left({text}, {length})" if length else text
    elif name == "boolean":
        expr = "(g % 2 = 0)"
    elif name == "date":
        expr = "(date '2000-01-01' + g::integer)"
    elif name.startswith("timestamp"):
        expr = "(timestamp '2020-01-01' + g * interval '1 second')"
    elif name.startswith("time"):
        expr = "(time '00:00' + (g % 86400) * interval '1 second')"
    elif name == "interval":
        expr = "(g * interval '1 second')"
    elif name == "uuid":
        expr = f"md5({sql_literal(table.qualified)} || g)::uuid"
    elif name in ("json", "jsonb"):
        expr = f"jsonb_build_object('n', g)::{name}"
    elif name == "bytea":
        expr = "convert_to(g::text, 'UTF8')"
    elif name == "inet":
        expr = "('10.0.0.0'::inet + g)"
    elif name == "cidr":
        expr = "set_masklen('10.0.0.0'::inet + g, 32)::cidr"
    elif name == "point":
        expr = "point(g, g)"
    elif name == "money":
        expr = "g::numeric::money"
    else:
        return None
    return f"({expr})::{col.type}"


sql_literal = quote_literal


def _ident(*parts: str) -> str:
    """One name, or ``schema, name``, as SQL text."""
    return quote_ident(parts[0]) if len(parts) == 1 else quote_qualified(*parts)


def _statement(
    table: _Table, counts: dict[str, int], start: int, stop: int, *, minimal: bool
) -> tuple[str | None, str | None]:
    """The INSERT for rows ``start..stop``, or ``(None, reason)`` when the table cannot be filled."""
    ctes: list[str] = []
    joins: list[str] = []
    exprs: dict[str, str] = {}
    divisor = 1
    for i, fk in enumerate(table.fks):
        cols = [c for c in table.columns if c.name in fk.columns]
        nullable = all(not c.not_null for c in cols)
        n = counts.get(fk.parent, 0) if fk.parent != table.qualified else 0
        if n == 0 or (minimal and nullable):
            if not nullable:
                return None, f"foreign key {fk.name} needs rows in {fk.parent}, which is empty"
            continue
        alias = f"p{i}"
        pschema, _, pname = fk.parent.partition(".")
        pcols = ", ".join(_ident(c) for c in fk.parent_columns)
        ctes.append(
            f"{alias} AS (SELECT row_number() OVER (ORDER BY {pcols}) AS rn, {pcols} "
            f"FROM {_ident(pschema, pname)} WHERE {' AND '.join(f'{_ident(c)} IS NOT NULL' for c in fk.parent_columns)})"
        )
        joins.append(f"JOIN {alias} ON {alias}.rn = ((g / {divisor}) % {n}) + 1")
        divisor *= n
        for fk_col, pcol in zip(fk.columns, fk.parent_columns, strict=True):
            exprs.setdefault(fk_col, f"{alias}.{_ident(pcol)}")
    for col in table.columns:
        if col.name in exprs or col.identity or col.generated:
            continue
        if col.default is not None and ("nextval(" in col.default or minimal):
            continue
        if minimal and not col.not_null:
            continue
        value = _value(col, table)
        if value is None:
            if col.not_null and col.default is None:
                return None, f"column {col.name} of type {col.type} has no synthetic value"
            continue
        exprs[col.name] = value
    overriding = ""
    if not exprs:
        # Only defaults: give the identity or serial key the row number and move its sequence on.
        key = next((c for c in table.columns if c.identity or (c.default or "").startswith("nextval(")), None)
        if key is None or _value(key, table) is None:
            return None, "no column can be given a value"
        exprs[key.name] = f"g::{key.type}"
        overriding = " OVERRIDING SYSTEM VALUE" if key.identity else ""
    names = list(exprs)
    select = ", ".join(f"{exprs[n]} AS {_ident(n)}" for n in names)
    where = " AND ".join(f"({check}) IS NOT FALSE" for check in table.checks) or "true"
    with_clause = f"WITH {', '.join(ctes)} " if ctes else ""
    stmt = (
        f"{with_clause}INSERT INTO {_ident(table.schema, table.name)} ({', '.join(_ident(n) for n in names)})"
        f"{overriding} "
        f"SELECT {', '.join(_ident(n) for n in names)} FROM (SELECT {select} "
        f"FROM generate_series({start}, {stop}) AS g {' '.join(joins)}) AS s WHERE {where}"
    )
    return stmt, None


def _count(conn: psycopg.Connection[Any], qualified: str) -> int:
    schema, _, name = qualified.partition(".")
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))).fetchone()
    return int(row[0]) if row else 0


def fill_tables(
    conn: psycopg.Connection[Any],
    rows: int,
    *,
    only_empty: bool = True,
    progress: Progress | None = None,
) -> list[FillResult]:
    """Fill every (empty) application table with ``rows`` synthetic rows; ``conn`` is autocommit."""
    tables = _read_tables(conn)
    counts = {name: _count(conn, name) for name in tables}
    results: list[FillResult] = []
    for table in fk_order(tables):
        if only_empty and counts[table.qualified] > 0:
            continue
        if rows <= 0:
            break
        result = _fill_one(conn, table, counts, rows, progress)
        counts[table.qualified] = result.rows
        results.append(result)
    if results:
        _advance_sequences(conn, [t for t in tables.values() if t.qualified in {r.table for r in results}])
        conn.execute("ANALYZE")
    return results


def _fill_one(
    conn: psycopg.Connection[Any], table: _Table, counts: dict[str, int], rows: int,
    progress: Progress | None,
) -> FillResult:
    problem: str | None = None
    for minimal in (False, True):
        done = 0
        failed: str | None = None
        for start in range(1, rows + 1, BATCH_ROWS):
            stop = min(rows, start + BATCH_ROWS - 1)
            stmt, reason = _statement(table, counts, start, stop, minimal=minimal)
            if stmt is None:
                failed = reason
                break
            try:
                cur = conn.execute(stmt.encode())
                done += max(cur.rowcount, 0)
            except psycopg.Error as exc:
                failed = (exc.diag.message_primary or str(exc)).strip()
                break
            if progress is not None:
                progress(table.qualified, done, rows)
        if failed is None:
            if done < rows:
                return FillResult(
                    table.qualified, done, rows,
                    f"CHECK constraints rejected {rows - done} of the generated rows" if table.checks else None,
                )
            return FillResult(table.qualified, done, rows)
        if done:
            # Part of the table was filled before a batch failed: keep what is there.
            return FillResult(table.qualified, done, rows, failed)
        problem = failed if problem is None else problem
    return FillResult(table.qualified, 0, rows, problem)


def _advance_sequences(conn: psycopg.Connection[Any], tables: list[_Table]) -> None:
    """Move serial and identity sequences past the values given explicitly."""
    for table in tables:
        for col in table.columns:
            if not (col.identity or (col.default or "").startswith("nextval(")):
                continue
            try:
                conn.execute(
                    sql.SQL(
                        "SELECT setval(s, greatest((SELECT max({c}) FROM {t}), 1)) "
                        "FROM pg_get_serial_sequence(%s, %s) AS s WHERE s IS NOT NULL"
                    ).format(c=sql.Identifier(col.name), t=sql.Identifier(table.schema, table.name)),
                    (_ident(table.schema, table.name), col.name),
                )
            except psycopg.Error:
                continue
