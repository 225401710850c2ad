"""Detaching a partition without ``CONCURRENTLY`` (PostgreSQL 14+).

## What it does
Flags ``ALTER TABLE ... DETACH PARTITION`` without ``CONCURRENTLY`` on PostgreSQL 14 and later.

## Why is this bad?
A plain detach takes ACCESS EXCLUSIVE on the parent table: every query on any partition waits,
and the detach waits behind every open transaction on the parent.  ``DETACH PARTITION ...
CONCURRENTLY`` takes SHARE UPDATE EXCLUSIVE, so reads and writes continue.

## Example
```sql
ALTER TABLE measurements DETACH PARTITION measurements_2023;
```

## Use instead
```sql
ALTER TABLE measurements DETACH PARTITION measurements_2023 CONCURRENTLY;
```

It cannot run in a transaction block; in Alembic:
```python
with op.get_context().autocommit_block():
    op.execute("ALTER TABLE measurements DETACH PARTITION measurements_2023 CONCURRENTLY")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import DetachPartition
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM110"
NAME = "detach-partition-non-concurrently"
SEVERITY = Severity.WARNING
KIND = RuleKind.LOCKING
CHANGES = (DetachPartition,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if not isinstance(ch, DetachPartition) or ch.concurrently or ch.finalize:
        return
    if ctx.version.major < 14:
        return  # no concurrent form before 14
    yield Violation(
        f"DETACH PARTITION {ch.partition} takes {ctx.lock_phrase()}",
        help=ctx.effect.safer_alternative or "Use DETACH PARTITION ... CONCURRENTLY.",
    )
