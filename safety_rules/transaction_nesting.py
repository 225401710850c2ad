"""``BEGIN`` inside a transaction, or ``COMMIT`` with none open.

## What it does
Flags ``BEGIN`` while a transaction block is already open, and ``COMMIT`` / ``ROLLBACK`` when none
is (in an Alembic revision, the migration's own transaction counts as open).

## Why is this bad?
PostgreSQL does not nest transactions: the inner ``BEGIN`` is ignored with a warning, and its
``COMMIT`` ends the outer transaction early -- so statements meant to be atomic, and Alembic's
version stamp, end up in different transactions.

## Example
```sql
BEGIN;
ALTER TABLE orders ADD COLUMN note text;
BEGIN;
ALTER TABLE orders ADD COLUMN memo text;
COMMIT;
COMMIT;
```

## Use instead
```sql
BEGIN;
ALTER TABLE orders ADD COLUMN note text;
ALTER TABLE orders ADD COLUMN memo text;
COMMIT;
```

In Alembic, do not issue ``BEGIN``/``COMMIT`` with ``op.execute``; use an autocommit block for
statements that must run outside the migration's transaction:
```python
with op.get_context().autocommit_block():
    op.execute("VACUUM (ANALYZE) orders")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import TransactionAction, TransactionControl
from helios_migrate.findings import Severity

from .context import RuleContext, RuleKind, Violation

CODE = "HM409"
NAME = "transaction-nesting"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if not isinstance(ch, TransactionControl):
        return
    # For BEGIN/COMMIT the context describes the state before the statement.
    if ch.action is TransactionAction.BEGIN and ctx.in_transaction:
        yield Violation(
            "BEGIN inside an open transaction block is ignored; the next COMMIT ends the outer transaction",
            help="Remove the inner BEGIN/COMMIT.",
        )
    elif ch.action is not TransactionAction.BEGIN and not ctx.in_transaction:
        yield Violation(
            f"{ch.action.value.upper()} with no transaction block open",
            help="Remove it, or add the BEGIN it belongs to.",
        )
