"""explain (with and without an LLM, numbers checked) and design (created on a real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from helios_migrate.cli import app
from helios_migrate.llm.client import LlmClient
from helios_migrate.llm.design import database_executor, design_schema
from helios_migrate.llm.explain import build_facts, explain
from helios_migrate.pgserver import RunningServer
from helios_migrate.versions import PgVersion

from .llm_fake_server import FakeLLMServer

MakeClient = Callable[..., LlmClient]
MIGRATION = """BEGIN;
SET lock_timeout = '2s';
ALTER TABLE orders ADD COLUMN note text DEFAULT random()::text;
COMMIT;
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_note_idx ON orders (note);
"""
runner = CliRunner()


def test_explain_without_llm_prints_the_facts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HELIOS_LLM_BASE_URL", raising=False)
    (tmp_path / "m.sql").write_text(MIGRATION)
    result = runner.invoke(app, ["explain", "m.sql", "--pg-version", "16"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "m.sql on PostgreSQL 16" in out
    assert "ACCESS EXCLUSIVE on orders: blocks reads and writes (add_column)" in out
    assert "writes a new copy of the table" in out
    assert "HM201" in out


def test_explain_with_llm_accepts_numbers_from_the_facts(make_client: MakeClient, fake_llm: FakeLLMServer) -> None:
    facts = build_facts(MIGRATION, version=PgVersion(16))
    result = explain(facts, make_client("explain_good"))
    assert result.source == "llm" and result.problems == ()
    assert "What it locks: ACCESS EXCLUSIVE on orders" in result.text
    prompt = fake_llm.user_texts(0)[0]
    assert '<data label="facts from helios-migrate"' in prompt and "HM201" in prompt


def test_explain_strips_invented_numbers(make_client: MakeClient, fake_llm: FakeLLMServer) -> None:
    facts = build_facts(MIGRATION, version=PgVersion(16))
    result = explain(facts, make_client("explain_invented"))
    assert len(fake_llm.requests) == 3  # sent back twice with the reason
    assert "numbers not in the facts: 45, 80" in fake_llm.user_texts(1)[-1].replace("number(s)", "numbers")
    assert result.source == "llm (stripped)"
    assert "45" not in result.text and "80" not in result.text
    assert "Adds the column note to orders." in result.text


def test_explain_revision_file_with_llm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rev = tmp_path / "0001_note.py"
    rev.write_text(
        'from alembic import op\nimport sqlalchemy as sa\nrevision = "0001"\ndown_revision = None\n\n'
        'def upgrade():\n    op.add_column("orders", sa.Column("note", sa.Text(), server_default=sa.text("random()::text")))\n'
    )
    monkeypatch.chdir(tmp_path)
    with FakeLLMServer() as fake:
        from .llm_fake_server import load_replies

        fake.add(*load_replies("explain_good"))
        monkeypatch.setenv("HELIOS_LLM_BASE_URL", fake.base_url)
        monkeypatch.setenv("HELIOS_LLM_MODEL", "test-model")
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        result = runner.invoke(app, ["explain", str(rev), "--pg-version", "16", "--llm-log", str(tmp_path / "l.jsonl")])
    assert result.exit_code == 0, result.output
    assert "Summary by test-model" in result.output
    assert "Facts (helios-migrate's knowledge base" in result.output
    assert (tmp_path / "l.jsonl").exists()


def test_design_without_llm_says_what_to_configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HELIOS_LLM_BASE_URL", raising=False)
    result = runner.invoke(app, ["design", "a blog"])
    assert result.exit_code == 2
    assert "design needs an LLM" in result.output and "HELIOS_LLM_BASE_URL" in result.output


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_design_is_created_on_real_postgresql(
    make_client: MakeClient, fake_llm: FakeLLMServer, fresh_db: str, pg_server: RunningServer
) -> None:
    seen: list[list[str]] = []
    real = database_executor(fresh_db)

    def executor(ddl: list[str]) -> list[str]:
        seen.append(ddl)
        return real(ddl)

    result = design_schema("a blog: authors and posts", make_client("design_retry"),
                           executor=executor, version=pg_server.version)
    assert result.models_py is not None, result.reasons
    assert result.attempts == 2
    first = result.history[0].reasons
    assert any("HM501" in r for r in first) and any("HM504" in r for r in first)
    assert "HM501" in fake_llm.user_texts(1)[-1]
    assert result.tables == ("authors", "posts")
    assert any(s.startswith("CREATE TABLE posts") for s in result.ddl)
    assert "class Posts(Base):" in result.models_py
    assert len(seen) == 1  # the rejected design never reached the database
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        for statement in result.ddl:
            conn.execute(statement)
    assert _tables(fresh_db) == {"authors", "posts"}


def test_design_cli_refines_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_db: str, pg_server: RunningServer
) -> None:
    monkeypatch.chdir(tmp_path)
    from .llm_fake_server import load_replies

    existing = tmp_path / "models.py"
    existing.write_text(
        "# the blog models\n"
        "import sqlalchemy as sa\n"
        "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n\n\n"
        "class Base(DeclarativeBase):\n    pass\n\n\n"
        "class Author(Base):\n"
        "    __tablename__ = 'authors'\n"
        "    id: Mapped[int] = mapped_column(sa.BigInteger(), sa.Identity(always=True), primary_key=True)\n"
        "    name: Mapped[str] = mapped_column(sa.Text(), comment='shown on every post')\n"
    )
    with FakeLLMServer(load_replies("design_refine")) as fake:
        monkeypatch.setenv("HELIOS_LLM_BASE_URL", fake.base_url)
        monkeypatch.setenv("HELIOS_LLM_MODEL", "test-model")
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        result = runner.invoke(app, ["design", "add comments", "--from", str(existing), "-o", "out.py",
                                     "--database-url", fresh_db, "--allow-superuser"])
        prompt = fake.user_texts(0)[0]
    assert result.exit_code == 0, result.output
    # the user's models reach the model as a schema description, not as their Python source
    assert "current schema description (JSON)" in prompt
    assert '"name": "authors"' in prompt and "shown on every post" in prompt
    assert "# the blog models" not in prompt
    assert "wrote out.py (3 table(s): authors, comments, posts)" in result.output
    assert "CREATE TABLE comments" in result.output
    assert "class Comments(Base)" in (tmp_path / "out.py").read_text()
    assert _tables(fresh_db) == set()  # validated in a rolled-back transaction
    # the connection string never reached the model
    assert fresh_db not in fake.all_text()


def test_design_code_instead_of_a_description_is_rejected(make_client: MakeClient) -> None:
    calls: list[list[str]] = []

    def executor(ddl: list[str]) -> list[str]:
        calls.append(ddl)
        return []

    result = design_schema("a blog", make_client("design_hostile"), executor=executor, version=PgVersion(18))
    assert result.models_py is None and calls == []
    assert "$: unknown key 'models_py'" in result.reasons
    assert "$: missing key 'tables'" in result.reasons
    assert not Path("/tmp/helios-design-pwned").exists()
