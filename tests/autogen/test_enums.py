"""Enum types through autogenerate: a label added to the model is added to the type (outside the
migration transaction, in the model's order), a new type used by a new column is created first,
a confirmed rename renames the label (rows keep it), a label gone from the model is removed when
no column uses the type and otherwise refused with the columns and rows that hold it, never
silently ignored.  Real autogenerate, upgrade and downgrade on PostgreSQL 15 and 18."""

from __future__ import annotations

import subprocess
import sys
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
    with psycopg.connect(project.url, autocommit=True) as conn:  # a row holds it: not removed
        conn.execute("UPDATE items SET state = 'paid' WHERE id = 1")
    project.write_models(models_source({"state": STATUS.replace('"new", "paid", ', '"new", ').format(extra="")}))
    res = project.alembic("revision", "--autogenerate", "-m", "gone")
    revision = project.revision_files()[-1].read_text()
    assert "still has 'paid' in the database" in revision, res.stderr
    assert "RENAME VALUE" in revision
    # the refusal says which column uses the type and that rows hold the label
    assert "helios: NOT DONE: enum order_state" in revision
    assert "public.items.state uses the type" in revision


def _passes_check(project: Project) -> None:
    """The revision passes ``helios-migrate check`` (no blocking finding), both ways."""
    revision = project.revision_files()[-1]
    for direction in ([], ["--downgrade"]):
        res = subprocess.run(
            [sys.executable, "-m", "helios_migrate.cli", "check", str(revision), "--pg-version", "15", *direction],
            cwd=project.root, capture_output=True, text=True, timeout=120, env=project.env,
        )
        assert res.returncode == 0, res.stdout + res.stderr


def _rows(project: Project, label: str) -> int:
    with psycopg.connect(project.url) as conn:
        row = conn.execute("SELECT count(*) FROM items WHERE state = %s::order_state", (label,)).fetchone()
        return int(row[0]) if row else 0


def test_a_label_in_use_is_not_removed_and_the_rows_are_counted(project: Project) -> None:
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute("UPDATE items SET state = 'paid' WHERE id <= 7")
        conn.execute("UPDATE items SET state = 'new' WHERE id > 7")
    project.write_models(models_source({"state": STATUS.replace('"new", "paid", ', '"new", ').format(extra="")}))
    project.alembic("revision", "--autogenerate", "-m", "gone")
    revision = project.revision_files()[-1].read_text()
    assert "public.items.state uses the type and 7 row(s) hold these labels" in revision
    project.alembic("upgrade", "head")
    assert _labels(project, "order_state") == ["new", "paid"]
    assert _rows(project, "paid") == 7


def test_a_confirmed_rename_renames_the_label_and_keeps_the_rows(project: Project) -> None:
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute("UPDATE items SET state = 'paid' WHERE id <= 7")
    (project.root / "pyproject.toml").write_text(
        (project.root / "pyproject.toml").read_text()
        + '\n[tool.helios-migrate.autogenerate]\nrenames = {"order_state.paid" = "settled"}\n'
    )
    project.write_models(models_source({"state": STATUS.replace('"paid"', '"settled"').format(extra="")}))
    revision = project.autogenerate()
    upgrade, downgrade = revision.split("def downgrade")
    assert "ALTER TYPE order_state RENAME VALUE 'paid' TO 'settled'" in upgrade
    assert "ALTER TYPE order_state RENAME VALUE 'settled' TO 'paid'" in downgrade
    assert "NOT DONE" not in revision and "ADD VALUE" not in revision
    _passes_check(project)
    project.alembic("upgrade", "head")
    assert _labels(project, "order_state") == ["new", "settled"]
    assert _rows(project, "settled") == 7
    assert "No new upgrade operations" in project.alembic("check").stdout
    project.alembic("downgrade", "-1")
    assert _labels(project, "order_state") == ["new", "paid"]
    assert _rows(project, "paid") == 7


def test_an_unconfirmed_rename_is_not_guessed(project: Project) -> None:
    project.write_models(models_source({"state": STATUS.replace('"paid"', '"settled"').format(extra="")}))
    project.alembic("revision", "--autogenerate", "-m", "maybe renamed")
    revision = project.revision_files()[-1].read_text()
    assert "ADD VALUE IF NOT EXISTS 'settled' AFTER 'new'" in revision
    assert "still has 'paid' in the database" in revision
    assert "RENAME VALUE 'paid'" not in revision


def test_a_label_removed_from_a_type_no_column_uses_is_removed(project: Project) -> None:
    """A type in the database that no column uses yet: made again with the model's labels, in one
    transaction, before the new column that uses it; the downgrade restores the old labels."""
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute("CREATE TYPE item_mood AS ENUM ('happy', 'meh', 'sad')")
    mood = 'sa.Column("mood", sa.Enum("happy", "sad", "angry", name="item_mood"))'
    project.write_models(models_source({"state": STATUS.format(extra=""), "mood": mood}))
    revision = project.autogenerate()
    upgrade = revision.split("def downgrade")[0]
    assert "DROP TYPE item_mood" in upgrade
    assert "CREATE TYPE item_mood AS ENUM ('happy', 'sad', 'angry')" in upgrade
    _passes_check(project)
    project.alembic("upgrade", "head")
    assert _labels(project, "item_mood") == ["happy", "sad", "angry"]
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute("UPDATE items SET mood = 'angry' WHERE id = 1")
    assert "No new upgrade operations" in project.alembic("check").stdout
    project.alembic("downgrade", "-1")
    assert _labels(project, "item_mood") == ["happy", "meh", "sad"]
