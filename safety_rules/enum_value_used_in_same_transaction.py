"""Using a new enum value in the transaction that added it.

## What it does
Flags a statement that mentions a value added with ``ALTER TYPE ... ADD VALUE`` earlier in the same
transaction block.

## Why is this bad?
PostgreSQL lets ``ADD VALUE`` run in a transaction block (since 12), but the new value cannot be
used until that transaction commits: the statement fails with ``unsafe use of new value``, and
the migration with it.

## Example
```sql
BEGIN;
ALTER TYPE order_status ADD VALUE 'refunded';
UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL;
COMMIT;
```

## Use instead
```sql
ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded';
BEGIN;
UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL;
COMMIT;
```

In Alembic:
```python
with op.get_context().autocommit_block():
    op.execute("ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded'")
op.execute("UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import AddEnumValue
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM408"
NAME = "enum-value-used-in-same-transaction"
SEVERITY = Severity.ERROR
KIND = RuleKind.OTHER


def check(ctx: RuleContext) -> Iterator[Violation]:
    if ctx.change_index != 0 or not ctx.in_transaction:
        return
    for earlier in ctx.earlier:
        for ch in earlier.changes:
            if not isinstance(ch, AddEnumValue):
                continue
            literal = "'" + ch.value.replace("'", "''") + "'"
            if literal in ctx.statement.sql:
                yield Violation(
                    f"uses {ch.name} value {literal}, added in this transaction ({earlier.where}): "
                    "PostgreSQL rejects it until the ADD VALUE commits",
                    help="Add the enum value in its own transaction (Alembic: autocommit block), "
                    "before the statements that use it.",
                )
                return
