"""Adding a NOT NULL column without a default to an existing table.

## What it does
Flags ``ADD COLUMN ... NOT NULL`` (including ``PRIMARY KEY``) with no default, identity or
generation expression, on a table that existed before the migration.

## Why is this bad?
Existing rows would get NULL in the new column, so the statement fails on any table that has rows,
and the failure happens in production, not on an empty development database.

## Example
```sql
ALTER TABLE orders ADD COLUMN region text NOT NULL;
```

## Use instead
```sql
ALTER TABLE orders ADD COLUMN region text NOT NULL DEFAULT 'eu';
```

Or add it nullable, backfill, then make it NOT NULL without a long lock (HM109).  In Alembic:
```python
op.add_column("orders", sa.Column("region", sa.Text(), nullable=False, server_default="eu"))
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import AddColumn, DataOperation, ModifyRows, TruncateTable
from helios_migrate.findings import Severity
from helios_migrate.rule_context import (
    RuleContext,
    RuleKind,
    StatementInfo,
    Violation,
    same_relation,
)

CODE = "HM202"
NAME = "add-column-not-null-without-default"
SEVERITY = Severity.ERROR
KIND = RuleKind.OTHER
CHANGES = (AddColumn,)

_SERIAL = {"serial", "bigserial", "smallserial", "serial4", "serial8", "serial2"}


def _empties(statement: StatementInfo, add: AddColumn) -> bool:
    """``DELETE FROM t`` without WHERE, or ``TRUNCATE t``, of the table the column is added to."""
    return any(
        ((isinstance(ch, ModifyRows) and ch.operation is DataOperation.DELETE and not ch.has_where)
         or isinstance(ch, TruncateTable))
        and same_relation(ch.on, add.on)
        for ch in statement.changes
    )


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if not isinstance(ch, AddColumn) or ctx.is_new(ch.on):
        return
    col = ch.column
    if col.nullable or col.default is not None or col.identity is not None or col.generated is not None:
        return
    if col.type in _SERIAL:
        return
    if any(_empties(st, ch) for st in ctx.earlier):
        return  # the transaction deleted every row first: nothing to fail on
    yield Violation(
        f"ADD COLUMN {col.name} {col.type} NOT NULL without a default fails if {ch.on} has any rows",
        help="Give it a constant DEFAULT (no rewrite on PostgreSQL 11+), or add it nullable, "
        "backfill, then add NOT NULL without a long lock.",
    )
