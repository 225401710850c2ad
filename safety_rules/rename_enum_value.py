"""Renaming an enum value that stored rows and running code use.

## What it does
Flags ``ALTER TYPE ... RENAME VALUE``.

## Why is this bad?
Every row holding the value changes at once, and the running code that writes or compares the old
label fails (``invalid input value for enum``) until every instance runs the new code.

## Example
```sql
ALTER TYPE order_status RENAME VALUE 'canceled' TO 'cancelled';
```

## Use instead
```sql
ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'cancelled';
-- deploy code that writes 'cancelled' and reads both, backfill rows in batches, then stop
-- using 'canceled' (an enum value cannot be dropped; leave it unused)
```

In Alembic:
```python
with op.get_context().autocommit_block():
    op.execute("ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'cancelled'")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import RenameEnumValue
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM306"
NAME = "rename-enum-value"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER
CHANGES = (RenameEnumValue,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if isinstance(ch, RenameEnumValue):
        yield Violation(
            f"renaming {ch.name} value '{ch.old_value}' to '{ch.new_value}' breaks running code that "
            f"writes or compares '{ch.old_value}'",
            help="Add the new value, move code and rows to it, and leave the old value unused.",
        )
