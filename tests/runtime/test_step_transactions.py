"""A step's transaction goes to the server as one message (its lock is held for the server's work,
not for a round trip per statement), on a real server (PostgreSQL 15 and 18): the statements
keep their text exactly (percent signs, colons, a trailing comment), a failing statement leaves
nothing of the step behind, and the connection works afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from helios_migrate import runtime
from helios_migrate.config import RuntimeSettings


@pytest.fixture
def op(fresh_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr(runtime, "settings", lambda: RuntimeSettings(max_replica_lag=None))
    engine = sa.create_engine(fresh_db.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        yield Operations(MigrationContext.configure(conn))
    engine.dispose()


def _one(op: Any, sql: str) -> Any:
    url = op.get_bind().engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
        return row[0] if row else None


def test_statements_keep_their_text_and_a_trailing_comment_cannot_hide_the_commit(op: Any) -> None:
    runtime.run_in_own_transaction(op, ["CREATE TABLE t (id int)"])
    runtime.run_in_own_transaction(op, [
        "ALTER TABLE t ADD COLUMN a text DEFAULT '50%s: %(x)s %% :y' -- the comment ends the line",
        "ALTER TABLE t ADD COLUMN b int",
    ], lock_timeout="1s", statement_timeout="5s")
    assert _one(op, "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 't'::regclass") == (
        "'50%s: %(x)s %% :y'::text"
    )
    assert _one(op, "SELECT count(*) FROM information_schema.columns WHERE table_name = 't'") == 3
    assert _one(op, "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'") == 0


def test_a_failing_statement_leaves_nothing_of_the_step_and_the_connection_works(op: Any) -> None:
    runtime.run_in_own_transaction(op, ["CREATE TABLE t (id int)"])
    with pytest.raises(sa.exc.DBAPIError, match="already exists"):
        runtime.run_in_own_transaction(op, ["ALTER TABLE t ADD COLUMN c int", "ALTER TABLE t ADD COLUMN c int"])
    assert _one(op, "SELECT count(*) FROM information_schema.columns WHERE table_name = 't'") == 1
    runtime.run_in_own_transaction(op, ["ALTER TABLE t ADD COLUMN d int"])
    assert _one(op, "SELECT count(*) FROM information_schema.columns WHERE table_name = 't'") == 2
