"""A label gone from a model's enum, on a type columns use and no row holds it: autogenerate moves
the columns to a new type without it (the expand/contract type change, ``USING col::text::new``),
drops the old type and renames the new one; the downgrade brings the old labels back.  Rows that
hold the label keep the refusal.  Real autogenerate, upgrade and downgrade on PostgreSQL 15 and 18."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "autogen"))
from autogen_harness import Project, models_source

STATUS = 'sa.Column("state", sa.Enum({labels}, name="order_state"))'


@pytest.fixture
def project(tmp_path: Path, fresh_db: str) -> Project:
    p = Project.create(tmp_path / "proj", fresh_db, rows=500)
    with psycopg.connect(p.url, autocommit=True) as conn:
        conn.execute("CREATE TYPE order_state AS ENUM ('new', 'paid', 'void')")
        conn.execute("ALTER TABLE items ADD COLUMN state order_state")
        conn.execute("UPDATE items SET state = CASE WHEN id % 2 = 0 THEN 'new' ELSE 'void' END::order_state")
    p.write_models(models_source({"state": STATUS.format(labels='"new", "paid", "void"')}))
    assert "No new upgrade operations" in p.alembic("check").stdout
    return p


def _labels(project: Project) -> list[str]:
    with psycopg.connect(project.url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT enumlabel FROM pg_enum WHERE enumtypid = to_regtype('order_state') ORDER BY enumsortorder"
        ).fetchall()]


def _states(project: Project) -> list[tuple[int, str]]:
    with psycopg.connect(project.url) as conn:
        return [(int(i), str(s)) for i, s in conn.execute("SELECT id, state::text FROM items ORDER BY id").fetchall()]


def test_a_label_no_row_holds_is_removed_through_a_new_type(project: Project) -> None:
    before = _states(project)
    project.write_models(models_source({"state": STATUS.format(labels='"new", "void"')}))
    revision = project.autogenerate()
    upgrade = revision.split("def downgrade")[0]
    assert "NOT DONE" not in revision
    assert "CREATE TYPE order_state__new AS ENUM ('new', 'void')" in upgrade
    assert "state::text::order_state__new" in upgrade
    assert "ALTER TYPE order_state__new RENAME TO order_state" in upgrade
    for direction in ([], ["--downgrade"]):  # what autogenerate writes passes check, both ways
        res = subprocess.run(
            [sys.executable, "-m", "helios_migrate.cli", "check", str(project.revision_files()[-1]),
             "--pg-version", "15", *direction],
            cwd=project.root, capture_output=True, text=True, timeout=120, env=project.env,
        )
        assert res.returncode == 0, res.stdout + res.stderr
    project.alembic("upgrade", "head")
    assert _labels(project) == ["new", "void"]
    assert _states(project) == before
    with psycopg.connect(project.url) as conn:
        assert conn.execute(
            "SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = 'items'::regclass "
            "AND attname = 'state'").fetchone() == ("order_state",)
        assert conn.execute("SELECT count(*) FROM pg_type WHERE typname LIKE 'order_state%'").fetchone() == (1,)
    assert "No new upgrade operations" in project.alembic("check").stdout
    project.alembic("downgrade", "-1")
    assert _labels(project) == ["new", "paid", "void"]
    assert _states(project) == before


def test_a_label_rows_hold_is_still_refused(project: Project) -> None:
    project.write_models(models_source({"state": STATUS.format(labels='"new", "paid"')}))
    revision = project.autogenerate("gone")
    assert "helios: NOT DONE: enum order_state" in revision
    assert "order_state__new" not in revision


def test_a_label_gone_while_another_is_added_is_refused(project: Project) -> None:
    """'paid' gone and 'settled' added may be an unconfirmed rename: the refusal says how to confirm
    it, nothing is converted."""
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute("UPDATE items SET state = 'new' WHERE state = 'paid'")
    project.write_models(models_source({"state": STATUS.format(labels='"new", "settled", "void"')}))
    revision = project.autogenerate("maybe renamed")
    assert "still has 'paid' in the database" in revision and "RENAME VALUE" in revision
    assert "order_state__new" not in revision


def test_an_indexed_column_with_a_default_moves_to_the_new_type(project: Project) -> None:
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute("ALTER TABLE items ALTER COLUMN state SET DEFAULT 'new'")
        conn.execute("CREATE INDEX ix_items_state ON items (state)")
    indexed = STATUS.replace(', name="order_state")', ', name="order_state"), index=True')
    project.write_models(models_source({"state": indexed.format(labels='"new", "paid", "void"')}))
    assert "No new upgrade operations" in project.alembic("check").stdout
    before = _states(project)
    project.write_models(models_source({"state": indexed.format(labels='"new", "void"')}))
    project.autogenerate()
    project.alembic("upgrade", "head")
    assert _labels(project) == ["new", "void"]
    assert _states(project) == before
    with psycopg.connect(project.url) as conn:
        assert conn.execute("SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'items'::regclass "
                            "AND adnum = (SELECT attnum FROM pg_attribute WHERE attrelid = 'items'::regclass "
                            "AND attname = 'state')").fetchone() == ("'new'::order_state",)
        assert conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_items_state'").fetchone() == (
            "CREATE INDEX ix_items_state ON public.items USING btree (state)",)
    project.alembic("downgrade", "-1")
    assert _labels(project) == ["new", "paid", "void"]
    assert _states(project) == before
