"""Functions, triggers, extensions, comments, row-level security, policies, grants and owners in
``helios-migrate diff`` on real servers (PostgreSQL 15 and 18): reported object by object, left
out where a side cannot describe them, planned (every step run on TARGET, then the diff is empty,
then every undo run, then the diff is what it was), and written as a revision that upgrades and
downgrades."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from helios_migrate import pgserver
from helios_migrate.diff.catalog import SchemaObject, SchemaObjects
from helios_migrate.diff.command import run_diff
from helios_migrate.diff.compare import compare
from helios_migrate.diff.converge import converge, render_plan
from helios_migrate.diff.report import render
from helios_migrate.diff.sides import SideOptions
from helios_migrate.pgserver import RunningServer
from helios_migrate.plan import TransactionMode
from helios_migrate.versions import PgVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "autogen"))
from autogen_harness import Project
from diff_harness import found, run_sql, run_steps, two_databases

ROLE = "helios_diff_reader"

BASE_SQL = f"""
DO $$BEGIN CREATE ROLE {ROLE}; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END$$;
CREATE TABLE accounts (id int PRIMARY KEY, owner_name text NOT NULL, balance numeric NOT NULL DEFAULT 0,
                       note text);
CREATE FUNCTION touch_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.note := 'touched'; RETURN NEW; END$$;
CREATE TRIGGER accounts_touch BEFORE UPDATE OF balance ON accounts FOR EACH ROW
    WHEN (OLD.balance IS DISTINCT FROM NEW.balance) EXECUTE FUNCTION touch_note();
COMMENT ON TABLE accounts IS 'one row per account';
CREATE EXTENSION citext;
"""

# SOURCE: what TARGET should become
SOURCE_SQL = f"""
CREATE OR REPLACE FUNCTION touch_note() RETURNS trigger LANGUAGE plpgsql STABLE SECURITY DEFINER AS $$
BEGIN NEW.note := 'changed'; RETURN NEW; END$$;
CREATE FUNCTION balance_of(p_id integer) RETURNS numeric LANGUAGE sql STABLE
    AS $$ SELECT balance FROM accounts WHERE id = p_id $$;
ALTER TABLE accounts DISABLE TRIGGER accounts_touch;
CREATE TRIGGER accounts_audit AFTER INSERT ON accounts FOR EACH STATEMENT EXECUTE FUNCTION touch_note();
COMMENT ON COLUMN accounts.balance IS 'in cents';
COMMENT ON TABLE accounts IS 'one row per customer account';
COMMENT ON FUNCTION balance_of(integer) IS 'the balance';
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON accounts FOR SELECT TO {ROLE} USING (owner_name = current_user);
GRANT SELECT, UPDATE ON accounts TO {ROLE};
CREATE EXTENSION pg_trgm;
"""

# TARGET's own drift: what SOURCE does not have
TARGET_SQL = f"""
CREATE FUNCTION legacy_total() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM accounts $$;
GRANT INSERT ON accounts TO {ROLE};
COMMENT ON COLUMN accounts.note IS 'free text';
DROP EXTENSION citext;
"""

EXPECTED = {
    ("missing", "extension", "pg_trgm"),
    ("missing", "extension", "citext"),
    ("missing", "function", "public.balance_of(p_id integer)"),
    ("different", "function", "public.touch_note()"),
    ("extra", "function", "public.legacy_total()"),
    ("different", "trigger", "public.accounts.accounts_touch"),
    ("missing", "trigger", "public.accounts.accounts_audit"),
    ("missing", "rls", "public.accounts"),
    ("missing", "policy", "public.accounts.own_rows"),
    ("missing", "comment", "column public.accounts.balance"),
    ("different", "comment", "table public.accounts"),
    ("missing", "comment", "function public.balance_of(p_id integer)"),
    ("extra", "comment", "column public.accounts.note"),
    ("different", "grant", f"table public.accounts to {ROLE}"),
}


@pytest.fixture
def two_dbs(pg_server: RunningServer, pg_pool) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with two_databases(pg_server, pg_pool, "kinds", BASE_SQL) as dbs:
        yield dbs


def _drift(source: str, target: str) -> None:
    run_sql(source, SOURCE_SQL)
    run_sql(target, TARGET_SQL)


def test_each_kind_is_reported_and_extension_members_are_not(two_dbs: tuple[str, str]) -> None:
    source, target = two_dbs
    assert run_diff(source, target, SideOptions()).differences == ()
    _drift(source, target)
    result = run_diff(source, target, SideOptions())
    assert found(result) == EXPECTED, found(result) ^ EXPECTED
    by_name = {d.name: d for d in result.differences}
    touch = {c.attribute: (c.source, c.target) for c in by_name["public.touch_note()"].changes}
    assert touch["volatility"] == ("stable", "volatile")
    assert touch["security_definer"] == (True, False)
    assert "changed" in touch["body"][0] and "touched" in touch["body"][1]
    trigger = by_name["public.accounts.accounts_touch"]
    assert [(c.attribute, c.source, c.target) for c in trigger.changes] == [("enabled", "disabled", "enabled")]
    grant = by_name[f"table public.accounts to {ROLE}"]
    assert [(c.source, c.target) for c in grant.changes] == [(("SELECT", "UPDATE"), ("INSERT",))]
    # pg_trgm's and citext's own functions, types and operators belong to their extension
    assert not any(d.kind == "function" and "similarity" in d.name for d in result.differences)
    text = render(result, "text")
    assert "- policy public.accounts.own_rows (missing in TARGET): SELECT to helios_diff_reader" in text
    assert "not compared" not in text


def test_ignore_patterns_name_the_new_kinds(two_dbs: tuple[str, str]) -> None:
    source, target = two_dbs
    _drift(source, target)
    result = run_diff(source, target, SideOptions(), ("function:*", "comment:*", "grant:*", "extension:pg_*"))
    assert {k for _, k, _ in found(result)} == {"extension", "trigger", "rls", "policy"}
    assert ("missing", "extension", "citext") in found(result)
    assert result.ignored == len(EXPECTED) - len(result.differences)


def test_plan_converges_and_its_undo_restores_target(two_dbs: tuple[str, str]) -> None:
    """Every planned step run on TARGET: no difference left; every undo run: the same diff again."""
    source, target = two_dbs
    _drift(source, target)
    result = run_diff(source, target, SideOptions())
    assert result.target_version_num is not None
    convergence = converge(result, PgVersion.parse(str(result.target_version_num)))
    assert convergence.unplanned == ()
    assert convergence.plan is not None
    text = render_plan(convergence)
    # a trigger takes SHARE ROW EXCLUSIVE, a policy ACCESS EXCLUSIVE: short transactions with retries
    steps = convergence.plan.steps
    create_trigger = next(s for s in steps if any("CREATE TRIGGER accounts_audit" in q for q in s.sql))
    assert create_trigger.transaction is TransactionMode.OWN and create_trigger.retry is not None
    assert "SHARE ROW EXCLUSIVE" in create_trigger.reason
    policy = next(s for s in steps if any("CREATE POLICY" in q for q in s.sql))
    assert policy.transaction is TransactionMode.OWN and "ACCESS EXCLUSIVE" in policy.reason
    assert "CREATE OR REPLACE FUNCTION public.touch_note()" in text
    assert "WHEN ((old.balance IS DISTINCT FROM new.balance))" not in text  # unchanged trigger kept
    assert "ALTER TABLE public.accounts DISABLE TRIGGER accounts_touch;" in text
    assert f"REVOKE INSERT ON TABLE public.accounts FROM {ROLE};" in text
    assert f"GRANT SELECT, UPDATE ON TABLE public.accounts TO {ROLE};" in text
    assert "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public VERSION" in text
    assert "DROP FUNCTION IF EXISTS public.legacy_total();" in text
    assert "COMMENT ON COLUMN public.accounts.note IS NULL;" in text

    run_steps(target, steps)
    after = run_diff(source, target, SideOptions())
    assert after.differences == (), found(after)

    # undo, difference by difference in reverse order: TARGET is back where it was
    with psycopg.connect(target, autocommit=True) as conn:
        for planned in reversed(convergence.planned):
            assert planned.undo is not None, planned.undo_refused
            with conn.transaction():
                for sql in planned.undo:
                    conn.execute(sql)
    again = run_diff(source, target, SideOptions())
    assert found(again) == EXPECTED


def test_a_changed_trigger_definition_and_policy(two_dbs: tuple[str, str]) -> None:
    source, target = two_dbs
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute(f"""
            DROP TRIGGER accounts_touch ON accounts;
            CREATE TRIGGER accounts_touch BEFORE UPDATE OF balance, note ON accounts FOR EACH ROW
                EXECUTE FUNCTION touch_note();
            ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
            ALTER TABLE accounts FORCE ROW LEVEL SECURITY;
            CREATE POLICY p ON accounts AS RESTRICTIVE FOR UPDATE TO {ROLE} USING (balance > 0)
                WITH CHECK (balance > 0);
        """)
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("""
            ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
            CREATE POLICY p ON accounts FOR UPDATE TO PUBLIC USING (true);
        """)
    result = run_diff(source, target, SideOptions())
    assert found(result) == {
        ("different", "trigger", "public.accounts.accounts_touch"),
        ("different", "rls", "public.accounts"),
        ("different", "policy", "public.accounts.p"),
    }
    convergence = converge(result, PgVersion.parse(str(result.target_version_num)))
    assert convergence.plan is not None
    text = render_plan(convergence)
    assert "CREATE OR REPLACE TRIGGER accounts_touch BEFORE UPDATE OF balance, note" in text
    assert "ALTER TABLE public.accounts FORCE ROW LEVEL SECURITY;" in text
    # AS RESTRICTIVE cannot be altered: dropped and created in one step (one transaction)
    swap = next(s for s in convergence.plan.steps if any("DROP POLICY" in q for q in s.sql))
    assert len(swap.sql) == 2 and "CREATE POLICY p ON public.accounts AS RESTRICTIVE" in swap.sql[1]
    assert swap.transaction is TransactionMode.OWN
    run_steps(target, convergence.plan.steps)
    assert run_diff(source, target, SideOptions()).differences == ()


def test_kinds_a_side_cannot_describe_are_not_compared() -> None:
    """The models declare no grants or owners: those kinds are left out, and the report says so."""
    def side(label: str, owner: str, describes_grants: bool) -> SchemaObjects:
        objects = {
            "owner:table public.t": SchemaObject("owner", "table public.t", (("owner", owner),), "public.t",
                                                 ("public", "t"), on="table"),
            "grant:table public.t to r": SchemaObject(
                "grant", "table public.t to r", (("grantee", "r"), ("privileges", ("SELECT",))), "public.t",
                ("public", "t"), on="table"),
        }
        if not describes_grants:
            objects = {}
        not_described = () if describes_grants else (
            ("grant", "the models declare no privileges"), ("owner", "the models declare no owners"))
        return SchemaObjects(label, objects, 180000, not_described)

    between_databases = compare(side("a", "app", True), side("b", "admin", True))
    assert [(d.kind, d.status.value) for d in between_databases.differences] == [("owner", "different")]
    assert between_databases.not_compared == ()
    with_models = compare(side("models", "-", False), side("b", "admin", True))
    assert with_models.differences == ()
    assert with_models.not_compared == (
        ("grant", "the models declare no privileges"), ("owner", "the models declare no owners"),
    )
    text = render(with_models, "text")
    assert "not compared: grant (the models declare no privileges)" in text
    assert json.loads(render(with_models, "json"))["not_compared"][1] == {
        "kind": "owner", "reason": "the models declare no owners",
    }
    assert "- not compared: owner" in render(with_models, "markdown")


def test_owners_between_two_databases(two_dbs: tuple[str, str]) -> None:
    source, target = two_dbs
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE accounts OWNER TO {ROLE}; ALTER FUNCTION touch_note() OWNER TO {ROLE}")
    result = run_diff(source, target, SideOptions())
    assert found(result) == {
        ("different", "owner", "table public.accounts"),
        ("different", "owner", "function public.touch_note()"),
    }
    convergence = converge(result, PgVersion.parse(str(result.target_version_num)))
    text = render_plan(convergence)
    assert f"ALTER TABLE public.accounts OWNER TO {ROLE};" in text
    assert f"ALTER FUNCTION public.touch_note() OWNER TO {ROLE};" in text
    assert convergence.plan is not None
    run_steps(target, convergence.plan.steps)
    assert run_diff(source, target, SideOptions()).differences == ()


BASELINE = '''"""baseline

Revision ID: kinds0001
Revises:
"""
from alembic import op

revision = "kinds0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute("""{ddl}""")


def downgrade():
    op.execute("DROP TABLE accounts; DROP FUNCTION touch_note(); DROP EXTENSION citext")
'''


def _cli(project: Project, server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helios_migrate", "diff", *args, "--scratch-url", server.url],
        cwd=project.root, env=project.env, capture_output=True, text=True, timeout=300,
    )


def test_write_round_trip(fresh_db: str, pg_server: RunningServer, tmp_path: Path) -> None:
    """diff head URL --write: the revision converges the database (diff is empty after the upgrade),
    and its downgrade brings the drift back."""
    project = Project.create(tmp_path / "proj", fresh_db, rows=0)
    ddl = BASE_SQL.split("\n", 2)[2]  # the role is made below, once per server
    (project.root / "versions" / "kinds0001_baseline.py").write_text(BASELINE.format(ddl=ddl.replace('"', '\\"')))
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(BASE_SQL.split("\n", 2)[1])
        conn.execute("DROP TABLE IF EXISTS items, parents CASCADE")
    project.alembic("upgrade", "head")
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("INSERT INTO accounts VALUES (1, 'ann', 10)")
        conn.execute(TARGET_SQL.replace("DROP EXTENSION citext;", ""))
        conn.execute(f"""
            CREATE OR REPLACE FUNCTION touch_note() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN NEW.note := 'hotfix'; RETURN NEW; END$$;
            ALTER TABLE accounts DISABLE TRIGGER accounts_touch;
            ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
            CREATE POLICY hotfix ON accounts FOR SELECT TO {ROLE} USING (true);
            COMMENT ON TABLE accounts IS 'changed by hand';
        """)
    drift = _cli(project, pg_server, "head", fresh_db, "--format", "json")
    assert drift.returncode == 1, drift.stderr
    before = {(d["status"], d["kind"], d["name"]) for d in json.loads(drift.stdout)["differences"]}
    assert ("extra", "policy", "public.accounts.hotfix") in before
    assert ("extra", "function", "public.legacy_total()") in before
    assert json.loads(drift.stdout)["not_compared"][0]["kind"] == "owner"

    wrote = _cli(project, pg_server, "head", fresh_db, "--write", "-m", "converge hand-made changes")
    assert wrote.returncode == 1, wrote.stderr
    assert "not written" not in wrote.stderr, wrote.stderr
    assert f"{len(before)} difference(s)" in wrote.stderr, wrote.stderr
    revision = project.revision_files()[-1].read_text()
    assert "def downgrade" in revision and "CREATE OR REPLACE FUNCTION" in revision
    # DROP POLICY (up) and CREATE POLICY (down) lock the table ACCESS EXCLUSIVE: own transactions
    assert re.search(r"run_in_own_transaction\(\s*op,\s*\['DROP POLICY IF EXISTS hotfix ON public.accounts'\]",
                     revision), revision
    assert re.search(r"run_in_own_transaction\(\s*op,\s*\[\s*'CREATE POLICY hotfix ON public.accounts", revision)
    project.alembic("upgrade", "head")
    after = _cli(project, pg_server, "head", fresh_db, "--format", "json")
    assert json.loads(after.stdout)["differences"] == [], after.stdout

    project.alembic("downgrade", "-1")
    back = _cli(project, pg_server, "head", fresh_db, "--format", "json")
    assert {(d["status"], d["kind"], d["name"]) for d in json.loads(back.stdout)["differences"]} == before
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (1,)


def test_plan_reads_target_table_facts(two_dbs: tuple[str, str], tmp_path: Path) -> None:
    """With TARGET a live database, --plan reads its row estimates: a missing index on a table
    below small_table_rows is built as written, on a larger one concurrently."""
    source, target = two_dbs
    for url in (source, target):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE big (id int PRIMARY KEY, v int)")
            conn.execute("INSERT INTO accounts SELECT g, 'x', g FROM generate_series(1, 20) g")
            conn.execute("INSERT INTO big SELECT g, g FROM generate_series(1, 5000) g")
            conn.execute("ANALYZE accounts; ANALYZE big")
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("CREATE INDEX accounts_balance_idx ON accounts (balance); CREATE INDEX big_v_idx ON big (v)")
    (tmp_path / "pyproject.toml").write_text("[tool.helios-migrate.autogenerate]\nsmall_table_rows = 1000\n")
    out = subprocess.run(
        [sys.executable, "-m", "helios_migrate", "diff", source, target, "--plan"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 1, out.stderr
    assert "-- table facts: TARGET's row estimates and sizes" in out.stdout
    assert "[expand, migration transaction]: create index public.accounts_balance_idx\nCREATE INDEX IF NOT EXISTS accounts_balance_idx ON public.accounts (balance);" in out.stdout, out.stdout
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS big_v_idx ON public.big" in out.stdout, out.stdout
    # without TARGET's facts every table is assumed to hold rows
    offline = render_plan(converge(run_diff(source, target, SideOptions()), PgVersion(18)))
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_balance_idx" in offline
    assert "none read (every table is assumed to hold rows)" in offline


def test_an_env_py_that_reads_its_own_url_is_stopped(fresh_db: str, pg_server: RunningServer, tmp_path: Path) -> None:
    """The shop example's env.py prefers SHOP_DATABASE_URL: building 'head' would upgrade that
    database instead of the scratch one.  diff stops before anything runs there."""
    import shutil

    shop = tmp_path / "shop"
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "shop", shop)
    env = {**os.environ, "SHOP_DATABASE_URL": fresh_db, "PYTHONPATH": str(shop)}
    out = subprocess.run(
        [sys.executable, "-m", "helios_migrate", "diff", "head", fresh_db, "--scratch-url", pg_server.url],
        cwd=shop, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert "env.py connects to" in out.stderr and "nothing was run" in out.stderr
    assert "Traceback" not in out.stderr
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
    env.pop("SHOP_DATABASE_URL")
    ok = subprocess.run(
        [sys.executable, "-m", "helios_migrate", "diff", "head", fresh_db, "--scratch-url", pg_server.url,
         "--exit-zero"], cwd=shop, env=env, capture_output=True, text=True, timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    assert "- table public.orders (missing in TARGET)" in ok.stdout


def test_a_sql_standard_function_body_is_compared(two_dbs: tuple[str, str]) -> None:
    source, target = two_dbs
    for url, factor in ((source, 2), (target, 3)):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE FUNCTION twice(x integer) RETURNS integer LANGUAGE sql IMMUTABLE "
                         f"BEGIN ATOMIC SELECT x * {factor}; END")
    result = run_diff(source, target, SideOptions())
    (d,) = result.differences
    assert (d.kind, d.name, [c.attribute for c in d.changes]) == ("function", "public.twice(x integer)", ["body"])
    convergence = converge(result, PgVersion.parse(str(result.target_version_num)))
    assert convergence.plan is not None
    run_steps(target, convergence.plan.steps)
    assert run_diff(source, target, SideOptions()).differences == ()


ENUM_BASELINE = '''"""baseline

Revision ID: enum0001
Revises:
"""
from alembic import op

revision = "enum0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE TYPE mood AS ENUM ('happy', 'sad'); CREATE TABLE notes (id int PRIMARY KEY, m mood)")


def downgrade():
    op.execute("DROP TABLE notes; DROP TYPE mood")
'''


def test_write_says_what_its_downgrade_cannot_undo(
    fresh_db: str, pg_server: RunningServer, pg_pool, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    """SOURCE (another database) has an enum label TARGET lacks: the revision adds it (outside the
    transaction); its downgrade cannot remove it and stops saying so, changing nothing."""
    project = Project.create(tmp_path / "proj", fresh_db, rows=0)
    (project.root / "versions" / "enum0001_baseline.py").write_text(ENUM_BASELINE)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS items, parents CASCADE")
    project.alembic("upgrade", "head")
    name = pg_pool.new_db_name("src")
    source = pgserver.create_database(pg_server, name, "template0")
    try:
        with psycopg.connect(source, autocommit=True) as conn:
            conn.execute("CREATE TYPE mood AS ENUM ('happy', 'angry', 'sad'); CREATE TABLE notes (id int PRIMARY KEY, m mood)")
        wrote = _cli(project, pg_server, source, fresh_db, "--write", "-m", "add angry")
        assert wrote.returncode == 1 and "1 difference(s)" in wrote.stderr, wrote.stderr
        revision = project.revision_files()[-1].read_text()
        assert "ADD VALUE IF NOT EXISTS 'angry' AFTER 'happy'" in revision
        project.alembic("upgrade", "head")
        assert _cli(project, pg_server, source, fresh_db).returncode == 0
        refused = project.alembic("downgrade", "-1", check=False)
        assert refused.returncode != 0
        assert "PostgreSQL cannot remove a value from an enum type" in refused.stdout + refused.stderr
        with psycopg.connect(fresh_db) as conn:
            assert conn.execute("SELECT count(*) FROM pg_enum WHERE enumtypid = 'mood'::regtype").fetchone() == (3,)
    finally:
        pgserver.drop_database(pg_server, name)


def test_write_round_trip_between_two_databases(
    fresh_db: str, pg_server: RunningServer, pg_pool, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    """diff SOURCE_URL TARGET_URL --write with every kind (extensions, a missing function and
    trigger, owners, grants, RLS, policies, comments): upgraded, the databases agree; downgraded,
    the same differences are back."""
    project = Project.create(tmp_path / "proj", fresh_db, rows=0)
    ddl = BASE_SQL.split("\n", 2)[2]
    (project.root / "versions" / "kinds0001_baseline.py").write_text(BASELINE.format(ddl=ddl))
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(BASE_SQL.split("\n", 2)[1])
        conn.execute("DROP TABLE IF EXISTS items, parents CASCADE")
    project.alembic("upgrade", "head")
    name = pg_pool.new_db_name("src")
    source = pgserver.create_database(pg_server, name, "template0")
    try:
        with psycopg.connect(source, autocommit=True) as conn:
            conn.execute(BASE_SQL)
            conn.execute(SOURCE_SQL)
            conn.execute(f"ALTER FUNCTION touch_note() OWNER TO {ROLE}")
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            conn.execute(TARGET_SQL)
        drift = _cli(project, pg_server, source, fresh_db, "--format", "json")
        before = {(d["status"], d["kind"], d["name"]) for d in json.loads(drift.stdout)["differences"]}
        assert before == EXPECTED | {("different", "owner", "function public.touch_note()")}
        wrote = _cli(project, pg_server, source, fresh_db, "--write", "-m", "converge with staging")
        assert wrote.returncode == 1 and "not written" not in wrote.stderr, wrote.stderr
        project.alembic("upgrade", "head")
        after = _cli(project, pg_server, source, fresh_db, "--format", "json")
        assert json.loads(after.stdout)["differences"] == [], after.stdout
        project.alembic("downgrade", "-1")
        back = _cli(project, pg_server, source, fresh_db, "--format", "json")
        assert {(d["status"], d["kind"], d["name"]) for d in json.loads(back.stdout)["differences"]} == before
    finally:
        pgserver.drop_database(pg_server, name)
