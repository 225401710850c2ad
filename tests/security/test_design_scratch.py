"""``design`` end to end: the rendered models round-trip to PostgreSQL, the scratch server runs the DDL
as a role that is not a superuser, and a superuser ``--database-url`` is refused unless allowed."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import psycopg
import pytest
from llm.llm_fake_server import FIXTURES, FakeLLMServer, Reply
from typer.testing import CliRunner

from helios_migrate.cli import app
from helios_migrate.llm.design import is_superuser, scratch_database
from helios_migrate.llm.design_doc import parse_design
from helios_migrate.llm.design_from_models import (
    DescribeError,
    describe_metadata,
    load_models_metadata,
)
from helios_migrate.llm.design_render import compile_ddl, design_ddl, render_models

GOOD_TEXT = (FIXTURES / "design_good.json").read_text()
GOOD: dict[str, Any] = json.loads(GOOD_TEXT)["replies"][0]["json"]
runner = CliRunner()


def exec_rendered(source: str, name: str) -> types.ModuleType:
    """Execute a module helios-migrate rendered (trusted: our code) and return it."""
    module = types.ModuleType(name)
    sys.modules[name] = module
    try:
        exec(compile(source, f"{name}.py", "exec"), module.__dict__)
    finally:
        sys.modules.pop(name, None)
    return module


def relations(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
        ).fetchall()
    return {r[0] for r in rows}


ODD_NAMES: dict[str, Any] = {
    "enums": [{"name": "Mood", "labels": ["it's", "ok"]}],
    "tables": [
        {
            "name": "class", "comment": "a table called class", "primary_key": ["id", "sa"],
            "columns": [
                {"name": "id", "type": {"name": "bigint", "length": None, "precision": None, "scale": None,
                                        "enum": None, "array": False},
                 "nullable": False, "identity": "by_default", "default": None, "comment": None},
                {"name": "sa", "type": {"name": "integer", "length": None, "precision": None, "scale": None,
                                        "enum": None, "array": False},
                 "nullable": False, "identity": None, "default": {"function": None, "value": -3}, "comment": None},
                {"name": "Größe", "type": {"name": "numeric", "length": None, "precision": 12, "scale": 3,
                                           "enum": None, "array": False},
                 "nullable": True, "identity": None, "default": {"function": None, "value": "1.5"}, "comment": "ü"},
                {"name": "mood", "type": {"name": "enum", "length": None, "precision": None, "scale": None,
                                          "enum": "Mood", "array": False},
                 "nullable": False, "identity": None, "default": {"function": None, "value": "it's"}, "comment": None},
                {"name": "int", "type": {"name": "uuid", "length": None, "precision": None, "scale": None,
                                         "enum": None, "array": False},
                 "nullable": False, "identity": None, "default": {"function": "gen_random_uuid()", "value": None},
                 "comment": None},
                {"name": "metadata", "type": {"name": "varchar", "length": 20, "precision": None, "scale": None,
                                              "enum": None, "array": True},
                 "nullable": True, "identity": None, "default": None, "comment": None},
                {"name": "a:b", "type": {"name": "inet", "length": None, "precision": None, "scale": None,
                                         "enum": None, "array": False},
                 "nullable": True, "identity": None, "default": {"function": None, "value": "10.0.0.1/8"},
                 "comment": None},
            ],
            "foreign_keys": [], "unique": [{"name": None, "columns": ["int"]}],
            "checks": [{"name": "size:ok", "expression": "\"Größe\" > 0 AND \"a:b\" IS NOT NULL OR mood = 'ok'"}],
            "indexes": [{"name": None, "unique": False, "method": "gin", "where": "\"Größe\" > 1",
                         "elements": [{"column": "metadata", "expression": None}]},
                        {"name": "by lower", "unique": True, "method": "btree", "where": None,
                         "elements": [{"column": None, "expression": "lower(CAST(\"a:b\" AS text))"}]}],
        },
    ],
    "notes": [],
}


@pytest.mark.parametrize("document", [GOOD, ODD_NAMES], ids=["blog", "odd-names"])
def test_rendered_models_compile_to_the_ddl_that_was_proven(document: dict[str, Any]) -> None:
    design, problems = parse_design(document)
    assert design is not None, problems
    source = render_models(design)
    compile(source, "models.py", "exec")
    module = exec_rendered(source, "rendered_models_parity")
    assert compile_ddl(module.Base.metadata) == design_ddl(design)
    assert all(len(line) <= 100 for line in source.splitlines() if "comment" not in line)


@pytest.mark.parametrize("document", [GOOD, ODD_NAMES], ids=["blog", "odd-names"])
def test_rendered_models_round_trip_to_postgresql(document: dict[str, Any], restricted_db: str) -> None:
    design, problems = parse_design(document)
    assert design is not None, problems
    module = exec_rendered(render_models(design), "rendered_models_round_trip")
    with psycopg.connect(restricted_db, autocommit=True) as conn:
        for statement in compile_ddl(module.Base.metadata):
            conn.execute(statement)
    assert relations(restricted_db) == {t.name for t in design.tables}
    # and back: the database's schema, read by SQLAlchemy, describes the same tables and columns
    import sqlalchemy as sa

    engine = sa.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(restricted_db))
    try:
        reflected = sa.MetaData()
        reflected.reflect(engine)
    finally:
        engine.dispose()
    for table in design.tables:
        assert [c.name for c in reflected.tables[table.name].columns] == [c.name for c in table.columns]


def test_user_models_are_described_in_the_vocabulary(tmp_path: Path) -> None:
    design, _ = parse_design(GOOD)
    assert design is not None
    models = tmp_path / "models.py"
    models.write_text(render_models(design))
    described = describe_metadata(load_models_metadata(models))
    again, problems = parse_design(described)
    assert again is not None, problems
    assert design_ddl(again) == design_ddl(design)


def test_user_models_outside_the_vocabulary_are_refused_by_name(tmp_path: Path) -> None:
    models = tmp_path / "models.py"
    models.write_text(
        "import sqlalchemy as sa\nfrom sqlalchemy.dialects import postgresql\n"
        "md = sa.MetaData()\n"
        "t = sa.Table('places', md, sa.Column('id', sa.BigInteger, primary_key=True),"
        " sa.Column('area', postgresql.TSVECTOR))\n"
    )
    with pytest.raises(DescribeError, match="table 'places' column 'area': type TSVECTOR"):
        describe_metadata(load_models_metadata(models))


def test_embedded_scratch_runs_as_a_role_that_is_not_a_superuser(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    with scratch_database(None) as (executor, _version, where):
        assert "not a superuser" in where
        problems = executor([f"COPY (SELECT 1) TO PROGRAM 'touch {marker}'"])
        design, _ = parse_design(GOOD)
        assert design is not None
        assert executor(design_ddl(design)) == []
    assert len(problems) == 1 and "PostgreSQL refused" in problems[0]
    assert "superuser" in problems[0] or "permission denied" in problems[0]
    assert not marker.exists()


def test_restricted_role_is_not_a_superuser(restricted_db: str) -> None:
    assert not is_superuser(restricted_db)
    with psycopg.connect(restricted_db) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert row == (False, False, False)


# -- the CLI on --database-url ---------------------------------------------------------------------


def _run_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str]) -> tuple[Any, FakeLLMServer]:
    monkeypatch.chdir(tmp_path)
    with FakeLLMServer([Reply(json.dumps(GOOD))]) as fake:
        monkeypatch.setenv("HELIOS_LLM_BASE_URL", fake.base_url)
        monkeypatch.setenv("HELIOS_LLM_MODEL", "test-model")
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        result = runner.invoke(app, ["design", "a blog", "-o", "models.py", *args])
    return result, fake


def test_cli_refuses_a_superuser_database_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_db: str
) -> None:
    assert is_superuser(fresh_db)
    result, fake = _run_cli(monkeypatch, tmp_path, ["--database-url", fresh_db])
    assert result.exit_code == 2, result.output
    assert "is a PostgreSQL superuser" in result.output and "--allow-superuser" in result.output
    assert fake.requests == []  # refused before anything was asked
    assert not (tmp_path / "models.py").exists()


def test_cli_allow_superuser_validates_and_rolls_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_db: str
) -> None:
    result, fake = _run_cli(monkeypatch, tmp_path, ["--database-url", fresh_db, "--allow-superuser"])
    assert result.exit_code == 0, result.output
    assert "wrote models.py (2 table(s): authors, posts)" in result.output
    assert "class Posts(Base):" in (tmp_path / "models.py").read_text()
    assert relations(fresh_db) == set()  # nothing persisted
    assert fresh_db not in fake.all_text()


def test_cli_accepts_a_role_that_is_not_a_superuser(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, restricted_db: str
) -> None:
    result, _ = _run_cli(monkeypatch, tmp_path, ["--database-url", restricted_db])
    assert result.exit_code == 0, result.output
    assert "created without error on the --database-url database (rolled back)" in result.output
    assert relations(restricted_db) == set()
