"""``helios-migrate indexes`` on real servers (PostgreSQL 15 and 18): a server started with
pg_stat_statements preloaded runs a workload the test drives; the advice names the indexes that
serve it, skips what an existing index serves, and its revision builds them concurrently.
Without pg_stat_statements the command says how to enable it, and reads a queries file instead."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from helios_migrate import pgserver
from helios_migrate.indexes import report as advice_report
from helios_migrate.pgserver import RunningServer

SCHEMA = """
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, region integer NOT NULL);
CREATE TABLE orders (
    id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers (id),
    status text NOT NULL, created_at timestamptz NOT NULL, note text
);
CREATE TABLE order_lines (id bigint PRIMARY KEY, order_id bigint NOT NULL, sku text NOT NULL);
CREATE TABLE settings (k text PRIMARY KEY, v text);
INSERT INTO customers SELECT g, 'c' || g || '@example.com', g % 20 FROM generate_series(1, 20000) g;
INSERT INTO orders SELECT g, g % 1000 + 1, CASE WHEN g % 10 = 0 THEN 'open' ELSE 'closed' END,
       '2026-01-01'::timestamptz + g * interval '1 minute', 'n' FROM generate_series(1, 100000) g;
INSERT INTO order_lines SELECT g, g % 100000 + 1, 'sku' || (g % 5000) FROM generate_series(1, 200000) g;
INSERT INTO settings VALUES ('a', 'b');
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
ANALYZE;
"""

WORKLOAD = [
    # (statement, parameters, times)
    ("SELECT id FROM orders WHERE customer_id = %s AND status = 'open' ORDER BY created_at DESC LIMIT 20",
     lambda i: (i % 1000 + 1,), 60),
    ("SELECT count(*) FROM order_lines WHERE sku = %s", lambda i: (f"sku{i % 5000}",), 40),
    ("SELECT * FROM orders WHERE customer_id = %s", lambda i: (i % 1000 + 1,), 30),
    ("SELECT * FROM customers WHERE lower(email) = %s", lambda i: (f"c{i}@example.com",), 5),
    ("SELECT * FROM settings WHERE v = %s", lambda i: ("b",), 5),
]


def _start(kind: str, workdir: Path) -> RunningServer:
    if "embedded" in kind:
        return pgserver.start_embedded(workdir)
    return pgserver.start_debian(workdir)


@pytest.fixture
def preloaded(pg_server: RunningServer, tmp_path: Path) -> Iterator[str]:
    """A server of the same kind as ``pg_server``, restarted with pg_stat_statements preloaded;
    the URL of a database holding the schema."""
    workdir = tmp_path / "server"
    server = _start(pg_server.name, workdir)
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    server.stop()
    server = _start(pg_server.name, workdir)
    try:
        with psycopg.connect(server.url, autocommit=True) as conn:
            assert conn.execute("SHOW shared_preload_libraries").fetchone() == ("pg_stat_statements",)
            conn.execute("CREATE DATABASE shop")
        url = server.database_url("shop")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SCHEMA)
        yield url
    finally:
        server.stop()


def _indexes(url: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    if "--judge" not in args:
        # These tests are about HypoPG and the unverified path; the copy is tested in test_judge_on_copy.py
        with psycopg.connect(url) as conn:
            installed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'hypopg'").fetchone()
        args = (*args, "--judge", "hypopg" if installed else "none")
    return subprocess.run(
        [sys.executable, "-m", "helios_migrate", "indexes", "--database-url", url, *args],
        capture_output=True, text=True, timeout=300, check=False, cwd=cwd,
    )


def _run_workload(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")
        for statement, params, times in WORKLOAD:
            for i in range(times):
                conn.execute(statement, params(i)).fetchall()


def test_advice_from_pg_stat_statements(preloaded: str) -> None:
    missing = _indexes(preloaded)
    assert missing.returncode == 2
    assert "pg_stat_statements is not installed in this database" in missing.stderr
    assert "CREATE EXTENSION pg_stat_statements" in missing.stderr and "--queries FILE" in missing.stderr

    _run_workload(preloaded)
    out = _indexes(preloaded, "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["source"] == "pg_stat_statements" and doc["verified"] is False
    suggested = {(s["table"], tuple(s["columns"])) for s in doc["suggestions"]}
    # the filtered, sorted lookup gets one index whose column order serves it; the sku lookup its
    # own; lower(email) an expression index; nothing for the small table and the served lookup
    assert suggested == {
        ("public.orders", ("customer_id", "status", "created_at")),
        ("public.order_lines", ("sku",)),
        ("public.customers", ("lower(email)",)),
    }, suggested
    orders = next(s for s in doc["suggestions"] if s["table"] == "public.orders")
    assert orders["calls"] == 60 and orders["total_ms"] > 0
    assert orders["replaces"] == ["orders_customer_id_idx"]
    assert orders["create_index"] == (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id_status_created_at_idx "
        "ON public.orders (customer_id, status, created_at)"
    )
    assert any(s["index"] == "orders_customer_id_idx" for s in doc["served"])
    reasons = " ".join(s["reason"] for s in doc["not_advised"])
    assert "public.settings is small" in reasons

    sql = _indexes(preloaded, "--format", "sql")
    assert sql.stdout.splitlines() == [s["create_index"] + ";" for s in doc["suggestions"]]
    text = _indexes(preloaded).stdout
    assert "Not verified" in text and "HypoPG" in text and "In the models: sa.Index(" in text

    # The advice is right: with the suggested indexes built, the planner uses them.
    with psycopg.connect(preloaded, autocommit=True) as conn:
        for line in sql.stdout.splitlines():
            conn.execute(line)
        conn.execute("ANALYZE")
        plan = str(conn.execute(f"EXPLAIN {WORKLOAD[0][0]}", (5,)).fetchall())
        assert "orders_customer_id_status_created_at_idx" in plan, plan
        plan = str(conn.execute(f"EXPLAIN {WORKLOAD[1][0]}", ("sku7",)).fetchall())
        assert "order_lines_sku_idx" in plan, plan


def test_queries_file_and_write_revision(fresh_db: str, tmp_path: Path, pg_server: RunningServer) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "autogen"))
    from autogen_harness import Project

    project = Project.create(tmp_path / "proj", fresh_db, rows=20_000)
    queries = tmp_path / "queries.sql"
    queries.write_text(
        "-- calls=5000 mean_ms=3.5\n"
        "SELECT id FROM items WHERE parent_id = $1 AND qty > 10;\n"
        "SELECT * FROM items WHERE code = 'c5';\n"
        "SELECT * FROM items WHERE status = 'new';\n"  # served by items_status_idx
        "SELECT * FROM items WHERE note LIKE '%x%';\n"
        "not sql at all\n",
        encoding="utf-8",
    )
    bad = _indexes(project.url, "--queries", str(queries))
    assert bad.returncode == 2 and "not SQL PostgreSQL parses" in bad.stderr and "Traceback" not in bad.stderr
    queries.write_text(queries.read_text().replace("not sql at all\n", ""), encoding="utf-8")
    out = _indexes(project.url, "--queries", str(queries), "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [(s["table"], s["columns"]) for s in doc["suggestions"]] == [
        ("public.items", ["parent_id", "qty"]),  # 5000 calls x 3.5 ms first
        ("public.items", ["code"]),
    ]
    assert doc["suggestions"][0]["total_ms"] == 17500.0 and doc["suggestions"][0]["queries"][0]["source"] == "queries.sql:2"
    assert doc["served"] == [{"query": "SELECT * FROM items WHERE status = 'new'", "index": "items_status_idx"}]

    res = _indexes(project.url, "--queries", str(queries), "--write-revision", "-m", "index advice", cwd=project.root)
    assert res.returncode == 0, res.stderr
    assert "2 index(es)" in res.stderr and "Add them to the models" in res.stderr
    (revision,) = project.revision_files()
    source = revision.read_text()
    assert source.count("runtime.create_index_concurrently") == 2
    version = f"{pg_server.version.major}.{pg_server.version.minor}"
    for direction in ((), ("--downgrade",)):
        check = subprocess.run(
            [sys.executable, "-m", "helios_migrate", "check", str(revision), "--format", "json", "--pg-version",
             version, "--fail-on", "info", *direction],
            cwd=project.root, capture_output=True, text=True, timeout=120, env=project.env, check=False,
        )
        assert check.returncode == 0, (direction, check.stdout, check.stderr)
    project.alembic("upgrade", "head")
    with psycopg.connect(project.url) as conn:
        names = {row[0] for row in conn.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'items'::regclass AND i.indisvalid"
        )}
    assert {"items_parent_id_qty_idx", "items_code_idx"} <= names
    project.alembic("downgrade", "base")
    with psycopg.connect(project.url) as conn:
        left = conn.execute("SELECT count(*) FROM pg_class WHERE relname IN ('items_parent_id_qty_idx', 'items_code_idx')")
        assert left.fetchone() == (0,)


def test_hypopg_keeps_what_the_planner_would_use(fresh_db: str, tmp_path: Path) -> None:
    """Where HypoPG is installed in the database, each candidate is planned as a hypothetical
    index: kept when the planner uses it and its cost drops, rejected otherwise.  Where the server
    has no HypoPG (the embedded 18 here; Debian's postgresql-15-hypopg provides it for 15), the
    advice says it is unverified and why."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SCHEMA)
        available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'").fetchone()
    queries = tmp_path / "queries.sql"
    queries.write_text(
        "-- calls=100\nSELECT * FROM order_lines WHERE sku = $1;\n"
        "-- calls=100\nSELECT * FROM orders WHERE status = 'closed';\n",  # 90% of the rows: a scan wins
        encoding="utf-8",
    )
    if available is None:
        doc = json.loads(_indexes(fresh_db, "--queries", str(queries), "--format", "json").stdout)
        assert doc["verified"] is False and "HypoPG (hypothetical indexes) is not available" in doc["note"]
        assert len(doc["suggestions"]) == 2
        return
    before = _indexes(fresh_db, "--queries", str(queries), "--format", "json")
    assert "CREATE EXTENSION hypopg in this database" in json.loads(before.stdout)["note"]
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION hypopg")
    out = _indexes(fresh_db, "--queries", str(queries), "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["verified"] is True and "Verified with HypoPG" in doc["note"]
    (kept,) = doc["suggestions"]
    assert (kept["table"], kept["columns"], kept["verified"]) == ("public.order_lines", ["sku"], True)
    assert kept["queries_using_it"] == 1 and kept["planner_cost_after"] < kept["planner_cost_before"] / 10
    assert doc["rejected"] == [
        {"table": "public.orders", "columns": ["status"], "include": [], "where": None, "queries_using_it": 0,
         "saving": 0.0}
    ]
    text = _indexes(fresh_db, "--queries", str(queries)).stdout
    assert "rejected by HypoPG: public.orders (status): the planner would not use it" in text
    with psycopg.connect(fresh_db) as conn:  # nothing was built
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname LIKE '%sku%'").fetchone() == (0,)


def test_hypopg_judges_a_join_with_the_other_tables_candidates(fresh_db: str, tmp_path: Path) -> None:
    """A candidate that serves a join is judged with the candidates of the other tables in place
    (as hypothetical indexes too): judged alone, customers (email) saved little on the join, whose
    cost was then the sequential scan of order_lines the other candidate removes, and was rejected
    though the two indexes together make both queries cheap."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SCHEMA)
        available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'").fetchone()
        if available is not None:
            conn.execute("CREATE EXTENSION hypopg")
    queries = tmp_path / "queries.sql"
    queries.write_text(
        "-- calls=20\nSELECT * FROM customers WHERE email = $1;\n"
        "-- calls=100\nSELECT c.id, count(*) FROM customers c JOIN order_lines ol ON ol.order_id = c.id "
        "WHERE c.email = $1 GROUP BY c.id;\n",
        encoding="utf-8",
    )
    out = _indexes(fresh_db, "--queries", str(queries), "--format", "json")
    if available is None:
        # No HypoPG for this server (the embedded 18; Debian's postgresql-15-hypopg provides it for
        # 15): both candidates are advised, marked unverified, none rejected.
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert doc["verified"] is False and doc["rejected"] == []
        assert {(s["table"], tuple(s["columns"])) for s in doc["suggestions"]} == {
            ("public.customers", ("email",)), ("public.order_lines", ("order_id",))}
        return
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["verified"] is True and doc["rejected"] == []
    kept = {(s["table"], tuple(s["columns"])): s for s in doc["suggestions"]}
    assert set(kept) == {("public.customers", ("email",)), ("public.order_lines", ("order_id",))}
    email = kept[("public.customers", ("email",))]
    assert email["queries_using_it"] == 2 and email["planner_cost_after"] < email["planner_cost_before"] / 2


KINDS_SCHEMA = """
CREATE TABLE jobs (id bigint PRIMARY KEY, queue text NOT NULL, run_at timestamptz NOT NULL,
                   done_at timestamptz, payload text);
INSERT INTO jobs SELECT g, 'q' || (g % 4), '2026-01-01'::timestamptz + g * interval '1 second',
       CASE WHEN g % 100 <> 0 THEN now() END, repeat('p', 40) FROM generate_series(1, 100000) g;
CREATE TABLE events (id bigint PRIMARY KEY, account_id integer NOT NULL, kind integer NOT NULL,
                     amount integer NOT NULL, body text);
INSERT INTO events SELECT g, g % 50 + 1, (g * 7) % 20, g % 1000, repeat('b', 80) FROM generate_series(1, 200000) g;
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, name text);
INSERT INTO users SELECT g, 'User' || g || '@Example.com', 'n' || g FROM generate_series(1, 50000) g;
"""

KINDS_QUERIES = (
    "-- calls=100\nSELECT id, payload FROM jobs WHERE queue = $1 AND done_at IS NULL ORDER BY run_at LIMIT 10;\n"
    "-- calls=50\nSELECT kind, sum(amount) FROM events WHERE account_id = $1 GROUP BY kind;\n"
    "-- calls=80\nSELECT id, name FROM users WHERE lower(email) = lower($1);\n"
)


def test_partial_covering_group_by_and_expression_indexes(fresh_db: str, tmp_path: Path) -> None:
    """Each new kind of candidate through the real command, planned with HypoPG where the server
    has it (Debian's postgresql-15-hypopg) and unverified where it has not (the embedded 18); then
    built, and the planner uses each one for its query (the covering one as an index-only scan)."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(KINDS_SCHEMA)
        conn.execute("VACUUM ANALYZE")
        hypopg = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'").fetchone() is not None
        if hypopg:
            conn.execute("CREATE EXTENSION hypopg")
    queries = tmp_path / "queries.sql"
    queries.write_text(KINDS_QUERIES, encoding="utf-8")
    out = _indexes(fresh_db, "--queries", str(queries), "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["verified"] is hypopg and doc["rejected"] == []
    got = {s["table"]: s for s in doc["suggestions"]}
    assert {t: (s["columns"], s["include"], s["where"]) for t, s in got.items()} == {
        "public.jobs": (["queue", "run_at"], [], "done_at IS NULL"),
        "public.events": (["account_id", "kind"], ["amount"], None),
        "public.users": (["lower(email)"], [], None),
    }
    jobs, events, users = got["public.jobs"], got["public.events"], got["public.users"]
    assert jobs["create_index"] == ("CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_queue_run_at_where_done_at_idx "
                                    "ON public.jobs (queue, run_at) WHERE done_at IS NULL")
    assert 0.005 < jobs["rows_fraction"] < 0.02  # ~1% of the rows: the index holds only those
    assert events["create_index"].endswith("ON public.events (account_id, kind) INCLUDE (amount)")
    assert users["create_index"].endswith("ON public.users (lower(email))")
    assert "postgresql_where=sa.text('done_at IS NULL')" in jobs["model"]
    assert 'postgresql_include=["amount"]' in events["model"] and 'sa.text("lower(email)")' in users["model"]
    if hypopg:
        for s in (jobs, users):
            assert s["verified"] and s["queries_using_it"] == 1, s
            # (a hypothetical expression index has no statistics of its own: the planner guesses
            # 0.5% of the rows for lower(email) = $1, so its saving looks smaller than it is)
            assert s["planner_cost_after"] < s["planner_cost_before"] / 2, s
        # INCLUDE is judged only through an index-only scan on the hypothetical index, which the
        # planner picks only when the visibility map says most pages are all-visible (VACUUM, or
        # autovacuum between two runs: the text and the JSON compared come from one run)
        one_run = advice_report.run(fresh_db, queries, 10)
        text = advice_report.render_text(one_run)
        ev = next(s for s in json.loads(advice_report.render_json(one_run))["suggestions"]
                  if s["table"] == "public.events")
        if ev["verified"]:
            assert ev["include_verified"] is (ev["index_only_scans"] > 0)
            assert ev["include_verified"] or "INCLUDE (amount) not verified" in text, text
        else:
            assert "not verified: the planner chose no index-only scan on it" in text, text
    else:
        assert all(not s["verified"] for s in doc["suggestions"])
        assert "HypoPG (hypothetical indexes) is not available" in doc["note"]
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        for s in doc["suggestions"]:
            conn.execute(s["create_index"])
        for _ in range(5):  # VACUUM marks pages all-visible only past every open snapshot (autovacuum's)
            conn.execute("VACUUM ANALYZE")
            plans = {
                name: "\n".join(r[0] for r in conn.execute(f"EXPLAIN {sql}", params).fetchall())
                for name, sql, params in (
                    ("jobs", "SELECT id, payload FROM jobs WHERE queue = %s AND done_at IS NULL "
                     "ORDER BY run_at LIMIT 10", ("q1",)),
                    ("events", "SELECT kind, sum(amount) FROM events WHERE account_id = %s GROUP BY kind", (7,)),
                    ("users", "SELECT id, name FROM users WHERE lower(email) = lower(%s)", ("user5@example.com",)),
                )
            }
            if "Index Only Scan" in plans["events"]:
                break
            time.sleep(1)
    assert jobs["name"] in plans["jobs"], plans["jobs"]
    assert f"Index Only Scan using {events['name']}" in plans["events"], plans["events"]
    assert users["name"] in plans["users"], plans["users"]


def test_partial_covering_and_expression_revision(fresh_db: str, tmp_path: Path, pg_server: RunningServer) -> None:
    """--write-revision writes the new kinds as Alembic operations the plugin plans: the revision
    passes check both ways, upgrades (the indexes built as advised) and downgrades."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "autogen"))
    from autogen_harness import Project

    project = Project.create(tmp_path / "proj", fresh_db, rows=1_000)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(KINDS_SCHEMA)
        conn.execute("VACUUM ANALYZE")
    queries = tmp_path / "queries.sql"
    queries.write_text(KINDS_QUERIES, encoding="utf-8")
    res = _indexes(project.url, "--queries", str(queries), "--write-revision", "-m", "kinds", cwd=project.root)
    assert res.returncode == 0, res.stderr
    assert "3 index(es)" in res.stderr
    (revision,) = project.revision_files()
    version = f"{pg_server.version.major}.{pg_server.version.minor}"
    for direction in ((), ("--downgrade",)):
        check = subprocess.run(
            [sys.executable, "-m", "helios_migrate", "check", str(revision), "--format", "json", "--pg-version",
             version, "--fail-on", "info", *direction],
            cwd=project.root, capture_output=True, text=True, timeout=120, env=project.env, check=False,
        )
        assert check.returncode == 0, (direction, check.stdout, check.stderr)
    project.alembic("upgrade", "head")
    with psycopg.connect(project.url) as conn:
        built = {name: definition for name, definition in conn.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indisvalid AND c.relname LIKE ANY (ARRAY['jobs_%', 'events_%', 'users_%']) "
            "AND NOT i.indisprimary")}
    assert built == {
        "jobs_queue_run_at_where_done_at_idx":
            "CREATE INDEX jobs_queue_run_at_where_done_at_idx ON public.jobs USING btree (queue, run_at) "
            "WHERE (done_at IS NULL)",
        "events_account_id_kind_amount_idx":
            "CREATE INDEX events_account_id_kind_amount_idx ON public.events USING btree (account_id, kind) "
            "INCLUDE (amount)",
        "users_lower_email_idx": "CREATE INDEX users_lower_email_idx ON public.users USING btree (lower(email))",
    }, built
    project.alembic("downgrade", "base")
    with psycopg.connect(project.url) as conn:
        left = conn.execute("SELECT count(*) FROM pg_class WHERE relname = ANY(%s)", (list(built),)).fetchone()
        assert left == (0,)


def test_covering_index_hypopg_cannot_judge_is_kept_unverified(fresh_db: str, tmp_path: Path) -> None:
    """A covering index whose whole point is an index-only scan, on a table VACUUM has not yet
    marked all-visible: the planner then plans no index-only scan on the hypothetical index and,
    without one, would scan the table, so HypoPG alone would reject it.  It is kept, marked not
    verified, with the reason; built (and the table vacuumed), the planner runs it as an index-only
    scan."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE ledger (id bigint PRIMARY KEY, account integer NOT NULL, kind integer NOT NULL, "
                     "amount integer NOT NULL, memo text) WITH (autovacuum_enabled = off)")
        conn.execute("INSERT INTO ledger SELECT g, g % 5, g % 7, g % 1000, repeat('m', 200) "
                     "FROM generate_series(1, 200000) g")
        conn.execute("ANALYZE ledger")  # statistics, but no visibility map yet
        hypopg = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'").fetchone() is not None
        if hypopg:
            conn.execute("CREATE EXTENSION hypopg")
    queries = tmp_path / "queries.sql"
    sql = "SELECT kind, sum(amount) FROM ledger WHERE account = $1 GROUP BY kind"
    queries.write_text(f"-- calls=20\n{sql};\n", encoding="utf-8")
    out = _indexes(fresh_db, "--queries", str(queries), "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    (s,) = doc["suggestions"]
    assert (s["columns"], s["include"], s["verified"]) == (["account", "kind"], ["amount"], False), s
    assert doc["rejected"] == []
    if hypopg:
        assert s["queries_using_it"] == 0 and s["include_verified"] is False
        text = _indexes(fresh_db, "--queries", str(queries)).stdout
        assert "not verified: the planner chose no index-only scan on it, and without one it would not use it" in text
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(s["create_index"])
        for _ in range(5):  # VACUUM marks pages all-visible only past every open snapshot (autovacuum's)
            conn.execute("VACUUM ANALYZE ledger")
            plan = "\n".join(r[0] for r in conn.execute(f"EXPLAIN {sql.replace('$1', '3')}").fetchall())
            if "Index Only Scan" in plan:
                break
            time.sleep(1)
    assert f"Index Only Scan using {s['name']}" in plan, plan
