"""A statement that cannot run inside a transaction block, inside one.

## What it does
Flags ``CREATE INDEX CONCURRENTLY``, ``DROP INDEX CONCURRENTLY``, ``REINDEX ... CONCURRENTLY``,
``DETACH PARTITION ... CONCURRENTLY`` and ``VACUUM`` when they run inside a transaction block
(between ``BEGIN`` and ``COMMIT``, or in Alembic's migration transaction).

## Why is this bad?
PostgreSQL rejects them (``cannot run inside a transaction block``): the migration fails, and with
it everything else in the transaction.

## Example
```sql
BEGIN;
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_customer_id ON orders (customer_id);
COMMIT;
```

## Use instead
```sql
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_customer_id ON orders (customer_id);
```

In Alembic, run it in an autocommit block:
```python
with op.get_context().autocommit_block():
    op.create_index("ix_orders_customer_id", "orders", ["customer_id"],
                    postgresql_concurrently=True, if_not_exists=True)
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.effects import TransactionUse
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM406"
NAME = "concurrently-in-transaction"
SEVERITY = Severity.ERROR
KIND = RuleKind.OTHER


def check(ctx: RuleContext) -> Iterator[Violation]:
    if ctx.effect.transaction is TransactionUse.OUTSIDE_ONLY and ctx.in_transaction:
        yield Violation(
            f"{ctx.statement.verb} cannot run inside a transaction block: PostgreSQL rejects it and "
            "the migration fails",
            help="Run it outside the transaction (Alembic: with op.get_context().autocommit_block():).",
        )
