"""Dropping a NOT NULL constraint that running code may rely on.

## What it does
Flags ``ALTER COLUMN ... DROP NOT NULL`` on a table that existed before the migration.

## Why is this bad?
Once NULLs can be written, code that assumes the column always has a value (the running version,
other services, reports) can break on the first NULL, and the constraint cannot be put back
without a scan once NULLs exist.

## Example
```sql
ALTER TABLE orders ALTER COLUMN customer_id DROP NOT NULL;
```

## Use instead
```sql
-- deploy code that handles NULL in customer_id everywhere it is read, then:
ALTER TABLE orders ALTER COLUMN customer_id DROP NOT NULL;  -- helios: ignore[HM305]
```

In Alembic:
```python
op.alter_column("orders", "customer_id", nullable=True)  # helios: ignore[HM305] -- readers handle NULL
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import DropNotNull
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM305"
NAME = "drop-not-null"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER
CHANGES = (DropNotNull,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if isinstance(ch, DropNotNull) and not ctx.is_new(ch.on):
        yield Violation(
            f"dropping NOT NULL on {ch.on}.{ch.column} lets NULLs reach code that assumes a value",
            help="Make every reader handle NULL first, then mark the change as intended with "
            "helios: ignore[HM305].",
        )
