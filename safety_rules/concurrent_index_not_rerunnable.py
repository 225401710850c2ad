"""A concurrent index build or drop that cannot be re-run after a failure.

## What it does
Flags ``CREATE INDEX CONCURRENTLY`` without ``IF NOT EXISTS`` and ``DROP INDEX CONCURRENTLY``
without ``IF EXISTS``.

## Why is this bad?
These run outside the migration transaction, so a failure (a lock timeout, a deploy interrupted,
a duplicate key) leaves the database half-migrated while ``alembic_version`` still names the old
revision.  A failed ``CREATE INDEX CONCURRENTLY`` also leaves an INVALID index behind.  Re-running
the migration then fails on "already exists" / "does not exist" unless each step is idempotent.

## Example
```sql
CREATE INDEX CONCURRENTLY ix_orders_customer_id ON orders (customer_id);
```

## Use instead
```sql
-- drop an INVALID leftover of an earlier failed attempt, then build if missing
DROP INDEX CONCURRENTLY IF EXISTS ix_orders_customer_id;
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_customer_id ON orders (customer_id);
```

(Drop only when ``pg_index.indisvalid`` is false for it; helios-migrate's generated revisions do
that check.)  In Alembic:
```python
with op.get_context().autocommit_block():
    op.create_index("ix_orders_customer_id", "orders", ["customer_id"],
                    postgresql_concurrently=True, if_not_exists=True)
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import CreateIndex, DropIndex
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM407"
NAME = "concurrent-index-not-rerunnable"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER
CHANGES = (CreateIndex, DropIndex)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if isinstance(ch, CreateIndex) and ch.concurrently and not ch.if_not_exists:
        name = ch.name or "the index"
        yield Violation(
            f"CREATE INDEX CONCURRENTLY {name} without IF NOT EXISTS fails when re-run after a failure, "
            "and a failed build leaves an INVALID index behind",
            help="Add IF NOT EXISTS, and drop an INVALID leftover (pg_index.indisvalid = false) first.",
        )
    elif isinstance(ch, DropIndex) and ch.concurrently and not ch.if_exists:
        yield Violation(
            f"DROP INDEX CONCURRENTLY {ch.index} without IF EXISTS fails when re-run after a failure",
            help="Add IF EXISTS.",
        )
