"""``helios-migrate diff URL URL`` on real servers (PostgreSQL 15 and 18): two databases that
differ by a hand-made index, a hotfix column, an enum value and a changed default; every object
kind; ignore patterns; formats and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from diff_harness import two_databases

from helios_migrate import pgserver
from helios_migrate.diff.command import run_diff
from helios_migrate.diff.compare import DiffResult
from helios_migrate.diff.sides import SideOptions
from helios_migrate.pgserver import RunningServer

SCHEMA_SQL = """
CREATE TYPE order_state AS ENUM ('new', 'paid', 'shipped');
CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    state order_state NOT NULL DEFAULT 'new',
    total numeric(10, 2) NOT NULL DEFAULT 0 CONSTRAINT orders_total_positive CHECK (total >= 0),
    note text
);
CREATE INDEX orders_customer_idx ON orders (customer_id) INCLUDE (total);
CREATE INDEX orders_open_idx ON orders (customer_id) WHERE state <> 'shipped';
CREATE INDEX orders_lower_note_idx ON orders (lower(note));
CREATE SEQUENCE invoice_numbers START 1000 INCREMENT 10;
CREATE VIEW open_orders AS SELECT id, customer_id FROM orders WHERE state <> 'shipped';
"""

DRIFT_SQL = """
CREATE INDEX orders_note_hotfix_idx ON orders (note) WHERE note IS NOT NULL;
ALTER TABLE orders ADD COLUMN hotfix_flag boolean;
ALTER TYPE order_state ADD VALUE 'refunded' AFTER 'paid';
ALTER TABLE orders ALTER COLUMN total SET DEFAULT 1;
"""


@pytest.fixture
def two_dbs(pg_server: RunningServer, pg_pool) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with two_databases(pg_server, pg_pool, "diff", SCHEMA_SQL) as dbs:
        yield dbs


def _diff(source: str, target: str, ignore: tuple[str, ...] = ()) -> DiffResult:
    return run_diff(source, target, SideOptions(), ignore)


def _lines(result: DiffResult) -> set[tuple[str, str, str, tuple[tuple[str, object, object], ...]]]:
    return {
        (d.status.value, d.kind, d.name, tuple((c.attribute, c.source, c.target) for c in d.changes))
        for d in result.differences
    }


def test_identical_databases_do_not_differ(two_dbs: tuple[str, str]) -> None:
    source, target = two_dbs
    result = _diff(source, target)
    assert result.differences == ()
    assert not result.differ


def test_drift_is_reported_object_by_object(two_dbs: tuple[str, str]) -> None:
    source, target = two_dbs
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(DRIFT_SQL)
    result = _diff(source, target)
    assert _lines(result) == {
        ("extra", "column", "public.orders.hotfix_flag", ()),
        ("different", "column", "public.orders.total", (("default", "0", "1"),)),
        ("extra", "index", "public.orders_note_hotfix_idx", ()),
        ("different", "enum", "public.order_state",
         (("values", ("new", "paid", "shipped"), ("new", "paid", "refunded", "shipped")),)),
    }
    extra_index = next(d for d in result.differences if d.kind == "index")
    assert extra_index.target is not None
    assert extra_index.target.attribute("definition") == (
        "ON public.orders USING btree (note) WHERE (note IS NOT NULL)"
    )
    # the other way round, the same objects are missing instead of extra
    back = _lines(_diff(target, source))
    assert ("missing", "index", "public.orders_note_hotfix_idx", ()) in back
    assert ("missing", "column", "public.orders.hotfix_flag", ()) in back


def test_every_object_kind_is_compared(two_dbs: tuple[str, str]) -> None:
    source, target = two_dbs
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("""
            ALTER TABLE orders DROP CONSTRAINT orders_total_positive;
            ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0) NOT VALID;
            ALTER TABLE orders ALTER COLUMN note SET NOT NULL;
            ALTER TABLE orders ALTER COLUMN note TYPE varchar(200);
            ALTER TABLE customers DROP CONSTRAINT customers_email_key;
            ALTER TABLE orders DROP CONSTRAINT orders_customer_id_fkey;
            ALTER TABLE orders ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id)
                REFERENCES customers (id);
            DROP INDEX orders_customer_idx;
            CREATE INDEX orders_customer_idx ON orders (customer_id);
            ALTER SEQUENCE invoice_numbers INCREMENT 1;
            CREATE OR REPLACE VIEW open_orders AS
                SELECT id, customer_id FROM orders WHERE state = 'new';
            CREATE MATERIALIZED VIEW order_totals AS SELECT customer_id, sum(total) FROM orders GROUP BY 1;
            CREATE TABLE audit (id bigint PRIMARY KEY, at timestamptz);
            ALTER TABLE orders ALTER COLUMN id SET GENERATED BY DEFAULT;
        """)
    result = _diff(source, target)
    by_name = {(d.kind, d.name): d for d in result.differences}

    def changes(kind: str, name: str) -> dict[str, tuple[object, object]]:
        return {c.attribute: (c.source, c.target) for c in by_name[(kind, name)].changes}

    assert changes("constraint", "public.orders.orders_total_positive") == {
        "definition": ("CHECK ((total >= (0)::numeric))", "CHECK ((total > (0)::numeric)) NOT VALID"),
        "validated": (True, False),
    }
    assert changes("column", "public.orders.note") == {
        "type": ("text", "character varying(200)"), "nullable": (True, False),
    }
    assert changes("column", "public.orders.id") == {"identity": ("always", "by default")}
    assert by_name[("constraint", "public.customers.customers_email_key")].status.value == "missing"
    assert changes("constraint", "public.orders.orders_customer_id_fkey") == {
        "definition": ("FOREIGN KEY (customer_id) REFERENCES customers(id) ON DELETE CASCADE",
                       "FOREIGN KEY (customer_id) REFERENCES customers(id)"),
    }
    assert changes("index", "public.orders_customer_idx") == {
        "definition": ("ON public.orders USING btree (customer_id) INCLUDE (total)",
                       "ON public.orders USING btree (customer_id)"),
    }
    assert changes("sequence", "public.invoice_numbers") == {"increment": (10, 1)}
    assert set(changes("view", "public.open_orders")) == {"definition"}
    assert by_name[("view", "public.order_totals")].status.value == "extra"
    # a whole extra table is one difference, not one per column, constraint and index
    assert by_name[("table", "public.audit")].status.value == "extra"
    assert not [d for d in result.differences if d.name.startswith("public.audit.")]


def test_ignore_patterns(two_dbs: tuple[str, str]) -> None:
    source, target = two_dbs
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(DRIFT_SQL + "CREATE TABLE spatial_ref_sys (srid integer PRIMARY KEY);")
    result = _diff(source, target, ("index:*_hotfix_*", "public.spatial_ref_sys", "orders.hotfix_flag"))
    assert {(d.kind, d.name) for d in result.differences} == {
        ("column", "public.orders.total"), ("enum", "public.order_state"),
    }
    assert result.ignored == 3
    # a kind-prefixed pattern only matches that kind
    assert ("index", "public.orders_note_hotfix_idx") in {
        (d.kind, d.name) for d in _diff(source, target, ("column:*_hotfix_*",)).differences
    }


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "helios_migrate", "diff", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=180)


def test_cli_formats_exit_codes_and_config(two_dbs: tuple[str, str], tmp_path: Path) -> None:
    source, target = two_dbs
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(DRIFT_SQL)
    text = _cli(source, target, cwd=tmp_path)
    assert text.returncode == 1, text.stderr
    assert "+ index public.orders_note_hotfix_idx (extra in TARGET): " \
           "ON public.orders USING btree (note) WHERE (note IS NOT NULL)" in text.stdout
    assert "~ column public.orders.total (different)\n    default: 0 -> 1" in text.stdout
    assert "4 difference(s): 0 missing, 2 extra, 2 different" in text.stdout
    assert _cli(source, target, "--exit-zero", cwd=tmp_path).returncode == 0
    assert _cli(source, source, cwd=tmp_path).returncode == 0

    as_json = _cli(source, target, "--format", "json", cwd=tmp_path)
    data = json.loads(as_json.stdout)
    assert data["differ"] is True
    enum = next(d for d in data["differences"] if d["kind"] == "enum")
    assert enum["changes"] == [{"attribute": "values", "source": ["new", "paid", "shipped"],
                                "target": ["new", "paid", "refunded", "shipped"]}]

    markdown = _cli(source, target, "--format", "markdown", cwd=tmp_path).stdout
    assert "| ~ | column | `public.orders.total` | default: `0` → `1` |" in markdown
    written = _cli(source, target, "--format", "markdown", "-o", str(tmp_path / "drift.md"), cwd=tmp_path)
    assert written.returncode == 1 and written.stdout == ""
    assert (tmp_path / "drift.md").read_text(encoding="utf-8") == markdown

    (tmp_path / "pyproject.toml").write_text(
        '[tool.helios-migrate.diff]\nignore = ["index:*_hotfix_*", "orders.hotfix_flag"]\n'
    )
    configured = _cli(source, target, cwd=tmp_path)
    assert configured.returncode == 1
    assert "hotfix" not in configured.stdout and "2 ignored" in configured.stdout
    (tmp_path / "pyproject.toml").write_text('[tool.helios-migrate.diff]\nignore = ["idx:*"]\n')
    bad = _cli(source, target, cwd=tmp_path)
    assert bad.returncode == 2 and "diff.ignore" in bad.stderr and "Traceback" not in bad.stderr


def test_unreachable_database_is_a_usage_error(fresh_db: str, tmp_path: Path) -> None:
    res = _cli(fresh_db, "postgresql://nobody:secret@127.0.0.1:1/none", cwd=tmp_path)
    assert res.returncode == 2
    assert "cannot connect to the database given by TARGET" in res.stderr
    assert "check the URL" in res.stderr
    assert "secret" not in res.stderr and "Traceback" not in res.stderr
    missing = _cli("head", fresh_db, cwd=tmp_path)
    assert missing.returncode == 2 and "alembic.ini" in missing.stderr and "Traceback" not in missing.stderr


def test_plan_converges_target_to_source(two_dbs: tuple[str, str], tmp_path: Path) -> None:
    """diff --plan, then every step's SQL run on TARGET, then diff is empty: a round trip."""
    from helios_migrate.diff.converge import converge
    from helios_migrate.plan import Phase, TransactionMode
    from helios_migrate.versions import PgVersion

    source, target = two_dbs
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("""
            ALTER TYPE order_state ADD VALUE 'refunded' AFTER 'paid';
            ALTER TABLE orders ADD COLUMN shipped_at timestamptz;
            ALTER TABLE orders ADD CONSTRAINT orders_note_short CHECK (length(note) < 500);
            CREATE UNIQUE INDEX customers_lower_email_idx ON customers (lower(email));
        """)
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("""
            CREATE INDEX orders_note_hotfix_idx ON orders (note);
            ALTER TABLE orders ADD COLUMN hotfix_flag boolean;
            ALTER TABLE orders ALTER COLUMN total SET DEFAULT 1;
            ALTER TABLE orders ALTER COLUMN note SET NOT NULL;
        """)
    result = _diff(source, target)
    assert len(result.differences) == 8
    assert result.target_version_num is not None
    convergence = converge(result, PgVersion.parse(str(result.target_version_num)))
    assert convergence.unplanned == ()
    assert convergence.plan is not None
    steps = convergence.plan.steps
    index_step = next(s for s in steps if "customers_lower_email_idx" in " ".join(s.sql))
    assert index_step.transaction is TransactionMode.AUTOCOMMIT
    assert "CONCURRENTLY" in index_step.sql[0]
    check_sql = " ".join(sql for s in steps for sql in s.sql if "orders_note_short" in sql)
    assert "NOT VALID" in check_sql and "VALIDATE CONSTRAINT" in check_sql
    drop_column = next(s for s in steps if "hotfix_flag" in " ".join(s.sql))
    assert drop_column.phase is Phase.CONTRACT

    with psycopg.connect(target, autocommit=True) as conn:
        for step in steps:
            for sql in step.sql:
                conn.execute(sql)
    after = _diff(source, target)
    assert after.differences == (), [(d.status, d.kind, d.name, d.changes) for d in after.differences]

    text = _cli(target, source, "--plan", cwd=tmp_path)
    assert text.returncode == 0 and "-- nothing to plan" in text.stdout


def test_plan_quotes_names(pg_server: RunningServer, pg_pool) -> None:  # type: ignore[no-untyped-def]
    """Schemas, tables, columns and indexes whose names need quoting converge too."""
    from helios_migrate.diff.converge import converge
    from helios_migrate.versions import PgVersion

    names = [pg_pool.new_db_name("diff"), pg_pool.new_db_name("diff")]
    source, target = (pgserver.create_database(pg_server, n, "template0") for n in names)
    try:
        base = 'CREATE SCHEMA "Sales Data"; CREATE TABLE "Sales Data"."Order" (id bigint PRIMARY KEY, "user" text);'
        with psycopg.connect(source, autocommit=True) as conn:
            conn.execute(base + """
                ALTER TABLE "Sales Data"."Order" ADD COLUMN "Placed At" timestamptz NOT NULL DEFAULT now();
                CREATE INDEX "Order By User" ON "Sales Data"."Order" ("user") WHERE "user" IS NOT NULL;
            """)
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(base)
        result = _diff(source, target)
        assert {(d.status.value, d.name) for d in result.differences} == {
            ("missing", "Sales Data.Order.Placed At"), ("missing", "Sales Data.Order By User"),
        }
        assert result.target_version_num is not None
        plan = converge(result, PgVersion.parse(str(result.target_version_num))).plan
        assert plan is not None
        with psycopg.connect(target, autocommit=True) as conn:
            for step in plan.steps:
                for sql in step.sql:
                    conn.execute(sql)
        assert _diff(source, target).differences == ()
    finally:
        for name in names:
            pgserver.drop_database(pg_server, name)
