"""What a person running ``alembic upgrade`` reads, on a real server (PostgreSQL 15 and 18): a
progress line while ``CREATE INDEX CONCURRENTLY`` runs (from ``pg_stat_progress_create_index``)
and, after each revision, its steps with their time and the longest lock each held."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg

ALEMBIC_INI = """\
[alembic]
script_location = %(here)s/migrations

[loggers]
keys = root,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)s %(message)s
"""

ENV_PY = """\
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from helios_migrate import runtime

fileConfig(context.config.config_file_name)
runtime.PROGRESS_EVERY_S = 0.3  # progress lines often enough for a test

engine = create_engine(os.environ["TEST_DATABASE_URL"], poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
"""

REVISION = """\
from alembic import op
from helios_migrate import runtime

revision = "0001"
down_revision = None


def upgrade():
    policy = runtime.Policy(lock_timeout="2s")
    runtime.run_in_own_transaction(op, ["ALTER TABLE t ADD COLUMN w int"], policy=policy)
    runtime.backfill(op, "t", "w", "n * 2", policy=policy)
    runtime.run_in_own_transaction(op, ["ALTER TABLE t ADD CONSTRAINT w_even CHECK (w % 2 = 0) NOT VALID"])
    runtime.run_in_own_transaction(op, ["ALTER TABLE t VALIDATE CONSTRAINT w_even"])
    # An index slow enough to report progress: the expression sleeps a little per row.
    runtime.create_index_concurrently(
        op, "t_slow_idx", "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_slow_idx ON t (slow(n))"
    )


def downgrade():
    runtime.drop_index_concurrently(op, "t_slow_idx")
    runtime.run_in_own_transaction(op, ["ALTER TABLE t DROP COLUMN w"])
"""


def _project(root: Path) -> Path:
    (root / "migrations" / "versions").mkdir(parents=True)
    (root / "alembic.ini").write_text(ALEMBIC_INI)
    (root / "migrations" / "env.py").write_text(ENV_PY)
    (root / "migrations" / "script.py.mako").write_text("")
    (root / "migrations" / "versions" / "0001_add_w.py").write_text(REVISION)
    (root / "pyproject.toml").write_text("[tool.helios-migrate]\nmax_replica_lag = false\n")
    return root


def test_index_progress_and_the_revision_summary(fresh_db: str, tmp_path: Path) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE t (id bigint PRIMARY KEY, n int); "
            "INSERT INTO t SELECT g, g FROM generate_series(1, 30000) g; "
            "CREATE FUNCTION slow(x int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS "
            "$$BEGIN IF x % 1000 = 0 THEN PERFORM pg_sleep(0.05); END IF; RETURN x; END$$"
        )
    project = _project(tmp_path)
    env = {**os.environ, "TEST_DATABASE_URL": fresh_db.replace("postgresql://", "postgresql+psycopg://", 1)}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stderr
    progress = re.findall(r"helios: index t_slow_idx: ([a-z: ]+), (\d+)% \(", out)
    assert progress, out
    assert any("building index" in phase for phase, _ in progress), progress

    summary = out[out.index("helios: upgrade to 0001: 5 steps in"):]
    assert re.search(r"30,000 rows changed by backfills; the longest lock blocking reads or writes held: \d+ ms \(", summary), summary
    assert re.search(r"\d+\.\d\ds +\d+ ms  ALTER TABLE t ADD COLUMN w int", summary), summary
    assert re.search(r"\d+\.\d\ds +\d+ ms  backfill t\.w \(30,000 rows\)", summary), summary
    assert re.search(r"\d+\.\d\ds +\d+ ms  ALTER TABLE t ADD CONSTRAINT w_even", summary), summary
    # VALIDATE scans under SHARE UPDATE EXCLUSIVE: reads and writes go on, so no lock is counted.
    assert re.search(r"\d+\.\d\ds +-  ALTER TABLE t VALIDATE CONSTRAINT w_even", summary), summary
    assert re.search(r"\d+\.\d\ds +-  create index t_slow_idx concurrently", summary), summary
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM t WHERE w = n * 2").fetchone() == (30000,)
