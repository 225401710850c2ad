"""Alembic operations -> Change values, one test per operation kind and variant."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import ops

from helios_migrate.alembic_ops import (
    _parse_sql,
    changes_from_op,
    changes_from_ops,
    ident,
    render_sql,
)
from helios_migrate.changes import (
    AddColumn,
    AddConstraint,
    AlterColumnType,
    ColumnDef,
    Constraint,
    ConstraintKind,
    CreateEnum,
    CreateIndex,
    CreateTable,
    DataOperation,
    DropColumn,
    DropConstraint,
    DropDefault,
    DropIndex,
    DropNotNull,
    DropTable,
    ForeignKeyTarget,
    GeneratedKind,
    IdentityKind,
    ModifyRows,
    QualifiedName,
    RawStatement,
    RenameColumn,
    RenameTable,
    SetDefault,
    SetNotNull,
)

T = QualifiedName("t")


def one(op: ops.MigrateOperation) -> object:
    changes = changes_from_op(op)
    assert len(changes) == 1, changes
    return changes[0]


# --- identifiers ------------------------------------------------------------------------------


def test_ident_folds_like_postgresql() -> None:
    assert ident("orders") == "orders"
    assert ident("Orders") == "Orders"  # SQLAlchemy quotes it, so PostgreSQL keeps the case
    assert ident("user") == "user"  # reserved: quoted, but already lower case
    assert ident(sa.sql.quoted_name("Orders", quote=False)) == "orders"
    assert ident(sa.sql.quoted_name("orders", quote=True)) == "orders"


def test_schema_and_mixed_case_names() -> None:
    assert one(ops.DropColumnOp("Orders", "Total", schema="Sales")) == DropColumn(
        on=QualifiedName("Orders", "Sales"), column="Total"
    )
    assert one(ops.DropColumnOp("orders", "total", schema="sales")) == DropColumn(
        on=QualifiedName("orders", "sales"), column="total"
    )


# --- add column -------------------------------------------------------------------------------


def test_add_column_nullable() -> None:
    assert one(ops.AddColumnOp("t", sa.Column("c", sa.Integer()))) == AddColumn(
        on=T, column=ColumnDef("c", "integer")
    )


def test_add_column_if_not_exists() -> None:
    op = ops.AddColumnOp("t", sa.Column("c", sa.Text()), if_not_exists=True)
    assert one(op) == AddColumn(on=T, column=ColumnDef("c", "text"), if_not_exists=True)


def test_add_column_not_null_string_default_is_quoted_literal() -> None:
    op = ops.AddColumnOp("t", sa.Column("c", sa.String(100), nullable=False, server_default="it's"))
    assert one(op) == AddColumn(
        on=T, column=ColumnDef("c", "varchar(100)", nullable=False, default="'it''s'")
    )


def test_add_column_text_default() -> None:
    op = ops.AddColumnOp(
        "t", sa.Column("c", sa.DateTime(timezone=True), server_default=sa.text("NOW( )"))
    )
    assert one(op) == AddColumn(on=T, column=ColumnDef("c", "timestamptz", default="now()"))


def test_add_column_expression_default() -> None:
    op = ops.AddColumnOp("t", sa.Column("c", sa.Integer(), server_default=sa.literal_column("1")))
    assert one(op) == AddColumn(on=T, column=ColumnDef("c", "integer", default="1"))


def test_add_column_identity_always() -> None:
    op = ops.AddColumnOp("t", sa.Column("c", sa.BigInteger(), sa.Identity(always=True)))
    assert one(op) == AddColumn(
        on=T,
        column=ColumnDef("c", "bigint", nullable=False, identity=IdentityKind.ALWAYS),
    )


def test_add_column_identity_by_default() -> None:
    op = ops.AddColumnOp("t", sa.Column("c", sa.BigInteger(), sa.Identity(start=5)))
    assert one(op) == AddColumn(
        on=T,
        column=ColumnDef("c", "bigint", nullable=False, identity=IdentityKind.BY_DEFAULT),
    )


def test_add_column_computed_stored() -> None:
    op = ops.AddColumnOp("t", sa.Column("c", sa.Integer(), sa.Computed("a+b", persisted=True)))
    assert one(op) == AddColumn(
        on=T,
        column=ColumnDef("c", "integer", generated="a + b", generated_kind=GeneratedKind.STORED),
    )


def test_add_column_computed_virtual() -> None:
    op = ops.AddColumnOp("t", sa.Column("c", sa.Integer(), sa.Computed("a+b", persisted=False)))
    assert one(op) == AddColumn(
        on=T,
        column=ColumnDef("c", "integer", generated="a + b", generated_kind=GeneratedKind.VIRTUAL),
    )


def test_add_column_computed_unspecified() -> None:
    op = ops.AddColumnOp("t", sa.Column("c", sa.Integer(), sa.Computed("a + b")))
    assert one(op) == AddColumn(on=T, column=ColumnDef("c", "integer", generated="a + b"))


def test_add_column_collation() -> None:
    op = ops.AddColumnOp("t", sa.Column("c", sa.String(10, collation="C")))
    assert one(op) == AddColumn(on=T, column=ColumnDef("c", "varchar(10)", collation="C"))


def test_add_column_column_check() -> None:
    op = ops.AddColumnOp("t", sa.Column("c", sa.Integer(), sa.CheckConstraint("c > 0")))
    assert one(op) == AddColumn(on=T, column=ColumnDef("c", "integer", check="c > 0"))


def test_add_column_foreign_key_is_a_separate_constraint() -> None:
    # Alembic emits ADD COLUMN and then ALTER TABLE ... ADD FOREIGN KEY.
    op = ops.AddColumnOp("t", sa.Column("c", sa.Integer(), sa.ForeignKey("u.id")))
    assert changes_from_op(op) == [
        AddColumn(on=T, column=ColumnDef("c", "integer")),
        AddConstraint(
            on=T,
            constraint=Constraint(
                ConstraintKind.FOREIGN_KEY,
                columns=("c",),
                references=ForeignKeyTarget(QualifiedName("u"), ("id",)),
            ),
        ),
    ]


def test_add_column_inline_references() -> None:
    op = ops.AddColumnOp(
        "t",
        sa.Column("c", sa.Integer(), sa.ForeignKey("s.u.id", ondelete="SET NULL")),
        schema="Sch",
        inline_references=True,
    )
    assert changes_from_op(op) == [
        AddColumn(
            on=QualifiedName("t", "Sch"),
            column=ColumnDef(
                "c", "integer", references=ForeignKeyTarget(QualifiedName("u", "s"), ("id",))
            ),
        )
    ]


def test_add_column_unique_and_index() -> None:
    op = ops.AddColumnOp("t", sa.Column("c", sa.Integer(), unique=True))
    assert changes_from_op(op) == [
        AddColumn(on=T, column=ColumnDef("c", "integer")),
        AddConstraint(on=T, constraint=Constraint(ConstraintKind.UNIQUE, columns=("c",))),
    ]
    op = ops.AddColumnOp("T", sa.Column("Cc", sa.Integer(), index=True))
    assert changes_from_op(op) == [
        AddColumn(on=QualifiedName("T"), column=ColumnDef("Cc", "integer")),
        CreateIndex(on=QualifiedName("T"), name="ix_T_Cc", columns=('"Cc"',)),
    ]


def test_add_column_primary_key() -> None:
    # Without inline_primary_key Alembic renders no PRIMARY KEY at all (the column is still
    # NOT NULL, and an integer primary key becomes SERIAL).
    col = sa.Column("id", sa.Integer(), primary_key=True)
    assert changes_from_op(ops.AddColumnOp("t", col)) == [
        AddColumn(on=T, column=ColumnDef("id", "serial", nullable=False))
    ]
    col = sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False)
    assert changes_from_op(ops.AddColumnOp("t", col, inline_primary_key=True)) == [
        AddColumn(on=T, column=ColumnDef("id", "bigint", nullable=False, primary_key=True))
    ]


def test_add_column_comment_is_a_raw_statement() -> None:
    op = ops.AddColumnOp("t", sa.Column("c", sa.Integer(), comment="hello"))
    assert changes_from_op(op) == [
        AddColumn(on=T, column=ColumnDef("c", "integer")),
        *_parse_sql("COMMENT ON COLUMN t.c IS 'hello'"),
    ]


def test_add_column_leaves_the_op_unchanged() -> None:
    # Rendering attaches the op's objects to a Table (Alembic itself renders an op only once),
    # so compare with a fresh, equal op rather than rendering the same op twice.
    def make() -> ops.AddColumnOp:
        return ops.AddColumnOp("t", sa.Column("c", sa.Integer(), sa.ForeignKey("u.id")))

    op = make()
    first = changes_from_op(op)
    assert changes_from_op(op) == first
    assert render_sql(op) == render_sql(make())


# --- drop / rename / alter column -------------------------------------------------------------


def test_drop_column() -> None:
    assert one(ops.DropColumnOp("t", "c")) == DropColumn(on=T, column="c")
    assert one(ops.DropColumnOp("t", "c", if_exists=True, schema="s")) == DropColumn(
        on=QualifiedName("t", "s"), column="c", if_exists=True
    )


def test_rename_column() -> None:
    assert one(ops.AlterColumnOp("t", "c", modify_name="D")) == RenameColumn(
        on=T, column="c", new_name="D"
    )


def test_alter_type_with_existing_type_and_using() -> None:
    op = ops.AlterColumnOp(
        "t",
        "c",
        modify_type=sa.BigInteger(),
        existing_type=sa.Integer(),
        postgresql_using="c::bigint",
    )
    assert one(op) == AlterColumnType(
        on=T, column="c", new_type="bigint", using="CAST(c AS bigint)", old_type="integer"
    )


def test_alter_type_without_existing_type() -> None:
    op = ops.AlterColumnOp("t", "c", modify_type=sa.Numeric(10, 2))
    assert one(op) == AlterColumnType(on=T, column="c", new_type="numeric(10,2)")


def test_alter_type_collation() -> None:
    op = ops.AlterColumnOp("t", "c", modify_type=sa.String(20, collation="C"))
    assert one(op) == AlterColumnType(on=T, column="c", new_type="varchar(20)", collation="C")


def test_set_and_drop_not_null() -> None:
    assert one(ops.AlterColumnOp("t", "c", modify_nullable=False)) == SetNotNull(on=T, column="c")
    assert one(ops.AlterColumnOp("t", "c", modify_nullable=True)) == DropNotNull(on=T, column="c")


def test_set_and_drop_default() -> None:
    assert one(ops.AlterColumnOp("t", "c", modify_server_default="x")) == SetDefault(
        on=T, column="c", default="'x'"
    )
    assert one(ops.AlterColumnOp("t", "c", modify_server_default=sa.text("now()"))) == SetDefault(
        on=T, column="c", default="now()"
    )
    assert one(ops.AlterColumnOp("t", "c", modify_server_default=None)) == DropDefault(
        on=T, column="c"
    )


def test_alter_column_order_follows_alembic_postgresql() -> None:
    # TYPE first, then NOT NULL, then DEFAULT, and the rename last.
    op = ops.AlterColumnOp(
        "t",
        "c",
        modify_name="d",
        modify_server_default="0",
        modify_nullable=False,
        modify_type=sa.BigInteger(),
    )
    assert changes_from_op(op) == [
        AlterColumnType(on=T, column="c", new_type="bigint"),
        SetNotNull(on=T, column="c"),
        SetDefault(on=T, column="c", default="'0'"),
        RenameColumn(on=T, column="c", new_name="d"),
    ]


def test_alter_column_comment_is_a_raw_statement() -> None:
    op = ops.AlterColumnOp("t", "c", modify_comment="note")
    assert changes_from_op(op) == [*_parse_sql("COMMENT ON COLUMN t.c IS 'note'")]


# --- tables -----------------------------------------------------------------------------------


def test_create_table_constraints_as_table_constraints() -> None:
    op = ops.CreateTableOp(
        "t",
        [
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("n", sa.Text(), nullable=False, server_default=""),
            sa.Column("u", sa.Integer(), sa.ForeignKey("u.id", ondelete="CASCADE")),
            sa.CheckConstraint("n <> ''", name="ck"),
            sa.UniqueConstraint("n", "u", name="uq"),
        ],
    )
    assert changes_from_op(op) == [
        CreateTable(
            on=T,
            columns=(
                ColumnDef("id", "serial", nullable=False),
                ColumnDef("n", "text", nullable=False, default="''"),
                ColumnDef("u", "integer"),
            ),
            constraints=(
                Constraint(ConstraintKind.PRIMARY_KEY, columns=("id",)),
                Constraint(ConstraintKind.CHECK, name="ck", expression="n <> ''"),
                Constraint(ConstraintKind.UNIQUE, name="uq", columns=("n", "u")),
                Constraint(
                    ConstraintKind.FOREIGN_KEY,
                    columns=("u",),
                    references=ForeignKeyTarget(QualifiedName("u"), ("id",)),
                    on_delete="CASCADE",
                ),
            ),
        )
    ]


def test_create_table_composite_named_pk_schema_if_not_exists() -> None:
    op = ops.CreateTableOp(
        "t",
        [
            sa.Column("a", sa.BigInteger()),
            sa.Column("b", sa.String(5)),
            sa.PrimaryKeyConstraint("a", "b", name="t_pkey"),
        ],
        schema="s",
        if_not_exists=True,
    )
    assert changes_from_op(op) == [
        CreateTable(
            on=QualifiedName("t", "s"),
            columns=(
                ColumnDef("a", "bigint", nullable=False),
                ColumnDef("b", "varchar(5)", nullable=False),
            ),
            constraints=(
                Constraint(ConstraintKind.PRIMARY_KEY, name="t_pkey", columns=("a", "b")),
            ),
            if_not_exists=True,
        )
    ]


def test_create_table_with_index_gives_create_index() -> None:
    op = ops.CreateTableOp(
        "t",
        [
            sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
            sa.Column("x", sa.Integer(), index=True),
        ],
    )
    assert changes_from_op(op) == [
        CreateTable(
            on=T,
            columns=(
                ColumnDef("id", "bigint", nullable=False, identity=IdentityKind.BY_DEFAULT),
                ColumnDef("x", "integer"),
            ),
            constraints=(Constraint(ConstraintKind.PRIMARY_KEY, columns=("id",)),),
        ),
        CreateIndex(on=T, name="ix_t_x", columns=("x",)),
    ]


def test_create_table_leaves_the_op_unchanged() -> None:
    def make() -> ops.CreateTableOp:
        return ops.CreateTableOp(
            "t",
            [
                sa.Column("id", sa.Integer(), primary_key=True),
                sa.Column("u", sa.Integer(), sa.ForeignKey("u.id"), unique=True),
                sa.CheckConstraint("u > 0", name="ck"),
            ],
        )

    op = make()
    first = changes_from_op(op)
    assert changes_from_op(op) == first
    assert render_sql(op) == render_sql(make())


def test_drop_table() -> None:
    assert one(ops.DropTableOp("t")) == DropTable(on=T)
    assert one(ops.DropTableOp("T", schema="s", if_exists=True)) == DropTable(
        on=QualifiedName("T", "s"), if_exists=True
    )


def test_rename_table() -> None:
    assert one(ops.RenameTableOp("t", "u", schema="s")) == RenameTable(
        on=QualifiedName("t", "s"), new_name="u"
    )


# --- indexes ----------------------------------------------------------------------------------


def test_create_index_plain() -> None:
    assert one(ops.CreateIndexOp("ix", "t", ["a", "b"])) == CreateIndex(
        on=T, name="ix", columns=("a", "b")
    )


def test_create_index_all_options() -> None:
    op = ops.CreateIndexOp(
        "ix",
        "t",
        ["a", sa.text("LOWER(b)")],
        schema="s",
        unique=True,
        if_not_exists=True,
        postgresql_concurrently=True,
        postgresql_where=sa.text("a > 0"),
        postgresql_using="GIN",
        postgresql_include=["c"],
    )
    assert one(op) == CreateIndex(
        on=QualifiedName("t", "s"),
        name="ix",
        columns=("a", "lower(b)"),
        unique=True,
        concurrently=True,
        if_not_exists=True,
        where="a > 0",
        method="gin",
        include=("c",),
    )


def test_create_index_where_expression() -> None:
    op = ops.CreateIndexOp("ix", "t", ["a"], postgresql_where=sa.column("deleted_at").is_(None))
    assert one(op) == CreateIndex(on=T, name="ix", columns=("a",), where="deleted_at IS NULL")


def test_drop_index() -> None:
    assert one(ops.DropIndexOp("ix")) == DropIndex(index=QualifiedName("ix"))
    op = ops.DropIndexOp("ix", "t", schema="s", if_exists=True, postgresql_concurrently=True)
    assert one(op) == DropIndex(
        index=QualifiedName("ix", "s"),
        concurrently=True,
        if_exists=True,
        on=QualifiedName("t", "s"),
    )


# --- constraints ------------------------------------------------------------------------------


def test_create_foreign_key() -> None:
    op = ops.CreateForeignKeyOp(
        "fk",
        "t",
        "u",
        ["a", "b"],
        ["x", "y"],
        source_schema="s",
        referent_schema="r",
        ondelete="CASCADE",
        onupdate="SET NULL",
        deferrable=True,
    )
    assert one(op) == AddConstraint(
        on=QualifiedName("t", "s"),
        constraint=Constraint(
            ConstraintKind.FOREIGN_KEY,
            name="fk",
            columns=("a", "b"),
            references=ForeignKeyTarget(QualifiedName("u", "r"), ("x", "y")),
            on_delete="CASCADE",
            on_update="SET NULL",
            deferrable=True,
        ),
    )


def test_create_foreign_key_not_valid() -> None:
    op = ops.CreateForeignKeyOp("fk", "t", "u", ["a"], ["id"], postgresql_not_valid=True)
    assert one(op) == AddConstraint(
        on=T,
        constraint=Constraint(
            ConstraintKind.FOREIGN_KEY,
            name="fk",
            columns=("a",),
            references=ForeignKeyTarget(QualifiedName("u"), ("id",)),
            not_valid=True,
        ),
    )


def test_create_check_constraint() -> None:
    op = ops.CreateCheckConstraintOp("ck", "t", sa.column("a") > 0)
    assert one(op) == AddConstraint(
        on=T, constraint=Constraint(ConstraintKind.CHECK, name="ck", expression="a > 0")
    )


def test_create_check_constraint_not_valid() -> None:
    op = ops.CreateCheckConstraintOp("ck", "t", "a>0", postgresql_not_valid=True)
    assert one(op) == AddConstraint(
        on=T,
        constraint=Constraint(ConstraintKind.CHECK, name="ck", expression="a > 0", not_valid=True),
    )


def test_create_unique_constraint() -> None:
    op = ops.CreateUniqueConstraintOp("uq", "t", ["a", "B"])
    assert one(op) == AddConstraint(
        on=T, constraint=Constraint(ConstraintKind.UNIQUE, name="uq", columns=("a", "B"))
    )


def test_create_primary_key() -> None:
    op = ops.CreatePrimaryKeyOp("pk", "t", ["a"], schema="s")
    assert one(op) == AddConstraint(
        on=QualifiedName("t", "s"),
        constraint=Constraint(ConstraintKind.PRIMARY_KEY, name="pk", columns=("a",)),
    )


def test_drop_constraint() -> None:
    assert one(ops.DropConstraintOp("ck", "t", "check")) == DropConstraint(on=T, name="ck")
    assert one(ops.DropConstraintOp("Ck", "t", schema="s", if_exists=True)) == DropConstraint(
        on=QualifiedName("t", "s"), name="Ck", if_exists=True
    )


# --- execute, bulk insert, containers, unknown ------------------------------------------------


def test_execute_string_and_text_go_through_the_sql_front_end() -> None:
    for sqltext in ("TRUNCATE t", sa.text("TRUNCATE t")):
        assert changes_from_op(ops.ExecuteSQLOp(sqltext)) == _parse_sql("TRUNCATE t")


def test_bulk_insert() -> None:
    table = sa.table("t", sa.column("a", sa.Integer()), sa.column("b", sa.Text()))
    op = ops.BulkInsertOp(table, [{"b": "x", "a": 1}, {"a": 2}])
    assert one(op) == ModifyRows(on=T, operation=DataOperation.INSERT, columns=("a", "b"))
    assert changes_from_op(ops.BulkInsertOp(table, [])) == []


def test_containers_are_walked_in_order() -> None:
    upgrade = ops.UpgradeOps(
        ops=[
            ops.ModifyTableOps(
                "t",
                [
                    ops.AddColumnOp("t", sa.Column("c", sa.Integer())),
                    ops.AlterColumnOp("t", "d", modify_nullable=False),
                ],
            ),
            ops.DropTableOp("u"),
        ]
    )
    expected = [
        AddColumn(on=T, column=ColumnDef("c", "integer")),
        SetNotNull(on=T, column="d"),
        DropTable(on=QualifiedName("u")),
    ]
    assert changes_from_op(upgrade) == expected
    assert changes_from_ops([upgrade, ops.DowngradeOps(ops=[])]) == expected


def test_unknown_operation_goes_through_its_offline_sql() -> None:
    op = ops.CreateTableCommentOp("t", "hello", schema="s")
    assert changes_from_op(op) == _parse_sql("COMMENT ON TABLE s.t IS 'hello'")


class _Unrenderable(ops.MigrateOperation):
    def __init__(self, table_name: str, schema: str | None = None) -> None:
        self.table_name = table_name
        self.schema = schema


def test_unknown_operation_without_sql_is_a_described_raw_statement() -> None:
    assert changes_from_op(_Unrenderable("t", "s")) == [
        RawStatement(
            sql=f"-- alembic operation {__name__}._Unrenderable on s.t",
            relations=(QualifiedName("t", "s"),),
        )
    ]


def test_create_table_enum_creates_the_type_first() -> None:
    op = ops.CreateTableOp("t", [sa.Column("m", sa.Enum("a", "b", name="mood"))])
    assert changes_from_op(op) == [
        CreateEnum(name=QualifiedName("mood"), values=("a", "b")),
        CreateTable(on=T, columns=(ColumnDef("m", "mood"),)),
    ]


def test_create_index_ordering_and_opclass() -> None:
    op = ops.CreateIndexOp(
        "ix",
        "t",
        [sa.desc(sa.column("a")), sa.column("b").nulls_first(), "c"],
        postgresql_ops={"c": "text_pattern_ops"},
    )
    assert one(op) == CreateIndex(
        on=T, name="ix", columns=("a DESC", "b NULLS FIRST", "c text_pattern_ops")
    )
