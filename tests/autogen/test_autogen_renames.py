"""Renames through ``alembic revision --autogenerate`` never lose data: a ``renamed_from`` hint (or
``[tool.helios-migrate.autogenerate] renames``) gives an expand/contract rename that keeps every
value through upgrade and downgrade under a concurrent writer; a drop + add that only looks like a
rename is reported and its drop refuses to run until confirmed.  PG 15 and 18."""

from __future__ import annotations

import re
import time
from pathlib import Path

import psycopg
import pytest
from autogen_harness import Project, Writer, code, models_source

LOCK_TIMEOUT_S = 1.0
MARGIN_S = 1.0
RENAMED = {
    "legacy": None,
    "legacy_note": 'sa.Column("legacy_note", sa.Text, info={"helios": {"renamed_from": "legacy"}})',
}


@pytest.fixture
def project(tmp_path: Path, fresh_db: str) -> Project:
    p = Project.create(tmp_path / "proj", fresh_db)
    with psycopg.connect(p.url, autocommit=True) as conn:
        conn.execute("UPDATE items SET legacy = 'v' || id")
    return p


def _under_writer(project: Project, *args: str) -> Writer:
    writer = Writer(project.url)
    writer.start()
    time.sleep(0.3)
    try:
        project.alembic(*args)
    finally:
        time.sleep(0.3)
        writer.stop()
    assert not writer.errors, writer.errors[:5]
    assert writer.statements > 20
    assert writer.longest < LOCK_TIMEOUT_S + MARGIN_S, writer.longest
    return writer


def _columns(project: Project) -> set[str]:
    with psycopg.connect(project.url) as conn:
        rows = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0 AND NOT attisdropped"
        ).fetchall()
    return {r[0] for r in rows}


def test_hinted_column_rename_keeps_every_value(project: Project) -> None:
    """The default (``split_contract = false``) is safe: the old column is dropped by a second
    revision, never in the upgrade that tells you to deploy the new code first."""
    project.write_models(models_source(RENAMED))
    project.alembic("revision", "--autogenerate", "-m", "rename legacy")
    expand, contract = project.revisions_in_order()
    expand_up = expand.split("def downgrade")[0]
    contract_up = contract.split("def downgrade")[0]
    assert "rename column items.legacy to legacy_note (expand-contract)" in expand
    assert "runtime.sync_column_trigger(op, 'items', 'legacy', 'legacy_note', name='items_legacy_legacy_note_sync'" in code(
        expand_up
    )
    assert "runtime.backfill(op, 'items', 'legacy_note', 'legacy'" in code(expand_up)
    assert "-- CONTRACT" not in expand_up and "DROP COLUMN IF EXISTS legacy'" not in expand_up
    assert "DROP COLUMN IF EXISTS legacy'" in contract_up.split("-- CONTRACT")[1]
    assert "deploy code that no longer uses what is removed here" in contract_up
    assert "runtime.backfill(op, 'items', 'legacy', 'legacy_note'" in code(contract).split("def downgrade")[1]
    assert "data_losing_step" not in expand + contract
    before = project.count("SELECT count(*) FROM items")
    # Expand only: old and new code both work (the trigger keeps the two columns in step).
    expand_id = re.search(r"^revision: str = '(\w+)'", expand, re.M)
    assert expand_id is not None
    writer = _under_writer(project, "upgrade", expand_id.group(1))
    assert {"legacy", "legacy_note"} <= _columns(project)
    assert project.count("SELECT count(*) FROM items WHERE legacy_note IS DISTINCT FROM legacy") == 0
    writer2 = _under_writer(project, "upgrade", "head")
    assert "legacy" not in _columns(project) and "legacy_note" in _columns(project)
    assert project.count("SELECT count(*) FROM items WHERE id <= 100000 AND legacy_note = 'v' || id") == 100_000
    assert project.count("SELECT count(*) FROM items") == before + writer.inserted + writer2.inserted
    assert project.alembic("check", check=False).returncode == 0
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute("UPDATE items SET legacy_note = 'changed' WHERE id = 7")
    before = project.count("SELECT count(*) FROM items")
    # Undoing the contract alone brings the old column back with its values.
    writer = _under_writer(project, "downgrade", "-1")
    assert {"legacy", "legacy_note"} <= _columns(project)
    assert project.count("SELECT count(*) FROM items WHERE id = 7 AND legacy = 'changed'") == 1
    writer2 = _under_writer(project, "downgrade", "-1")
    assert "legacy" in _columns(project) and "legacy_note" not in _columns(project)
    assert project.count("SELECT count(*) FROM items WHERE id <= 100000 AND legacy = 'v' || id") == 99_999
    assert project.count("SELECT count(*) FROM items WHERE id = 7 AND legacy = 'changed'") == 1
    assert project.count("SELECT count(*) FROM items") == before + writer.inserted + writer2.inserted
    project.alembic("upgrade", "head")
    assert project.count("SELECT count(*) FROM items WHERE legacy_note = 'changed'") == 1


def test_unconfirmed_drop_and_add_is_reported_and_refuses_to_drop(project: Project) -> None:
    project.write_models(models_source({"legacy": None, "legacy_text": 'sa.Column("legacy_text", sa.Text)'}))
    res = project.alembic("revision", "--autogenerate", "-m", "maybe rename")
    revision = project.revision_files()[-1].read_text()
    assert "possible rename items.legacy -> legacy_text" in res.stderr
    assert "POSSIBLE RENAME: items.legacy -> legacy_text" in revision
    assert 'renamed_from": "legacy"' in revision
    assert "runtime.data_losing_step(op, 'drop column items.legacy'" in code(revision)
    refused = project.alembic("upgrade", "head", check=False)
    assert refused.returncode != 0 and "may be a rename" in refused.stderr
    assert project.count("SELECT count(*) FROM items WHERE legacy IS NOT NULL") == 100_000
    # The expand steps before the refused drop ran (each commits on its own); the user drops the
    # new empty column, deletes the revision, confirms the rename by configuration and autogenerates
    # again: a rename, nothing lost.
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute("ALTER TABLE items DROP COLUMN legacy_text")
    project.revision_files()[-1].unlink()
    (project.root / "pyproject.toml").write_text(
        '[tool.helios-migrate]\nlock_timeout = "1s"\n\n'
        '[tool.helios-migrate.autogenerate]\nrenames = {"items.legacy" = "legacy_text"}\n'
    )
    revision = project.autogenerate()
    assert "rename column items.legacy to legacy_text" in revision and "data_losing_step" not in revision
    project.alembic("upgrade", "head")
    assert project.count("SELECT count(*) FROM items WHERE legacy_text = 'v' || id") == 100_000


def test_rename_with_view_strategy(project: Project) -> None:
    (project.root / "pyproject.toml").write_text(
        '[tool.helios-migrate]\nlock_timeout = "1s"\nrename_strategy = "rename-with-view"\n'
    )
    project.write_models(models_source(RENAMED))
    revision = project.autogenerate()
    assert "ALTER TABLE items RENAME COLUMN legacy TO legacy_note" in revision
    writer = _under_writer(project, "upgrade", "head")
    assert writer.inserted > 0
    assert project.count("SELECT count(*) FROM items WHERE legacy_note = 'v' || id") == 100_000
    project.alembic("downgrade", "-1")
    assert project.count("SELECT count(*) FROM items WHERE legacy = 'v' || id") == 100_000


def test_hinted_table_rename_keeps_a_compatibility_view(project: Project) -> None:
    tables = (
        'parent_rows = sa.Table("parent_rows", metadata, '
        'sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False), '
        'info={"helios": {"renamed_from": "parents"}})\n'
    )
    source = models_source(tables=tables).replace(
        'parents = sa.Table("parents", metadata, '
        'sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False))\n', ""
    )
    project.write_models(source)
    project.alembic("revision", "--autogenerate", "-m", "rename parents")
    expand, contract = (r.split("def downgrade")[0] for r in project.revisions_in_order())
    assert "ALTER TABLE parents RENAME TO parent_rows" in expand
    assert "CREATE OR REPLACE VIEW parents AS SELECT * FROM parent_rows" in expand
    assert "DROP VIEW" not in expand
    assert "DROP VIEW IF EXISTS parents" in contract.split("-- CONTRACT")[1]
    project.alembic("upgrade", "head")
    assert project.count("SELECT count(*) FROM parent_rows") == 1000
    assert project.count("SELECT count(*) FROM pg_views WHERE viewname = 'parents'") == 0
    assert project.alembic("check", check=False).returncode == 0
    project.alembic("downgrade", "-1")
    assert project.count("SELECT count(*) FROM pg_views WHERE viewname = 'parents'") == 1
    project.alembic("downgrade", "-1")
    assert project.count("SELECT count(*) FROM parents") == 1000
