"""``ADD CONSTRAINT ... PRIMARY KEY | UNIQUE USING INDEX``: the constraint adopts the named index
(it used to plan ``CREATE UNIQUE INDEX ... ()``, an index on no column).  A primary key's columns
are made NOT NULL first without a long lock when they are known to be nullable."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
import pytest

from helios_migrate.changes import CreateIndex, QualifiedName
from helios_migrate.plan import Step, TransactionMode
from helios_migrate.planner import LiveFacts, plan_changes
from helios_migrate.sql_parse import changes_from_sql
from helios_migrate.versions import PgVersion

ADOPT_PK = "ALTER TABLE t ADD CONSTRAINT t_pkey PRIMARY KEY USING INDEX t_id_idx"
ADOPT_UNIQUE = "ALTER TABLE t ADD CONSTRAINT t_code_key UNIQUE USING INDEX t_code_idx"


def _statements(steps: Sequence[Step]) -> list[str]:
    return [sql for step in steps for sql in step.sql]


@pytest.mark.parametrize("sql", [ADOPT_PK, ADOPT_UNIQUE])
def test_offline_plan_adopts_the_named_index(sql: str) -> None:
    plan = plan_changes(changes_from_sql(sql), PgVersion(18, 0))
    assert _statements(plan.steps) == [sql]
    assert not any("()" in s for s in _statements(plan.steps))
    assert not any(s.index is not None for s in plan.steps), "no index is built: it exists"
    (step,) = plan.steps
    assert step.transaction is TransactionMode.OWN
    assert step.inverse == (f"ALTER TABLE t DROP CONSTRAINT IF EXISTS {sql.split()[5]}",)


def test_offline_primary_key_says_its_columns_are_unknown() -> None:
    plan = plan_changes(changes_from_sql(ADOPT_PK), PgVersion(15, 0))
    assert any("t_id_idx are not known" in note and "NOT NULL first" in note for note in plan.notes)


def test_index_built_in_the_same_revision_gives_the_columns() -> None:
    built = CreateIndex(on=QualifiedName("t"), name="t_id_idx", columns=("id",), unique=True, concurrently=True)
    plan = plan_changes(changes_from_sql(ADOPT_PK), PgVersion(15, 0), new_indexes=[built])
    assert not plan.notes
    assert _statements(plan.steps) == [ADOPT_PK]  # nothing is known to be nullable: no NOT NULL steps


def _run(conn: psycopg.Connection[tuple[object, ...]], steps: Sequence[Step]) -> None:
    """Each step as the runtime runs it: skipped when done, in autocommit or in a transaction of its own."""
    for step in steps:
        if not step.sql:
            continue
        if step.done_when and conn.execute(step.done_when).fetchone() == (True,):  # type: ignore[arg-type]
            continue
        if step.transaction is TransactionMode.AUTOCOMMIT:
            for sql in step.sql:
                conn.execute(sql)  # type: ignore[arg-type]
        else:
            with conn.transaction():
                for sql in step.sql:
                    conn.execute(sql)  # type: ignore[arg-type]


def test_primary_key_using_index_on_a_live_table(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id bigint, code text)")
        conn.execute("INSERT INTO t SELECT g, 'c' || g FROM generate_series(1, 500) g")
        conn.execute("CREATE UNIQUE INDEX CONCURRENTLY t_id_idx ON t (id)")
        version = PgVersion.parse(str(conn.execute("SHOW server_version_num").fetchone()[0]))  # type: ignore[index]
        plan = plan_changes(changes_from_sql(ADOPT_PK), version, facts=LiveFacts(conn))
        statements = _statements(plan.steps)
        # id is nullable: NOT NULL comes first, through NOT VALID + VALIDATE, then the adoption.
        assert statements[-1] == ADOPT_PK
        assert any("VALIDATE CONSTRAINT" in s for s in statements[:-1])
        assert not any("()" in s for s in statements)
        _run(conn, plan.steps)
        assert conn.execute(
            "SELECT c.relname, i.indisprimary, a.attnotnull FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE i.indrelid = 't'::regclass"
        ).fetchall() == [("t_pkey", True, True)]
        # Re-running the finished plan changes nothing (done_when, IF EXISTS).
        _run(conn, plan.steps)
        _run(conn, [s.reversed() for s in plan.downgrade_steps()])
        assert conn.execute("SELECT count(*) FROM pg_constraint WHERE conrelid = 't'::regclass AND contype = 'p'"
                            ).fetchone() == (0,)
        assert conn.execute("SELECT attnotnull FROM pg_attribute WHERE attrelid = 't'::regclass "
                            "AND attname = 'id'").fetchone() == (False,)


def test_primary_key_on_not_null_columns_needs_no_extra_step(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id bigint NOT NULL, code text)")
        conn.execute("CREATE UNIQUE INDEX t_id_idx ON t (id)")
        conn.execute("CREATE UNIQUE INDEX t_code_idx ON t (code)")
        version = PgVersion.parse(str(conn.execute("SHOW server_version_num").fetchone()[0]))  # type: ignore[index]
        plan = plan_changes(changes_from_sql(f"{ADOPT_PK}; {ADOPT_UNIQUE}"), version, facts=LiveFacts(conn))
        assert _statements(plan.steps) == [ADOPT_PK, ADOPT_UNIQUE]
        assert not plan.notes
        _run(conn, plan.steps)
        assert conn.execute("SELECT conname, contype FROM pg_constraint WHERE conrelid = 't'::regclass AND contype <> 'n' "
                            "ORDER BY 1").fetchall() == [("t_code_key", "u"), ("t_pkey", "p")]
