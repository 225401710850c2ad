"""Attaching a partition without first proving its rows fit the bound.

## What it does
Flags ``ALTER TABLE ... ATTACH PARTITION`` when the input did not first add (and validate) a CHECK
constraint on the partition.

## Why is this bad?
PostgreSQL scans the whole partition to prove every row fits the partition bound, holding ACCESS
EXCLUSIVE on the partition (and SHARE UPDATE EXCLUSIVE on the parent).  A validated CHECK
constraint that implies the bound lets it skip the scan, and the CHECK can be added ``NOT VALID``
and validated under a weak lock beforehand.

## Example
```sql
ALTER TABLE measurements ATTACH PARTITION measurements_2024
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
```

## Use instead
```sql
ALTER TABLE measurements_2024 ADD CONSTRAINT measurements_2024_bound
    CHECK (logdate >= '2024-01-01' AND logdate < '2025-01-01') NOT VALID;
ALTER TABLE measurements_2024 VALIDATE CONSTRAINT measurements_2024_bound;
ALTER TABLE measurements ATTACH PARTITION measurements_2024
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
ALTER TABLE measurements_2024 DROP CONSTRAINT measurements_2024_bound;
```

In Alembic, the same statements with ``op.create_check_constraint(..., postgresql_not_valid=True)``
and ``op.execute(...)``, the VALIDATE in its own transaction:
```python
op.create_check_constraint("measurements_2024_bound", "measurements_2024",
                           "logdate >= '2024-01-01' AND logdate < '2025-01-01'",
                           postgresql_not_valid=True)
with op.get_context().autocommit_block():
    op.execute("ALTER TABLE measurements_2024 VALIDATE CONSTRAINT measurements_2024_bound")
op.execute("ALTER TABLE measurements ATTACH PARTITION measurements_2024 "
           "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import AttachPartition
from helios_migrate.effects import RelationRole
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM111"
NAME = "attach-partition-without-check"
SEVERITY = Severity.WARNING
KIND = RuleKind.LOCKING
CHANGES = (AttachPartition,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if not isinstance(ch, AttachPartition):
        return
    if ctx.is_new(ch.partition) or ch.partition.name in ctx.checked_tables:
        return
    lock = next((lk for lk in ctx.effect.locks if lk.role is RelationRole.PARTITION), None)
    yield Violation(
        f"ATTACH PARTITION {ch.partition} scans {ctx.describe_table(ch.partition)} to prove its rows "
        f"fit {ch.bound or 'the bound'}, holding {ctx.lock_phrase(lock)}",
        help=ctx.effect.safer_alternative or "",
        table=ch.partition,
    )
