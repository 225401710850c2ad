"""Rewriting a table with ``VACUUM FULL`` or ``CLUSTER``.

## What it does
Flags ``VACUUM FULL`` and ``CLUSTER`` in a migration.

## Why is this bad?
Both write a complete new copy of the table and its indexes while holding ACCESS EXCLUSIVE: reads
and writes wait for the whole rewrite, and the disk space is needed twice.

## Example
```sql
VACUUM FULL orders;
```

## Use instead
```sql
-- rebuild online, outside the migration, with pg_repack (or pg_squeeze):
--   pg_repack --table=orders
VACUUM (ANALYZE) orders;
```

In Alembic, leave table maintenance out of revisions; if a plain VACUUM is needed:
```python
with op.get_context().autocommit_block():
    op.execute("VACUUM (ANALYZE) orders")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import Cluster, VacuumFull
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM205"
NAME = "table-rewrite-maintenance"
SEVERITY = Severity.ERROR
KIND = RuleKind.LOCKING
CHANGES = (VacuumFull, Cluster)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if isinstance(ch, (VacuumFull, Cluster)):
        verb = "VACUUM FULL" if isinstance(ch, VacuumFull) else "CLUSTER"
        yield Violation(
            f"{verb} rewrites {ctx.describe_table(ch.on)} holding {ctx.lock_phrase()}",
            help=f"Use {ctx.effect.safer_alternative or 'pg_repack'} instead.",
        )
