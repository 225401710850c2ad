"""Renaming a table that running code uses.

## What it does
Flags ``ALTER TABLE ... RENAME TO`` on a table that existed before the migration.

## Why is this bad?
The rename is instant, but the application version still running queries the old name and fails
until every instance runs the new code.

## Example
```sql
ALTER TABLE customers RENAME TO clients;
```

## Use instead
```sql
ALTER TABLE customers RENAME TO clients;  -- helios: ignore[HM302]
CREATE VIEW customers AS SELECT * FROM clients;
-- drop the view in a later revision, once no code uses the old name
```

In Alembic:
```python
op.rename_table("customers", "clients")  # helios: ignore[HM302]
op.execute("CREATE VIEW customers AS SELECT * FROM clients")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import RenameTable
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM302"
NAME = "rename-table"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER
CHANGES = (RenameTable,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if isinstance(ch, RenameTable) and not ctx.is_new(ch.on):
        yield Violation(
            f"renaming {ch.on} to {ch.new_name} breaks running code that uses {ch.on.name}",
            help=ctx.effect.safer_alternative or "",
        )
