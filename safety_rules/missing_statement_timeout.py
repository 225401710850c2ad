"""Long work under a blocking lock with no ``statement_timeout``.

## What it does
Reports (information) a statement that scans, rewrites or builds an index while holding a lock
that blocks reads or writes of an existing table, when no ``statement_timeout`` is in effect.

## Why is this bad?
If the table is larger than expected, the statement keeps blocking traffic for as long as it takes.
A ``statement_timeout`` bounds the outage: the statement is cancelled and rolled back instead.

## Example
```sql
SET lock_timeout = '2s';
ALTER TABLE orders ALTER COLUMN id TYPE bigint;
```

## Use instead
```sql
SET lock_timeout = '2s';
SET statement_timeout = '30s';
ALTER TABLE orders ALTER COLUMN id TYPE bigint;
```

In Alembic:
```python
op.execute("SET statement_timeout = '30s'")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.effects import RelationRole, WorkClass
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM402"
NAME = "missing-statement-timeout"
SEVERITY = Severity.INFO
KIND = RuleKind.TRANSACTION

_LONG = {WorkClass.SCAN, WorkClass.REWRITE, WorkClass.INDEX_BUILD}


def check(ctx: RuleContext) -> Iterator[Violation]:
    if ctx.change_index != 0 or ctx.statement.transaction.statement_timeout is not None:
        return
    for effect in ctx.statement.effects:
        if effect.work not in _LONG:
            continue
        for lk in effect.locks:
            if lk.role is RelationRole.TYPE or ctx.is_new(lk.relation) or ctx.is_small(lk.relation):
                continue
            if lk.mode.blocks_reads or lk.mode.blocks_writes:
                yield Violation(
                    f"{ctx.statement.verb} does {effect.work.value} work holding {ctx.lock_phrase(lk)} "
                    "with no statement_timeout to bound it",
                    help=f"SET statement_timeout = '{ctx.config.statement_timeout}' before it.",
                    table=lk.relation,
                )
                return
