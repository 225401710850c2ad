"""Renaming a column that running code uses.

## What it does
Flags ``ALTER TABLE ... RENAME COLUMN`` on a table that existed before the migration.

## Why is this bad?
The rename is instant, but the application version still running during and after the deploy
queries the old name and fails until every instance runs the new code.  Rolling deploys make that
window unavoidable.

## Example
```sql
ALTER TABLE users RENAME COLUMN name TO full_name;
```

## Use instead
```sql
ALTER TABLE users ADD COLUMN full_name text;
-- write both columns from the code, backfill full_name in batches, switch reads,
-- then in a later revision:
ALTER TABLE users DROP COLUMN name;
```

In Alembic, expand in one revision and contract in a later one:
```python
op.add_column("users", sa.Column("full_name", sa.Text()))
# later revision, after the code no longer uses "name":
op.drop_column("users", "name")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import RenameColumn
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM301"
NAME = "rename-column"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER
CHANGES = (RenameColumn,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if isinstance(ch, RenameColumn) and not ctx.is_new(ch.on):
        yield Violation(
            f"renaming {ch.on}.{ch.column} to {ch.new_name} breaks running code that uses {ch.column}",
            help=ctx.effect.safer_alternative or "",
        )
