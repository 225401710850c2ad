"""The lock knowledge base, offline: every change kind on every supported version.

The live proof (that these answers are what PostgreSQL really does) is ``tests/proof``; these tests
pin the version-dependent behaviour we cannot run here (13, 14, 16, 17) and the offline fallbacks.
"""

from __future__ import annotations

import pytest

from helios_migrate import changes as c
from helios_migrate.changes import ColumnDef, Constraint, ConstraintKind, QualifiedName
from helios_migrate.effects import Certainty, TransactionUse, WorkClass
from helios_migrate.knowledge import combine, effect_of, kinds_without_knowledge
from helios_migrate.locks import LockMode
from helios_migrate.typechange import classify
from helios_migrate.versions import SUPPORTED_MAJORS, PgVersion

T = QualifiedName("orders")
P = QualifiedName("customers")
AE, SUE, SRE, SH = (
    LockMode.ACCESS_EXCLUSIVE,
    LockMode.SHARE_UPDATE_EXCLUSIVE,
    LockMode.SHARE_ROW_EXCLUSIVE,
    LockMode.SHARE,
)


def v(major: int, minor: int = 0) -> PgVersion:
    return PgVersion(major, minor)


def test_every_change_kind_has_knowledge() -> None:
    assert kinds_without_knowledge() == []


# (change, table lock, work, rewrites) -- the same on every supported version.
CASES = [
    (c.AddColumn(T, ColumnDef("note", "text")), AE, WorkClass.METADATA, False),
    (c.AddColumn(T, ColumnDef("n", "integer", nullable=False, default="0")), AE, WorkClass.METADATA, False),
    (c.AddColumn(T, ColumnDef("at", "timestamptz", default="now()")), AE, WorkClass.METADATA, False),
    (c.AddColumn(T, ColumnDef("r", "double precision", default="random()")), AE, WorkClass.REWRITE, True),
    (c.AddColumn(T, ColumnDef("u", "uuid", default="gen_random_uuid()")), AE, WorkClass.REWRITE, True),
    (c.AddColumn(T, ColumnDef("i", "bigint", nullable=False, identity=c.IdentityKind.ALWAYS)), AE, WorkClass.REWRITE, True),
    (c.AddColumn(T, ColumnDef("g", "integer", generated="n * 2", generated_kind=c.GeneratedKind.STORED)), AE, WorkClass.REWRITE, True),
    (c.AddColumn(T, ColumnDef("x", "integer", nullable=False)), AE, WorkClass.SCAN, False),
    (c.DropColumn(T, "note"), AE, WorkClass.METADATA, False),
    (c.RenameColumn(T, "a", "b"), AE, WorkClass.METADATA, False),
    (c.DropNotNull(T, "a"), AE, WorkClass.METADATA, False),
    (c.SetDefault(T, "a", "0"), AE, WorkClass.METADATA, False),
    (c.DropDefault(T, "a"), AE, WorkClass.METADATA, False),
    (c.SetNotNull(T, "a"), AE, WorkClass.SCAN, False),
    (c.AddConstraint(T, Constraint(ConstraintKind.CHECK, "ck", expression="a > 0")), AE, WorkClass.SCAN, False),
    (c.AddConstraint(T, Constraint(ConstraintKind.CHECK, "ck", expression="a > 0", not_valid=True)), AE, WorkClass.METADATA, False),
    (c.AddConstraint(T, Constraint(ConstraintKind.FOREIGN_KEY, "fk", ("cid",), references=c.ForeignKeyTarget(P, ("id",)))), SRE, WorkClass.SCAN, False),
    (c.AddConstraint(T, Constraint(ConstraintKind.FOREIGN_KEY, "fk", ("cid",), references=c.ForeignKeyTarget(P, ("id",)), not_valid=True)), SRE, WorkClass.METADATA, False),
    (c.AddConstraint(T, Constraint(ConstraintKind.UNIQUE, "uq", ("a",))), AE, WorkClass.INDEX_BUILD, False),
    (c.AddConstraint(T, Constraint(ConstraintKind.PRIMARY_KEY, "pk", ("id",))), AE, WorkClass.INDEX_BUILD, False),
    (c.AddConstraint(T, Constraint(ConstraintKind.UNIQUE, "uq", using_index="uq_idx")), AE, WorkClass.METADATA, False),
    (c.ValidateConstraint(T, "ck"), SUE, WorkClass.SCAN, False),
    (c.DropConstraint(T, "ck"), AE, WorkClass.METADATA, False),
    (c.CreateIndex(T, "ix", ("a",)), SH, WorkClass.INDEX_BUILD, False),
    (c.CreateIndex(T, "ix", ("a",), concurrently=True), SUE, WorkClass.INDEX_BUILD, False),
    (c.DropIndex(QualifiedName("ix"), on=T), AE, WorkClass.METADATA, False),
    (c.DropIndex(QualifiedName("ix"), on=T, concurrently=True), SUE, WorkClass.METADATA, False),
    (c.Reindex(c.ReindexTarget.TABLE, T), SH, WorkClass.INDEX_BUILD, False),
    (c.Reindex(c.ReindexTarget.TABLE, T, concurrently=True), SUE, WorkClass.INDEX_BUILD, False),
    (c.CreateTrigger(T, "trg", "f()"), SRE, WorkClass.METADATA, False),
    (c.DropTrigger(T, "trg"), AE, WorkClass.METADATA, False),
    (c.TruncateTable(T), AE, WorkClass.METADATA, True),
    (c.VacuumFull(T), AE, WorkClass.REWRITE, True),
    (c.Cluster(T, "ix"), AE, WorkClass.REWRITE, True),
    (c.RenameTable(T, "orders2"), AE, WorkClass.METADATA, False),
    (c.DropTable(T), AE, WorkClass.METADATA, False),
    (c.AttachPartition(T, QualifiedName("orders_2025"), "FOR VALUES FROM (1) TO (2)"), SUE, WorkClass.SCAN, False),
    (c.DetachPartition(T, QualifiedName("orders_2023")), AE, WorkClass.METADATA, False),
    (c.ModifyRows(T, c.DataOperation.UPDATE), LockMode.ROW_EXCLUSIVE, WorkClass.ROW_WRITES, False),
]


@pytest.mark.parametrize("major", SUPPORTED_MAJORS)
@pytest.mark.parametrize(("change", "mode", "work", "rewrites"), CASES, ids=lambda x: getattr(x, "kind", None))
def test_table_lock_and_work(change: c.Change, mode: LockMode, work: WorkClass, rewrites: bool, major: int) -> None:
    eff = effect_of(change, v(major))
    assert eff.table_lock is not None and eff.table_lock.mode is mode
    assert eff.work is work
    assert eff.rewrites_table is rewrites


def test_fk_locks_the_referenced_table_too() -> None:
    eff = effect_of(
        c.AddConstraint(T, Constraint(ConstraintKind.FOREIGN_KEY, "fk", ("cid",), references=c.ForeignKeyTarget(P, ("id",)))),
        v(15),
    )
    assert {(lk.relation, lk.mode) for lk in eff.locks} == {(T, SRE), (P, SRE)}
    assert eff.safer_alternative and "NOT VALID" in eff.safer_alternative


def test_concurrent_forms_must_run_outside_a_transaction() -> None:
    for ch in (
        c.CreateIndex(T, "ix", ("a",), concurrently=True),
        c.DropIndex(QualifiedName("ix"), concurrently=True),
        c.Reindex(c.ReindexTarget.INDEX, QualifiedName("ix"), concurrently=True),
        c.DetachPartition(T, QualifiedName("p"), concurrently=True),
        c.VacuumFull(T),
    ):
        assert effect_of(ch, v(16)).transaction is TransactionUse.OUTSIDE_ONLY, ch


def test_enum_add_value_usable_only_after_commit() -> None:
    eff = effect_of(c.AddEnumValue(QualifiedName("mood"), "happy"), v(15))
    assert eff.transaction is TransactionUse.COMMIT_BEFORE_USE
    assert not eff.blocks_reads and not eff.blocks_writes


@pytest.mark.parametrize(("major", "supported"), [(13, False), (14, True), (18, True)])
def test_detach_concurrently_needs_14(major: int, supported: bool) -> None:
    eff = effect_of(c.DetachPartition(T, QualifiedName("p"), concurrently=True), v(major))
    assert (eff.unsupported is None) is supported


@pytest.mark.parametrize(("major", "supported"), [(17, False), (18, True)])
def test_not_null_not_valid_needs_18(major: int, supported: bool) -> None:
    ch = c.AddConstraint(T, Constraint(ConstraintKind.NOT_NULL, "nn", ("a",), not_valid=True))
    eff = effect_of(ch, v(major))
    assert (eff.unsupported is None) is supported
    assert eff.work is WorkClass.METADATA


def test_set_not_null_safer_path_follows_version() -> None:
    assert "NOT NULL <col> NOT VALID" in (effect_of(c.SetNotNull(T, "a"), v(18)).safer_alternative or "")
    assert "CHECK (<col> IS NOT NULL)" in (effect_of(c.SetNotNull(T, "a"), v(17)).safer_alternative or "")


@pytest.mark.parametrize(
    ("version", "flagged"),
    [(v(14, 2), True), (v(14, 4), False), (PgVersion(14, 0, minor_known=False), True), (v(15, 1), False)],
)
def test_concurrent_index_bug_of_14_0_to_14_3(version: PgVersion, flagged: bool) -> None:
    eff = effect_of(c.CreateIndex(T, "ix", ("a",), concurrently=True), version)
    assert any("14.0-14.3" in n for n in eff.notes) is flagged


def test_generated_column_default_kind_follows_version() -> None:
    ch = c.AddColumn(T, ColumnDef("g", "integer", generated="n * 2"))
    assert effect_of(ch, v(17)).rewrites_table  # STORED before 18
    assert not effect_of(ch, v(18)).rewrites_table  # VIRTUAL from 18


def test_unknown_function_default_is_conservatively_volatile() -> None:
    eff = effect_of(c.AddColumn(T, ColumnDef("x", "text", default="my_func()")), v(16))
    assert eff.rewrites_table and eff.certainty is Certainty.CONSERVATIVE


def test_combine_keeps_strongest_per_relation() -> None:
    effs = [
        effect_of(c.AddConstraint(T, Constraint(ConstraintKind.FOREIGN_KEY, "fk", ("cid",), references=c.ForeignKeyTarget(P, ("id",)), not_valid=True)), v(16)),
        effect_of(c.SetDefault(T, "a", "1"), v(16)),
    ]
    assert {(lk.relation, lk.mode) for lk in combine(effs)} == {(T, AE), (P, SRE)}


@pytest.mark.parametrize(
    ("old", "new", "using", "rewrites", "certainty"),
    [
        ("integer", "bigint", None, True, Certainty.KNOWN),
        ("varchar(50)", "varchar(100)", None, False, Certainty.KNOWN),
        ("varchar(50)", "varchar(20)", None, True, Certainty.KNOWN),
        ("varchar(50)", "varchar", None, False, Certainty.KNOWN),
        ("varchar(50)", "text", None, False, Certainty.KNOWN),
        ("text", "varchar", None, False, Certainty.KNOWN),
        ("text", "varchar(200)", None, True, Certainty.KNOWN),
        ("numeric(10,2)", "numeric(12,2)", None, False, Certainty.KNOWN),
        ("numeric(10,2)", "numeric(12,3)", None, True, Certainty.KNOWN),
        ("numeric(10,2)", "numeric", None, False, Certainty.KNOWN),
        ("timestamp", "timestamptz", None, True, Certainty.CONSERVATIVE),
        ("timestamp(3)", "timestamp", None, False, Certainty.KNOWN),
        ("integer", "bigint", "n::bigint", True, Certainty.KNOWN),
        ("varchar(50)", "text", "v::text", False, Certainty.KNOWN),
        ("varchar(50)", "text", "upper(v)", True, Certainty.KNOWN),
        (None, "bigint", None, True, Certainty.CONSERVATIVE),
        ("my_domain", "text", None, True, Certainty.CONSERVATIVE),
    ],
)
def test_type_change_classification_offline(
    old: str | None, new: str, using: str | None, rewrites: bool, certainty: Certainty
) -> None:
    col = "n" if old in ("integer",) else "v"
    verdict = classify(old, new, column=col, using=using, version=v(16))
    assert (verdict.rewrites, verdict.certainty) == (rewrites, certainty), verdict.reason


def test_lock_mode_blocks() -> None:
    assert AE.blocks_reads and AE.blocks_writes
    assert SH.blocks_writes and not SH.blocks_reads
    assert SRE.blocks_writes and not SRE.blocks_reads
    assert not SUE.blocks_writes and SUE.blocks_ddl
    assert LockMode.from_pg_locks("ShareRowExclusiveLock") is SRE
    assert AE.pg_locks_name == "AccessExclusiveLock"


def test_collation_change_rebuilds_indexes_without_rewrite() -> None:
    eff = effect_of(c.AlterColumnType(T, "name", "text", collation='"C"', old_type="text"), v(16))
    assert eff.work is WorkClass.INDEX_BUILD and not eff.rewrites_table and eff.builds_index
