"""``helios-migrate plan`` end to end: a temporary Alembic project against real PostgreSQL 15 and 18."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

ALEMBIC_INI = """\
[alembic]
script_location = %(here)s/migrations
prepend_sys_path = .
sqlalchemy.url = postgresql+psycopg://nobody@localhost:1/none

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""

ENV_PY = """\
from alembic import context
import sqlalchemy as sa

from models import metadata

engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
"""

MODELS_PY = """\
import sqlalchemy as sa

metadata = sa.MetaData()
orders = sa.Table(
    "orders", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("qty", sa.Integer, nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("flag", sa.Boolean),
    sa.Index("orders_note_idx", "note"),
)
"""

MAKO = '''\
"""${message}"""
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}


def upgrade():
    ${upgrades if upgrades else "pass"}


def downgrade():
    ${downgrades if downgrades else "pass"}
'''


def sa_url(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


@pytest.fixture
def project(fresh_db: str, tmp_path: Path) -> tuple[Path, str]:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, qty int NOT NULL, note text)")
        conn.execute("INSERT INTO orders SELECT g, g % 5, 'n' || g FROM generate_series(1, 5000) g")
        conn.execute("ANALYZE orders")
    root = tmp_path / "proj"
    (root / "migrations" / "versions").mkdir(parents=True)
    (root / "alembic.ini").write_text(ALEMBIC_INI)
    (root / "migrations" / "env.py").write_text(ENV_PY)
    (root / "migrations" / "script.py.mako").write_text(MAKO)
    (root / "models.py").write_text(MODELS_PY)
    return root, fresh_db


def run_plan(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "COLUMNS": "200",
           "HELIOS_MIGRATE_CACHE_DIR": str(cwd / ".cache")}
    return subprocess.run(
        [sys.executable, "-m", "helios_migrate.cli", "plan", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )


def test_plan_json_from_autogenerate_writes_nothing(project: tuple[Path, str]) -> None:
    root, url = project
    result = run_plan(str(root), "--database-url", sa_url(url), "--format", "json", "--write-sample", "0", cwd=root)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["live"] is True and data["version"].split(".")[0] in ("15", "18")
    # The planner's lock-safe plan: the column in its own short transaction, the index built
    # concurrently in autocommit.
    column, index = data["steps"]
    assert (column["lock"], column["work"], column["risk"]) == ("ACCESS EXCLUSIVE", "metadata", "low")
    assert column["transaction"] == "own transaction"
    assert index["work"] == "index build" and index["rows"] == 5000
    assert index["lock"] == "SHARE UPDATE EXCLUSIVE" and index["transaction"] == "autocommit"
    assert any("CONCURRENTLY" in sql and "orders_note_idx" in sql for sql in index["sql"])
    assert index["duration"]["expected_s"] > 0
    assert data["throughput"]["source"] == "calibrated"
    assert list((root / "migrations" / "versions").iterdir()) == []


def test_plan_markdown_and_text(project: tuple[Path, str]) -> None:
    root, url = project
    md = run_plan("--database-url", sa_url(url), "--format", "markdown", "--no-calibrate",
                  "--write-sample", "0", cwd=root)
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith("### Impact on PostgreSQL")
    assert "| SHARE UPDATE EXCLUSIVE | other DDL and VACUUM only | index build | 5,000 |" in md.stdout
    assert "default; calibration not run" in md.stdout
    text = run_plan("--database-url", sa_url(url), "--no-calibrate", "--write-sample", "0", cwd=root)
    assert text.returncode == 0, text.stderr
    assert "orders_note_idx" in text.stdout and "CONCURRENTLY" in text.stdout
    assert "SHARE UPDATE EXCLUSIVE" in text.stdout


def test_plan_sql_file(project: tuple[Path, str]) -> None:
    root, url = project
    sql = root / "change.sql"
    sql.write_text("ALTER TABLE orders ALTER COLUMN qty TYPE bigint;\n"
                   "CREATE INDEX CONCURRENTLY orders_qty_idx ON orders (qty);\n")
    result = run_plan("--sql", str(sql), "--database-url", url, "--format", "json", "--no-calibrate",
                      "--write-sample", "0", cwd=root)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    rewrite, index = data["steps"]
    assert rewrite["work"] == "rewrite" and rewrite["rows"] == 5000 and rewrite["extra_disk_bytes"] > 0
    assert index["transaction"] == "autocommit" and index["lock"] == "SHARE UPDATE EXCLUSIVE"
    offline = run_plan("--sql", str(sql), "--pg-version", "15", "--format", "json", cwd=root)
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout)["live"] is False


def test_plan_usage_errors(tmp_path: Path) -> None:
    result = run_plan(str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "no alembic.ini" in result.stderr
