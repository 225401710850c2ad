"""Two autogenerate runs in one process keep their own planning state.

What a run plans with (target version, configuration, policy, live lookups) lives on that run's
migration context, so a second run -- another project, another ``pg_version`` -- cannot change
what the first one's downgrade, impact header or re-planned operations say, even when the first
run's ``process_revision_directives`` and ``reverse()`` happen after the second run planned.
PostgreSQL 15 and 18.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import produce_migrations, render_python_code
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError

import alembic_plugin.planning as planning_module
from alembic_plugin.planning import Planning, planning_of
from helios_migrate.versions import TARGET_ENV, PgVersion

TABLE_SQL = """
CREATE TABLE items (id bigint PRIMARY KEY, code text NOT NULL, note text);
INSERT INTO items SELECT g, 'c' || g, 'n' || g FROM generate_series(1, 2000) g;
ANALYZE items;
"""


def _metadata() -> sa.MetaData:
    """``code`` loses its NOT NULL (kept as written: the downgrade is re-planned), ``note`` gains
    one (a plan that differs between PostgreSQL 13 and 18)."""
    metadata = sa.MetaData()
    sa.Table(
        "items", metadata,
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("code", sa.Text, nullable=True),
        sa.Column("note", sa.Text, nullable=False),
    )
    return metadata


@contextmanager
def _in(directory: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(before)


def _project(root: Path, pg_version: str) -> Path:
    root.mkdir()
    (root / "pyproject.toml").write_text(f'[tool.helios-migrate]\npg_version = "{pg_version}"\n')
    return root


def _autogenerate(conn: sa.Connection, metadata: sa.MetaData) -> tuple[MigrationContext, ops.MigrationScript]:
    context = MigrationContext.configure(
        connection=conn,
        opts={"target_metadata": metadata, "autogenerate_plugins": ["alembic.autogenerate.*", "helios"]},
    )
    return context, produce_migrations(context, metadata)


def _finish(context: MigrationContext, script: ops.MigrationScript) -> None:
    """What Alembic does after the comparators: the ``process_revision_directives`` of the run."""
    hook = context.opts["process_revision_directives"]
    hook(context, None, [script])


def _code(context: MigrationContext, container: ops.UpgradeOps | ops.DowngradeOps) -> str:
    return render_python_code(container, migration_context=context)


def test_two_runs_in_one_process_plan_with_their_own_state(
    fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TARGET_ENV, raising=False)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(TABLE_SQL)
    old, new = _project(tmp_path / "old", "13"), _project(tmp_path / "new", "18")
    engine = sa.create_engine(fresh_db.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn_old, engine.connect() as conn_new:
            with _in(old):
                context_old, script_old = _autogenerate(conn_old, _metadata())
            downgrade_in_run = _code(context_old, script_old.downgrade_ops)
            with _in(new):
                context_new, script_new = _autogenerate(conn_new, _metadata())
                # The first run finishes and reverses while the second one is the latest.
                _finish(context_old, script_old)
                downgrade_after = _code(context_old, script_old.upgrade_ops.reverse())
                _finish(context_new, script_new)
            upgrade_old = _code(context_old, script_old.upgrade_ops)
            upgrade_new = _code(context_new, script_new.upgrade_ops)
            downgrade_new = _code(context_new, script_new.downgrade_ops)
    finally:
        engine.dispose()

    found_old, found_new = planning_of(context_old), planning_of(context_new)
    assert found_old is not None and found_new is not None and found_old is not found_new
    assert (found_old.version.major, found_new.version.major) == (13, 18)
    assert found_old.config.pg_version == PgVersion.parse("13")
    assert not [name for name, value in vars(planning_module).items() if isinstance(value, Planning)]

    # Each revision's plans, its impact header and its re-planned downgrade follow its own target.
    assert "plan for PostgreSQL 13" in upgrade_old and "plan for PostgreSQL 18" not in upgrade_old
    assert "plan for PostgreSQL 18" in upgrade_new and "plan for PostgreSQL 13" not in upgrade_new
    assert "helios impact estimate" in upgrade_old and "helios impact estimate" in upgrade_new
    assert "IS NOT NULL) NOT VALID" in upgrade_old  # 13: a CHECK first, then SET NOT NULL
    assert "NOT NULL note NOT VALID" in upgrade_new  # 18: a NOT NULL constraint NOT VALID
    for downgrade in (downgrade_in_run, downgrade_after):
        assert "plan for PostgreSQL 13" in downgrade and "plan for PostgreSQL 18" not in downgrade
        assert "IS NOT NULL) NOT VALID" in downgrade
    assert "plan for PostgreSQL 18" in downgrade_new and "plan for PostgreSQL 13" not in downgrade_new


def test_a_misspelt_setting_stops_the_run_naming_it(
    fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a plan made with the defaults (which could target the wrong server): Alembic prints the
    message as ``FAILED: ...``, without a traceback."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(TABLE_SQL)
    project = tmp_path / "typo"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[tool.helios-migrate]\npg_version = "13"\n[tool.helios-migrate.autogenerate]\nsplit_contrat = true\n'
    )
    engine = sa.create_engine(fresh_db.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn, _in(project), pytest.raises(CommandError) as failed:
            _autogenerate(conn, _metadata())
    finally:
        engine.dispose()
    assert "autogenerate.split_contrat" in str(failed.value)
    assert str(project / "pyproject.toml") in str(failed.value)
