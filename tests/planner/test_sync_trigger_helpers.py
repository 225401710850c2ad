"""Sync triggers are named runtime helpers in a revision, not inline plpgsql.

The planner's steps hold the statements (the rules judge them); the revision calls
``runtime.sync_column_trigger`` / ``runtime.drop_sync_trigger``, which run the same statements from
the same recipe -- online on a real server (PostgreSQL 15 and 18) and offline (``--sql``) through
``op.execute``.
"""

from __future__ import annotations

import ast
import io
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from alembic_plugin.ops import run_step, step_lines
from helios_migrate import runtime
from helios_migrate.changes import AlterColumnType, ColumnDef, QualifiedName
from helios_migrate.plan import Plan, Step, SyncTrigger
from helios_migrate.planner import StaticFacts, plan_changes, plan_column_rename
from helios_migrate.planner.triggers import drop_sync_trigger_statements, sync_trigger_statements
from helios_migrate.versions import PgVersion

V18 = PgVersion(18, 0)
FACTS = StaticFacts(rows={"orders": True}, keys={"orders": ("id",)})


def _type_change() -> Plan:
    change = AlterColumnType(on=QualifiedName("orders"), column="qty", new_type="bigint", old_type="integer")
    return plan_changes([change], V18, facts=FACTS)


def _rename() -> Plan:
    return plan_column_rename(QualifiedName("orders"), ColumnDef("qty", "integer"), ColumnDef("quantity", "integer"),
                              V18, facts=FACTS)


def _revision_lines(plan: Plan) -> tuple[list[str], list[str]]:
    """The calls of the upgrade and of the downgrade, one per line (``ast.unparse``)."""
    up = [line for step in plan.steps for line in step_lines(step)]
    down = [line for step in plan.downgrade_steps() for line in step_lines(step.reversed())]
    return _code(up), _code(down)


def _code(lines: list[str]) -> list[str]:
    return ast.unparse(ast.parse("\n".join(line for line in lines if not line.startswith("#")))).splitlines()


@pytest.mark.parametrize("make", [_type_change, _rename], ids=["type change", "rename"])
def test_revision_calls_named_helpers_instead_of_plpgsql(make: Any) -> None:
    up, down = _revision_lines(make())
    text = "\n".join(up + down)
    assert "plpgsql" not in text and "CREATE OR REPLACE FUNCTION" not in text and "CREATE TRIGGER" not in text
    assert any(line.startswith("runtime.sync_column_trigger(") for line in up)
    assert any(line.startswith("runtime.drop_sync_trigger(") or "DROP TRIGGER" in line for line in down)


def test_type_change_calls_read_like_code() -> None:
    up, down = _revision_lines(_type_change())
    assert "runtime.sync_column_trigger(op, 'orders', 'qty', 'qty__new', '(NEW.qty)::bigint', " \
           "name='orders_qty_sync', lock_timeout='2s', statement_timeout='30s', attempts=5, backoff=0.5)" in up
    assert "runtime.drop_sync_trigger(op, 'orders', 'orders_qty_sync', lock_timeout='2s', " \
           "statement_timeout='30s', attempts=5, backoff=0.5)" in down
    # The way back creates its own trigger the same way.
    assert any(line.startswith("runtime.sync_column_trigger(op, 'orders', 'qty', 'qty__old', "
                               "'(NEW.qty)::integer', name='orders_qty_back'") for line in down)


def test_rename_downgrade_restores_the_column_with_its_trigger() -> None:
    plan = _rename()
    contract = plan.steps[-1].reversed()
    (call,) = _code(step_lines(contract))
    assert call.startswith("runtime.sync_column_trigger(op, 'orders', 'qty', 'quantity', name='orders_qty_quantity_sync', "
                           "before=['ALTER TABLE orders ADD COLUMN IF NOT EXISTS qty integer']")


def _offline_sql(step: Step) -> list[str]:
    buffer = io.StringIO()
    context = MigrationContext.configure(dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buffer})
    run_step(Operations(context), step)
    return [s.strip() for s in buffer.getvalue().split(";\n") if s.strip()]


def test_offline_helper_emits_the_plan_statements() -> None:
    plan = _type_change()
    step = next(s for s in plan.steps if s.sync_trigger is not None)
    emitted = _offline_sql(step)
    # Its own transaction: BEGIN, the timeouts, the plan's statements, COMMIT.
    first = emitted.index(step.sql[0])
    assert emitted[first - 3:first] == ["BEGIN", "SET LOCAL lock_timeout = '2s'", "SET LOCAL statement_timeout = '30s'"]
    assert emitted[first:first + len(step.sql) + 1] == [*step.sql, "COMMIT"]
    dropped = _offline_sql(step.reversed())
    inverse = list(step.inverse or ())
    first = dropped.index(inverse[0])
    assert dropped[first:first + len(inverse) + 1] == [*inverse, "COMMIT"]


@pytest.fixture
def op(fresh_db: str) -> Iterator[Any]:
    engine = sa.create_engine(fresh_db.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        yield Operations(MigrationContext.configure(conn))
    engine.dispose()


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]  # type: ignore[arg-type]


def _run(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def test_helpers_on_a_real_server(op: Any, fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute('CREATE SCHEMA "odd.schema"; CREATE TABLE "odd.schema"."order" '
                     '(id bigint PRIMARY KEY, "user" integer, user_new bigint, a text, b text)')
    table = runtime.table_argument("odd.schema", "order")
    runtime.sync_column_trigger(op, table, "user", "user_new", '(NEW."user")::bigint', name="order_user_sync")
    runtime.sync_column_trigger(op, table, "a", "b", name="order_a_b_sync")
    _run(fresh_db, "INSERT INTO \"odd.schema\".\"order\" (id, \"user\", a) VALUES (1, 7, 'x'), (2, 8, NULL)")
    _run(fresh_db, "UPDATE \"odd.schema\".\"order\" SET b = 'y' WHERE id = 2")
    assert _rows(fresh_db, 'SELECT id, user_new, a, b FROM "odd.schema"."order" ORDER BY id') == [
        (1, 7, "x", "x"), (2, 8, "y", "y"),
    ]
    # Running it again replaces it (a re-run of an interrupted upgrade).
    runtime.sync_column_trigger(op, table, "user", "user_new", '(NEW."user")::bigint', name="order_user_sync",
                                policy=runtime.Policy(lock_timeout="1s"))
    runtime.drop_sync_trigger(op, table, "order_user_sync")
    runtime.drop_sync_trigger(op, table, "order_a_b_sync")
    runtime.drop_sync_trigger(op, table, "order_a_b_sync")  # gone already: nothing to do
    assert _rows(fresh_db, "SELECT count(*) FROM pg_trigger WHERE tgrelid = '\"odd.schema\".\"order\"'::regclass "
                           "AND NOT tgisinternal") == [(0,)]
    assert _rows(fresh_db, "SELECT count(*) FROM pg_proc WHERE proname IN ('order_user_sync', 'order_a_b_sync')"
                 ) == [(0,)]


def test_recipe_round_trips_through_the_planner_and_the_runtime() -> None:
    trigger = SyncTrigger(QualifiedName("order", "odd.schema"), "t_sync", "user", "user_new", '(NEW."user")::bigint')
    statements = sync_trigger_statements(trigger)
    assert statements[0].startswith('CREATE OR REPLACE FUNCTION "odd.schema".t_sync() RETURNS trigger')
    assert 'NEW.user_new := (NEW."user")::bigint' in statements[0]
    assert drop_sync_trigger_statements(trigger) == (
        'DROP TRIGGER IF EXISTS t_sync ON "odd.schema"."order"', 'DROP FUNCTION IF EXISTS "odd.schema".t_sync()',
    )
