"""``helios-migrate diff --plan/--write`` for tables, views, materialized views, sequences and
changed indexes, on real servers (PostgreSQL 15 and 18): the plan run on TARGET leaves no
difference, its undo brings TARGET back, and the written revision upgrades (diff is empty) and
downgrades (the same differences are back)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from helios_migrate import pgserver
from helios_migrate.diff.command import run_diff
from helios_migrate.diff.converge import converge, render_plan
from helios_migrate.diff.sides import SideOptions
from helios_migrate.pgserver import RunningServer
from helios_migrate.plan import TransactionMode
from helios_migrate.versions import PgVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "autogen"))
from autogen_harness import Project
from diff_harness import found, run_sql, run_steps, two_databases

BASE_SQL = """
CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL, region text);
CREATE INDEX accounts_name ON accounts (name);
CREATE SEQUENCE counter;
CREATE VIEW account_ids AS SELECT id FROM accounts;
CREATE VIEW account_pairs AS SELECT id, name FROM accounts;
"""

# SOURCE: what TARGET should become
SOURCE_SQL = """
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id int NOT NULL REFERENCES accounts (id),
    total numeric(10,2) NOT NULL DEFAULT 0 CHECK (total >= 0),
    note text,
    shout text GENERATED ALWAYS AS (upper(note)) STORED,
    parent_id bigint REFERENCES orders (id),
    UNIQUE (account_id, note)
);
CREATE INDEX orders_open ON orders (account_id) WHERE total > 0;
CREATE TABLE tickets (id serial PRIMARY KEY, "order" text DEFAULT 'x');
CREATE SEQUENCE invoice_no AS integer INCREMENT BY 5 MINVALUE 100 START WITH 1000 CYCLE;
ALTER SEQUENCE counter INCREMENT BY 10 MAXVALUE 1000000;
DROP INDEX accounts_name;
CREATE INDEX accounts_name ON accounts (lower(name)) INCLUDE (region);
CREATE OR REPLACE VIEW account_ids AS SELECT id, name FROM accounts;
DROP VIEW account_pairs;
CREATE VIEW account_pairs AS SELECT name, id FROM accounts;
CREATE VIEW account_regions AS SELECT region, count(*) AS n FROM accounts GROUP BY region;
CREATE MATERIALIZED VIEW account_totals AS SELECT count(*) AS n FROM accounts;
CREATE UNIQUE INDEX account_totals_n ON account_totals (n);
"""

# TARGET's own drift: what SOURCE does not have
TARGET_SQL = """
CREATE TABLE legacy (id int PRIMARY KEY, payload text);
INSERT INTO legacy VALUES (1, 'kept');
CREATE SEQUENCE stale_seq;
CREATE VIEW old_view AS SELECT 1 AS x;
CREATE MATERIALIZED VIEW old_totals AS SELECT 2 AS y;
SELECT setval('counter', 500);
"""

EXPECTED = {
    ("missing", "table", "public.orders"),
    ("missing", "table", "public.tickets"),
    ("extra", "table", "public.legacy"),
    ("missing", "sequence", "public.invoice_no"),
    ("missing", "sequence", "public.tickets_id_seq"),
    ("different", "sequence", "public.counter"),
    ("extra", "sequence", "public.stale_seq"),
    ("different", "index", "public.accounts_name"),
    ("different", "view", "public.account_ids"),
    ("different", "view", "public.account_pairs"),
    ("missing", "view", "public.account_regions"),
    ("missing", "view", "public.account_totals"),
    ("missing", "index", "public.account_totals_n"),
    ("extra", "view", "public.old_view"),
    ("extra", "view", "public.old_totals"),
}


@pytest.fixture
def two_dbs(pg_server: RunningServer, pg_pool) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    seed = "INSERT INTO accounts VALUES (1, 'ann', 'north'), (2, 'bob', 'south')"
    with two_databases(pg_server, pg_pool, "conv", BASE_SQL, seed) as dbs:
        yield dbs


def _drift(source: str, target: str) -> None:
    run_sql(source, SOURCE_SQL)
    run_sql(target, TARGET_SQL)


def test_extra_table_needs_the_data_loss_opt_in(two_dbs: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    source, target = two_dbs
    _drift(source, target)
    monkeypatch.delenv("HELIOS_ALLOW_DATA_LOSS", raising=False)
    result = run_diff(source, target, SideOptions())
    assert found(result) == EXPECTED
    assert result.target_version_num is not None
    convergence = converge(result, PgVersion.parse(str(result.target_version_num)))
    refused = {d.name: why for d, why in convergence.unplanned}
    assert set(refused) == {"public.legacy"}, refused
    assert "HELIOS_ALLOW_DATA_LOSS=1" in refused["public.legacy"]
    assert "DROP TABLE IF EXISTS" not in render_plan(convergence)
    assert convergence.plan is not None
    run_steps(target, convergence.plan.steps)
    assert found(run_diff(source, target, SideOptions())) == {("extra", "table", "public.legacy")}
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT payload FROM legacy").fetchall() == [("kept",)]


def test_plan_converges_and_its_undo_restores_target(
    two_dbs: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = two_dbs
    _drift(source, target)
    monkeypatch.setenv("HELIOS_ALLOW_DATA_LOSS", "1")
    result = run_diff(source, target, SideOptions())
    assert result.target_version_num is not None
    convergence = converge(result, PgVersion.parse(str(result.target_version_num)))
    assert convergence.unplanned == (), convergence.unplanned
    assert convergence.plan is not None
    steps = convergence.plan.steps
    text = render_plan(convergence)

    # a new table: created with its columns, then keys, checks, foreign keys and indexes in the
    # migration transaction (it is empty: no concurrent build, no NOT VALID)
    create = next(s for s in steps if any(q.startswith("CREATE TABLE public.orders") for q in s.sql))
    assert create.transaction is TransactionMode.MIGRATION
    table_steps = [s for s in steps if any("public.orders" in q for q in s.sql)]
    assert all(s.transaction is TransactionMode.MIGRATION for s in table_steps), [s.sql for s in table_steps]
    assert "CONCURRENTLY" not in " ".join(q for s in table_steps for q in s.sql)
    assert "NOT VALID" not in " ".join(q for s in table_steps for q in s.sql)
    assert "id bigint GENERATED ALWAYS AS IDENTITY NOT NULL" in create.sql[0]
    assert "shout text GENERATED ALWAYS AS (upper(note)) STORED" in create.sql[0]
    assert "DROP TABLE IF EXISTS public.legacy" in text
    # the serial sequence first, owned by its column once the table exists
    assert text.index("CREATE SEQUENCE IF NOT EXISTS public.tickets_id_seq") < text.index("CREATE TABLE public.tickets")
    assert text.index("CREATE TABLE public.tickets") < text.index(
        "ALTER SEQUENCE public.tickets_id_seq OWNED BY public.tickets.id")
    # a changed sequence: its options, never RESTART
    assert "ALTER SEQUENCE public.counter INCREMENT BY 10 MAXVALUE 1000000;" in text
    assert "RESTART" not in text
    # a changed index: built concurrently under a temporary name, the old one dropped concurrently
    build = next(s for s in steps if any("accounts_name__new" in q and "CREATE" in q for q in s.sql))
    assert build.transaction is TransactionMode.AUTOCOMMIT and "CONCURRENTLY" in build.sql[0]
    drop = next(s for s in steps if any("DROP INDEX CONCURRENTLY IF EXISTS public.accounts_name" in q for q in s.sql))
    assert drop.transaction is TransactionMode.AUTOCOMMIT
    assert steps.index(build) < steps.index(drop)
    assert "ALTER INDEX IF EXISTS public.accounts_name__new RENAME TO accounts_name;" in text
    # views: compatible columns replaced in place; changed columns dropped and created in one step
    assert "CREATE OR REPLACE VIEW public.account_ids AS" in text
    pair = next(s for s in steps if any("DROP VIEW public.account_pairs" in q for q in s.sql))
    assert pair.transaction is TransactionMode.OWN and pair.retry is not None
    assert any(q.startswith("CREATE VIEW public.account_pairs") for q in pair.sql)
    assert "CREATE MATERIALIZED VIEW public.account_totals AS SELECT count(*) AS n FROM accounts;" in text
    assert "the materialized view public.account_totals is filled as it is created: its query runs once" in text
    assert "DROP MATERIALIZED VIEW IF EXISTS public.old_totals;" in text
    assert text.index("CREATE MATERIALIZED VIEW public.account_totals") < text.index("account_totals_n ON")

    run_steps(target, steps)
    after = run_diff(source, target, SideOptions())
    assert after.differences == (), found(after)
    with psycopg.connect(target, autocommit=True) as conn:
        # the live sequence kept its value: the next one follows 500 by the new increment
        assert conn.execute("SELECT nextval('counter')").fetchone() == (510,)
        assert conn.execute("SELECT n FROM account_totals").fetchone() == (2,)
        conn.execute("INSERT INTO orders (account_id, total) VALUES (1, 5)")
        conn.execute("SELECT setval('counter', 500)")

    # undo, difference by difference in reverse order: TARGET is back where it was (structure)
    with psycopg.connect(target, autocommit=True) as conn:
        for planned in reversed(convergence.planned):
            assert planned.undo is not None, (planned.difference.name, planned.undo_refused)
            for sql in planned.undo:
                conn.execute(sql)
    assert found(run_diff(source, target, SideOptions())) == EXPECTED


def test_a_view_with_dependants_stops_the_drop(two_dbs: tuple[str, str]) -> None:
    """A view whose columns changed is dropped and created in one transaction; a view that depends
    on it stops the drop (no CASCADE): the transaction rolls back, both views are still there."""
    source, target = two_dbs
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("DROP VIEW account_pairs; CREATE VIEW account_pairs AS SELECT name, id FROM accounts")
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE VIEW pair_names AS SELECT name FROM account_pairs")
    result = run_diff(source, target, SideOptions(), ignore=("public.pair_names",))
    assert found(result) == {("different", "view", "public.account_pairs")}
    assert result.target_version_num is not None
    convergence = converge(result, PgVersion.parse(str(result.target_version_num)))
    assert convergence.plan is not None
    assert "depends on it stops the drop" in render_plan(convergence)
    with pytest.raises(psycopg.errors.DependentObjectsStillExist):
        run_steps(target, convergence.plan.steps)
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM pair_names").fetchone() == (2,)


def test_a_partitioned_table_is_not_planned(two_dbs: tuple[str, str]) -> None:
    source, target = two_dbs
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("CREATE TABLE events (at date NOT NULL, kind text) PARTITION BY RANGE (at)")
    result = run_diff(source, target, SideOptions())
    assert result.target_version_num is not None
    convergence = converge(result, PgVersion.parse(str(result.target_version_num)))
    assert [(d.name, why) for d, why in convergence.unplanned] == [
        ("public.events", "a partitioned table (its partition key and partitions are not read by diff): "
                          "create it by hand")]


BASELINE = '''"""baseline

Revision ID: conv0001
Revises:
"""
from alembic import op

revision = "conv0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute("""{ddl}""")


def downgrade():
    op.execute("DROP VIEW account_ids, account_pairs; DROP TABLE accounts; DROP SEQUENCE counter")
'''


def _cli(project: Project, server: RunningServer, *args: str, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helios_migrate", "diff", *args, "--scratch-url", server.url],
        cwd=project.root, env={**project.env, **(env or {})}, capture_output=True, text=True, timeout=300,
    )


def _json_found(completed: subprocess.CompletedProcess[str]) -> set[tuple[str, str, str]]:
    return {(d["status"], d["kind"], d["name"]) for d in json.loads(completed.stdout)["differences"]}


def test_write_round_trip(
    fresh_db: str, pg_server: RunningServer, pg_pool, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    """diff SOURCE_URL TARGET_URL --write with tables, views, sequences and a changed index: the
    upgrade converges TARGET, the downgrade brings its differences back (the created tables dropped)."""
    project = Project.create(tmp_path / "proj", fresh_db, rows=0)
    (project.root / "versions" / "conv0001_baseline.py").write_text(BASELINE.format(ddl=BASE_SQL))
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS items, parents CASCADE")
    project.alembic("upgrade", "head")
    name = pg_pool.new_db_name("src")
    source = pgserver.create_database(pg_server, name, "template0")
    try:
        with psycopg.connect(source, autocommit=True) as conn:
            conn.execute(BASE_SQL)
            conn.execute(SOURCE_SQL)
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            conn.execute("INSERT INTO accounts VALUES (1, 'ann', 'north')")
            conn.execute(TARGET_SQL)
        before = _json_found(_cli(project, pg_server, source, fresh_db, "--format", "json"))
        assert before == EXPECTED

        wrote = _cli(project, pg_server, source, fresh_db, "--write", "-m", "converge")
        assert wrote.returncode == 1, wrote.stderr
        assert "not written: table public.legacy" in wrote.stderr and "HELIOS_ALLOW_DATA_LOSS=1" in wrote.stderr
        assert f"{len(EXPECTED) - 1} difference(s)" in wrote.stderr, wrote.stderr
        revision = project.revision_files()[-1].read_text()
        assert "DROP TABLE" not in revision.split("def downgrade")[0]
        project.alembic("upgrade", "head")
        after = _cli(project, pg_server, source, fresh_db, "--format", "json")
        assert _json_found(after) == {("extra", "table", "public.legacy")}, after.stdout
        with psycopg.connect(fresh_db) as conn:
            assert conn.execute("SELECT nextval('counter')").fetchone() == (510,)
            assert conn.execute("SELECT n FROM account_totals").fetchone() == (1,)

        project.alembic("downgrade", "-1")
        back = _cli(project, pg_server, source, fresh_db, "--format", "json")
        assert _json_found(back) == before
        with psycopg.connect(fresh_db) as conn:
            assert conn.execute("SELECT payload FROM legacy").fetchall() == [("kept",)]
    finally:
        pgserver.drop_database(pg_server, name)


def test_cli_plan_reads_target_facts_with_tables_it_lacks(
    two_dbs: tuple[str, str], pg_server: RunningServer, tmp_path: Path
) -> None:
    """--plan against a live TARGET reads its table facts; a table the plan creates is not there
    to read, and the plan is still made (its steps as for a new table)."""
    source, target = two_dbs
    _drift(source, target)
    res = subprocess.run(
        [sys.executable, "-m", "helios_migrate", "diff", source, target, "--plan", "--scratch-url", pg_server.url],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 1, res.stderr
    assert "table facts: TARGET's row estimates and sizes" in res.stdout
    assert "CREATE TABLE public.orders" in res.stdout
    assert "not planned: table public.legacy (extra): dropping it loses its rows" in res.stdout


def test_missing_tables_are_created_after_the_tables_they_reference(two_dbs: tuple[str, str]) -> None:
    source, target = two_dbs
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE "b parent" (id int PRIMARY KEY);
            CREATE TABLE c_grand (id int PRIMARY KEY);
            ALTER TABLE "b parent" ADD COLUMN grand_id int REFERENCES c_grand (id);
            CREATE TABLE a_child (id int PRIMARY KEY, parent_id int REFERENCES "b parent" (id));
        """)
    result = run_diff(source, target, SideOptions())
    assert result.target_version_num is not None
    convergence = converge(result, PgVersion.parse(str(result.target_version_num)))
    assert [p.difference.name for p in convergence.planned] == ["public.c_grand", "public.b parent", "public.a_child"]
    assert convergence.plan is not None
    run_steps(target, convergence.plan.steps)
    assert run_diff(source, target, SideOptions()).differences == ()
    with psycopg.connect(target, autocommit=True) as conn:
        for planned in reversed(convergence.planned):
            assert planned.undo is not None
            for q in planned.undo:
                conn.execute(q)
    assert {d.name for d in run_diff(source, target, SideOptions()).differences} == {
        "public.c_grand", "public.b parent", "public.a_child"}
