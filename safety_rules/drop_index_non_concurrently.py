"""Dropping an index without ``CONCURRENTLY``.

## What it does
Flags ``DROP INDEX`` without ``CONCURRENTLY``.

## Why is this bad?
A plain ``DROP INDEX`` takes ACCESS EXCLUSIVE on the index's table.  The drop itself is quick, but
it must first wait for every transaction using the table, and while it waits every new read and
write of the table queues behind it.  ``DROP INDEX CONCURRENTLY`` takes SHARE UPDATE EXCLUSIVE on the
table, which blocks neither reads nor writes.

## Example
```sql
DROP INDEX ix_orders_customer_id;
```

## Use instead
```sql
DROP INDEX CONCURRENTLY IF EXISTS ix_orders_customer_id;
```

In Alembic:
```python
with op.get_context().autocommit_block():
    op.drop_index(
        "ix_orders_customer_id", table_name="orders",
        postgresql_concurrently=True, if_exists=True,
    )
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import DropIndex
from helios_migrate.effects import RelationRole
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM102"
NAME = "drop-index-non-concurrently"
SEVERITY = Severity.WARNING
KIND = RuleKind.LOCKING
CHANGES = (DropIndex,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if not isinstance(ch, DropIndex) or ch.concurrently:
        return
    table_lock = next((lk for lk in ctx.effect.locks if lk.role is RelationRole.TABLE), None)
    where = (
        ctx.lock_phrase(table_lock) if table_lock is not None
        else "ACCESS EXCLUSIVE on its table (unknown offline), blocking reads and writes"
    )
    yield Violation(
        f"DROP INDEX {ch.index} takes {where}; it waits behind every open transaction on the table "
        "while new queries queue behind it",
        help="Use DROP INDEX CONCURRENTLY IF EXISTS, outside a transaction block (Alembic: "
        "postgresql_concurrently=True inside op.get_context().autocommit_block()).",
        table=ch.on,
    )
