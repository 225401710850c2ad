"""Building an index concurrently on PostgreSQL 14.0-14.3.

## What it does
Flags ``CREATE INDEX CONCURRENTLY`` and ``REINDEX ... CONCURRENTLY`` when the target server is
PostgreSQL 14.0 to 14.3 (an error), or PostgreSQL 14 with an unknown minor release (a warning).

## Why is this bad?
PostgreSQL 14.0-14.3 can build corrupt indexes concurrently: rows changed during the build may be
missing from the index, so queries using it return wrong results.  14.4 fixed the bug; indexes
built concurrently on the affected releases must be rebuilt.

## Example
```sql
-- pg: 14.2
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_customer_id ON orders (customer_id);
```

## Use instead
```sql
-- pg: 14.4
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_customer_id ON orders (customer_id);
```

Upgrade the server to 14.4 or later first (and ``REINDEX`` indexes built concurrently on 14.0-14.3).
Tell helios-migrate the exact version with ``--pg-version 14.11`` or ``pg_version = "14.11"``.
The Alembic form is unchanged:
```python
with op.get_context().autocommit_block():
    op.create_index("ix_orders_customer_id", "orders", ["customer_id"],
                    postgresql_concurrently=True, if_not_exists=True)
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import CreateIndex, Reindex
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM113"
NAME = "concurrent-index-pg14-corruption"
SEVERITY = Severity.ERROR
KIND = RuleKind.OTHER
CHANGES = (CreateIndex, Reindex)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    concurrent = isinstance(ch, (CreateIndex, Reindex)) and ch.concurrently
    version = ctx.version
    affected = version.concurrent_index_bug
    if not concurrent or affected is False:
        return
    what = "CREATE INDEX CONCURRENTLY" if isinstance(ch, CreateIndex) else "REINDEX CONCURRENTLY"
    if affected:
        yield Violation(
            f"{what} on PostgreSQL {version} can build a corrupt index (fixed in 14.4)",
            help="Upgrade to 14.4 or later before building indexes concurrently; REINDEX indexes "
            "built concurrently on 14.0-14.3.",
        )
    else:
        yield Violation(
            f"{what} can build a corrupt index if the server is 14.0-14.3; the minor version is unknown",
            help="Give the exact version (--pg-version 14.x or pg_version in the configuration); "
            "14.4 and later are fixed.",
            severity=Severity.WARNING,
        )
