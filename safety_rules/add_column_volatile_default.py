"""Adding a column with a volatile default, which rewrites the table.

## What it does
Flags ``ADD COLUMN ... DEFAULT <expr>`` when the default is volatile (``random()``,
``gen_random_uuid()``, ``clock_timestamp()``, ``nextval(...)``, or a function helios-migrate cannot
prove non-volatile).  A constant or stable default (``0``, ``'new'``, ``now()``) is not flagged:
since PostgreSQL 11 it is stored once in the catalog.

## Why is this bad?
A volatile default is evaluated for every existing row, so PostgreSQL rewrites the whole table and
rebuilds every index while holding ACCESS EXCLUSIVE: reads and writes wait for the whole rewrite,
and the table's disk space is needed twice.

## Example
```sql
ALTER TABLE orders ADD COLUMN public_id uuid DEFAULT gen_random_uuid();
```

## Use instead
```sql
ALTER TABLE orders ADD COLUMN public_id uuid;
ALTER TABLE orders ALTER COLUMN public_id SET DEFAULT gen_random_uuid();
-- then backfill existing rows in batches, each in its own transaction:
UPDATE orders SET public_id = gen_random_uuid() WHERE id BETWEEN 1 AND 10000 AND public_id IS NULL;
```

In Alembic:
```python
op.add_column("orders", sa.Column("public_id", sa.Uuid()))
op.alter_column("orders", "public_id", server_default=sa.text("gen_random_uuid()"))
# backfill in batches (helios-migrate's backfill helper, or a loop over primary-key ranges)
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import AddColumn
from helios_migrate.effects import Certainty
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM201"
NAME = "add-column-volatile-default"
SEVERITY = Severity.ERROR
KIND = RuleKind.LOCKING
CHANGES = (AddColumn,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if not isinstance(ch, AddColumn):
        return
    col = ch.column
    if col.default is None or col.identity is not None or col.generated is not None:
        return
    if not ctx.effect.rewrites_table:
        return
    assumed = ctx.effect.certainty is Certainty.CONSERVATIVE
    yield Violation(
        f"ADD COLUMN {col.name} with volatile default {col.default} rewrites "
        f"{ctx.describe_table(ch.on)} holding {ctx.lock_phrase()}"
        + (" (assumed volatile: a function helios-migrate does not know; a database connection "
           "would tell)" if assumed else ""),
        help=ctx.effect.safer_alternative or "",
        severity=Severity.WARNING if assumed else None,
    )
