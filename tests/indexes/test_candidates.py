"""How queries become candidate indexes (parse trees only; the schema is built from DDL with row
estimates, as the live catalog reader would give them)."""

from __future__ import annotations

import dataclasses

import pytest

from helios_migrate.indexes.candidates import advise, candidate_columns, table_uses
from helios_migrate.indexes.workload import Query
from helios_migrate.schema_model import Schema, schema_from_changes
from helios_migrate.sql_parse import changes_from_sql

DDL = """
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, status text, created_at timestamptz,
                     total numeric, code text);
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


DISTINCT = {("orders", "customer_id"): 50_000.0, ("orders", "status"): 4.0}


def _columns(sql: str) -> dict[str, tuple[str, ...] | None]:
    uses = table_uses(Query(sql), _schema())
    assert not isinstance(uses, str), uses
    return {u.table.name.name: candidate_columns(u, DISTINCT) for u in uses}


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # equality columns first, the most distinct first, then the sort
        ("SELECT * FROM orders WHERE status = 'open' AND customer_id = $1 ORDER BY created_at DESC LIMIT 5",
         {"orders": ("customer_id", "status", "created_at")}),
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
        "SELECT * FROM orders WHERE lower(code) = 'x'",  # an expression: a plain index does not serve it
        "SELECT * FROM orders WHERE code LIKE '%x'",  # no prefix
        "SELECT * FROM orders WHERE status = 'a' OR code = 'b'",  # OR: not one index
        "SELECT * FROM orders WHERE total + 1 = 5",
    ],
)
def test_predicates_no_btree_serves(sql: str) -> None:
    assert set(_columns(sql).values()) <= {None}


def test_advice_merges_skips_served_and_small_tables() -> None:
    queries = [
        Query("SELECT * FROM orders WHERE customer_id = $1 AND status = 'open'", calls=100, total_ms=500.0),
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
