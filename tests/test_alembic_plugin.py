"""The plugin enabled with one env.py line, driven through the real ``alembic`` command."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

ENV_PY = '''
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine
import models

config = context.config
fileConfig(config.config_file_name)
url = config.get_main_option("sqlalchemy.url")

def run_migrations_online():
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=models.metadata,
            autogenerate_plugins=["alembic.autogenerate.*", "helios"],
        )
        with context.begin_transaction():
            context.run_migrations()

run_migrations_online()
'''

MODELS = '''
import sqlalchemy as sa
metadata = sa.MetaData()
customers = sa.Table("customers", metadata, sa.Column("id", sa.BigInteger, primary_key=True))
orders = sa.Table(
    "orders", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("total", sa.Numeric(10, 2), nullable=False),
    sa.Column("score", sa.Float, server_default=sa.text("random()")),
    sa.Index("orders_total_idx", "total"),
)
audit = sa.Table(
    "audit", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Index("audit_at_idx", "at"),
)
'''


def _sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def project(tmp_path: Path, fresh_db: str) -> Path:
    import alembic

    template = Path(alembic.__file__).parent / "templates" / "generic" / "script.py.mako"
    (tmp_path / "versions").mkdir()
    (tmp_path / "script.py.mako").write_text(template.read_text())
    (tmp_path / "env.py").write_text(ENV_PY)
    (tmp_path / "models.py").write_text(MODELS)
    ini = f"""
        [alembic]
        script_location = {tmp_path}
        prepend_sys_path = {tmp_path}
        sqlalchemy.url = {_sqlalchemy_url(fresh_db).replace('%', '%%')}

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
        format = %(levelname)-5.5s [%(name)s] %(message)s
    """
    (tmp_path / "alembic.ini").write_text(textwrap.dedent(ini))
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id bigint PRIMARY KEY)")
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10,2) NOT NULL)")
        conn.execute("INSERT INTO orders SELECT g, g FROM generate_series(1, 1000) g")
    return tmp_path


def test_autogenerate_reports_locks_of_generated_operations(project: Path) -> None:
    """With planning off, each operation that would block is reported; with planning on (the
    default), what the plugin rewrites is logged as planned lock-safe, not as a lock warning."""
    res = subprocess.run(
        [sys.executable, "-m", "alembic", "revision", "--autogenerate", "-m", "change"],
        cwd=project, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(project)},
    )
    assert res.returncode == 0, res.stderr
    log = res.stderr + res.stdout
    assert "planned lock-safe: add column on orders" in log, log
    assert "during rewrites" not in log and "during index build" not in log
    for revision in (project / "versions").glob("*.py"):
        revision.unlink()
    res = subprocess.run(
        [sys.executable, "-m", "alembic", "revision", "--autogenerate", "-m", "change"],
        cwd=project, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(project), "HELIOS_PLAN": "0"},
    )
    assert res.returncode == 0, res.stderr
    log = res.stderr + res.stdout
    assert "helios: add_column on orders: ACCESS EXCLUSIVE (blocks reads and writes) during rewrites" in log
    assert "safer: add the column without a default" in log
    assert "helios: create_index on orders: SHARE (blocks writes) during index build" in log
    # The new table and its index are invisible until commit: nothing to report for them.
    assert "on audit" not in log
    assert len(list((project / "versions").glob("*.py"))) == 1
