"""``helios-migrate init`` adds the plugin line to an existing env.py."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from helios_migrate.cli import app

ENV = '''from alembic import context

def run_migrations_offline():
    context.configure(
        url=url,
        target_metadata=target_metadata,
    )

def run_migrations_online():
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
        )
'''


def test_init_shows_diff_and_writes_with_yes(tmp_path: Path) -> None:
    env = tmp_path / "env.py"
    env.write_text(ENV)
    res = CliRunner().invoke(app, ["init", str(env), "--yes"])
    assert res.exit_code == 0, res.output
    assert '+            autogenerate_plugins=["alembic.autogenerate.*", "helios"],' in res.output
    text = env.read_text()
    assert text.count("autogenerate_plugins") == 1
    online = text.split("def run_migrations_online")[1]
    assert '            autogenerate_plugins=["alembic.autogenerate.*", "helios"],\n' in online
    compile(text, "env.py", "exec")


def test_init_asks_and_can_be_declined(tmp_path: Path) -> None:
    env = tmp_path / "env.py"
    env.write_text(ENV)
    res = CliRunner().invoke(app, ["init", str(env)], input="n\n")
    assert res.exit_code == 1
    assert env.read_text() == ENV


def test_init_says_what_to_add_when_it_cannot(tmp_path: Path) -> None:
    env = tmp_path / "env.py"
    env.write_text("from myproject.migrations import run\nrun()\n")
    res = CliRunner().invoke(app, ["init", str(env), "--yes"])
    assert res.exit_code == 1
    assert 'autogenerate_plugins=["alembic.autogenerate.*", "helios"],' in res.output
    assert "process_revision_directives=chain(" in res.output
