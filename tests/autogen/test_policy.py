"""Planning policy from ``[tool.helios-migrate]``: per-table overrides and the small-table threshold."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from helios_migrate import changes as c
from helios_migrate.changes import ColumnDef, QualifiedName
from helios_migrate.config import ConfigError, config_from_mapping
from helios_migrate.plan import TransactionMode
from helios_migrate.planner import LiveFacts, PlanPolicy, StaticFacts, plan_changes
from helios_migrate.versions import PgVersion

PG16 = PgVersion(16, 4)
ORDERS, EVENTS = QualifiedName("orders"), QualifiedName("events")
FACTS = StaticFacts(rows={"orders": True, "events": True}, keys={"orders": ("id",), "events": ("id",)})


def _policy(autogenerate: dict[str, object]) -> PlanPolicy:
    return PlanPolicy.from_config(
        config_from_mapping({"lock_timeout": "2s", "autogenerate": autogenerate}, "pyproject.toml")
    )


def _volatile_column(table: QualifiedName) -> c.AddColumn:
    return c.AddColumn(table, ColumnDef("token", "uuid", default="gen_random_uuid()"))


def test_per_table_override_applies_to_that_table_only() -> None:
    policy = _policy(
        {"tables": {"orders": {"lock_timeout": "500ms", "backfill_batch_size": 500, "lock_retries": 9}}}
    )
    plan = plan_changes([_volatile_column(ORDERS), _volatile_column(EVENTS)], PG16, facts=FACTS, policy=policy)
    by_table: dict[str, list[int]] = {}
    batches: dict[str, int] = {}
    for step in plan.steps:
        table = step.changes[0].table.name if step.changes and step.changes[0].table else None
        if step.retry is not None and table:
            by_table.setdefault(table, []).append(step.retry.lock_timeout_ms)
            assert step.retry.attempts == (9 if table == "orders" else 5)
        if step.backfill is not None:
            batches[step.backfill.table.name] = step.backfill.batch_size
    assert set(by_table["orders"]) == {500}
    assert set(by_table["events"]) == {2000}
    assert batches == {"orders": 500, "events": 10_000}


@pytest.mark.parametrize(
    "bad",
    [
        {"tables": {"orders": {"lock_timeot": "1s"}}},
        {"tables": {"orders": {"lock_timeout": "soon"}}},
        {"tables": {"orders": "1s"}},
        {"small_table_rows": -1},
    ],
)
def test_bad_policy_names_the_key(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as err:
        _policy(bad)
    assert "pyproject.toml" in str(err.value) and "autogenerate" in str(err.value)


def test_small_table_threshold_is_off_by_default_and_uses_the_row_estimate(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY)")
        conn.execute("CREATE TABLE events (id bigint PRIMARY KEY)")
        conn.execute("INSERT INTO orders SELECT generate_series(1, 50)")
        conn.execute("INSERT INTO events SELECT generate_series(1, 5000)")
        conn.execute("ANALYZE orders; ANALYZE events")
        facts = LiveFacts(conn)
        assert facts.row_estimate(ORDERS) == 50
        changes = [c.CreateIndex(ORDERS, "orders_id2_idx", ("id",)), c.CreateIndex(EVENTS, "events_id2_idx", ("id",))]
        default = plan_changes(changes, PG16, facts=facts, policy=_policy({}))
        assert all(s.transaction is not TransactionMode.MIGRATION for s in default.steps)
        small = plan_changes(changes, PG16, facts=facts, policy=_policy({"small_table_rows": 1000}))
        plain = [s for s in small.steps if s.transaction is TransactionMode.MIGRATION]
        assert [s.changes for s in plain] == [(changes[0],)]
        assert any("CONCURRENTLY" in sql for s in small.steps for sql in s.sql if "events" in sql)


def test_pyproject_example_in_readme_is_valid(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("[tool.helios-migrate.autogenerate.tables.orders]")[0].rsplit("```toml", 1)[1]
    block += "[tool.helios-migrate.autogenerate.tables.orders]" + readme.split(
        "[tool.helios-migrate.autogenerate.tables.orders]"
    )[1].split("```")[0]
    (tmp_path / "pyproject.toml").write_text(block)
    from helios_migrate.config import load_config

    policy = PlanPolicy.from_config(load_config(start=tmp_path))
    assert policy.for_table(ORDERS).lock_timeout != policy.lock_timeout
