"""Adding a UNIQUE constraint that builds its index under ACCESS EXCLUSIVE.

## What it does
Flags ``ADD CONSTRAINT ... UNIQUE (...)`` (and ``ADD COLUMN ... UNIQUE``) on an existing table,
unless the constraint adopts an index built beforehand with ``USING INDEX``.

## Why is this bad?
PostgreSQL builds the unique index while holding ACCESS EXCLUSIVE on the table: every read and write
waits for the whole build.  Building the index with ``CREATE UNIQUE INDEX CONCURRENTLY`` first and
then attaching it as the constraint takes the strong lock only for a catalog update.

## Example
```sql
ALTER TABLE users ADD CONSTRAINT uq_users_email UNIQUE (email);
```

## Use instead
```sql
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS uq_users_email_idx ON users (email);
ALTER TABLE users ADD CONSTRAINT uq_users_email UNIQUE USING INDEX uq_users_email_idx;
```

In Alembic:
```python
with op.get_context().autocommit_block():
    op.create_index("uq_users_email_idx", "users", ["email"], unique=True,
                    postgresql_concurrently=True, if_not_exists=True)
op.execute("ALTER TABLE users ADD CONSTRAINT uq_users_email UNIQUE USING INDEX uq_users_email_idx")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import AddColumn, AddConstraint, ConstraintKind
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM104"
NAME = "add-unique-constraint-without-index"
SEVERITY = Severity.ERROR
KIND = RuleKind.LOCKING
CHANGES = (AddConstraint, AddColumn)

_HELP = (
    "CREATE UNIQUE INDEX CONCURRENTLY first (outside a transaction), then "
    "ADD CONSTRAINT ... UNIQUE USING INDEX <index>."
)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if isinstance(ch, AddConstraint):
        k = ch.constraint
        if k.kind is ConstraintKind.UNIQUE and k.using_index is None:
            name = f" {k.name}" if k.name else ""
            yield Violation(
                f"ADD CONSTRAINT{name} UNIQUE ({', '.join(k.columns)}) builds its index holding "
                f"{ctx.lock_phrase()}",
                help=_HELP,
            )
    elif isinstance(ch, AddColumn) and ch.column.unique and not ch.column.primary_key:
        yield Violation(
            f"ADD COLUMN {ch.column.name} ... UNIQUE builds a unique index holding {ctx.lock_phrase()}",
            help="Add the column without UNIQUE, then " + _HELP,
        )
