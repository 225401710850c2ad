"""Rebuilding an index with ``REINDEX`` without ``CONCURRENTLY``.

## What it does
Flags ``REINDEX INDEX`` and ``REINDEX TABLE`` without ``CONCURRENTLY``.

## Why is this bad?
A plain ``REINDEX`` takes SHARE on the table (writes wait for the whole rebuild) and ACCESS EXCLUSIVE
on each index being rebuilt, so even reads that would plan with the index wait.
``REINDEX ... CONCURRENTLY`` builds a new index beside the old one and swaps them, holding only
SHARE UPDATE EXCLUSIVE.

## Example
```sql
REINDEX INDEX ix_orders_customer_id;
```

## Use instead
```sql
REINDEX INDEX CONCURRENTLY ix_orders_customer_id;
```

In Alembic:
```python
with op.get_context().autocommit_block():
    op.execute("REINDEX INDEX CONCURRENTLY ix_orders_customer_id")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import Reindex
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM103"
NAME = "reindex-non-concurrently"
SEVERITY = Severity.ERROR
KIND = RuleKind.LOCKING
CHANGES = (Reindex,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if not isinstance(ch, Reindex) or ch.concurrently:
        return
    lock = ctx.effect.table_lock
    held = ctx.lock_phrase(lock) if lock is not None else "SHARE on its table, blocking writes"
    yield Violation(
        f"REINDEX {ch.target.value.upper()} {ch.name} rebuilds holding {held}, and ACCESS EXCLUSIVE "
        "on the index itself",
        help=f"Use REINDEX {ch.target.value.upper()} CONCURRENTLY {ch.name}, outside a transaction block.",
    )
