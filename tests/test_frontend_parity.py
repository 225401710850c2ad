"""One rule engine, two front ends: the same DDL must give the same changes from both.

For every case an Alembic operation is built, rendered to SQL offline by Alembic itself for
PostgreSQL, and that SQL is parsed by :func:`helios_migrate.sql_parse.changes_from_sql`.  The
result must equal :func:`helios_migrate.alembic_ops.changes_from_op` of the operation.

Where one front end knows something the other cannot (the SQL carries no ``existing_type``, a
``DROP INDEX`` names no table), the case lists that one field in ``only_op_knows`` and the
comparison clears it on the operation side, explaining why.  Nothing else is relaxed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.dialects.postgresql import ARRAY, ENUM, JSONB

from helios_migrate.alembic_ops import changes_from_op, render_sql
from helios_migrate.changes import AlterColumnType, Change, DropIndex, ModifyRows
from helios_migrate.sql_parse import changes_from_sql

# --- explicit normalisations ------------------------------------------------------------------


def _forget_old_type(change: Change) -> Change:
    # ALTER COLUMN ... TYPE does not say what the type was; only the op (existing_type) knows.
    if isinstance(change, AlterColumnType):
        return dataclasses.replace(change, old_type=None)
    return change


def _forget_index_table(change: Change) -> Change:
    # DROP INDEX names no table; the op carries table_name.
    if isinstance(change, DropIndex):
        return dataclasses.replace(change, on=None)
    return change


OLD_TYPE = _forget_old_type
INDEX_TABLE = _forget_index_table


def _one_insert_per_row(sql_changes: list[Change], n_rows: int) -> list[Change]:
    # Offline SQL writes one INSERT per row; the op is a single (executemany) insert.  Every
    # row's INSERT must be the same change, which then stands for the whole op.
    assert len(sql_changes) == n_rows
    assert all(isinstance(c, ModifyRows) for c in sql_changes)
    assert len(set(sql_changes)) == 1
    return sql_changes[:1]


# --- cases ------------------------------------------------------------------------------------


class Case:
    def __init__(
        self,
        make: Callable[[], ops.MigrateOperation],
        *only_op_knows: Callable[[Change], Change],
        sql_rows: int | None = None,
    ) -> None:
        self.make = make
        self.only_op_knows = only_op_knows
        self.sql_rows = sql_rows


def _exec(sql: str) -> Case:
    return Case(lambda: ops.ExecuteSQLOp(sql))


CASES: dict[str, Case] = {
    # add column
    "add_column_nullable": Case(lambda: ops.AddColumnOp("t", sa.Column("c", sa.Integer()))),
    "add_column_schema_mixed_case": Case(
        lambda: ops.AddColumnOp("Orders", sa.Column("Total", sa.Numeric(12, 2)), schema="Sales")
    ),
    "add_column_not_null_constant_default": Case(
        lambda: ops.AddColumnOp(
            "t", sa.Column("c", sa.String(100), nullable=False, server_default="it's")
        )
    ),
    "add_column_not_null_text_default": Case(
        lambda: ops.AddColumnOp(
            "t", sa.Column("c", sa.Boolean(), nullable=False, server_default=sa.text("false"))
        )
    ),
    "add_column_volatile_default": Case(
        lambda: ops.AddColumnOp(
            "t", sa.Column("c", sa.DateTime(timezone=True), server_default=sa.text("now()"))
        )
    ),
    "add_column_volatile_default_function": Case(
        lambda: ops.AddColumnOp(
            "t", sa.Column("c", sa.Uuid(), server_default=sa.text("gen_random_uuid()"))
        )
    ),
    "add_column_identity_always": Case(
        lambda: ops.AddColumnOp("t", sa.Column("c", sa.BigInteger(), sa.Identity(always=True)))
    ),
    "add_column_identity_by_default": Case(
        lambda: ops.AddColumnOp("t", sa.Column("c", sa.BigInteger(), sa.Identity(start=10)))
    ),
    "add_column_computed_stored": Case(
        lambda: ops.AddColumnOp(
            "t", sa.Column("c", sa.Integer(), sa.Computed("a + b", persisted=True))
        )
    ),
    "add_column_computed_unspecified": Case(
        lambda: ops.AddColumnOp("t", sa.Column("c", sa.Integer(), sa.Computed("a * 2")))
    ),
    "add_column_if_not_exists": Case(
        lambda: ops.AddColumnOp("t", sa.Column("c", sa.Text()), if_not_exists=True)
    ),
    "add_column_with_fk": Case(
        lambda: ops.AddColumnOp("t", sa.Column("c", sa.Integer(), sa.ForeignKey("u.id")))
    ),
    "add_column_inline_references": Case(
        lambda: ops.AddColumnOp(
            "t",
            sa.Column("c", sa.Integer(), sa.ForeignKey("s.u.id", ondelete="CASCADE")),
            inline_references=True,
        )
    ),
    "add_column_unique": Case(
        lambda: ops.AddColumnOp("t", sa.Column("c", sa.Integer(), unique=True))
    ),
    "add_column_collation": Case(
        lambda: ops.AddColumnOp("t", sa.Column("c", sa.String(10, collation="C")))
    ),
    # drop / rename / alter column
    "drop_column": Case(lambda: ops.DropColumnOp("t", "c")),
    "drop_column_if_exists_schema": Case(
        lambda: ops.DropColumnOp("t", "c", schema="s", if_exists=True)
    ),
    "rename_column": Case(lambda: ops.AlterColumnOp("t", "c", modify_name="d")),
    "alter_type": Case(lambda: ops.AlterColumnOp("t", "c", modify_type=sa.BigInteger())),
    "alter_type_existing_type_using": Case(
        lambda: ops.AlterColumnOp(
            "t",
            "c",
            modify_type=sa.BigInteger(),
            existing_type=sa.Integer(),
            postgresql_using="c::bigint",
        ),
        OLD_TYPE,
    ),
    "alter_type_varchar_widen": Case(
        lambda: ops.AlterColumnOp(
            "t", "c", modify_type=sa.String(200), existing_type=sa.String(100)
        ),
        OLD_TYPE,
    ),
    "set_not_null": Case(lambda: ops.AlterColumnOp("t", "c", modify_nullable=False)),
    "drop_not_null": Case(lambda: ops.AlterColumnOp("t", "c", modify_nullable=True)),
    "set_default_constant": Case(
        lambda: ops.AlterColumnOp("t", "c", modify_server_default="pending")
    ),
    "set_default_text": Case(
        lambda: ops.AlterColumnOp("t", "c", modify_server_default=sa.text("now()"))
    ),
    "drop_default": Case(lambda: ops.AlterColumnOp("t", "c", modify_server_default=None)),
    "alter_column_everything": Case(
        lambda: ops.AlterColumnOp(
            "t",
            "c",
            schema="s",
            modify_name="d",
            modify_type=sa.BigInteger(),
            existing_type=sa.Integer(),
            modify_nullable=False,
            modify_server_default="0",
        ),
        OLD_TYPE,
    ),
    # tables
    "create_table": Case(
        lambda: ops.CreateTableOp(
            "t",
            [
                sa.Column("id", sa.Integer(), primary_key=True),
                sa.Column("name", sa.Text(), nullable=False, server_default=""),
                sa.Column("u", sa.Integer(), sa.ForeignKey("u.id", ondelete="SET NULL")),
                sa.Column("created", sa.DateTime(), server_default=sa.text("now()")),
                sa.CheckConstraint("name <> ''", name="ck_name"),
                sa.UniqueConstraint("name", "u", name="uq_name_u"),
            ],
        )
    ),
    "create_table_identity_named_pk_schema": Case(
        lambda: ops.CreateTableOp(
            "Events",
            [
                sa.Column("id", sa.BigInteger(), sa.Identity(always=True)),
                sa.Column("kind", sa.String(20), nullable=False),
                sa.PrimaryKeyConstraint("id", name="events_pkey"),
            ],
            schema="app",
        )
    ),
    "create_table_composite_pk_if_not_exists": Case(
        lambda: ops.CreateTableOp(
            "t",
            [
                sa.Column("a", sa.Integer(), primary_key=True, autoincrement=False),
                sa.Column("b", sa.Integer(), primary_key=True),
            ],
            if_not_exists=True,
        )
    ),
    "create_table_with_index": Case(
        lambda: ops.CreateTableOp(
            "t",
            [
                sa.Column("id", sa.BigInteger(), primary_key=True),
                sa.Column("x", sa.Integer(), index=True),
            ],
        )
    ),
    "drop_table": Case(lambda: ops.DropTableOp("t", schema="s")),
    "drop_table_if_exists": Case(lambda: ops.DropTableOp("t", if_exists=True)),
    "rename_table": Case(lambda: ops.RenameTableOp("t", "u", schema="s")),
    # indexes
    "create_index": Case(lambda: ops.CreateIndexOp("ix_t_a", "t", ["a"])),
    "create_index_multi_column_schema": Case(
        lambda: ops.CreateIndexOp("ix", "t", ["a", "b"], schema="s")
    ),
    "create_index_unique": Case(lambda: ops.CreateIndexOp("ux", "t", ["a"], unique=True)),
    "create_index_concurrently": Case(
        lambda: ops.CreateIndexOp("ix", "t", ["a"], postgresql_concurrently=True)
    ),
    "create_index_partial": Case(
        lambda: ops.CreateIndexOp("ix", "t", ["a"], postgresql_where=sa.text("deleted_at IS NULL"))
    ),
    "create_index_if_not_exists": Case(
        lambda: ops.CreateIndexOp("ix", "t", ["a"], if_not_exists=True)
    ),
    "create_index_expression_method_include": Case(
        lambda: ops.CreateIndexOp(
            "ix",
            "t",
            [sa.text("lower(email)")],
            unique=True,
            postgresql_concurrently=True,
            if_not_exists=True,
            postgresql_using="btree",
            postgresql_include=["id"],
            postgresql_where=sa.text("active"),
        )
    ),
    "create_index_gin": Case(lambda: ops.CreateIndexOp("ix", "t", ["doc"], postgresql_using="gin")),
    "drop_index": Case(lambda: ops.DropIndexOp("ix", "t"), INDEX_TABLE),
    "drop_index_concurrently_if_exists": Case(
        lambda: ops.DropIndexOp(
            "ix", "t", schema="s", postgresql_concurrently=True, if_exists=True
        ),
        INDEX_TABLE,
    ),
    # constraints
    "add_foreign_key": Case(
        lambda: ops.CreateForeignKeyOp(
            "fk_t_u", "t", "u", ["u_id"], ["id"], ondelete="CASCADE", onupdate="SET NULL"
        )
    ),
    "add_foreign_key_schemas_composite": Case(
        lambda: ops.CreateForeignKeyOp(
            "fk",
            "t",
            "u",
            ["a", "b"],
            ["x", "y"],
            source_schema="s",
            referent_schema="r",
        )
    ),
    "add_foreign_key_not_valid": Case(
        lambda: ops.CreateForeignKeyOp(
            "fk_t_u", "t", "u", ["u_id"], ["id"], postgresql_not_valid=True
        )
    ),
    "add_foreign_key_deferrable": Case(
        lambda: ops.CreateForeignKeyOp(
            "fk_t_u", "t", "u", ["u_id"], ["id"], deferrable=True, initially="DEFERRED"
        )
    ),
    "add_check": Case(lambda: ops.CreateCheckConstraintOp("ck", "t", "a > 0")),
    "add_check_expression": Case(
        lambda: ops.CreateCheckConstraintOp("ck", "t", sa.column("a") >= sa.column("b"))
    ),
    "add_check_not_valid": Case(
        lambda: ops.CreateCheckConstraintOp("ck", "t", "a IS NOT NULL", postgresql_not_valid=True)
    ),
    "add_unique": Case(lambda: ops.CreateUniqueConstraintOp("uq", "t", ["a", "b"])),
    "add_unique_deferrable": Case(
        lambda: ops.CreateUniqueConstraintOp("uq", "t", ["a"], deferrable=True)
    ),
    "add_primary_key": Case(lambda: ops.CreatePrimaryKeyOp("pk", "t", ["id"], schema="s")),
    "drop_constraint": Case(lambda: ops.DropConstraintOp("ck", "t")),
    "drop_constraint_if_exists": Case(
        lambda: ops.DropConstraintOp("fk", "t", "foreignkey", schema="s", if_exists=True)
    ),
    "add_column_reserved_words": Case(
        lambda: ops.AddColumnOp("user", sa.Column("order", sa.Integer(), server_default="5"))
    ),
    "add_column_jsonb_default": Case(
        lambda: ops.AddColumnOp(
            "t",
            sa.Column("c", JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        )
    ),
    "add_column_array": Case(lambda: ops.AddColumnOp("t", sa.Column("c", ARRAY(sa.Integer())))),
    "add_column_false_default": Case(
        lambda: ops.AddColumnOp(
            "t", sa.Column("c", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    ),
    "add_column_check": Case(
        lambda: ops.AddColumnOp("t", sa.Column("c", sa.Integer(), sa.CheckConstraint("c > 0")))
    ),
    "add_column_inline_primary_key": Case(
        lambda: ops.AddColumnOp(
            "t", sa.Column("id", sa.BigInteger(), primary_key=True), inline_primary_key=True
        )
    ),
    "add_column_named_fk": Case(
        lambda: ops.AddColumnOp(
            "t", sa.Column("c", sa.Integer(), sa.ForeignKey("u.id", name="fk_c"))
        )
    ),
    "add_column_comment": Case(
        lambda: ops.AddColumnOp("t", sa.Column("c", sa.Integer(), comment="hello"))
    ),
    "alter_type_timestamptz_using": Case(
        lambda: ops.AlterColumnOp(
            "t",
            "c",
            modify_type=sa.TIMESTAMP(timezone=True),
            postgresql_using="c AT TIME ZONE 'UTC'",
        )
    ),
    "alter_type_collation": Case(
        lambda: ops.AlterColumnOp("t", "c", modify_type=sa.String(5, collation="C"))
    ),
    "alter_type_enum": Case(
        lambda: ops.AlterColumnOp("t", "c", modify_type=ENUM("x", name="e", create_type=False))
    ),
    "alter_column_comment": Case(lambda: ops.AlterColumnOp("t", "c", modify_comment="note")),
    "create_table_enum_column": Case(
        lambda: ops.CreateTableOp(
            "t", [sa.Column("mood", sa.Enum("sad", "ok", name="mood", schema="s"))]
        )
    ),
    "create_table_column_check_and_comments": Case(
        lambda: ops.CreateTableOp(
            "t",
            [sa.Column("a", sa.Integer(), sa.CheckConstraint("a > 0", name="ck_a"), comment="c")],
            comment="table",
        )
    ),
    "table_comment": Case(lambda: ops.CreateTableCommentOp("t", "hi", schema="s")),
    "create_index_no_name": Case(lambda: ops.CreateIndexOp(None, "t", ["a"])),
    "create_index_quoted_names": Case(lambda: ops.CreateIndexOp("IX", "T", ["A"])),
    "create_index_desc_nulls": Case(
        lambda: ops.CreateIndexOp(
            "ix", "t", [sa.desc(sa.column("a")).nulls_last(), sa.column("b").nulls_first()]
        )
    ),
    "create_index_opclass": Case(
        lambda: ops.CreateIndexOp("ix", "t", ["name"], postgresql_ops={"name": "text_pattern_ops"})
    ),
    "add_foreign_key_no_action": Case(
        lambda: ops.CreateForeignKeyOp("fk", "t", "u", ["a"], ["id"], ondelete="NO ACTION")
    ),
    "add_unique_initially_deferred": Case(
        lambda: ops.CreateUniqueConstraintOp(
            "uq", "t", ["a"], deferrable=True, initially="DEFERRED"
        )
    ),
    # data
    "bulk_insert": Case(
        lambda: ops.BulkInsertOp(
            sa.table("t", sa.column("a", sa.Integer()), sa.column("b", sa.Text())),
            [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}],
        ),
        sql_rows=2,
    ),
    # op.execute: the DDL only op.execute can express (SQL on both sides)
    "execute_truncate": _exec("TRUNCATE t"),
    "execute_truncate_many_cascade": _exec("TRUNCATE a, s.b RESTART IDENTITY CASCADE"),
    "execute_vacuum_full": _exec("VACUUM FULL t"),
    "execute_reindex_concurrently": _exec("REINDEX INDEX CONCURRENTLY ix"),
    "execute_reindex_table": _exec("REINDEX TABLE s.t"),
    "execute_enum_add_value": _exec("ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh' AFTER 'ok'"),
    "execute_create_enum": _exec("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')"),
    "execute_create_trigger": _exec(
        "CREATE TRIGGER trg BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch()"
    ),
    "execute_drop_trigger": _exec("DROP TRIGGER IF EXISTS trg ON t"),
    "execute_create_view": _exec(
        "CREATE OR REPLACE VIEW v AS SELECT a FROM t JOIN u ON u.id = t.u"
    ),
    "execute_materialized_view": _exec("CREATE MATERIALIZED VIEW mv AS SELECT 1 AS one"),
    "execute_refresh_concurrently": _exec("REFRESH MATERIALIZED VIEW CONCURRENTLY mv"),
    "execute_attach_partition": _exec(
        "ALTER TABLE m ATTACH PARTITION m_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"
    ),
    "execute_detach_partition": _exec("ALTER TABLE m DETACH PARTITION m_2024 CONCURRENTLY"),
    "execute_update_backfill": _exec("UPDATE t SET c = 0 WHERE c IS NULL"),
    "execute_text_clause": Case(lambda: ops.ExecuteSQLOp(sa.text("VACUUM FULL t"))),
    "execute_several_statements": _exec("SET lock_timeout = '2s'; ALTER TABLE t DROP COLUMN c"),
}


def _apply(normalisers: tuple[Callable[[Change], Change], ...], changes: list[Change]) -> list[Any]:
    out: list[Any] = []
    for change in changes:
        for fn in normalisers:
            change = fn(change)
        out.append(change)
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_same_changes_from_both_front_ends(name: str) -> None:
    case = CASES[name]
    # Rendering attaches the op's SQLAlchemy objects to a table, so each side gets a fresh op.
    sql = render_sql(case.make())
    from_sql = changes_from_sql(sql)
    from_op = changes_from_op(case.make())
    if case.sql_rows is not None:
        from_sql = _one_insert_per_row(from_sql, case.sql_rows)
    assert from_sql, f"no change parsed from {sql!r}"
    assert _apply(case.only_op_knows, from_op) == from_sql, sql


def test_normalisations_only_touch_what_the_sql_cannot_carry() -> None:
    # The op side really carries the fields the comparison clears, so clearing is needed...
    op_changes = changes_from_op(CASES["alter_type_existing_type_using"].make())
    assert isinstance(op_changes[0], AlterColumnType)
    assert op_changes[0].old_type == "integer"
    drop = changes_from_op(CASES["drop_index"].make())[0]
    assert isinstance(drop, DropIndex)
    assert drop.on is not None
    # ...and the SQL side indeed cannot carry them.
    sql_changes = changes_from_sql(render_sql(CASES["alter_type_existing_type_using"].make()))
    assert isinstance(sql_changes[0], AlterColumnType)
    assert sql_changes[0].old_type is None
