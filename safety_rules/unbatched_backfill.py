"""Updating or deleting every row of a table in one statement.

## What it does
Flags ``UPDATE`` and ``DELETE`` without a ``WHERE`` clause on a table that existed before the
migration.

## Why is this bad?
One statement touching every row holds a row lock on each until the transaction commits (blocking
concurrent updates of those rows), writes WAL for the whole table at once (replicas fall behind),
and leaves a dead copy of every row behind for VACUUM.

## Example
```sql
UPDATE orders SET status = 'open';
```

## Use instead
```sql
UPDATE orders SET status = 'open' WHERE id >= 1 AND id < 10001 AND status IS NULL;
-- ... one batch per transaction, pausing between batches
```

In Alembic, run the batches outside the migration transaction:
```python
with op.get_context().autocommit_block():
    for start in range(0, max_id + 1, 10_000):
        op.execute(sa.text("UPDATE orders SET status = 'open' "
                           "WHERE id >= :a AND id < :b AND status IS NULL")
                   .bindparams(a=start, b=start + 10_000))
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import DataOperation, ModifyRows
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM206"
NAME = "unbatched-backfill"
SEVERITY = Severity.WARNING
KIND = RuleKind.LOCKING
CHANGES = (ModifyRows,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if not isinstance(ch, ModifyRows) or ch.has_where or ch.operation is DataOperation.INSERT:
        return
    yield Violation(
        f"{ch.operation.value.upper()} without WHERE touches every row of {ctx.describe_table(ch.on)} "
        "in one transaction: row locks, WAL and dead rows for the whole table",
        help=f"Backfill in batches by primary key, each in its own short transaction "
        f"(batch size {ctx.config.backfill_batch_size}).",
    )
