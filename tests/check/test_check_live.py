"""``check --database-url`` on real PostgreSQL servers: version and table facts are read live."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from check_helpers import revision_source, run_check, write_project

from helios_migrate.changes import QualifiedName
from helios_migrate.check.live import connect


def _fill(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id bigint, customer_id bigint, note text)")
        conn.execute("INSERT INTO orders SELECT g, g % 100, 'n' FROM generate_series(1, 20000) g")
        conn.execute("CREATE TABLE fresh (id bigint)")
        conn.execute("INSERT INTO fresh SELECT g FROM generate_series(1, 5000) g")
        conn.execute("CREATE TABLE parted (id bigint) PARTITION BY RANGE (id)")
        conn.execute("CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (1000)")
        conn.execute("INSERT INTO parted SELECT g FROM generate_series(0, 999) g")
        conn.execute("ANALYZE orders")
        conn.execute("ANALYZE parted_1")


def test_facts_from_a_live_server(fresh_db: str) -> None:
    _fill(fresh_db)
    with connect(fresh_db) as live:
        with psycopg.connect(fresh_db) as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
        assert row is not None and live.version.num == int(row[0])
        sizes = {str(t.table): t for t in live.tables}
    orders = sizes["public.orders"]
    assert orders.row_estimate == 20000
    assert orders.total_bytes > 8192 * 10
    # Never analyzed: estimated from the pages and the column widths, like the planner.
    fresh = sizes["public.fresh"]
    assert 2500 <= fresh.row_estimate <= 10000
    parted = sizes["public.parted"]
    assert parted.row_estimate == 1000 and parted.total_bytes > 0
    assert "public.parted_1" not in sizes
    assert QualifiedName("orders", "public") in {t.table for t in live.tables}


def test_check_reads_version_and_sizes(fresh_db: str, tmp_path: Path) -> None:
    _fill(fresh_db)
    root = write_project(tmp_path / "proj", {
        "0001_ix.py": revision_source(
            "0001", None, 'op.create_index("ix_orders_customer", "orders", ["customer_id"])'
        ),
    })
    done = run_check(root, "--database-url", fresh_db, "--format", "json")
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, 1), done.stderr
    doc = json.loads(done.stdout)
    assert doc["pg_version_source"] == "read from the database"
    with psycopg.connect(fresh_db) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    assert doc["pg_version"].split(".")[0] == str(int(row[0]) // 10000)
    assert doc["findings"], "an index built without CONCURRENTLY on a filled table is a finding"
