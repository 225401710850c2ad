"""Temporary Alembic projects for the verify tests."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ENV_PY = '''
from alembic import context
from sqlalchemy import create_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")


def run_migrations_online():
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
'''

INI = """
[alembic]
script_location = {root}
prepend_sys_path = {root}
path_separator = os
sqlalchemy.url = postgresql+psycopg://nobody@127.0.0.1:1/not_used
"""

REVISION = '''"""{message}"""
from alembic import op
import sqlalchemy as sa

revision = {revision!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
{upgrade}


def downgrade():
{downgrade}
'''


@dataclass(frozen=True)
class Rev:
    message: str
    upgrade: str
    downgrade: str


def make_project(root: Path, revisions: Sequence[Rev]) -> Path:
    """An Alembic project under ``root`` with one file per revision (ids r001, r002, ...);
    returns the path of its alembic.ini."""
    (root / "versions").mkdir(parents=True, exist_ok=True)
    (root / "env.py").write_text(ENV_PY)
    (root / "alembic.ini").write_text(textwrap.dedent(INI.format(root=root)))
    down = None
    for i, rev in enumerate(revisions, start=1):
        rid = f"r{i:03d}"
        body = REVISION.format(
            message=rev.message,
            revision=rid,
            down=down,
            upgrade=textwrap.indent(textwrap.dedent(rev.upgrade).strip() or "pass", "    "),
            downgrade=textwrap.indent(textwrap.dedent(rev.downgrade).strip() or "pass", "    "),
        )
        (root / "versions" / f"{rid}.py").write_text(body)
        down = rid
    return root / "alembic.ini"


BASE_TABLES = Rev(
    "customers and orders",
    """
    op.create_table(
        "customers",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("email", sa.String(200), nullable=False, unique=True),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("customer_id", sa.BigInteger, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("total", sa.Numeric(10, 2), nullable=False),
        sa.Column("note", sa.Text),
    )
    """,
    """
    op.drop_table("orders")
    op.drop_table("customers")
    """,
)
