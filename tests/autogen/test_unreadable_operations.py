"""An operation the change model cannot read is left as written, with a warning naming it; the
rest of the revision is still planned, reported and estimated.  PostgreSQL 15 and 18.

The unreadable operation here is a column of a user's type that SQLAlchemy cannot compile: the
plugin must neither fail ``alembic revision --autogenerate`` on it nor skip it silently.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import produce_migrations, render_python_code
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext

from alembic_plugin.ops import LockSafePlanOp


class Opaque(sa.types.TypeEngine[Any]):
    """A user's column type with no compilation for any dialect."""

    def __repr__(self) -> str:
        return "Opaque()"


def _leaves(container: Any) -> list[Any]:
    out: list[Any] = []
    for op in container.ops:
        out.extend(_leaves(op) if isinstance(op, ops.OpContainer) else [op])
    return out


def test_an_unreadable_operation_is_left_as_written_and_reported(
    fresh_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, note text)")
        conn.execute("INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 500) g")
    metadata = sa.MetaData()
    sa.Table(
        "items", metadata,
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("blob", Opaque()),
    )
    engine = sa.create_engine(fresh_db.replace("postgresql://", "postgresql+psycopg://", 1))
    caplog.set_level(logging.WARNING, logger="alembic.helios")
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                connection=conn,
                opts={"target_metadata": metadata, "autogenerate_plugins": ["alembic.autogenerate.*", "helios"]},
            )
            script = produce_migrations(context, metadata)
            context.opts["process_revision_directives"](context, None, [script])
            upgrade = render_python_code(script.upgrade_ops, migration_context=context)
    finally:
        engine.dispose()

    leaves = _leaves(script.upgrade_ops)
    kept = [op for op in leaves if isinstance(op, ops.AddColumnOp) and op.column.name == "blob"]
    assert len(kept) == 1, "the unreadable operation stays, as Alembic wrote it"
    assert any(isinstance(op, LockSafePlanOp) and "set not null" in op.title for op in leaves)
    assert "op.add_column('items', sa.Column('blob', " in upgrade
    assert "helios impact estimate" in upgrade

    warnings = [r.getMessage() for r in caplog.records if "AddColumnOp" in r.getMessage()]
    for consequence in ("left as written", "its locks are not reported", "not in the impact estimate"):
        assert any(consequence in w and "_compiler_dispatch" in w for w in warnings), (consequence, warnings)
