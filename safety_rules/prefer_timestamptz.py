"""A ``timestamp`` (without time zone) column.

## What it does
Flags ``timestamp`` / ``timestamp without time zone`` columns in ``CREATE TABLE``, ``ADD COLUMN``
and type changes.

## Why is this bad?
``timestamp`` stores a wall-clock reading with no zone: the same value means different instants
for clients in different time zones, and comparisons with ``now()`` silently shift by the session's
offset.  ``timestamptz`` stores an instant (it takes the same 8 bytes).  Converting later rewrites
the table unless the session time zone is UTC.

## Example
```sql
CREATE TABLE events (id bigint PRIMARY KEY, created_at timestamp NOT NULL DEFAULT now());
```

## Use instead
```sql
CREATE TABLE events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now());
```

In Alembic / SQLAlchemy:
```python
sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())
```
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

from ._columns import COLUMN_DEFINING_CHANGES, defined_columns

CODE = "HM504"
NAME = "prefer-timestamptz"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER
CHANGES = COLUMN_DEFINING_CHANGES

_TIMESTAMP = re.compile(r"^timestamp(\(\d\))?(\[\])*$")


def check(ctx: RuleContext) -> Iterator[Violation]:
    for table, column, type_, _pk in defined_columns(ctx.change):
        if _TIMESTAMP.match(type_):
            yield Violation(
                f"{table}.{column} is {type_} (without time zone): prefer timestamptz",
                help="Use timestamptz (SQLAlchemy: DateTime(timezone=True)).",
            )
