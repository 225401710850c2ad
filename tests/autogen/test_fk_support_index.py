"""The index the plan builds to support a new foreign key stays: ``alembic check`` is clean right
after the upgrade, a no-change autogenerate is empty, and declaring the index in the models under
the name the revision advises changes nothing.  An index of the models' own that covers the key
makes the support index redundant: autogenerate then drops it.  PG 15 and 18."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from autogen_harness import BASE_EXTRA, Project, code, models_source

FK = {"parent_id": 'sa.Column("parent_id", sa.BigInteger, sa.ForeignKey("parents.id"))'}
ADVICE = 'sa.Index("items_parent_id_idx", "parent_id")'


@pytest.fixture
def project(tmp_path: Path, fresh_db: str) -> Project:
    return Project.create(tmp_path / "proj", fresh_db, rows=2_000)


def _upgrade_body(source: str) -> list[str]:
    """The statements of ``upgrade()``, comments and the docstring left out."""
    tree = ast.parse(source)
    upgrade = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade")
    return [
        ast.unparse(s) for s in upgrade.body
        if not isinstance(s, ast.Pass) and not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
    ]


def _clean(project: Project) -> None:
    check = project.alembic("check", check=False)
    assert check.returncode == 0 and "No new upgrade operations" in check.stdout, check.stdout + check.stderr


def test_support_index_is_kept_and_advice_keeps_its_name(project: Project) -> None:
    project.write_models(models_source(FK))
    revision = project.autogenerate("fk")
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS items_parent_id_idx" in code(revision)
    assert ADVICE in revision, revision
    project.alembic("upgrade", "head")
    _clean(project)
    again = project.autogenerate("nothing")
    assert _upgrade_body(again) == [], again
    assert "items_parent_id_idx" not in again
    project.alembic("upgrade", "head")
    # Following the advice: the models and the database agree, still nothing to do.
    project.write_models(models_source(FK, [*BASE_EXTRA, ADVICE]))
    _clean(project)
    followed = project.autogenerate("declared")
    assert _upgrade_body(followed) == [], followed


def test_an_index_of_the_models_replaces_the_support_index(project: Project) -> None:
    project.write_models(models_source(FK))
    project.autogenerate("fk")
    project.alembic("upgrade", "head")
    project.write_models(models_source(
        {"parent_id": 'sa.Column("parent_id", sa.BigInteger, sa.ForeignKey("parents.id"), index=True)'}
    ))
    revision = code(project.autogenerate("own index"))
    assert "ix_items_parent_id" in revision
    assert "DROP INDEX CONCURRENTLY IF EXISTS items_parent_id_idx" in revision, revision
    project.alembic("upgrade", "head")
    _clean(project)


def test_without_index_on_fk_the_index_is_not_kept(project: Project) -> None:
    """``index_on_fk = false``: the plan builds no support index, so one found in the database
    is not the plan's and autogenerate proposes dropping it as usual."""
    project.write_models(models_source(FK))
    project.autogenerate("fk")
    project.alembic("upgrade", "head")
    pyproject = project.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.helios-migrate.autogenerate]\nindex_on_fk = false\n")
    check = project.alembic("check", check=False)
    assert check.returncode != 0 and "items_parent_id_idx" in check.stdout + check.stderr
