"""``diff --plan/--write``: a function whose result type changed is dropped and created in one
transaction; a changed trigger on PostgreSQL 13 (no CREATE OR REPLACE TRIGGER) is dropped and created
in one transaction.  Planned, run on TARGET (PostgreSQL 15 and 18; the 13 plan's SQL runs there
too), undone; written as a revision that upgrades and downgrades."""

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
CREATE TABLE notes (id int PRIMARY KEY, body text, touched int NOT NULL DEFAULT 0);
CREATE FUNCTION note_count() RETURNS integer LANGUAGE sql AS $$ SELECT count(*)::integer FROM notes $$;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.touched := NEW.touched + 1; RETURN NEW; END$$;
CREATE TRIGGER notes_touch BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION touch();
"""

SOURCE_SQL = """
DROP FUNCTION note_count();
CREATE FUNCTION note_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM notes $$;
DROP TRIGGER notes_touch ON notes;
CREATE TRIGGER notes_touch BEFORE INSERT OR UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION touch();
"""

EXPECTED = {
    ("different", "function", "public.note_count()"),
    ("different", "trigger", "public.notes.notes_touch"),
}


@pytest.fixture
def two_dbs(pg_server: RunningServer, pg_pool) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with two_databases(pg_server, pg_pool, "conf", BASE_SQL) as dbs:
        run_sql(dbs[0], SOURCE_SQL)
        yield dbs


def test_plan_for_postgresql_13_converges_and_undoes(two_dbs: tuple[str, str]) -> None:
    source, target = two_dbs
    result = run_diff(source, target, SideOptions())
    assert found(result) == EXPECTED
    convergence = converge(result, PgVersion(13))
    assert convergence.unplanned == (), convergence.unplanned
    assert convergence.plan is not None
    text = render_plan(convergence)
    assert "CREATE OR REPLACE TRIGGER" not in text
    trigger = next(s for s in convergence.plan.steps if any("DROP TRIGGER" in q for q in s.sql))
    assert trigger.transaction is TransactionMode.OWN and trigger.retry is not None
    assert trigger.sql[0] == "DROP TRIGGER notes_touch ON public.notes"
    assert trigger.sql[1].startswith("CREATE TRIGGER notes_touch BEFORE INSERT OR UPDATE ON public.notes")
    function = [s for s in convergence.plan.steps if any("note_count" in q for q in s.sql)]
    sql = [q for s in function for q in s.sql]
    assert sql[0] == "DROP FUNCTION public.note_count()" and "RETURNS bigint" in sql[1]
    assert len({s.transaction for s in function}) == 1 and function[0].transaction in (
        TransactionMode.MIGRATION, TransactionMode.OWN)
    run_steps(target, convergence.plan.steps)
    assert run_diff(source, target, SideOptions()).differences == ()
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("INSERT INTO notes (id) VALUES (1)")
        conn.execute("UPDATE notes SET body = 'x'")
        assert conn.execute("SELECT touched, note_count() FROM notes").fetchone() == (2, 1)
        conn.execute("DELETE FROM notes")
        for planned in reversed(convergence.planned):
            assert planned.undo is not None, planned.undo_refused
            with conn.transaction():
                for q in planned.undo:
                    conn.execute(q)
    assert found(run_diff(source, target, SideOptions())) == EXPECTED


def test_a_function_something_depends_on_stops_and_changes_nothing(two_dbs: tuple[str, str]) -> None:
    source, target = two_dbs
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE VIEW counted AS SELECT note_count() AS n")
    result = run_diff(source, target, SideOptions(), ignore=("public.counted", "trigger:*"))
    assert found(result) == {("different", "function", "public.note_count()")}
    assert result.target_version_num is not None
    convergence = converge(result, PgVersion.parse(str(result.target_version_num)))
    assert convergence.plan is not None
    with pytest.raises(psycopg.errors.DependentObjectsStillExist):
        run_steps(target, convergence.plan.steps)
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT format_type(prorettype, NULL) FROM pg_proc WHERE proname = 'note_count'"
                            ).fetchone() == ("integer",)


BASELINE = '''"""baseline

Revision ID: conf0001
Revises:
"""
from alembic import op

revision = "conf0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute("""{ddl}""")


def downgrade():
    op.execute("DROP TABLE notes; DROP FUNCTION note_count(); DROP FUNCTION touch()")
'''


def test_write_round_trip(
    fresh_db: str, pg_server: RunningServer, pg_pool, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    project = Project.create(tmp_path / "proj", fresh_db, rows=0)
    (project.root / "versions" / "conf0001_baseline.py").write_text(BASELINE.format(ddl=BASE_SQL))
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS items, parents CASCADE")
    project.alembic("upgrade", "head")
    name = pg_pool.new_db_name("src")
    source = pgserver.create_database(pg_server, name, "template0")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "helios_migrate", "diff", source, fresh_db, *args, "--scratch-url", pg_server.url],
            cwd=project.root, env=project.env, capture_output=True, text=True, timeout=300,
        )

    def found(completed: subprocess.CompletedProcess[str]) -> set[tuple[str, str, str]]:
        return {(d["status"], d["kind"], d["name"]) for d in json.loads(completed.stdout)["differences"]}

    try:
        with psycopg.connect(source, autocommit=True) as conn:
            conn.execute(BASE_SQL)
            conn.execute(SOURCE_SQL)
        assert found(cli("--format", "json")) == EXPECTED
        wrote = cli("--write", "-m", "converge")
        assert wrote.returncode == 1 and "not written" not in wrote.stderr, wrote.stderr
        project.alembic("upgrade", "head")
        assert found(cli("--format", "json")) == set()
        project.alembic("downgrade", "-1")
        assert found(cli("--format", "json")) == EXPECTED
    finally:
        pgserver.drop_database(pg_server, name)
