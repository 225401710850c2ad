"""Creating an index on an existing table without ``CONCURRENTLY``.

## What it does
Flags ``CREATE INDEX`` without ``CONCURRENTLY`` on a table that existed before the migration.
Indexes on tables created earlier in the same migration are fine: nobody else can see the table.

## Why is this bad?
A plain ``CREATE INDEX`` holds a SHARE lock on the table for the whole build: every ``INSERT``,
``UPDATE`` and ``DELETE`` waits until the index is built, which takes minutes to hours on a large
table.  ``CREATE INDEX CONCURRENTLY`` takes SHARE UPDATE EXCLUSIVE instead, so writes continue.

## Example
```sql
CREATE INDEX ix_orders_customer_id ON orders (customer_id);
```

## Use instead
```sql
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_customer_id ON orders (customer_id);
```

``CONCURRENTLY`` cannot run inside a transaction block; in Alembic, use an autocommit block:
```python
with op.get_context().autocommit_block():
    op.create_index(
        "ix_orders_customer_id", "orders", ["customer_id"],
        postgresql_concurrently=True, if_not_exists=True,
    )
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import CreateIndex
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM101"
NAME = "create-index-non-concurrently"
SEVERITY = Severity.ERROR
KIND = RuleKind.LOCKING
CHANGES = (CreateIndex,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if not isinstance(ch, CreateIndex) or ch.concurrently:
        return
    index = f"index {ch.name}" if ch.name else "an index"
    unique = "unique " if ch.unique else ""
    yield Violation(
        f"CREATE {unique.upper()}INDEX builds {unique}{index} holding {ctx.lock_phrase()} for the whole build",
        help=f"Use {ctx.effect.safer_alternative or 'CREATE INDEX CONCURRENTLY'} (Alembic: "
        "postgresql_concurrently=True inside op.get_context().autocommit_block()).",
    )
