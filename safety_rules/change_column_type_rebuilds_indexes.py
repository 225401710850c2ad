"""A column type change that keeps the table but rebuilds indexes under ACCESS EXCLUSIVE.

## What it does
Flags ``ALTER COLUMN ... TYPE`` on an existing table that does not rewrite the table but rebuilds
indexes on the column: a new collation, an operator class that changes with the type, or an index
with an expression or predicate on the column.  With ``--database-url`` the catalog names the
indexes; offline, a collation change is known to rebuild every index on the column.  (A type change
that rewrites the table is HM204.)

## Why is this bad?
The table keeps its file, so the change looks cheap, but each index rebuilt is built from scratch
while ACCESS EXCLUSIVE is held: reads and writes wait for every build, as long as a
``CREATE INDEX`` on the table for each index.

## Example
```sql
ALTER TABLE items ADD COLUMN code text;  -- an earlier step: the old type is known
ALTER TABLE items ALTER COLUMN code TYPE text COLLATE "C";
```

## Use instead
Build the new index first, ``CONCURRENTLY``, and switch to it: add a column of the new type (or
collation), backfill it in batches, index it ``CONCURRENTLY``, then swap the columns and drop the
old index in a later revision.
```sql
ALTER TABLE items ADD COLUMN code_c text COLLATE "C";
-- backfill code_c in batches, keep it in sync with a trigger, then:
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_items_code_c ON items (code_c);
```

In Alembic, ``helios-migrate`` autogenerate writes this plan for a changed ``collation=``; by hand:
```python
op.add_column("items", sa.Column("code_c", sa.Text(collation="C")))
with op.get_context().autocommit_block():
    op.create_index("ix_items_code_c", "items", ["code_c"],
                    postgresql_concurrently=True, if_not_exists=True)
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import AlterColumnType
from helios_migrate.effects import WorkClass
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM209"
NAME = "change-column-type-rebuilds-indexes"
SEVERITY = Severity.ERROR
KIND = RuleKind.LOCKING
CHANGES = (AlterColumnType,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    effect = ctx.effect
    if not isinstance(ch, AlterColumnType) or effect.rewrites_table or effect.work is not WorkClass.INDEX_BUILD:
        return
    indexes = ", ".join(str(i) for i in effect.rebuilt_indexes) or f"every index on {ch.column}"
    yield Violation(
        f"changing {ch.on}.{ch.column} to {ch.new_type}"
        + (f" COLLATE {ch.collation}" if ch.collation else "")
        + f" keeps the table but rebuilds {indexes} holding {ctx.lock_phrase()}: reads and writes "
        "wait for every index build",
        help=effect.safer_alternative
        or "Add a column of the new type, backfill it, CREATE INDEX CONCURRENTLY on it, then swap.",
    )
