"""Dropping a column.

## What it does
Flags ``ALTER TABLE ... DROP COLUMN`` on a table that existed before the migration.

## Why is this bad?
The data is gone for good, and code still running that reads or writes the column fails (ORMs
that list every column in ``SELECT`` and ``INSERT`` fail even without naming it).  The statement
also takes ACCESS EXCLUSIVE briefly, and drops indexes and constraints on the column.

## Example
```sql
ALTER TABLE users DROP COLUMN legacy_flags;
```

## Use instead
```sql
-- 1. deploy code that no longer reads or writes legacy_flags
--    (SQLAlchemy: remove the attribute, or mark it deferred/unused first)
-- 2. then, in a later revision:
ALTER TABLE users DROP COLUMN IF EXISTS legacy_flags;  -- helios: ignore[HM303]
```

In Alembic, in a contract revision deployed after the code change:
```python
op.drop_column("users", "legacy_flags")  # helios: ignore[HM303] -- code stopped using it in v42
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import DropColumn
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM303"
NAME = "drop-column"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER
CHANGES = (DropColumn,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if isinstance(ch, DropColumn) and not ctx.is_new(ch.on):
        yield Violation(
            f"dropping {ch.on}.{ch.column} loses its data and breaks running code that still uses it",
            help="Stop using the column in code first, then drop it in a later revision and mark the "
            "drop as intended with a helios: ignore[HM303] comment.",
        )
