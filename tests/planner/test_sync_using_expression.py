"""A type change's ``USING`` expression, copied into the sync trigger, reads the row being written.

Every column the expression names becomes ``NEW.<column>`` -- found in the parsed expression, not by
text: a type whose name contains the column's (``status::order_status``) stays as it is, and another
column of the row (``coalesce(extra, 0)``) is read from the row too.  Each expression is run by the
real trigger on PostgreSQL 15 and 18.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from helios_migrate import runtime
from helios_migrate.changes import AlterColumnType, QualifiedName
from helios_migrate.plan import SyncTrigger
from helios_migrate.planner import StaticFacts, plan_changes
from helios_migrate.versions import PgVersion

FACTS = StaticFacts(rows={"orders": True}, keys={"orders": ("id",)})


def _sync(column: str, new_type: str, old_type: str, using: str) -> SyncTrigger:
    change = AlterColumnType(on=QualifiedName("orders"), column=column, new_type=new_type, old_type=old_type,
                             using=using)
    plan = plan_changes([change], PgVersion(18, 0), facts=FACTS)
    (trigger,) = [s.sync_trigger for s in plan.steps if s.sync_trigger is not None]
    return trigger


@pytest.fixture
def op(fresh_db: str) -> Iterator[Any]:
    engine = sa.create_engine(fresh_db.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        yield Operations(MigrationContext.configure(conn))
    engine.dispose()


CASES = [
    # column, old type, new type, USING, value written, expected copy
    ("status", "text", "order_status", "status::order_status", "'paid'", "paid"),
    ("qty", "integer", "bigint", "qty * 100 + coalesce(extra, 0)", "3", "305"),
    ("qty", "integer", "text", "CASE WHEN qty > 1 THEN 'qty many' ELSE 'qty one' END", "2", "qty many"),
]


@pytest.mark.parametrize(("column", "old", "new", "using", "value", "copy"), CASES,
                         ids=["type named after the column", "another column", "the name in a string"])
def test_using_expression_runs_in_the_sync_trigger(op: Any, fresh_db: str, column: str, old: str, new: str,
                                                   using: str, value: str, copy: str) -> None:
    trigger = _sync(column, new, old, using)
    assert trigger.expression is not None and "order_NEW" not in trigger.expression and "'NEW." not in trigger.expression
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TYPE order_status AS ENUM ('new', 'paid')")
        conn.execute(f"CREATE TABLE orders (id bigint PRIMARY KEY, {column} {old}, extra integer, "  # type: ignore[arg-type]
                     f"{trigger.target} {new})")
        runtime.sync_column_trigger(op, "orders", trigger.source, trigger.target, trigger.expression,
                                    name=trigger.name)
        conn.execute(f"INSERT INTO orders (id, {column}, extra) VALUES (1, {value}, 5)")  # type: ignore[arg-type]
        got = conn.execute(f"SELECT {trigger.target}::text FROM orders").fetchone()  # type: ignore[arg-type]
    assert got == (copy,)
