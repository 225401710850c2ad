"""Truncating a table in a migration.

## What it does
Flags ``TRUNCATE`` of a table that existed before the migration; ``TRUNCATE ... CASCADE`` is an
error, because it also empties every table that references it, which the statement does not name.

## Why is this bad?
All rows are lost, and ``TRUNCATE`` takes ACCESS EXCLUSIVE: it waits for every open transaction on
the table while reads and writes queue behind it.

## Example
```sql
TRUNCATE TABLE sessions CASCADE;
```

## Use instead
```sql
DELETE FROM sessions WHERE expires_at < now() - interval '30 days';
```

In Alembic, delete what must go, in batches, and name every table explicitly:
```python
op.execute("DELETE FROM sessions WHERE expires_at < now() - interval '30 days'")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import TruncateTable
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM307"
NAME = "truncate-table"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER
CHANGES = (TruncateTable,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if not isinstance(ch, TruncateTable) or ctx.is_new(ch.on):
        return
    if ch.cascade:
        yield Violation(
            f"TRUNCATE {ch.on} CASCADE also empties every table that references {ch.on}, holding "
            f"{ctx.lock_phrase()}",
            help="Remove CASCADE and name exactly the tables to empty.",
            severity=Severity.ERROR,
        )
        return
    yield Violation(
        f"TRUNCATE deletes every row of {ctx.describe_table(ch.on)} holding {ctx.lock_phrase()}",
        help="Delete the rows that must go with DELETE ... WHERE, in batches.",
    )
