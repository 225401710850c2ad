"""Refreshing a materialized view without ``CONCURRENTLY``.

## What it does
Flags ``REFRESH MATERIALIZED VIEW`` without ``CONCURRENTLY``.

## Why is this bad?
A plain refresh holds ACCESS EXCLUSIVE on the view while it recomputes it: every query reading
the view waits for the whole refresh.  ``CONCURRENTLY`` takes EXCLUSIVE, which lets reads continue
(it needs a unique index on the view).

## Example
```sql
REFRESH MATERIALIZED VIEW daily_sales;
```

## Use instead
```sql
REFRESH MATERIALIZED VIEW CONCURRENTLY daily_sales;
```

In Alembic:
```python
op.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY daily_sales")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import RefreshMaterializedView
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM207"
NAME = "refresh-materialized-view-non-concurrently"
SEVERITY = Severity.WARNING
KIND = RuleKind.LOCKING
CHANGES = (RefreshMaterializedView,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if isinstance(ch, RefreshMaterializedView) and not ch.concurrently:
        yield Violation(
            f"REFRESH MATERIALIZED VIEW {ch.name} holds {ctx.lock_phrase()} while it recomputes",
            help="Use REFRESH MATERIALIZED VIEW CONCURRENTLY (needs a unique index on the view).",
            table=ch.name,
        )
