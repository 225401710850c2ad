"""A ``json`` column instead of ``jsonb``.

## What it does
Flags ``json`` columns in ``CREATE TABLE``, ``ADD COLUMN`` and type changes.

## Why is this bad?
``json`` stores the text as given and re-parses it on every access; it has no equality operator,
so ``SELECT DISTINCT``, ``UNION`` and ORMs that compare values on update fail on it, and it
cannot be indexed with GIN.  ``jsonb`` has none of these problems.

## Example
```sql
ALTER TABLE events ADD COLUMN properties json;
```

## Use instead
```sql
ALTER TABLE events ADD COLUMN properties jsonb;
```

In Alembic / SQLAlchemy:
```python
op.add_column("events", sa.Column("properties", postgresql.JSONB()))
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

from ._columns import COLUMN_DEFINING_CHANGES, defined_columns

CODE = "HM506"
NAME = "prefer-jsonb"
SEVERITY = Severity.INFO
KIND = RuleKind.OTHER
CHANGES = COLUMN_DEFINING_CHANGES


def check(ctx: RuleContext) -> Iterator[Violation]:
    for table, column, type_, _pk in defined_columns(ctx.change):
        if type_ == "json":
            yield Violation(
                f"{table}.{column} is json: prefer jsonb",
                help="Use jsonb (SQLAlchemy: postgresql.JSONB).",
            )
