"""Catalog lookups and catalog-based type classification, on every real server."""

from __future__ import annotations

import psycopg
import pytest

from helios_migrate import changes as c
from helios_migrate.catalog import LiveCatalog
from helios_migrate.changes import ConstraintKind, QualifiedName
from helios_migrate.effects import Certainty, WorkClass
from helios_migrate.knowledge import effect_of
from helios_migrate.locks import LockMode

T = QualifiedName("t")

SCHEMA = """
CREATE DOMAIN short_text AS varchar(10);
CREATE TABLE p (id bigint PRIMARY KEY);
CREATE TABLE t (
    id bigint PRIMARY KEY, a varchar(50), b integer, s text, d short_text, ts timestamp,
    "MixedCase" text, p_id bigint,
    CONSTRAINT t_s_nn CHECK (s IS NOT NULL),
    CONSTRAINT t_p_fk FOREIGN KEY (p_id) REFERENCES p (id)
);
CREATE INDEX t_b_idx ON t (b);
CREATE FUNCTION my_volatile() RETURNS int LANGUAGE sql VOLATILE AS 'SELECT 1';
CREATE FUNCTION my_stable() RETURNS int LANGUAGE sql STABLE AS 'SELECT 1';
"""


@pytest.fixture
def catalog(fresh_db: str) -> LiveCatalog:
    conn = psycopg.connect(fresh_db, autocommit=True)
    conn.execute(SCHEMA)
    conn.execute("SET TimeZone = 'Europe/Paris'")
    yield LiveCatalog(conn)  # type: ignore[misc]
    conn.close()


def test_facts(catalog: LiveCatalog) -> None:
    assert catalog.column_type(T, "a") == "varchar(50)"
    assert catalog.column_type(T, "MixedCase") == "text"
    assert catalog.column_type(T, "missing") is None
    assert catalog.has_valid_not_null_check(T, "s")
    assert not catalog.has_valid_not_null_check(T, "a")
    assert catalog.constraint(T, "t_p_fk") == (ConstraintKind.FOREIGN_KEY, QualifiedName("p", "public"))
    assert catalog.index_table(QualifiedName("t_b_idx")) == QualifiedName("t", "public")
    assert QualifiedName("t_b_idx", "public") in catalog.table_indexes(T)
    assert catalog.cast_method("varchar", "text") == "b"
    assert catalog.function_volatility("my_volatile") == "v"
    assert catalog.function_volatility("my_stable") == "s"
    assert catalog.session_timezone() == "Europe/Paris"
    assert catalog.version.major in (13, 14, 15, 16, 17, 18)


@pytest.mark.parametrize(
    ("column", "new_type", "rewrites"),
    [
        ("a", "varchar(100)", False),
        ("a", "text", False),
        ("a", "varchar(20)", True),
        ("b", "bigint", True),
        ("s", "varchar(200)", True),
        ("ts", "timestamptz", True),  # TimeZone is Europe/Paris
    ],
)
def test_type_change_from_catalog(catalog: LiveCatalog, column: str, new_type: str, rewrites: bool) -> None:
    eff = effect_of(c.AlterColumnType(T, column, new_type), catalog.version, catalog)
    assert eff.rewrites_table is rewrites, eff.notes
    assert eff.certainty in (Certainty.KNOWN, Certainty.CATALOG)


def test_set_not_null_uses_existing_check(catalog: LiveCatalog) -> None:
    with_check = effect_of(c.SetNotNull(T, "s"), catalog.version, catalog)
    without = effect_of(c.SetNotNull(T, "a"), catalog.version, catalog)
    assert with_check.work is WorkClass.METADATA and with_check.certainty is Certainty.CATALOG
    assert without.work is WorkClass.SCAN


def test_validate_fk_locks_referenced_table(catalog: LiveCatalog) -> None:
    eff = effect_of(c.ValidateConstraint(T, "t_p_fk"), catalog.version, catalog)
    assert {(lk.relation.name, lk.mode) for lk in eff.locks} == {
        ("t", LockMode.SHARE_UPDATE_EXCLUSIVE),
        ("p", LockMode.ROW_SHARE),
    }


def test_user_function_volatility_decides_rewrite(catalog: LiveCatalog) -> None:
    vol = effect_of(c.AddColumn(T, c.ColumnDef("x", "integer", default="my_volatile()")), catalog.version, catalog)
    stable = effect_of(c.AddColumn(T, c.ColumnDef("y", "integer", default="my_stable()")), catalog.version, catalog)
    assert vol.rewrites_table and vol.certainty is Certainty.CATALOG
    assert not stable.rewrites_table


def test_drop_index_resolves_table(catalog: LiveCatalog) -> None:
    eff = effect_of(c.DropIndex(QualifiedName("t_b_idx")), catalog.version, catalog)
    assert eff.table_lock is not None and eff.table_lock.relation.name == "t"


def test_drop_table_locks_the_tables_it_references(catalog: LiveCatalog) -> None:
    eff = effect_of(c.DropTable(T), catalog.version, catalog)
    assert {(lk.relation.name, lk.mode) for lk in eff.locks} == {
        ("t", LockMode.ACCESS_EXCLUSIVE),
        ("p", LockMode.ACCESS_EXCLUSIVE),
    }
