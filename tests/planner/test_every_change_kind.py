"""Every change kind plans to steps that do something, or to a clear error: never an empty step.

A change kept as written gets its SQL from one renderer; the SQL it writes parses back (pglast,
PostgreSQL's own grammar) to the same change.  A change the model does not hold enough of to write
(a data migration) raises :class:`UnrenderableChange` naming it.  The rendered statements also run
on a real server (PostgreSQL 15 and 18).
"""

from __future__ import annotations

import psycopg
import pytest

from helios_migrate import changes as c
from helios_migrate.changes import CHANGE_TYPES, Change, QualifiedName
from helios_migrate.plan import Plan, Step, TransactionMode
from helios_migrate.planner import (
    PlanPolicy,
    StaticFacts,
    UnrenderableChange,
    change_sql,
    plan_changes,
)
from helios_migrate.sql_parse import changes_from_sql
from helios_migrate.versions import PgVersion

# One statement (or more) per change kind, as the SQL front end reads it.
STATEMENTS: dict[type[Change], list[str]] = {
    c.CreateTable: [
        "CREATE TABLE t2 (id bigint PRIMARY KEY, code text UNIQUE, n integer NOT NULL DEFAULT 0 CHECK (n >= 0), "
        "p bigint REFERENCES t (id), CONSTRAINT t2_n_key UNIQUE (n))",
        "CREATE TABLE IF NOT EXISTS events (id bigint, at date NOT NULL) PARTITION BY RANGE (at)",
        "CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
    ],
    c.DropTable: ["DROP TABLE IF EXISTS t CASCADE"],
    c.RenameTable: ["ALTER TABLE t RENAME TO t_old"],
    c.TruncateTable: ["TRUNCATE TABLE t", "TRUNCATE TABLE t RESTART IDENTITY CASCADE"],
    c.VacuumFull: ["VACUUM FULL t"],
    c.Cluster: ["CLUSTER t USING t_pkey"],
    c.AddColumn: ["ALTER TABLE t ADD COLUMN s serial", 'ALTER TABLE t ADD COLUMN "user" text DEFAULT \'x\''],
    c.DropColumn: ["ALTER TABLE t DROP COLUMN note"],
    c.RenameColumn: ["ALTER TABLE t RENAME COLUMN note TO remark"],
    c.AlterColumnType: ["ALTER TABLE t ALTER COLUMN note TYPE varchar(20)"],
    c.SetNotNull: ["ALTER TABLE t ALTER COLUMN note SET NOT NULL"],
    c.DropNotNull: ["ALTER TABLE t ALTER COLUMN n DROP NOT NULL"],
    c.SetDefault: ["ALTER TABLE t ALTER COLUMN n SET DEFAULT 1"],
    c.DropDefault: ["ALTER TABLE t ALTER COLUMN n DROP DEFAULT"],
    c.AddConstraint: [
        "ALTER TABLE t ADD CONSTRAINT t_n_check CHECK (n > 0) NOT VALID",
        "ALTER TABLE t ADD CONSTRAINT t_code_key UNIQUE USING INDEX t_code_idx",
    ],
    c.DropConstraint: ["ALTER TABLE t DROP CONSTRAINT IF EXISTS t_n_check"],
    c.ValidateConstraint: ["ALTER TABLE t VALIDATE CONSTRAINT t_n_check"],
    c.CreateIndex: ["CREATE INDEX CONCURRENTLY IF NOT EXISTS t_lower_idx ON t (lower(note)) WHERE n > 1"],
    c.DropIndex: ["DROP INDEX CONCURRENTLY IF EXISTS t_code_idx"],
    c.Reindex: ["REINDEX TABLE CONCURRENTLY t", "REINDEX INDEX t_pkey"],
    c.CreateEnum: ["CREATE TYPE mood AS ENUM ('sad', 'ok')"],
    c.DropEnum: ["DROP TYPE IF EXISTS mood"],
    c.AddEnumValue: ["ALTER TYPE mood ADD VALUE IF NOT EXISTS 'happy' AFTER 'ok'"],
    c.RenameEnumValue: ["ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'"],
    c.CreateTrigger: ["CREATE TRIGGER t_touch BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch()"],
    c.DropTrigger: ["DROP TRIGGER IF EXISTS t_touch ON t"],
    c.CreateView: ["CREATE OR REPLACE VIEW v AS SELECT id, note FROM t WHERE n > 0",
                   "CREATE MATERIALIZED VIEW mv AS SELECT id FROM t"],
    c.DropView: ["DROP VIEW IF EXISTS v", "DROP MATERIALIZED VIEW mv"],
    c.RefreshMaterializedView: ["REFRESH MATERIALIZED VIEW CONCURRENTLY mv"],
    c.AttachPartition: ["ALTER TABLE events ATTACH PARTITION events_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')"],
    c.DetachPartition: ["ALTER TABLE events DETACH PARTITION events_2026 CONCURRENTLY",
                        "ALTER TABLE events DETACH PARTITION events_2027"],
    c.ModifyRows: ["UPDATE t SET n = 0 WHERE n IS NULL"],
    c.SetSetting: ["SET lock_timeout = '2s'", "SET LOCAL search_path = app, public", "RESET statement_timeout"],
    c.TransactionControl: ["BEGIN", "COMMIT"],
    c.RawStatement: ["COMMENT ON TABLE t IS 'orders'"],
}
UNRENDERABLE = {c.ModifyRows}
VERSIONS = (PgVersion(15, 0), PgVersion(18, 0))
FACTS = StaticFacts(rows={"t": True, "events": True}, keys={"t": ("id",)})


def _samples() -> list[tuple[type[Change], Change]]:
    out = []
    for kind, statements in STATEMENTS.items():
        for sql in statements:
            parsed = changes_from_sql(sql)
            assert [type(ch) for ch in parsed] == [kind], (sql, parsed)
            out.append((kind, parsed[0]))
    return out


SAMPLES = _samples()


def test_every_change_kind_has_a_sample() -> None:
    assert set(STATEMENTS) == set(CHANGE_TYPES)


def _does_something(step: Step) -> bool:
    """SQL, a backfill or a conversion check -- going up, or (a step of the way back) going down."""
    return bool(step.sql or step.backfill or step.conversion_check) or bool(
        step.inverse or step.inverse_backfill or step.inverse_conversion_check
    )


@pytest.mark.parametrize("version", VERSIONS, ids=str)
@pytest.mark.parametrize(("kind", "change"), SAMPLES, ids=[f"{k.__name__}-{i}" for i, (k, _) in enumerate(SAMPLES)])
@pytest.mark.parametrize("where", ["existing", "new table", "small table"])
def test_no_step_is_empty(kind: type[Change], change: Change, version: PgVersion, where: str) -> None:
    table = change.table
    new_tables = [table] if where == "new table" and table is not None else []
    policy = PlanPolicy(small_tables=(table.name,)) if where == "small table" and table is not None else None
    if kind in UNRENDERABLE:
        with pytest.raises(UnrenderableChange, match="data migration"):
            plan_changes([change], version, facts=FACTS, policy=policy, new_tables=new_tables)
        return
    plan: Plan = plan_changes([change], version, facts=FACTS, policy=policy, new_tables=new_tables)
    assert plan.steps
    for step in plan.steps:
        assert _does_something(step), step
        if step.transaction is not TransactionMode.MIGRATION:
            # A step that replaces the operation in the revision runs exactly its statements.
            assert step.sql or step.backfill or step.conversion_check or step.inverse is not None, step


@pytest.mark.parametrize(("kind", "change"), SAMPLES, ids=[f"{k.__name__}-{i}" for i, (k, _) in enumerate(SAMPLES)])
def test_rendered_sql_parses_back_to_the_same_change(kind: type[Change], change: Change) -> None:
    if kind in UNRENDERABLE:
        with pytest.raises(UnrenderableChange, match=r"UPDATE on t"):
            change_sql(change)
        return
    (sql,) = change_sql(change)
    again = changes_from_sql(sql)
    if kind is c.CreateIndex or kind is c.DropConstraint:
        # The planner writes these re-runnable: IF [NOT] EXISTS is added.
        assert [type(ch) for ch in again] == [kind]
        return
    assert again == [change], sql


def test_raw_statement_that_is_only_a_comment_is_refused() -> None:
    described = c.RawStatement(sql="-- alembic operation some.Op on t", relations=(QualifiedName("t"),))
    with pytest.raises(UnrenderableChange, match=r"no SQL is known for alembic operation some\.Op on t"):
        plan_changes([described], PgVersion(18, 0))


def test_statements_refused_in_a_transaction_run_in_autocommit() -> None:
    for sql in ("VACUUM FULL t", "REINDEX TABLE CONCURRENTLY t", "ALTER TABLE events DETACH PARTITION e CONCURRENTLY"):
        (step,) = plan_changes(changes_from_sql(sql), PgVersion(18, 0), facts=FACTS).steps
        assert step.transaction is TransactionMode.AUTOCOMMIT, sql
        assert step.sql == (sql,)


SETUP = """
CREATE TABLE t (id bigint PRIMARY KEY, note text, n integer NOT NULL DEFAULT 0, code text);
INSERT INTO t SELECT g, 'n' || g, g, 'c' || g FROM generate_series(1, 50) g;
CREATE INDEX t_code_idx ON t (code);
CREATE UNIQUE INDEX t_code_uidx ON t (code);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TABLE events (id bigint, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE events_2027 (id bigint, at date NOT NULL);
"""
# Run in this order on one database: each statement's objects exist when it runs.
RUN = [
    "TRUNCATE TABLE t RESTART IDENTITY CASCADE",
    "VACUUM FULL t",
    "CLUSTER t USING t_pkey",
    'ALTER TABLE t ADD COLUMN "user" text DEFAULT \'x\'',
    "ALTER TABLE t ADD COLUMN s serial",
    "ALTER TABLE t ALTER COLUMN note TYPE varchar(20)",
    "ALTER TABLE t ADD CONSTRAINT t_n_check CHECK (n > 0) NOT VALID",
    "ALTER TABLE t VALIDATE CONSTRAINT t_n_check",
    "ALTER TABLE t ADD CONSTRAINT t_code_key UNIQUE USING INDEX t_code_uidx",
    "REINDEX TABLE CONCURRENTLY t",
    "CREATE TYPE mood AS ENUM ('sad', 'ok')",
    "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'",
    "CREATE TRIGGER t_touch BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch()",
    "DROP TRIGGER IF EXISTS t_touch ON t",
    "CREATE OR REPLACE VIEW v AS SELECT id, note FROM t WHERE n > 0",
    "CREATE MATERIALIZED VIEW mv AS SELECT id FROM t",
    "DROP MATERIALIZED VIEW mv",
    "ALTER TABLE events ATTACH PARTITION events_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')",
    "ALTER TABLE events DETACH PARTITION events_2026 CONCURRENTLY",
    "ALTER TABLE events DETACH PARTITION events_2027",
    "CREATE TABLE t2 (id bigint PRIMARY KEY, code text UNIQUE, n integer NOT NULL DEFAULT 0 CHECK (n >= 0), "
    "p bigint REFERENCES t (id), CONSTRAINT t2_n_key UNIQUE (n))",
    "SET search_path = public, pg_catalog",
]


def test_rendered_statements_run_on_a_real_server(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SETUP)
        for sql in RUN:
            for change in changes_from_sql(sql):
                for statement in change_sql(change):
                    conn.execute(statement)  # type: ignore[arg-type]
        assert conn.execute("SELECT count(*) FROM pg_constraint WHERE conname IN "
                            "('t_n_check', 't_code_key', 't2_n_key')").fetchone() == (3,)
        assert conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"
                            ).fetchone() == (0,)


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "GRANT SELECT ON t TO PUBLIC",
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        "COMMENT ON TABLE t IS 'the t table'",
    ],
)
def test_a_step_names_its_table_only_when_it_has_one(sql: str) -> None:
    """A step's description (the plan's lines, the impact header, the revision's comments) names
    the table its change is on; a statement on no table is named by its own words, never
    ``... on None``."""
    plan = plan_changes(changes_from_sql(sql), PgVersion(16), facts=StaticFacts())
    assert plan.steps
    for step in plan.steps:
        assert "None" not in step.description, step.description
    assert all(ch.title and "None" not in ch.title for ch in plan.source)


@pytest.mark.parametrize(
    ("sql", "concurrent"),
    [("REINDEX TABLE t", "REINDEX TABLE CONCURRENTLY t"), ("REINDEX INDEX t_n_idx", "REINDEX INDEX CONCURRENTLY t_n_idx")],
)
def test_a_reindex_is_planned_concurrently_and_runs_without_blocking_writes(
    fresh_db: str, sql: str, concurrent: str
) -> None:
    """A plain REINDEX blocks writes to its table for the whole rebuild: the plan is the same
    rebuild CONCURRENTLY, in autocommit, with nothing to undo; it runs on a real server while a
    writer's transaction stays open on the table, which a plain REINDEX TABLE would wait behind."""
    from helios_migrate.knowledge import effects_for_sql

    version = PgVersion(16)
    plan = plan_changes(changes_from_sql(sql), version, facts=StaticFacts())
    [step] = plan.steps
    assert step.transaction is TransactionMode.AUTOCOMMIT and step.inverse == ()
    assert all("CONCURRENTLY" in s for s in step.sql), step.sql
    assert not any(lock.mode.blocks_writes for e in effects_for_sql(step.sql[0], version) for lock in e.locks)
    assert step.sql == (concurrent,)
    kept = plan_changes(changes_from_sql(concurrent), version, facts=StaticFacts()).steps
    assert [s.sql for s in kept] == [(concurrent,)], "already concurrent: kept as written"
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id bigint PRIMARY KEY, n int); CREATE INDEX t_n_idx ON t (n); "
                     "INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g")
        with psycopg.connect(fresh_db) as writer:
            writer.execute("INSERT INTO t VALUES (1001, 1001)")  # open: ROW EXCLUSIVE held
            conn.execute("SET lock_timeout = '1s'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                conn.execute(sql)  # the plain form waits behind the writer
            writer.commit()
        for statement in step.sql:
            conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone() == (0,)
