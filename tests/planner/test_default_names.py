"""The names PostgreSQL gives indexes and constraints created without one, predicted the way the
server chooses them (``makeObjectName``: the longer of table and column part shortened, the label
kept), checked against the catalog of a real server."""

from __future__ import annotations

import psycopg
import pytest

from helios_migrate.changes import Constraint, ConstraintKind, QualifiedName
from helios_migrate.check.offline_schema import HistorySchema
from helios_migrate.planner.sqlgen import constraint_name, index_name
from helios_migrate.sqltext import NAMEDATALEN, default_object_name

LONG_TABLE = "t" * 40 + "_orders"
LONG_COLUMN = "a_very_long_column_name_for_testing"
UNICODE_TABLE = "käse_ünïcode_" + "x" * 40

SCHEMA = f"""
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE {LONG_TABLE} (
    id int PRIMARY KEY,
    {LONG_COLUMN} int UNIQUE,
    b int REFERENCES parent,
    c int,
    d int,
    UNIQUE (c, d)
);
CREATE UNIQUE INDEX ON {LONG_TABLE} (c);
CREATE INDEX ON {LONG_TABLE} (d, c);
CREATE TABLE "{UNICODE_TABLE}" (id int PRIMARY KEY, "spalte_äöü" int UNIQUE);
CREATE TABLE orders (id int, customer_id int);
ALTER TABLE orders ADD PRIMARY KEY (id);
ALTER TABLE orders ADD FOREIGN KEY (customer_id) REFERENCES parent;
"""


def _catalog(url: str) -> tuple[set[str], set[str]]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        constraints = {
            r[0] for r in conn.execute(
                "SELECT conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND contype <> 'n'"
            )
        }
        indexes = {
            r[0] for r in conn.execute(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relnamespace = 'public'::regnamespace"
            )
        }
    return constraints, indexes


def test_predicted_default_names_are_the_servers(fresh_db: str) -> None:
    constraints, indexes = _catalog(fresh_db)
    table, uni, orders = QualifiedName(LONG_TABLE), QualifiedName(UNICODE_TABLE), QualifiedName("orders")
    predicted_constraints = {
        constraint_name(QualifiedName("parent"), Constraint(ConstraintKind.PRIMARY_KEY, None, ("id",))),
        constraint_name(table, Constraint(ConstraintKind.PRIMARY_KEY, None, ("id",))),
        constraint_name(table, Constraint(ConstraintKind.UNIQUE, None, (LONG_COLUMN,))),
        constraint_name(table, Constraint(ConstraintKind.FOREIGN_KEY, None, ("b",))),
        constraint_name(table, Constraint(ConstraintKind.UNIQUE, None, ("c", "d"))),
        constraint_name(uni, Constraint(ConstraintKind.PRIMARY_KEY, None, ("id",))),
        constraint_name(uni, Constraint(ConstraintKind.UNIQUE, None, ("spalte_äöü",))),
        constraint_name(orders, Constraint(ConstraintKind.PRIMARY_KEY, None, ("id",))),
        constraint_name(orders, Constraint(ConstraintKind.FOREIGN_KEY, None, ("customer_id",))),
    }
    assert predicted_constraints == constraints
    assert index_name(table, ["c"]) in indexes  # a unique index is _idx, not _key
    assert index_name(table, ["d", "c"]) in indexes
    assert all(len(name.encode()) <= NAMEDATALEN for name in constraints | indexes)


def test_the_history_schema_names_unnamed_constraints_as_the_server_does(fresh_db: str) -> None:
    """A later revision drops ``orders_customer_id_fkey`` by the name PostgreSQL chose: the
    offline inspector must answer that name (zou's revisions look foreign keys up by it)."""
    constraints, indexes = _catalog(fresh_db)
    schema = HistorySchema()
    schema.add([SCHEMA])
    snapshot = schema.snapshot([])
    names = set()
    for table in ("parent", LONG_TABLE, UNICODE_TABLE, "orders"):
        known = snapshot.table(table)
        assert known is not None
        names |= {k.name for k in known.constraints if k.kind is not ConstraintKind.NOT_NULL}
        names |= set(known.indexes)
    assert constraints <= names
    assert {n for n in indexes if n.endswith("_idx")} <= names


@pytest.mark.parametrize(
    ("table", "columns", "label", "expected"),
    [
        ("orders", ("customer_id",), "fkey", "orders_customer_id_fkey"),
        ("orders", (), "pkey", "orders_pkey"),
        ("a" * 70, ("b",), "idx", "a" * 57 + "_b_idx"),
        ("a" * 30, ("b" * 40,), "key", "a" * 29 + "_" + "b" * 29 + "_key"),
    ],
)
def test_default_object_name_shortens_the_longer_part(
    table: str, columns: tuple[str, ...], label: str, expected: str
) -> None:
    assert default_object_name(table, columns, label) == expected
