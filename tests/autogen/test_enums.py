"""Enum types through autogenerate: a label added to the model is added to the type (outside the
migration transaction, in the model's order), a new type used by a new column is created first,
a label gone from the model is reported, not silently ignored.  PostgreSQL 15 and 18."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from autogen_harness import Project, models_source

STATUS = 'sa.Column("state", sa.Enum("new", "paid", {extra}name="order_state"))'


@pytest.fixture
def project(tmp_path: Path, fresh_db: str) -> Project:
    p = Project.create(tmp_path / "proj", fresh_db, rows=500)
    with psycopg.connect(p.url, autocommit=True) as conn:
        conn.execute("CREATE TYPE order_state AS ENUM ('new', 'paid')")
        conn.execute("ALTER TABLE items ADD COLUMN state order_state")
    p.write_models(models_source({"state": STATUS.format(extra="")}))
    assert "No new upgrade operations" in p.alembic("check").stdout
    return p


def _labels(project: Project, name: str) -> list[str]:
    with psycopg.connect(project.url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT enumlabel FROM pg_enum WHERE enumtypid = to_regtype(%s) ORDER BY enumsortorder", (name,)
        ).fetchall()]


def test_added_labels_are_added_in_the_models_order(project: Project) -> None:
    project.write_models(models_source({"state": STATUS.replace('"new", "paid"', '"draft", "new", "paid", "shipped"').format(extra="")}))
    revision = project.autogenerate()
    upgrade = revision.split("def downgrade")[0]
    assert "ADD VALUE IF NOT EXISTS 'draft' BEFORE 'new'" in upgrade
    assert "ADD VALUE IF NOT EXISTS 'shipped' AFTER 'paid'" in upgrade
    assert "runtime.run_autocommit" in upgrade
    # With the project's lock_timeout and retries (pyproject.toml of the harness), not the defaults.
    assert "policy = runtime.Policy(lock_timeout='1s', statement_timeout='60s', attempts=20" in upgrade
    assert "policy=policy" in upgrade
    project.alembic("upgrade", "head")
    assert _labels(project, "order_state") == ["draft", "new", "paid", "shipped"]
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute("UPDATE items SET state = 'shipped' WHERE id = 1")


def test_a_new_enum_type_for_a_new_column_is_created_first(project: Project) -> None:
    mood = 'sa.Column("mood", sa.Enum("happy", "sad", name="item_mood"))'
    project.write_models(models_source({"state": STATUS.format(extra=""), "mood": mood}))
    revision = project.autogenerate()
    upgrade = revision.split("def downgrade")[0]
    assert "CREATE TYPE item_mood AS ENUM ('happy', 'sad')" in upgrade
    adds = [i for i in (upgrade.find("add_column("), upgrade.find("ADD COLUMN")) if i >= 0]
    assert adds and upgrade.index("CREATE TYPE item_mood") < min(adds)
    project.alembic("upgrade", "head")
    assert _labels(project, "item_mood") == ["happy", "sad"]
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute("UPDATE items SET mood = 'sad' WHERE id = 1")
    project.alembic("downgrade", "-1")
    assert _labels(project, "item_mood") == []


def test_a_label_gone_from_the_model_is_reported(project: Project) -> None:
    project.write_models(models_source({"state": STATUS.replace('"new", "paid", ', '"new", ').format(extra="")}))
    res = project.alembic("revision", "--autogenerate", "-m", "gone")
    revision = project.revision_files()[-1].read_text()
    assert "still has 'paid' in the database" in revision, res.stderr
    assert "RENAME VALUE" in revision
