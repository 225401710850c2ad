"""Offline: each rewrite's steps, their SQL order and transaction structure, per server version,
and the SQL the rendered runtime calls emit in ``alembic upgrade --sql`` mode."""

from __future__ import annotations

import ast
import io
import re

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations

from alembic_plugin.ops import LockSafePlanOp, step_lines
from helios_migrate import changes as c
from helios_migrate.changes import (
    ColumnDef,
    Constraint,
    ConstraintKind,
    ForeignKeyTarget,
    QualifiedName,
)
from helios_migrate.plan import Phase, TransactionMode
from helios_migrate.planner import PlanPolicy, StaticFacts, plan_changes
from helios_migrate.versions import PgVersion

T = QualifiedName("items")
PG15, PG18 = PgVersion(15, 8), PgVersion(18, 1)
FACTS = StaticFacts(rows={"items": True}, keys={"items": ("id",)})


def code(source: str) -> str:
    """Rendered lines as the code they run, each call on one line."""
    return ast.unparse(ast.parse(source))



def _sql(plan_steps: object) -> list[tuple[str, str]]:
    return [(s.transaction.value, sql) for s in plan_steps for sql in s.sql]  # type: ignore[attr-defined]


def offline_sql(op: LockSafePlanOp) -> str:
    buf = io.StringIO()
    ctx = MigrationContext.configure(
        dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buf, "transactional_ddl": True}
    )
    ops = Operations(ctx)
    with ctx.begin_transaction():
        ops.invoke(op)
    return buf.getvalue()


def test_add_not_null_volatile_default_pg18() -> None:
    col = ColumnDef("token", "uuid", nullable=False, default="gen_random_uuid()")
    plan = plan_changes([c.AddColumn(on=T, column=col)], PG18, facts=FACTS)
    assert [s.phase for s in plan.steps] == [Phase.EXPAND, Phase.EXPAND, Phase.BACKFILL, Phase.EXPAND, Phase.EXPAND]
    assert _sql(plan.steps) == [
        ("own transaction", "ALTER TABLE items ADD COLUMN IF NOT EXISTS token uuid"),
        ("own transaction", "ALTER TABLE items ALTER COLUMN token SET DEFAULT gen_random_uuid()"),
        ("own transaction", "ALTER TABLE items ADD CONSTRAINT items_token_not_null NOT NULL token NOT VALID"),
        ("own transaction", "ALTER TABLE items VALIDATE CONSTRAINT items_token_not_null"),
    ]
    assert plan.steps[2].backfill is not None and plan.steps[2].backfill.expression == "gen_random_uuid()"
    # VALIDATE runs without statement_timeout: it scans the table.
    assert plan.steps[4].retry is not None and plan.steps[4].retry.statement_timeout_ms is None


def test_set_not_null_pg15_uses_check_then_set_not_null() -> None:
    plan = plan_changes([c.SetNotNull(on=T, column="note")], PG15, facts=FACTS)
    assert [sql for _, sql in _sql(plan.steps)] == [
        "ALTER TABLE items ADD CONSTRAINT items_note_not_null CHECK (note IS NOT NULL) NOT VALID",
        "ALTER TABLE items VALIDATE CONSTRAINT items_note_not_null",
        "ALTER TABLE items ALTER COLUMN note SET NOT NULL",
        "ALTER TABLE items DROP CONSTRAINT IF EXISTS items_note_not_null",
    ]
    assert all(s.transaction is TransactionMode.OWN for s in plan.steps)
    assert plan.steps[0].done_when and "pg_constraint" in plan.steps[0].done_when
    undo = [s.reversed() for s in reversed(plan.steps)]
    assert [sql for s in undo for sql in s.sql] == [
        "ALTER TABLE items ALTER COLUMN note DROP NOT NULL",
        "ALTER TABLE items DROP CONSTRAINT IF EXISTS items_note_not_null",
    ]


def test_constant_default_not_null_is_one_catalog_step() -> None:
    col = ColumnDef("flag", "boolean", nullable=False, default="false")
    plan = plan_changes([c.AddColumn(on=T, column=col)], PG15, facts=FACTS)
    assert _sql(plan.steps) == [
        ("own transaction", "ALTER TABLE items ADD COLUMN IF NOT EXISTS flag boolean DEFAULT false NOT NULL")
    ]


def test_foreign_key_with_supporting_index_and_default_name() -> None:
    fk = Constraint(ConstraintKind.FOREIGN_KEY, columns=("parent_id",),
                    references=ForeignKeyTarget(QualifiedName("parents"), ("id",)))
    plan = plan_changes([c.AddConstraint(on=T, constraint=fk)], PG15, facts=FACTS)
    assert _sql(plan.steps) == [
        ("autocommit", "CREATE INDEX CONCURRENTLY IF NOT EXISTS items_parent_id_idx ON items (parent_id)"),
        ("own transaction", "ALTER TABLE items ADD CONSTRAINT items_parent_id_fkey FOREIGN KEY (parent_id) "
         "REFERENCES parents (id) NOT VALID"),
        ("own transaction", "ALTER TABLE items VALIDATE CONSTRAINT items_parent_id_fkey"),
    ]
    no_index = plan_changes([c.AddConstraint(on=T, constraint=fk)], PG15, facts=FACTS,
                            policy=PlanPolicy(index_on_fk=False))
    assert len(no_index.steps) == 2
    covered = StaticFacts(rows={"items": True}, indexes={"items": (("parent_id", "id"),)})
    assert len(plan_changes([c.AddConstraint(on=T, constraint=fk)], PG15, facts=covered).steps) == 2


def test_check_not_valid_then_validate() -> None:
    k = Constraint(ConstraintKind.CHECK, name="items_qty_check", expression="qty >= 0")
    plan = plan_changes([c.AddConstraint(on=T, constraint=k)], PG18, facts=FACTS)
    assert [sql for _, sql in _sql(plan.steps)] == [
        "ALTER TABLE items ADD CONSTRAINT items_qty_check CHECK (qty >= 0) NOT VALID",
        "ALTER TABLE items VALIDATE CONSTRAINT items_qty_check",
    ]
    assert plan.steps[0].sql != plan.steps[1].sql  # never in the same transaction


@pytest.mark.parametrize("kind,name,word", [
    (ConstraintKind.UNIQUE, "items_code_key", "UNIQUE"),
    (ConstraintKind.PRIMARY_KEY, "items_pkey", "PRIMARY KEY"),
])
def test_unique_and_primary_key_via_concurrent_index(kind: ConstraintKind, name: str, word: str) -> None:
    plan = plan_changes([c.AddConstraint(on=T, constraint=Constraint(kind, columns=("code",)))], PG15, facts=FACTS)
    assert _sql(plan.steps) == [
        ("autocommit", f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {name} ON items (code)"),
        ("own transaction", f"ALTER TABLE items ADD CONSTRAINT {name} {word} USING INDEX {name}"),
    ]
    assert plan.steps[0].index == QualifiedName(name)


def test_create_and_drop_index() -> None:
    ix = c.CreateIndex(on=T, name=None, columns=("price",))
    drop = c.DropIndex(index=QualifiedName("items_status_idx"), on=T)
    recreate = {drop: [c.CreateIndex(on=T, name="items_status_idx", columns=("status",))]}
    plan = plan_changes([ix, drop], PG18, facts=FACTS, recreate=recreate)
    assert _sql(plan.steps) == [
        ("autocommit", "CREATE INDEX CONCURRENTLY IF NOT EXISTS items_price_idx ON items (price)"),
        ("autocommit", "DROP INDEX CONCURRENTLY IF EXISTS items_status_idx"),
    ]
    assert plan.steps[1].phase is Phase.CONTRACT
    assert plan.steps[1].inverse == ("CREATE INDEX CONCURRENTLY IF NOT EXISTS items_status_idx ON items (status)",)
    assert plan.steps[1].reversed().index == QualifiedName("items_status_idx")


def test_new_table_keeps_plain_forms() -> None:
    new = QualifiedName("audit")
    plan = plan_changes(
        [c.CreateTable(on=new, columns=(ColumnDef("id", "bigint"),)),
         c.CreateIndex(on=new, name="audit_id_idx", columns=("id",))],
        PG18,
    )
    assert all(s.transaction is TransactionMode.MIGRATION for s in plan.steps)


def test_alter_type_in_place_and_expand_contract() -> None:
    widen = c.AlterColumnType(on=T, column="status", new_type="varchar(50)", old_type="varchar(20)")
    plan = plan_changes([widen], PG15, facts=FACTS)
    assert _sql(plan.steps) == [("own transaction", "ALTER TABLE items ALTER COLUMN status TYPE varchar(50)")]
    grow = c.AlterColumnType(on=T, column="score", new_type="bigint", old_type="integer")
    plan = plan_changes([grow], PG15, facts=FACTS)
    going_up = [s for s in plan.steps if s.sql or s.backfill]
    assert [s.phase for s in going_up] == [Phase.EXPAND, Phase.EXPAND, Phase.BACKFILL, Phase.CONTRACT]
    swap = going_up[-1]
    assert "RENAME COLUMN score__new TO score" in swap.sql[-1]
    # The way down is an expand/contract in reverse: no data lost, no table-wide UPDATE.
    assert not swap.inverse_loses_data and swap.inverse is not None
    assert not any(sql.startswith("UPDATE") for sql in swap.inverse)
    down = [s.reversed() for s in reversed(plan.steps)]
    assert [s.backfill.column for s in down if s.backfill] == ["score__old"]
    assert down[-1].sql[0].startswith("ALTER TABLE items DROP COLUMN IF EXISTS score__new")


def test_drop_column_is_contract_and_downgrade_needs_opt_in() -> None:
    drop = c.DropColumn(on=T, column="legacy")
    plan = plan_changes([drop], PG18, facts=FACTS,
                        recreate={drop: [c.AddColumn(on=T, column=ColumnDef("legacy", "text"))]})
    (step,) = plan.steps
    assert step.phase is Phase.CONTRACT and step.inverse_loses_data
    undo = LockSafePlanOp(None, plan.steps, title="drop").reverse()
    lines = [line for s in undo.steps for line in step_lines(s)]
    assert "runtime.data_losing_step(op, 'undo: drop column items.legacy'" in code("\n".join(lines))


def test_drop_table_is_irreversible() -> None:
    plan = plan_changes([c.DropTable(on=T)], PG18, facts=FACTS)
    undo = LockSafePlanOp(None, plan.steps, title="drop").reverse()
    lines = [line for s in undo.steps for line in step_lines(s)]
    assert "runtime.irreversible(op, 'undo: drop table items'" in code("\n".join(lines))


def test_offline_sql_transaction_structure() -> None:
    """``alembic upgrade --sql``: each locking step is BEGIN; SET LOCAL ...; stmt; COMMIT; after
    the migration transaction is committed, CONCURRENTLY outside any transaction."""
    col = ColumnDef("token", "uuid", nullable=False, default="gen_random_uuid()")
    plan = plan_changes(
        [c.AddColumn(on=T, column=col), c.CreateIndex(on=T, name="items_token_idx", columns=("token",))],
        PG15, facts=FACTS, policy=PlanPolicy(lock_timeout="1s", statement_timeout="10s"),
    )
    out = offline_sql(LockSafePlanOp(None, plan.steps))
    statements = [s.strip() for s in out.split(";\n") if s.strip()]
    first = statements.index("ALTER TABLE items ADD COLUMN IF NOT EXISTS token uuid")
    assert statements[first - 4: first + 2] == [
        "COMMIT",  # the migration transaction
        "BEGIN",
        "SET LOCAL lock_timeout = '1s'",
        "SET LOCAL statement_timeout = '10s'",
        "ALTER TABLE items ADD COLUMN IF NOT EXISTS token uuid",
        "COMMIT",
    ]
    assert "SET LOCAL lock_timeout = '1s'" in statements
    # The backfill: a DO loop over key ranges, each batch committed on its own.
    assert "UPDATE items SET token = gen_random_uuid() WHERE (token IS NULL) AND (id) > (helios_last.id)" \
        " AND (id) <= (helios_upto.id)" in out
    loop = out.index("  LOOP")
    assert "COMMIT" in out[loop: out.index("END LOOP", loop)]
    validate = statements.index("ALTER TABLE items VALIDATE CONSTRAINT items_token_not_null")
    add = statements.index(
        "ALTER TABLE items ADD CONSTRAINT items_token_not_null CHECK (token IS NOT NULL) NOT VALID")
    assert "COMMIT" in statements[add:validate]  # never NOT VALID + VALIDATE in one transaction
    build = statements.index("CREATE INDEX CONCURRENTLY IF NOT EXISTS items_token_idx ON items (token)")
    assert statements[build - 1].startswith("-- an INVALID leftover")
    assert statements[build - 2] == "COMMIT"


def test_offline_sql_has_no_error_finding() -> None:
    from helios_migrate import lint
    from helios_migrate.config import Config
    from helios_migrate.findings import Severity

    col = ColumnDef("token", "uuid", nullable=False, default="gen_random_uuid()")
    fk = Constraint(ConstraintKind.FOREIGN_KEY, columns=("parent_id",),
                    references=ForeignKeyTarget(QualifiedName("parents"), ("id",)))
    changes = [
        c.AddColumn(on=T, column=col),
        c.AddConstraint(on=T, constraint=fk),
        c.AddConstraint(on=T, constraint=Constraint(ConstraintKind.UNIQUE, columns=("code",))),
        c.SetNotNull(on=T, column="note"),
        c.CreateIndex(on=T, name="items_price_idx", columns=("price",)),
    ]
    for version in (PG15, PG18):
        plan = plan_changes(changes, version, facts=FACTS)
        sql = offline_sql(LockSafePlanOp(None, plan.steps))
        findings = lint.lint_sql(sql, "revision.sql", config=Config(), version=version)
        errors = [f for f in findings if f.severity >= Severity.ERROR]
        assert not errors, [(f.code, f.message) for f in errors]


def test_calls_name_the_revision_policy_and_fit_in_100_columns() -> None:
    """With the revision's policy declared once, each call passes ``policy=policy`` and names only
    what differs (a VALIDATE scan has no statement_timeout); calls longer than the width put one
    argument per line and one SQL statement per line; the code runs the same SQL as before."""
    col = ColumnDef("token", "uuid", nullable=False, default="gen_random_uuid()")
    policy = PlanPolicy(lock_timeout="1s", statement_timeout="10s")
    plan = plan_changes([c.AddColumn(on=T, column=col)], PG15, facts=FACTS, policy=policy)
    lines = [line for s in plan.steps for line in step_lines(s, policy.retry())]
    source = code("\n".join(lines))
    assert "lock_timeout='1s'" not in source and source.count("policy=policy") >= 4
    assert "ALTER TABLE items VALIDATE CONSTRAINT items_token_not_null'], policy=policy, statement_timeout=None" in source
    calls = [line for line in lines if not line.lstrip().startswith("#")]
    for line in calls:  # beyond the width only a single argument that is one long literal
        if len(line) + 4 > 100:
            assert isinstance(ast.literal_eval(re.sub(r"^\w+=", "", line.strip()).rstrip(",")), str), line
    assert "    [" in lines and any(line == "runtime.run_in_own_transaction(" for line in lines)
    # the old keyword form (revisions written before the policy) and the policy form emit the same SQL
    from alembic_plugin.ops import runtime_policy
    from helios_migrate import runtime

    def emitted(**kwargs: object) -> str:
        buf = io.StringIO()
        ctx = MigrationContext.configure(dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buf})
        with ctx.begin_transaction():
            runtime.run_in_own_transaction(Operations(ctx), ["ALTER TABLE items ADD COLUMN x int"], **kwargs)
        return buf.getvalue()

    assert emitted(policy=runtime_policy(policy.retry())) == emitted(lock_timeout="1s", statement_timeout="10s")
    assert "statement_timeout" not in emitted(policy=runtime_policy(policy.retry()), statement_timeout=None)
