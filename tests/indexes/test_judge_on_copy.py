"""``indexes --judge copy``: candidates judged on a throwaway copy of the schema and statistics
(an embedded PostgreSQL 18), with the user's database (PostgreSQL 15 Debian or 18 embedded) only read."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

SCHEMA = """
CREATE TYPE order_status AS ENUM ('open', 'closed');
CREATE DOMAIN email_address AS text CHECK (VALUE LIKE '%@%');
CREATE TABLE customers (id bigint PRIMARY KEY, email email_address NOT NULL, region integer NOT NULL);
CREATE TABLE orders (
    id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers (id),
    status order_status NOT NULL, note text
);
CREATE TABLE order_lines (id bigint PRIMARY KEY, order_id bigint NOT NULL, sku text NOT NULL);
INSERT INTO customers SELECT g, 'c' || g || '@example.com', g % 20 FROM generate_series(1, 20000) g;
INSERT INTO orders SELECT g, g % 1000 + 1, (CASE WHEN g % 10 = 0 THEN 'open' ELSE 'closed' END)::order_status, 'n'
FROM generate_series(1, 100000) g;
INSERT INTO order_lines SELECT g, g % 100000 + 1, 'sku' || (g % 5000) FROM generate_series(1, 200000) g;
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
ANALYZE;
"""

QUERIES = (
    "-- calls=100\nSELECT * FROM order_lines WHERE sku = $1;\n"
    "-- calls=100\nSELECT * FROM orders WHERE status = 'closed';\n"  # 90% of the rows: a scan wins
    "-- calls=20\nSELECT * FROM customers WHERE email = $1;\n"
    "-- calls=100\nSELECT c.id, count(*) FROM customers c JOIN order_lines ol ON ol.order_id = c.id "
    "WHERE c.email = $1 GROUP BY c.id;\n"
)

RELATIONS = (
    "SELECT c.oid::regclass::text, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1"
)


def _indexes(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helios_migrate", "indexes", "--database-url", url, *args],
        capture_output=True, text=True, timeout=300, check=False,
    )


def _state(url: str) -> tuple[object, ...]:
    with psycopg.connect(url) as conn:
        relations = conn.execute(RELATIONS).fetchall()
        extensions = conn.execute("SELECT extname FROM pg_extension ORDER BY 1").fetchall()
        sizes = conn.execute(
            "SELECT relname, relpages, reltuples FROM pg_class WHERE relname IN ('orders', 'order_lines') ORDER BY 1"
        ).fetchall()
    return relations, extensions, sizes


def test_copy_keeps_what_the_planner_would_use_and_leaves_the_database_alone(
    fresh_db: str, tmp_path: Path
) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SCHEMA)
    queries = tmp_path / "queries.sql"
    queries.write_text(QUERIES, encoding="utf-8")
    before = _state(fresh_db)

    out = _indexes(fresh_db, "--queries", str(queries), "--format", "json", "--judge", "copy")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["verified"] is True and doc["judged_by"] == "copy", doc["note"]
    assert doc["note"].startswith("Verified on a throwaway copy of the schema and statistics (PostgreSQL 18)")
    kept = {(s["table"], tuple(s["columns"])): s for s in doc["suggestions"]}
    assert set(kept) == {("public.order_lines", ("sku",)), ("public.customers", ("email",)),
                         ("public.order_lines", ("order_id",))}
    sku = kept[("public.order_lines", ("sku",))]
    assert sku["verified"] is True and sku["queries_using_it"] == 1
    assert sku["planner_cost_after"] < sku["planner_cost_before"] / 10
    # the join's candidate is judged with the other table's candidate in place, as with HypoPG
    email = kept[("public.customers", ("email",))]
    assert email["queries_using_it"] == 2
    # the low-selectivity column is rejected: the copy holds the real statistics (90% 'closed')
    assert [(r["table"], r["columns"], r["queries_using_it"]) for r in doc["rejected"]] == [
        ("public.orders", ["status"], 0)]

    text = _indexes(fresh_db, "--queries", str(queries), "--judge", "copy")
    assert text.returncode == 0, text.stderr
    assert "rejected on the throwaway copy (PostgreSQL 18): public.orders (status): the planner would not use it" \
        in text.stdout
    assert "on the throwaway copy (PostgreSQL 18): the planner uses it for 1 of 1 query(ies)" in text.stdout
    assert "Verified on a throwaway copy of the schema and statistics (PostgreSQL 18)" in text.stdout

    # nothing was written: the same relations, no extension, the same statistics
    assert _state(fresh_db) == before
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'hypopg'").fetchone() == (0,)


def test_copy_sees_the_real_size_of_the_table(fresh_db: str, tmp_path: Path) -> None:
    """On an empty copy without the real size, every index looks cheap and every scan free: a
    table of 200,000 rows costs as one here (the sequential scan's cost is in the thousands)."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SCHEMA)
    queries = tmp_path / "queries.sql"
    queries.write_text("-- calls=1\nSELECT * FROM order_lines WHERE sku = $1;\n", encoding="utf-8")
    doc = json.loads(_indexes(fresh_db, "--queries", str(queries), "--format", "json", "--judge", "copy").stdout)
    (sku,) = doc["suggestions"]
    assert sku["planner_cost_before"] > 2000 and 1 < sku["planner_cost_after"] < 500


def test_judge_choices(fresh_db: str, tmp_path: Path) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SCHEMA)
    queries = tmp_path / "queries.sql"
    queries.write_text(QUERIES, encoding="utf-8")
    none = json.loads(_indexes(fresh_db, "--queries", str(queries), "--format", "json", "--judge", "none").stdout)
    assert none["verified"] is False and none["judged_by"] is None and none["note"].startswith("Not verified")
    # default without HypoPG: the copy
    default = json.loads(_indexes(fresh_db, "--queries", str(queries), "--format", "json").stdout)
    assert default["judged_by"] == "copy"
    hypopg = _indexes(fresh_db, "--queries", str(queries), "--judge", "hypopg")
    assert hypopg.returncode == 2 and "hypopg extension is not installed" in hypopg.stderr
    assert "Traceback" not in hypopg.stderr


def _copies(server_url: str) -> list[tuple[str]]:
    with psycopg.connect(server_url) as conn:
        return conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'helios_indexes_%'").fetchall()


def test_scratch_url_database_is_dropped_also_on_ctrl_c(fresh_db: str, tmp_path: Path, pg_pool: Any) -> None:
    """--scratch-url: the copy is a database of its own on that server, dropped at the end, and when
    the command is interrupted while it judges; a server older than 18 is refused with the reason."""
    scratch = pg_pool.get("pg18-embedded")
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SCHEMA)
    queries = tmp_path / "queries.sql"
    queries.write_text(QUERIES, encoding="utf-8")
    out = _indexes(fresh_db, "--queries", str(queries), "--format", "json", "--judge", "copy",
                   "--scratch-url", scratch.url)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["judged_by"] == "copy"
    assert _copies(scratch.url) == []

    process = subprocess.Popen(
        [sys.executable, "-m", "helios_migrate", "indexes", "--database-url", fresh_db, "--queries", str(queries),
         "--judge", "copy", "--scratch-url", scratch.url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while not _copies(scratch.url) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    seen = bool(_copies(scratch.url))
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    assert seen, "the copy's database was never seen"
    assert _copies(scratch.url) == []

    old = next((s for s in pg_pool.servers if s.version.major < 18), None)
    if old is None:  # only PostgreSQL 18 on this machine: the refusal is not reachable
        return
    refused = _indexes(fresh_db, "--queries", str(queries), "--format", "json", "--judge", "copy",
                       "--scratch-url", old.url)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "--judge copy: --scratch-url is PostgreSQL 15" in refused.stderr
    assert "the copy needs 18 or later" in refused.stderr
