"""Adding a PRIMARY KEY that builds its index under ACCESS EXCLUSIVE.

## What it does
Flags ``ADD CONSTRAINT ... PRIMARY KEY (...)`` (and ``ADD COLUMN ... PRIMARY KEY``) on an existing
table, unless the key adopts an index built beforehand with ``USING INDEX``.

## Why is this bad?
The primary key's unique index is built while ACCESS EXCLUSIVE is held: reads and writes wait for
the whole build.  Columns that are not yet NOT NULL are also scanned under that lock.

## Example
```sql
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (id);
```

## Use instead
```sql
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS events_pkey_idx ON events (id);
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey_idx;
```

Make the key columns NOT NULL first without a long lock (see HM109).  In Alembic:
```python
with op.get_context().autocommit_block():
    op.create_index("events_pkey_idx", "events", ["id"], unique=True,
                    postgresql_concurrently=True, if_not_exists=True)
op.execute("ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey_idx")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import AddColumn, AddConstraint, ConstraintKind
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM105"
NAME = "add-primary-key-without-index"
SEVERITY = Severity.ERROR
KIND = RuleKind.LOCKING
CHANGES = (AddConstraint, AddColumn)

_HELP = (
    "CREATE UNIQUE INDEX CONCURRENTLY first (outside a transaction), then "
    "ADD CONSTRAINT ... PRIMARY KEY USING INDEX <index>."
)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if isinstance(ch, AddConstraint):
        k = ch.constraint
        if k.kind is ConstraintKind.PRIMARY_KEY and k.using_index is None:
            yield Violation(
                f"ADD PRIMARY KEY ({', '.join(k.columns)}) builds its index holding {ctx.lock_phrase()}",
                help=_HELP,
            )
    elif isinstance(ch, AddColumn) and ch.column.primary_key:
        yield Violation(
            f"ADD COLUMN {ch.column.name} ... PRIMARY KEY builds the key's index holding {ctx.lock_phrase()}",
            help="Add the column, backfill it, then " + _HELP,
        )
