"""Dropping a table.

## What it does
Flags ``DROP TABLE`` of a table that existed before the migration.

## Why is this bad?
The data is gone for good, and code still running that uses the table fails.  The drop also takes
ACCESS EXCLUSIVE on the table and on tables it references by foreign key.

## Example
```sql
DROP TABLE legacy_sessions;
```

## Use instead
```sql
-- after the code no longer uses the table, in a later revision:
DROP TABLE IF EXISTS legacy_sessions;  -- helios: ignore[HM304]
```

In Alembic, in a contract revision:
```python
op.drop_table("legacy_sessions")  # helios: ignore[HM304] -- unused since v42
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import DropTable
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM304"
NAME = "drop-table"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER
CHANGES = (DropTable,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if isinstance(ch, DropTable) and not ctx.is_new(ch.on):
        yield Violation(
            f"dropping {ctx.describe_table(ch.on)} loses its data and breaks running code that still uses it",
            help="Stop using the table in code first, then drop it in a later revision and mark the "
            "drop as intended with a helios: ignore[HM304] comment.",
        )
