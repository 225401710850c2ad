"""A new user's first hour: plans for the server they deploy to, commands that accept what they
paste, ``init`` that finds the project's env.py.  Real PostgreSQL 15 and 18."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from autogen_harness import BASE_SQL, Project, models_source
from typer.testing import CliRunner

from helios_migrate.cli import app
from helios_migrate.versions import TARGET_ENV, PgVersion, VersionError, target_version

NOT_NULL_VOLATILE = (
    'sa.Column("token", sa.Uuid, nullable=False, server_default=sa.text("gen_random_uuid()"))'
)


def test_target_version_order_and_notes() -> None:
    db = PgVersion(18, 6)
    assert target_version(explicit="14", configured=PgVersion(15), database=db, environ={TARGET_ENV: "16"}).source == "--pg-version"
    assert target_version(configured=PgVersion(15), database=db, environ={TARGET_ENV: "16"}).version.major == 16
    target = target_version(configured=PgVersion(15), database=db, environ={})
    assert (target.version.major, target.database) == (15, db)
    assert target.note is not None and "features newer than 15 are not used" in target.note
    older = target_version(configured=PgVersion(18), database=PgVersion(15, 4), environ={})
    assert older.note is not None and "older than the target" in older.note
    assert target_version(database=db, environ={}).note is None
    with pytest.raises(VersionError, match=TARGET_ENV):
        target_version(environ={TARGET_ENV: "fifteen"})
    with pytest.raises(VersionError, match="not supported"):
        target_version(explicit="9.6", environ={})


def test_autogenerate_plans_for_the_configured_production_version(pg_pool: object, tmp_path: Path) -> None:
    """pg_version = "15" with an 18 development database: the revision uses no 18-only syntax,
    says what it was planned for, and upgrades on a real PostgreSQL 15."""
    pool = pg_pool
    dev = pool.get("pg18-embedded")  # type: ignore[attr-defined]
    prod = pool.get("pg15-debian")  # type: ignore[attr-defined]
    from helios_migrate import pgserver

    dev_url = pgserver.create_database(dev, pool.new_db_name("dev"), "template0")  # type: ignore[attr-defined]
    prod_url = pgserver.create_database(prod, pool.new_db_name("prod"), "template0")  # type: ignore[attr-defined]
    project = Project.create(tmp_path / "proj", dev_url, rows=2000)
    pyproject = project.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'pg_version = "15"\n')
    project.write_models(models_source({"token": NOT_NULL_VOLATILE}))
    res = project.alembic("revision", "--autogenerate", "-m", "token")
    revision = project.revision_files()[-1].read_text()
    assert "lock-safe plan for PostgreSQL 15 (pg_version in pyproject.toml)" in revision
    assert "features newer than 15 are not used" in res.stderr
    assert "IS NOT NULL) NOT VALID" in revision  # the 12-17 path: CHECK, VALIDATE, SET NOT NULL
    assert "NOT NULL token NOT VALID" not in revision  # the 18-only form
    # The production server has the version-1 schema and rows; the revision runs there.
    with psycopg.connect(prod_url, autocommit=True) as conn:
        conn.execute(BASE_SQL.format(rows=2000))
    ini = project.root / "alembic.ini"
    ini.write_text(ini.read_text().replace(dev_url.replace("postgresql://", "postgresql+psycopg://", 1).replace("%", "%%"),
                                           prod_url.replace("postgresql://", "postgresql+psycopg://", 1).replace("%", "%%")))
    project.url = prod_url
    project.alembic("upgrade", "head")
    with psycopg.connect(prod_url) as conn:
        row = conn.execute(
            "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'token'"
        ).fetchone()
        nulls = conn.execute("SELECT count(*) FROM items WHERE token IS NULL").fetchone()
    assert row == (True,) and nulls == (0,)


def test_locks_follows_the_configured_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.helios-migrate]\npg_version = "15"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(TARGET_ENV, raising=False)
    res = CliRunner().invoke(app, ["locks", "ALTER TABLE t ADD CONSTRAINT c NOT NULL x NOT VALID"])
    assert "PostgreSQL 15 (pg_version in pyproject.toml)" in res.output, res.output
    monkeypatch.setenv(TARGET_ENV, "18")
    res = CliRunner().invoke(app, ["locks", "ALTER TABLE t ALTER COLUMN x SET NOT NULL"])
    assert f"PostgreSQL 18 ({TARGET_ENV})" in res.output, res.output


def test_locks_takes_a_long_statement_as_sql_not_as_a_path() -> None:
    sql = "ALTER TABLE orders ADD COLUMN " + ", ADD COLUMN ".join(f"c{i} integer" for i in range(40))
    assert len(sql) > 255
    res = subprocess.run(
        [str(Path(sys.executable).parent / "helios-migrate"), "locks", sql, "--pg-version", "16"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "120"},
    )
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert "ACCESS EXCLUSIVE on orders" in res.stdout


def test_locks_and_check_accept_the_sqlalchemy_url_from_alembic_ini(fresh_db: str, tmp_path: Path) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id bigint PRIMARY KEY, x int)")
    sa_url = fresh_db.replace("postgresql://", "postgresql+psycopg://", 1)
    res = CliRunner().invoke(app, ["locks", "ALTER TABLE t ALTER COLUMN x SET NOT NULL", "--database-url", sa_url])
    assert res.exit_code == 0, res.output
    assert "read from the database" in res.output
    sql = tmp_path / "one.sql"
    sql.write_text("ALTER TABLE t ALTER COLUMN x SET NOT NULL;\n")
    res = CliRunner().invoke(app, ["check", str(sql), "--database-url", sa_url, "--format", "json"])
    assert res.exit_code in (0, 1), res.output
    assert "cannot connect" not in res.output and "not a PostgreSQL URL" not in res.output


ENV_PY = """from alembic import context

def run_migrations_online():
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
        )
"""


def test_init_without_argument_finds_env_py_from_alembic_ini(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "db" / "migrations").mkdir(parents=True)
    env = tmp_path / "db" / "migrations" / "env.py"
    env.write_text(ENV_PY)
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/db/migrations\n")
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["init", "--yes"])
    assert res.exit_code == 0, res.output
    assert "autogenerate_plugins" in env.read_text()
    # relative script_location, the form `alembic init` writes
    env.write_text(ENV_PY)
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = db/migrations\n")
    res = CliRunner().invoke(app, ["init", "--yes"])
    assert res.exit_code == 0, res.output
    assert "autogenerate_plugins" in env.read_text()


def test_init_without_any_project_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["init", "--yes"])
    assert res.exit_code == 1
    assert "env.py not found (looked in alembic.ini's script_location" in res.output
    assert "at ." not in res.output


def test_a_new_table_with_a_foreign_key_waits_at_most_lock_timeout(fresh_db: str, tmp_path: Path) -> None:
    """A created table referencing an existing one is written as Alembic writes it, after
    ``SET LOCAL lock_timeout`` (its foreign key locks the referenced table); it upgrades and
    downgrades, and the acknowledgements sit right above the operations they are about."""
    project = Project.create(tmp_path / "proj", fresh_db, rows=500)
    children = (
        'children = sa.Table("children", metadata, sa.Column("id", sa.BigInteger, primary_key=True), '
        'sa.Column("item_id", sa.BigInteger, sa.ForeignKey("items.id"), index=True))\n'
    )
    project.write_models(models_source(tables=children))
    revision = project.autogenerate()
    upgrade, downgrade = revision.split("def downgrade")
    assert upgrade.index("SET LOCAL lock_timeout") < upgrade.index("op.create_table(")
    assert downgrade.index("SET LOCAL lock_timeout") < downgrade.index("op.drop_table(")
    assert "# helios: ignore[HM304] -- undo: drops children" in downgrade
    project.alembic("upgrade", "head")
    with pytest.raises(psycopg.errors.ForeignKeyViolation), psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("INSERT INTO children (item_id) VALUES (999999)")
    project.alembic("downgrade", "-1")
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT to_regclass('children')").fetchone() == (None,)


REVISION = '''"""add an index

Revision ID: 0001aaaa
Revises:
"""
from alembic import op

revision = "0001aaaa"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SET lock_timeout = '2s'")
    op.add_column("items", __import__("sqlalchemy").Column("flag", __import__("sqlalchemy").Boolean))

    # the statement check reports, well below the first line of the SQL
    op.create_index("items_qty_idx", "items", ["qty"])


def downgrade():
    op.drop_index("items_qty_idx")
    op.drop_column("items", "flag")
'''


def test_explain_names_the_revision_line_check_names(fresh_db: str, tmp_path: Path) -> None:
    """``explain`` and ``check`` put a finding at the same line of the revision file."""
    project = Project.create(tmp_path / "proj", fresh_db, rows=10)
    path = project.root / "versions" / "0001aaaa_add_an_index.py"
    path.write_text(REVISION)
    helios = str(Path(sys.executable).parent / "helios-migrate")
    run = {"cwd": project.root, "capture_output": True, "text": True, "timeout": 120, "env": project.env}
    checked = subprocess.run([helios, "check", str(path), "--format", "json", "--pg-version", "16"], **run)  # type: ignore[call-overload]
    import json

    lines = {f["line"] for f in json.loads(checked.stdout)["findings"] if f["code"] == "HM101"}
    assert lines == {REVISION.splitlines().index('    op.create_index("items_qty_idx", "items", ["qty"])') + 1}
    explained = subprocess.run([helios, "explain", str(path), "--no-llm", "--pg-version", "16"], **run)  # type: ignore[call-overload]
    assert explained.returncode == 0, explained.stderr
    assert f"line {next(iter(lines))}:" in explained.stdout, explained.stdout
