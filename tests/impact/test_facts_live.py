"""Catalog facts and lock-wait risks read from real PostgreSQL servers (15 and 18)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from helios_migrate.calibration import calibrate
from helios_migrate.changes import QualifiedName
from helios_migrate.facts import RowSource, collect_facts
from helios_migrate.impact import RiskLevel, estimate_plan
from helios_migrate.locks import LockMode
from helios_migrate.plan import Phase, Plan, RetryPolicy, Step, TransactionMode
from helios_migrate.sql_parse import changes_from_sql

ORDERS = QualifiedName("orders", "public")

SETUP = """
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    qty int NOT NULL,
    note text,
    CONSTRAINT orders_qty_check CHECK (qty >= 0)
) WITH (autovacuum_enabled = false);
INSERT INTO orders SELECT g, g % 10, CASE WHEN g % 4 = 0 THEN 'n' || g END
  FROM generate_series(1, 20000) g;
CREATE INDEX orders_qty_idx ON orders (qty);
"""


def step(sql: str, **kwargs: object) -> Step:
    return Step(sql, Phase.EXPAND, sql=(sql,), changes=tuple(changes_from_sql(sql)), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def orders_db(fresh_db: str) -> str:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SETUP)
    return fresh_db


def test_sizes_rows_indexes_and_columns_after_analyze(orders_db: str) -> None:
    with psycopg.connect(orders_db, autocommit=True) as conn:
        conn.execute("ANALYZE orders")
        facts = collect_facts(conn, [QualifiedName("orders")], write_sample_s=None)
        heap, total, idx = conn.execute(
            "SELECT pg_relation_size('orders'), pg_total_relation_size('orders'), pg_indexes_size('orders')"
        ).fetchone() or (0, 0, 0)
    t = facts.table(QualifiedName("orders"))
    assert t is not None and t.name == ORDERS
    assert t.row_source == RowSource.STATISTICS
    assert t.row_estimate == 20000
    assert (t.heap_bytes, t.total_bytes, t.index_bytes) == (heap, total, idx)
    assert t.pages == heap // facts.server.block_size
    assert {i.name.name for i in t.indexes} == {"orders_pkey", "orders_qty_idx"}
    assert all(i.valid and i.size_bytes > 0 for i in t.indexes)
    assert {(k.name, k.kind.value if k.kind else None) for k in t.constraints} >= {
        ("orders_pkey", "primary key"), ("orders_qty_check", "check")}
    note = t.column("note")
    assert note is not None and note.null_frac == pytest.approx(0.75, abs=0.01)
    assert t.stale_statistics is None
    assert facts.server.version.major in (15, 18)
    assert facts.server.bytes_setting("maintenance_work_mem")
    assert facts.server.block_size == 8192


def test_never_analyzed_table_falls_back_to_pages(orders_db: str) -> None:
    # No index: building one would set reltuples.
    with psycopg.connect(orders_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE events (id bigint, kind int, note text) WITH (autovacuum_enabled = false)")
        conn.execute("INSERT INTO events SELECT g, g % 7, 'e' || g FROM generate_series(1, 20000) g")
        facts = collect_facts(conn, [QualifiedName("events")], write_sample_s=None)
    t = facts.table(QualifiedName("events"))
    assert t is not None
    assert t.reltuples == -1  # PostgreSQL 14+: never vacuumed or analyzed
    assert t.row_source == RowSource.PAGES and t.never_analyzed
    # Estimated from the page count and column widths: the right order of magnitude.
    assert 5000 < t.row_estimate < 80000
    stale = t.stale_statistics
    assert stale is not None and "never been analyzed" in stale and "ANALYZE public.events" in stale
    impact = estimate_plan(Plan((step("ALTER TABLE events ALTER COLUMN note SET NOT NULL"),)), facts)
    assert any("ANALYZE public.events" in n for n in impact.notes)
    assert impact.steps[0].rows == t.row_estimate


def test_invalid_index_after_failed_concurrent_build(orders_db: str) -> None:
    with psycopg.connect(orders_db, autocommit=True) as conn:
        conn.execute("ANALYZE orders")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY orders_qty_uniq ON orders (qty)")
        facts = collect_facts(conn, [ORDERS], write_sample_s=None)
    t = facts.table(ORDERS)
    assert t is not None
    assert [i.name.name for i in t.invalid_indexes] == ["orders_qty_uniq"]
    impact = estimate_plan(Plan((step("CREATE INDEX CONCURRENTLY orders_note_idx ON orders (note)"),)), facts)
    assert any("invalid index public.orders_qty_uniq" in n for n in impact.notes)


def test_idle_in_transaction_session_is_named_in_the_risk(orders_db: str) -> None:
    with psycopg.connect(orders_db, autocommit=True) as idle, psycopg.connect(orders_db, autocommit=True) as conn:
        idle.execute("SET application_name = 'billing-worker'")
        idle.execute("BEGIN")
        idle.execute("SELECT count(*) FROM orders").fetchone()
        pid = idle.info.backend_pid
        conn.execute("ANALYZE orders")
        facts = collect_facts(conn, [ORDERS], write_sample_s=None)

        session = facts.session(pid)
        assert session is not None and session.idle_in_transaction
        assert session.application_name == "billing-worker"
        assert any(h.pid == pid and h.mode is LockMode.ACCESS_SHARE for h in facts.locks)

        plan = Plan((
            step("ALTER TABLE orders ADD COLUMN flag boolean"),
            step("ALTER TABLE orders ADD COLUMN flag2 boolean", transaction=TransactionMode.OWN,
                 retry=RetryPolicy(lock_timeout_ms=2000)),
            step("CREATE INDEX CONCURRENTLY orders_note_idx ON orders (note)",
                 transaction=TransactionMode.AUTOCOMMIT),
            step("ALTER TABLE orders VALIDATE CONSTRAINT orders_qty_check"),
        ))
        impact = estimate_plan(plan, facts)
        idle.execute("ROLLBACK")

    no_timeout, with_timeout, concurrent, validate = impact.steps
    assert no_timeout.risk is RiskLevel.CRITICAL
    text = " ".join(r.text for r in no_timeout.reasons)
    assert f"pid {pid} (billing-worker, idle in transaction" in text
    assert "ACCESS SHARE on public.orders" in text
    assert with_timeout.risk is RiskLevel.HIGH
    assert "lock_timeout 2000 ms" in " ".join(r.text for r in with_timeout.reasons)
    assert concurrent.risk is RiskLevel.HIGH
    assert any(f"pid {pid}" in w and "CONCURRENTLY waits" in w for w in concurrent.lock_wait)
    # SHARE UPDATE EXCLUSIVE does not conflict with ACCESS SHARE: no wait on that session.
    assert not any(f"pid {pid}" in w for w in validate.lock_wait)


def test_write_rate_from_two_samples(orders_db: str) -> None:
    stop = threading.Event()

    def writer() -> None:
        with psycopg.connect(orders_db, autocommit=True) as w:
            n = 100_000
            while not stop.is_set():
                w.execute("INSERT INTO orders VALUES (%s, 1, NULL)", (n,))
                n += 1
                time.sleep(0.002)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(1.2)
        with psycopg.connect(orders_db, autocommit=True) as conn:
            facts = collect_facts(conn, [ORDERS], write_sample_s=2.5)
    finally:
        stop.set()
        thread.join()
    t = facts.table(ORDERS)
    assert t is not None and t.write_rate is not None
    assert t.write_rate > 10
    assert facts.write_sample_s == 2.5


def test_missing_table_and_calibration(orders_db: str, tmp_path: object) -> None:
    with psycopg.connect(orders_db, autocommit=True) as conn:
        facts = collect_facts(conn, [ORDERS, QualifiedName("nope")], write_sample_s=None)
        assert facts.missing == (QualifiedName("nope"),)
        tp = calibrate(conn, budget_s=0.3, directory=tmp_path)  # type: ignore[arg-type]
        assert tp.source == "calibrated" and tp.scan_bps > 20e6
        again = calibrate(conn, budget_s=0.3, directory=tmp_path)  # type: ignore[arg-type]
        assert again.source == "cached" and again.scan_bps == pytest.approx(tp.scan_bps)
        # The session settings changed while reading are restored.
        assert conn.execute("SHOW lock_timeout").fetchone() == ("0",)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)
