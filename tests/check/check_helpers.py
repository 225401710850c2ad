"""Helpers for the ``check`` tests: snapshot comparison and temporary Alembic projects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE_VAR = "HELIOS_UPDATE_SNAPSHOTS"


def assert_snapshot(name: str, actual: str) -> None:
    """Compare with ``snapshots/<name>``; with HELIOS_UPDATE_SNAPSHOTS=1, rewrite it instead."""
    path = SNAPSHOTS / name
    if os.environ.get(UPDATE_VAR) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"snapshot {path} is missing; run with {UPDATE_VAR}=1 to write it", pytrace=False)
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"output differs from {path} (run with {UPDATE_VAR}=1 to update)"


REPO_ROOT = Path(__file__).resolve().parents[2]

ALEMBIC_INI = """\
[alembic]
script_location = %(here)s/migrations
prepend_sys_path = .
"""

# An env.py that needs a database even offline: check must never run it.
ENV_PY = """\
from alembic import context
import sqlalchemy as sa

engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
"""

MAKO = '''\
"""${message}"""
from alembic import op
import sqlalchemy as sa

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
'''


def revision_source(rev: str, down: str | None, upgrade: str, downgrade: str = "pass", header: str = "") -> str:
    return (
        f'"""revision {rev}"""\n'
        "from alembic import op\n"
        "import sqlalchemy as sa\n"
        f"{header}\n"
        f"revision = {rev!r}\n"
        f"down_revision = {down!r}\n"
        "branch_labels = None\n"
        "depends_on = None\n\n\n"
        f"def upgrade() -> None:\n{_indent(upgrade)}\n\n\n"
        f"def downgrade() -> None:\n{_indent(downgrade)}\n"
    )


def _indent(body: str) -> str:
    return "\n".join(("    " + line) if line else "" for line in body.strip("\n").splitlines())


def write_project(root: Path, revisions: dict[str, str]) -> Path:
    """An Alembic project as ``alembic init`` lays it out, with the given revision files."""
    (root / "migrations" / "versions").mkdir(parents=True, exist_ok=True)
    (root / "alembic.ini").write_text(ALEMBIC_INI, encoding="utf-8")
    (root / "migrations" / "env.py").write_text(ENV_PY, encoding="utf-8")
    (root / "migrations" / "script.py.mako").write_text(MAKO, encoding="utf-8")
    for name, text in revisions.items():
        (root / "migrations" / "versions" / name).write_text(text, encoding="utf-8")
    return root


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not found")


def run_check(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``helios-migrate check`` as a subprocess (the module, so no installed script is needed)."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), full_env.get("PYTHONPATH")]))
    full_env.pop("HELIOS_DATABASE_URL", None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "helios_migrate.cli", "check", *args],
        cwd=cwd, capture_output=True, text=True, env=full_env, timeout=120, check=False,
    )


def rule_code(module: str) -> str:
    """The code of the rule defined in ``safety_rules.<module>``."""
    from helios_migrate.rules import registered_rules

    return next(rule.code for rule in registered_rules() if rule.module == f"safety_rules.{module}")
