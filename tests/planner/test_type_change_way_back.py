"""A catalog-only type change whose reverse rewrites the table goes back by a reverse
expand/contract, never by an in-place ALTER under ACCESS EXCLUSIVE (PostgreSQL 15 and 18).

``numeric(10, 2) -> numeric(14, 2)`` widens the typmod: no rewrite going up.  Going down,
``numeric(14, 2) -> numeric(10, 2)`` rewrites every row; in place it would hold ACCESS EXCLUSIVE for the
whole rewrite (1.1 s of stalled writes at 1M rows in ``bench/write_stall.py``).  The user's path:
models -> ``alembic revision --autogenerate`` -> upgrade -> downgrade while the application writes.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "autogen"))

from autogen_harness import Project, Writer, models_source

from helios_migrate.changes import AlterColumnType, QualifiedName
from helios_migrate.plan import Phase, TransactionMode
from helios_migrate.planner import LiveFacts, plan_changes
from helios_migrate.versions import PgVersion

ROWS = 3000
PRICE_WIDER = {"price": 'sa.Column("price", sa.Numeric(14, 2))'}
PRICE_TYPE = (
    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
    "WHERE attrelid = 'items'::regclass AND attname = 'price'"
)


@pytest.fixture
def project(tmp_path: Path, fresh_db: str) -> Project:
    return Project.create(tmp_path / "proj", fresh_db, rows=ROWS)


def _rows(project: Project, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(project.url) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


def _function_source(source: str, name: str) -> str:
    """The code of ``upgrade`` or ``downgrade`` in a revision, one call per line."""
    tree = ast.parse(source)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    return ast.unparse(fn)


def test_widened_numeric_goes_back_by_expand_contract_under_writes(project: Project) -> None:
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute("CREATE INDEX items_price_idx ON items (price)")
        conn.execute("ALTER TABLE items ADD CONSTRAINT items_price_check CHECK (price >= 0)")
    before = _rows(project, "SELECT id, price FROM items ORDER BY id")
    project.write_models(models_source(PRICE_WIDER, extra=[
        'sa.Index("items_status_idx", "status")', 'sa.Index("items_price_idx", "price")',
        'sa.CheckConstraint("price >= 0", name="items_price_check")',
    ]))
    source = project.autogenerate()
    up, down = _function_source(source, "upgrade"), _function_source(source, "downgrade")
    # Going up: catalog-only, in place.
    assert "ALTER TABLE items ALTER COLUMN price TYPE numeric(14,2)" in up
    # Going down: the old column re-created beside the new one, synced, backfilled, swapped.
    assert "TYPE numeric(10,2)" not in down
    assert "runtime.check_convertible(op, 'items', 'price', 'numeric(10,2)'" in down
    assert "price__old" in down and "runtime.backfill(op, 'items', 'price__old'" in down
    assert "UPDATE items SET" not in down and "data_losing_step" not in down

    project.alembic("upgrade", "head")
    assert _rows(project, PRICE_TYPE) == [("numeric(14,2)",)]
    writer = Writer(project.url)
    writer.start()
    try:
        project.alembic("downgrade", "-1")
    finally:
        writer.stop()
    assert writer.errors == []
    assert writer.inserted > 0
    assert _rows(project, PRICE_TYPE) == [("numeric(10,2)",)]
    # Every value is back, the writer's rows too; nothing of the way back is left behind.
    assert _rows(project, f"SELECT id, price FROM items WHERE id <= {ROWS} ORDER BY id") == before
    assert _rows(project, f"SELECT count(*) FROM items WHERE price IS NULL AND id > {ROWS}") == [(0,)]
    columns = _rows(project, "SELECT attname FROM pg_attribute WHERE attrelid = 'items'::regclass "
                             "AND attnum > 0 AND NOT attisdropped AND attname LIKE 'price%'")
    assert columns == [("price",)]
    assert _rows(project, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'items'::regclass "
                          "AND NOT tgisinternal") == [(0,)]
    # The index and the CHECK are on the numeric(10, 2) column again, under their own names.
    assert _rows(project, "SELECT indexdef FROM pg_indexes WHERE indexname = 'items_price_idx'") == [
        ("CREATE INDEX items_price_idx ON public.items USING btree (price)",)
    ]
    assert _rows(project, "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                          "WHERE conname = 'items_price_check'") == [("CHECK ((price >= (0)::numeric))",)]
    # Upgrading again works: the way back left the table as the first upgrade found it.
    project.alembic("upgrade", "head")
    assert _rows(project, PRICE_TYPE) == [("numeric(14,2)",)]


def test_way_back_plan_holds_no_long_lock(fresh_db: str) -> None:
    """The plan's downgrade steps: only catalog-only statements run under ACCESS EXCLUSIVE; the
    rewrite of the values is a batched backfill."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(12, 2) NOT NULL DEFAULT 0)")
        conn.execute("INSERT INTO orders SELECT g, g FROM generate_series(1, 100) g")
        version = PgVersion.parse(str(conn.execute("SHOW server_version_num").fetchone()[0]))  # type: ignore[index]
        change = AlterColumnType(on=QualifiedName("orders"), column="total", new_type="numeric",
                                 old_type="numeric(12,2)")
        plan = plan_changes([change], version, facts=LiveFacts(conn))
    up = [s for s in plan.steps if s.sql]
    assert [s.sql for s in up] == [("ALTER TABLE orders ALTER COLUMN total TYPE numeric",)]
    down = [s.reversed() for s in plan.downgrade_steps()]
    kinds = [
        "check" if s.conversion_check else "backfill" if s.backfill else s.transaction.value for s in down if
        s.sql or s.backfill or s.conversion_check
    ]
    assert kinds[0] == "check" and "backfill" in kinds
    statements = [sql for s in down for sql in s.sql]
    assert not [sql for sql in statements if " TYPE " in sql], statements
    assert "ALTER TABLE orders ADD COLUMN IF NOT EXISTS total__old numeric(12,2)" in statements
    assert "ALTER TABLE orders DROP COLUMN IF EXISTS total__new" in statements
    assert all(s.phase is Phase.CONTRACT for s in plan.steps if not s.sql)
    assert all(s.transaction is not TransactionMode.MIGRATION for s in down if s.sql)
