"""Review of a live database (PostgreSQL 15 and 18): the catalog reader and the live-only rules."""

from __future__ import annotations

import contextlib

import psycopg

from helios_migrate.changes import IdentityKind, QualifiedName
from helios_migrate.config import Config, config_from_mapping
from helios_migrate.review.engine import ReviewResult, review_schema
from helios_migrate.schema_catalog import read_schema
from helios_migrate.schema_model import Schema, SchemaSource
from helios_migrate.versions import PgVersion

SCHEMA_SQL = """
CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL);
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    note text,
    "Placed At" timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_note_idx ON orders (note);
CREATE INDEX orders_note_idx1 ON orders (note);
CREATE INDEX orders_note_pattern_idx ON orders (note text_pattern_ops);
CREATE INDEX orders_note_placed_idx ON orders (note, "Placed At");
CREATE INDEX orders_lower_note_idx ON orders (lower(note)) WHERE note IS NOT NULL;
CREATE TABLE "Sales" (id bigint PRIMARY KEY, "Order Id" bigint REFERENCES orders);
CREATE TABLE events (id bigint, at timestamptz NOT NULL, order_id bigint REFERENCES orders, PRIMARY KEY (id, at))
    PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
CREATE TABLE tags (name text NOT NULL, note text);
CREATE UNIQUE INDEX tags_name_key ON tags (name);
INSERT INTO tags VALUES ('a', 'x'), ('b', 'x');
"""


def _setup(url: str, sql: str = SCHEMA_SQL) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def _read(url: str) -> Schema:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.read_only = True
        return read_schema(conn, label="test")


def _review(schema: Schema, config: Config | None = None) -> ReviewResult:
    return review_schema(schema, config or Config(), PgVersion.parse(schema.server_version_num or 0))


def _codes(result: ReviewResult) -> set[tuple[str, str]]:
    return {(rf.finding.code, rf.finding.location.path) for rf in result.findings}


def test_catalog_reader(fresh_db: str) -> None:
    _setup(fresh_db)
    schema = _read(fresh_db)
    assert schema.source is SchemaSource.DATABASE and schema.server_version_num
    assert [str(t.name) for t in schema.tables] == [
        "public.Sales", "public.customers", "public.events", "public.orders", "public.tags"
    ]
    events = schema.table(QualifiedName("events", "public"))
    assert events is not None and events.partitioned
    assert [p.name for p in events.partitions] == ["events_2026", "events_2027"]
    orders = schema.table(QualifiedName("orders", "public"))
    assert orders is not None
    assert orders.primary_key == ("id",)
    assert orders.column("id") is not None and orders.column("id").identity is IdentityKind.ALWAYS  # type: ignore[union-attr]
    assert orders.column("Placed At") is not None and orders.column("Placed At").type == "timestamptz"  # type: ignore[union-attr]
    (fk,) = orders.foreign_keys
    assert (fk.columns, str(fk.references), fk.referenced_columns, fk.on_delete) == (
        ("customer_id",), "public.customers", ("id",), "CASCADE"
    )
    by_name = {ix.name: ix for ix in orders.indexes}
    assert by_name["orders_note_placed_idx"].elements == ("note", "Placed At")
    assert by_name["orders_lower_note_idx"].elements == ("lower(note)",)
    assert by_name["orders_lower_note_idx"].predicate == "note IS NOT NULL"
    assert by_name["orders_pkey"].primary and by_name["orders_pkey"].constraint == "orders_pkey"
    assert by_name["orders_note_pattern_idx"].operator_classes != by_name["orders_note_idx"].operator_classes
    customers = schema.table(QualifiedName("customers", "public"))
    assert customers is not None and customers.column("id").type == "serial"  # type: ignore[union-attr]
    seq = next(s for s in schema.sequences if s.name.name == "customers_id_seq")
    assert seq.owned_by == (QualifiedName("customers", "public"), "id")
    assert seq.data_type == "integer" and seq.last_value is None


def test_live_findings_and_their_fixes(fresh_db: str) -> None:
    _setup(fresh_db)
    found = _codes(_review(_read(fresh_db)))
    assert ("HM603", "public.orders.customer_id") in found
    assert ("HM604", "public.orders.customer_id") not in found  # serial is integer
    assert ("HM502", "public.customers.id") in found  # serial: prefer identity, as on the models
    assert ("HM605", "public.orders.note") in found  # orders_note_idx1 duplicates orders_note_idx
    assert ("HM606", "public.orders.note") in found  # orders_note_idx: orders_note_placed_idx leads with it
    assert ("HM601", "public.tags") in found
    assert ("HM603", "public.Sales.Order Id") in found
    assert ("HM603", "public.events.order_id") in found
    # neither the text_pattern_ops index, nor the partial expression index, is a duplicate
    messages = " ".join(
        rf.finding.message for rf in _review(_read(fresh_db)).findings if rf.finding.code in ("HM605", "HM606")
    )
    assert "orders_note_pattern_idx" not in messages and "orders_lower_note_idx" not in messages


def test_running_the_fixes_resolves_the_findings(fresh_db: str) -> None:
    """The fix SQL in each finding's help runs as printed (autocommit, one statement at a time)
    and the next review no longer reports it: quoted names, and a partitioned table (index ON ONLY
    the parent, each partition's built concurrently, then attached)."""
    _setup(fresh_db)
    result = _review(_read(fresh_db))
    fixed = [rf for rf in result.findings if rf.fix is not None and rf.fix.steps]
    assert {rf.finding.code for rf in fixed} >= {"HM601", "HM603", "HM605", "HM606"}
    partitioned = next(rf for rf in fixed if rf.finding.location.path == "public.events.order_id")
    assert "ON ONLY public.events" in partitioned.finding.help
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        for rf in fixed:
            for step in rf.fix.steps:  # type: ignore[union-attr]
                for sql in step.sql:
                    conn.execute(sql)
    after = {
        (code, path) for code, path in _codes(_review(_read(fresh_db))) if "HM601" <= code <= "HM612"
    }
    # the key got its own unique index: the old one now duplicates it, and review says so
    assert after == {("HM605", "public.tags.name")}, after


def test_partitioned_tables_get_no_concurrent_drop(fresh_db: str) -> None:
    _setup(fresh_db, """
        CREATE TABLE m (id bigint, at date NOT NULL, k bigint, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
        CREATE TABLE m_1 PARTITION OF m FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
        CREATE INDEX m_k_idx ON m (k);
        CREATE INDEX m_k_idx1 ON m (k);
        CREATE INDEX m_at_idx ON ONLY m (at);
    """)
    by_code = {rf.finding.code: rf for rf in _review(_read(fresh_db)).findings}
    assert by_code["HM605"].fix is None and "cannot run CONCURRENTLY" in by_code["HM605"].finding.help
    assert by_code["HM607"].fix is None and "ATTACH PARTITION" in by_code["HM607"].finding.help


def test_sequence_near_its_limit_and_invalid_index(fresh_db: str) -> None:
    _setup(fresh_db, """
        CREATE TABLE events (id serial PRIMARY KEY, kind text);
        CREATE TABLE big (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY);
        CREATE TABLE feed (id integer PRIMARY KEY);
        CREATE SEQUENCE feed_id_seq AS bigint OWNED BY feed.id;
        INSERT INTO events (kind) VALUES ('a'), ('a');
        SELECT setval('events_id_seq', 1950000000);
        SELECT setval('big_id_seq', 1950000000);
        SELECT setval('feed_id_seq', 1200000000);
    """)
    with psycopg.connect(fresh_db, autocommit=True) as conn, contextlib.suppress(psycopg.errors.UniqueViolation):
        conn.execute("CREATE UNIQUE INDEX CONCURRENTLY events_kind_key ON events (kind)")
    result = _review(_read(fresh_db))
    by_code = {(rf.finding.code, rf.finding.location.path): rf for rf in result.findings}
    seq = by_code[("HM602", "public.events.id")]
    assert str(seq.finding.severity) == "error"  # 90.8%
    assert "1,950,000,000 of 2,147,483,647" in seq.finding.message
    assert ("HM602", "public.big.id") not in by_code  # a bigint key is far from its limit
    feed = by_code[("HM602", "public.feed.id")]  # a bigint sequence behind an integer column
    assert str(feed.finding.severity) == "warning" and "column public.feed.id (integer)" in feed.finding.message
    invalid = by_code[("HM607", "public.events.kind")]
    assert "INVALID" in invalid.finding.message and "DROP INDEX CONCURRENTLY IF EXISTS public.events_kind_key" in (
        invalid.finding.help
    )
    # the threshold is configurable
    strict = config_from_mapping({"review": {"key_range_percent": 95}})
    assert ("HM602", "public.feed.id") not in _codes(_review(_read(fresh_db), strict))
