"""A backfill in the same transaction as schema changes.

## What it does
Flags ``UPDATE`` and ``DELETE`` on an existing table inside a transaction block that also changes
the schema of an existing table (before or after the backfill).

## Why is this bad?
The DDL's lock (ACCESS EXCLUSIVE for most ``ALTER TABLE`` forms) is held until ``COMMIT``, so it
stays held for the whole backfill; the backfill's row locks are held as long.  A failure anywhere
rolls back everything, including hours of backfill.

## Example
```sql
BEGIN;
ALTER TABLE orders ADD COLUMN region text;
UPDATE orders SET region = 'eu' WHERE region IS NULL;
COMMIT;
```

## Use instead
```sql
BEGIN;
ALTER TABLE orders ADD COLUMN region text;
COMMIT;
UPDATE orders SET region = 'eu' WHERE id >= 1 AND id < 10001 AND region IS NULL;
-- ... one batch per transaction
```

In Alembic, backfill in an autocommit block (or a separate revision):
```python
op.add_column("orders", sa.Column("region", sa.Text()))
with op.get_context().autocommit_block():
    op.execute("UPDATE orders SET region = 'eu' WHERE id >= 1 AND id < 10001 AND region IS NULL")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import DataOperation, ModifyRows, SetSetting, TransactionControl
from helios_migrate.effects import RelationRole
from helios_migrate.findings import Severity
from helios_migrate.locks import LockMode
from helios_migrate.rule_context import RuleContext, RuleKind, StatementInfo, Violation

CODE = "HM404"
NAME = "backfill-in-ddl-transaction"
SEVERITY = Severity.WARNING
KIND = RuleKind.TRANSACTION
CHANGES = (ModifyRows,)


def _is_ddl_on_existing(stmt: StatementInfo, ctx: RuleContext) -> bool:
    if all(isinstance(ch, (ModifyRows, SetSetting, TransactionControl)) for ch in stmt.changes):
        return False
    return any(
        lk.mode >= LockMode.SHARE_UPDATE_EXCLUSIVE and lk.role is not RelationRole.TYPE
        and not ctx.is_new(lk.relation)
        for e in stmt.effects for lk in e.locks
    )


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if not isinstance(ch, ModifyRows) or ch.operation is DataOperation.INSERT:
        return
    if not ctx.in_transaction or ctx.is_new(ch.on):
        return
    ddl = next((s for s in (*ctx.earlier, *ctx.later) if _is_ddl_on_existing(s, ctx)), None)
    if ddl is None:
        return
    yield Violation(
        f"{ch.operation.value.upper()} on {ctx.describe_table(ch.on)} runs in the same transaction as "
        f"{ddl.verb} ({ddl.where}): the DDL's lock is held for the whole backfill",
        help="Commit the schema change first, then backfill in batches, each in its own transaction.",
    )
