"""Helpers the review rules share: describing a table, and fixes that rebuild or drop an index."""

from __future__ import annotations

from helios_migrate.changes import CreateIndex, DropIndex, QualifiedName
from helios_migrate.review_context import ReviewContext
from helios_migrate.rule_context import format_bytes, format_count
from helios_migrate.schema_model import Index, Table
from helios_migrate.sqltext import quote_ident


def keep_order(ix: Index) -> tuple[bool, bool, bool, str]:
    """Of two indexes that do the same work, the one to keep sorts first: the primary key, then
    one that backs a constraint, then a unique one, then by name."""
    return (not ix.primary, ix.constraint is None, not ix.unique, ix.name or "")


def same_definition(a: Index, b: Index) -> bool:
    """Same key elements, access method, operator classes, predicate and INCLUDE columns."""
    return (
        a.elements == b.elements and a.method == b.method and a.predicate == b.predicate
        and a.include == b.include and a.operator_classes == b.operator_classes
    )


PARTITIONED_DROP = (
    "On a partitioned table DROP INDEX cannot run CONCURRENTLY: it locks the parent and every "
    "partition (ACCESS EXCLUSIVE) while the partitions' indexes are dropped; run it with a short "
    "lock_timeout, at a quiet time."
)


def describe(table: Table) -> str:
    """``public.orders (~1.2M rows)`` when the row estimate is known, else ``public.orders``."""
    if table.row_estimate is None:
        return str(table.name)
    return f"{table.name} (~{format_count(table.row_estimate)} rows)"


def index_label(index: Index) -> str:
    """``ix_orders_customer_id (customer_id), 8 kB``."""
    name = index.name or "an unnamed index"
    size = f", {format_bytes(index.size_bytes)}" if index.size_bytes is not None else ""
    where = f" WHERE {index.predicate}" if index.predicate else ""
    return f"{name} ({', '.join(index.elements)}){where}{size}"


def as_create_index(table: Table, index: Index) -> CreateIndex:
    """The change that builds ``index`` again."""
    return CreateIndex(
        on=table.name, name=index.name, columns=index_columns(table, index.elements), unique=index.unique,
        where=index.predicate, method=index.method, include=index.include,
    )


def index_columns(table: Table, elements: tuple[str, ...]) -> tuple[str, ...]:
    """Index elements as the change model writes them: column names quoted where needed,
    expressions as they are."""
    return tuple(quote_ident(e) if table.column(e) is not None else e for e in elements)


def drop_index_fix(table: Table, index: Index) -> tuple[tuple[DropIndex, ...], tuple[CreateIndex, ...]]:
    """(the drop, what re-creates it) for an index nothing depends on; empty without a name, and
    on a partitioned table (its index cannot be dropped concurrently: see :data:`PARTITIONED_DROP`)."""
    if index.name is None or index.constraint is not None or index.primary or table.partitioned:
        return (), ()
    drop = DropIndex(QualifiedName(index.name, table.name.schema), on=table.name)
    return (drop,), (as_create_index(table, index),)


def models_hint(ctx: ReviewContext, text: str) -> str:
    """``text`` on the models path (say what to change in the model), nothing on the live path."""
    return "" if ctx.live else f"\nIn the models: {text}"
