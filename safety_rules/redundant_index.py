"""An index whose columns lead another index of the same kind.

## What it does
Reported by ``helios-migrate review`` (models and live database) when a valid, non-unique
B-tree index's key columns are the leading columns of another valid B-tree index on the same
table, with the same operator classes and the same predicate (an index on ``(a)`` beside one on
``(a, b)``).  Unique indexes and indexes that back a constraint are never reported: they enforce
something.  The fix drops it with ``DROP INDEX CONCURRENTLY`` (its downgrade builds it again,
concurrently).

## Why is this bad?
A B-tree on ``(a, b)`` serves every lookup and range scan on ``a`` alone, so the shorter index
only costs: writes maintain it, and it takes disk, cache, WAL and vacuum time.  (It can be a
little faster for scans on ``a`` alone because it is smaller; check ``pg_stat_user_indexes``
before dropping an index that is heavily used.)

## Example
```sql
CREATE TABLE visits (id bigint PRIMARY KEY, site_id bigint NOT NULL, seen_at timestamptz NOT NULL);
CREATE INDEX visits_site_id_idx ON visits (site_id);
CREATE INDEX visits_site_id_seen_at_idx ON visits (site_id, seen_at);
```

## Use instead
```sql
CREATE TABLE visits (id bigint PRIMARY KEY, site_id bigint NOT NULL, seen_at timestamptz NOT NULL);
CREATE INDEX visits_site_id_seen_at_idx ON visits (site_id, seen_at);
```

In Alembic, on an existing table:
```python
with op.get_context().autocommit_block():
    op.drop_index("visits_site_id_idx", table_name="visits",
                  postgresql_concurrently=True, if_exists=True)
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.review_context import ReviewContext, SchemaViolation
from helios_migrate.rule_context import RuleKind
from helios_migrate.schema_model import Index

from ._schema import (
    PARTITIONED_DROP,
    describe,
    drop_index_fix,
    index_label,
    keep_order,
    models_hint,
    same_definition,
)

CODE = "HM606"
NAME = "redundant-index"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER


def _covered_by(short: Index, long: Index) -> bool:
    n = len(short.elements)
    return (
        short.method == long.method == "btree"
        and len(long.elements) > n
        and long.elements[:n] == short.elements
        and short.predicate == long.predicate
        and long.valid
        and (not short.operator_classes or short.operator_classes == long.operator_classes[:n])
    )


def review(ctx: ReviewContext) -> Iterator[SchemaViolation]:
    for table in ctx.schema.tables:
        for ix in table.indexes:
            if not ix.valid or ix.unique or ix.primary or ix.constraint is not None or ix.include:
                continue
            if any(
                other is not ix and other.valid and same_definition(ix, other) and keep_order(other) < keep_order(ix)
                for other in table.indexes
            ):
                continue  # HM605 drops it as a duplicate of the other
            wider = next((other for other in table.indexes if other is not ix and _covered_by(ix, other)), None)
            if wider is None:
                continue
            drops, recreate = drop_index_fix(table, ix)
            yield SchemaViolation(
                f"{describe(table)}: index {index_label(ix)} is redundant: {index_label(wider)} leads "
                "with the same columns and serves the same lookups",
                table=table.name,
                column=ix.elements[0] if len(ix.elements) == 1 else None,
                help=f"Drop {ix.name or 'it'} (check pg_stat_user_indexes.idx_scan first if it is heavily used)."
                + (f" {PARTITIONED_DROP}" if table.partitioned else "")
                + models_hint(ctx, "remove the shorter Index (or index=True) from the table."),
                fix=drops,
                recreate=recreate,
            )
