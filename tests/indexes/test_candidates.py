"""How queries become candidate indexes (parse trees only; the schema is built from DDL with row
estimates, as the live catalog reader would give them)."""

from __future__ import annotations

import dataclasses

import pytest

from helios_migrate.indexes.candidates import (
    ColumnStats,
    advise,
    candidate,
    candidate_columns,
    table_uses,
)
from helios_migrate.indexes.workload import Query
from helios_migrate.schema_model import Schema, schema_from_changes
from helios_migrate.sql_parse import changes_from_sql

DDL = """
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, status text, created_at timestamptz,
                     total numeric, code text, deleted_at timestamptz, archived boolean, email text);
CREATE TABLE lines (id bigint PRIMARY KEY, order_id bigint, sku text);
CREATE TABLE tiny (k int);
CREATE TABLE fresh (k int);
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
"""


def _schema() -> Schema:
    schema = schema_from_changes(changes_from_sql(DDL))
    rows = {"orders": 1_000_000, "lines": 5_000_000, "tiny": 10, "fresh": None}
    return dataclasses.replace(
        schema, tables=tuple(dataclasses.replace(t, row_estimate=rows[t.name.name]) for t in schema.tables)
    )


DISTINCT = {
    ("orders", "customer_id"): ColumnStats(5_000.0, 8, 0.0),  # ~200 orders each
    # 'pending' is rare, 'closed' is most rows
    ("orders", "status"): ColumnStats(4.0, 8, 0.0, (("closed", 0.9), ("open", 0.08), ("pending", 0.02))),
    ("orders", "created_at"): ColumnStats(-1.0, 8, 0.0),
    ("orders", "total"): ColumnStats(-0.5, 6, 0.0),
    ("orders", "deleted_at"): ColumnStats(-0.01, 8, 0.97),  # 3% deleted
    ("orders", "archived"): ColumnStats(2.0, 1, 0.0, (("f", 0.95), ("t", 0.05))),
    ("orders", "code"): ColumnStats(-1.0, 40, 0.0),
    ("lines", "order_id"): ColumnStats(-0.2, 8, 0.0),
    ("lines", "sku"): ColumnStats(1000.0, 8, 0.0),
}


def _columns(sql: str) -> dict[str, tuple[str, ...] | None]:
    uses = table_uses(Query(sql), _schema())
    assert not isinstance(uses, str), uses
    return {u.table.name.name: candidate_columns(u, DISTINCT) for u in uses}


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # equality columns first, the most distinct first, then the sort
        ("SELECT * FROM orders WHERE status = $2 AND customer_id = $1 ORDER BY created_at DESC LIMIT 5",
         {"orders": ("customer_id", "status", "created_at")}),
        # a literal of the most common value is no partial predicate: an equality column
        ("SELECT * FROM orders WHERE status = 'closed' AND customer_id = $1 ORDER BY created_at DESC LIMIT 5",
         {"orders": ("customer_id", "status", "created_at")}),
        # GROUP BY after the equality columns (the groups come in index order); not after a range
        ("SELECT customer_id, count(*) FROM orders WHERE status = $1 GROUP BY customer_id",
         {"orders": ("status", "customer_id")}),
        # ... unless the equality columns leave few rows (one per code here): no GROUP BY column
        ("SELECT status, count(*) FROM orders WHERE code = $1 GROUP BY status", {"orders": ("code",)}),
        ("SELECT status, count(*) FROM orders WHERE created_at > $1 GROUP BY status", {"orders": ("created_at",)}),
        ("SELECT status, count(*) FROM orders GROUP BY status", {"orders": None}),  # the whole table: none
        # a subquery is a semi-join: IN's outer column and EXISTS's correlation are join keys,
        # the subquery's own predicates ask of its tables
        ("SELECT * FROM lines WHERE order_id IN (SELECT id FROM orders WHERE code = $1)",
         {"lines": ("order_id",), "orders": ("code",)}),
        ("SELECT * FROM orders o WHERE NOT EXISTS (SELECT 1 FROM lines l WHERE l.order_id = o.id AND l.sku = $1)",
         {"lines": ("sku",), "orders": ("id",)}),
        ("SELECT * FROM orders o WHERE o.status = $2 AND EXISTS (SELECT 1 FROM lines WHERE order_id = o.id)",
         {"lines": ("order_id",), "orders": ("status",)}),
        # lower(col) = value: an expression index
        ("SELECT id FROM orders WHERE lower(email) = lower($1)", {"orders": ("lower(email)",)}),
        # a range column after the equality ones, and only one
        ("SELECT * FROM orders o WHERE o.status = $1 AND o.created_at >= now() - interval '1 day' AND o.total > 5",
         {"orders": ("status", "created_at")}),
        ("SELECT * FROM orders WHERE customer_id IN (1, 2, 3)", {"orders": ("customer_id",)}),
        ("SELECT * FROM orders WHERE customer_id = ANY($1)", {"orders": ("customer_id",)}),
        ("SELECT * FROM orders WHERE created_at BETWEEN $1 AND $2", {"orders": ("created_at",)}),
        ("SELECT * FROM orders WHERE code LIKE 'ab%'", {"orders": ("code",)}),
        # join: the filtered side by its filter, the other side by its join key
        ("SELECT * FROM orders o JOIN lines l ON l.order_id = o.id WHERE l.sku = 'x'",
         {"lines": ("sku",), "orders": ("id",)}),
        ("UPDATE orders SET status = 'x' WHERE code = $1", {"orders": ("code",)}),
        ("DELETE FROM lines WHERE order_id = $1", {"lines": ("order_id",)}),
        # an ORDER BY in two directions, or over two tables, is not served by one index
        ("SELECT * FROM orders ORDER BY created_at DESC, id ASC", {}),
    ],
)
def test_candidate_columns(sql: str, expected: dict[str, tuple[str, ...]]) -> None:
    assert _columns(sql) == expected


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM orders WHERE md5(code) = 'x'",  # an expression other than lower/upper
        "SELECT * FROM orders WHERE code LIKE '%x'",  # no prefix
        "SELECT * FROM orders WHERE status = 'a' OR total + 1 = 5",  # an OR with an arm no index serves
        "SELECT * FROM orders WHERE total + 1 = 5",
    ],
)
def test_predicates_no_btree_serves(sql: str) -> None:
    assert set(_columns(sql).values()) <= {None}


def test_advice_merges_skips_served_and_small_tables() -> None:
    queries = [
        Query("SELECT * FROM orders WHERE customer_id = $1 AND status = $2", calls=100, total_ms=500.0),
        Query("SELECT * FROM orders WHERE status = $1 AND customer_id = $2 ORDER BY created_at", calls=10,
              total_ms=2000.0),
        Query("SELECT * FROM orders WHERE customer_id = $1", calls=1000, total_ms=100.0),  # served
        Query("SELECT * FROM tiny WHERE k = 1", calls=5, total_ms=1.0),
        Query("SELECT 1"),
        Query("SELECT * FROM fresh WHERE k = 1"),
        Query("SELECT * FROM lines WHERE sku = $1", calls=1, total_ms=10.0),
        Query("not sql"),
        Query("<insufficient privilege>"),
    ]
    advice = advise(queries, _schema(), DISTINCT)
    assert [(s.table.name.name, s.columns) for s in advice.suggestions] == [
        # both orders lookups folded into the index whose column order serves both
        ("orders", ("customer_id", "status", "created_at")),
        ("lines", ("sku",)),
    ]
    orders = advice.suggestions[0]
    assert orders.weight_ms == 2500.0 and orders.calls == 110
    assert [ix.name for ix in orders.replaces] == ["orders_customer_id_idx"]
    assert orders.change().name == "orders_customer_id_status_created_at_idx"
    assert [name for _, name in advice.served] == ["orders_customer_id_idx"]
    reasons = {s.query.text: s.reason for s in advice.skipped}
    assert "small" in reasons["SELECT * FROM tiny WHERE k = 1"]
    assert reasons["SELECT 1"] == "reads no table of this database"
    assert "no row estimate: ANALYZE it" in reasons["SELECT * FROM fresh WHERE k = 1"]
    assert reasons["not sql"].startswith("not parsed")
    assert "pg_read_all_stats" in reasons["<insufficient privilege>"]


@pytest.mark.parametrize(
    ("sql", "columns", "where"),
    [
        # a rare literal state: the predicate, out of the key
        ("SELECT id FROM orders WHERE status = 'pending' ORDER BY created_at LIMIT 10", ("created_at",),
         "status = 'pending'"),
        ("SELECT * FROM orders WHERE customer_id = $1 AND deleted_at IS NULL", ("customer_id",), None),  # 97%
        ("SELECT * FROM orders WHERE customer_id = $1 AND deleted_at IS NOT NULL", ("customer_id",),
         "deleted_at IS NOT NULL"),
        ("SELECT * FROM orders o WHERE o.archived ORDER BY o.created_at DESC LIMIT 5", ("created_at",), "archived"),
        ("SELECT * FROM orders WHERE NOT archived AND customer_id = $1", ("customer_id",), None),  # 95%
        # no key column but the predicate: its own column is the key
        ("SELECT count(*) FROM orders WHERE archived", ("archived",), "archived"),
        # a literal of a many-valued column is a sample value: no partial index
        ("SELECT * FROM orders WHERE code = 'c5'", ("code",), None),
    ],
)
def test_partial_candidates(sql: str, columns: tuple[str, ...], where: str | None) -> None:
    (use,) = table_uses(Query(sql), _schema())  # type: ignore[misc]
    found = candidate(use, DISTINCT)
    assert found is not None and (found.columns, found.where) == (columns, where)


def _advice(*sqls: str):  # type: ignore[no-untyped-def]
    return advise([Query(q, calls=10, total_ms=100.0 * (i + 1)) for i, q in enumerate(sqls)], _schema(), DISTINCT)


def test_include_for_row_heavy_reads_of_few_narrow_columns() -> None:
    advice = _advice("SELECT customer_id, total FROM orders WHERE created_at >= $1 AND created_at < $2",
                     "SELECT count(*) FROM orders WHERE created_at > $1")
    (s,) = advice.suggestions
    assert (s.columns, s.include, s.where) == (("created_at",), ("customer_id", "total"), None)
    assert s.change().include == ("customer_id", "total")
    # a LIMIT fetches few rows, a * reads every column, a wide column costs more than it saves
    for sql in ("SELECT customer_id FROM orders WHERE created_at > $1 ORDER BY created_at LIMIT 10",
                # a join key or a lower(unique column) reads a row or two per call
                "SELECT l.sku FROM orders o JOIN lines l ON l.order_id = o.id WHERE o.id = $1",
                "SELECT id, total FROM orders WHERE lower(code) = $1",
                "SELECT * FROM orders WHERE created_at > $1",
                "SELECT code FROM orders WHERE created_at > $1"):
        (s,) = _advice(sql).suggestions
        assert s.include == (), sql


def test_partial_folds_into_a_full_index_serving_the_same_queries() -> None:
    # the full (status, created_at) serves the pending query through its key: one index, not two
    advice = _advice("SELECT id FROM orders WHERE status = 'pending' ORDER BY created_at LIMIT 10",
                     "SELECT id FROM orders WHERE status = $1 ORDER BY created_at LIMIT 10")
    assert [(s.columns, s.where, len(s.queries)) for s in advice.suggestions] == [
        (("status", "created_at"), None, 2)]
    # alone, the pending query gets the partial index, named for its predicate
    (s,) = _advice("SELECT id FROM orders WHERE status = 'pending' ORDER BY created_at LIMIT 10").suggestions
    assert (s.columns, s.where, s.name) == (("created_at",), "status = 'pending'", "orders_created_at_where_status_pending_idx")
    assert s.fraction == 0.02
    # a partial next to a full one of the same key serving other queries: both kept (different rows)
    advice = _advice("SELECT id FROM orders WHERE archived ORDER BY created_at DESC LIMIT 5",
                     "SELECT id FROM orders WHERE created_at BETWEEN $1 AND $2")
    assert sorted((s.columns, s.where or "") for s in advice.suggestions) == [
        (("created_at",), ""), (("created_at",), "archived")]


def test_existing_partial_and_expression_indexes_serve() -> None:
    ddl = DDL + ("CREATE INDEX orders_open ON orders (created_at) WHERE status = 'pending';\n"
                 "CREATE INDEX orders_email ON orders (lower(email));\n")
    schema = schema_from_changes(changes_from_sql(ddl))
    schema = dataclasses.replace(schema, tables=tuple(dataclasses.replace(t, row_estimate=1_000_000) for t in schema.tables))
    advice = advise([Query("SELECT id FROM orders WHERE status = 'pending' ORDER BY created_at LIMIT 10"),
                     Query("SELECT id FROM orders WHERE lower(email) = $1")], schema, DISTINCT)
    assert advice.suggestions == ()
    assert sorted(name for _, name in advice.served) == ["orders_email", "orders_open"]


def test_an_existing_index_leaving_few_rows_serves() -> None:
    """A primary key (one row), or an index leaving a few rows per call, serves a query whatever
    else it filters or sorts: no longer index is suggested for it."""
    stats = {**DISTINCT, ("orders", "customer_id"): ColumnStats(100_000.0, 8, 0.0)}  # ~10 orders each
    advice = advise([
        Query("UPDATE orders SET status = $1 WHERE id = $2 AND status = $3"),
        Query("SELECT id FROM orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 20"),
    ], _schema(), stats)
    assert advice.suggestions == ()
    assert sorted(name for _, name in advice.served) == ["id", "orders_customer_id_idx"]  # the key: unnamed in DDL
    # with ~200 orders a customer, the sort is worth its own index
    (s,) = advise([Query("SELECT id FROM orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 20")],
                  _schema(), DISTINCT).suggestions
    assert s.columns == ("customer_id", "created_at")


def test_or_of_indexable_arms_asks_an_index_per_arm() -> None:
    """``a = $1 OR b = $2``: a bitmap OR of one index per arm -- unless another conjunct already
    narrows the table down."""
    uses = table_uses(Query("SELECT * FROM orders WHERE code = $1 OR customer_id = $2"), _schema())
    assert not isinstance(uses, str)
    assert sorted(candidate_columns(u, DISTINCT) or () for u in uses) == [("code",), ("customer_id",)]
    advice = advise([Query("SELECT * FROM orders WHERE code = $1 OR customer_id = $2")], _schema(), DISTINCT)
    assert [s.columns for s in advice.suggestions] == [("code",)]  # customer_id: its index exists
    uses = table_uses(Query("SELECT * FROM orders WHERE status = $3 AND (code = $1 OR total > $2)"), _schema())
    assert not isinstance(uses, str)
    assert [candidate_columns(u, DISTINCT) for u in uses] == [("status",)]
