"""A statement the target PostgreSQL version does not support.

## What it does
Flags statements that the server version being targeted rejects, such as
``ADD CONSTRAINT ... NOT NULL ... NOT VALID`` before PostgreSQL 18, ``DETACH PARTITION ...
CONCURRENTLY`` before 14, or a VIRTUAL generated column before 18.

## Why is this bad?
The migration fails on that server, possibly after earlier steps of it have committed.

## Example
```sql
-- pg: 15
ALTER TABLE orders ADD CONSTRAINT orders_customer_id_not_null NOT NULL customer_id NOT VALID;
```

## Use instead
```sql
-- pg: 15
ALTER TABLE orders ADD CONSTRAINT orders_customer_id_not_null
    CHECK (customer_id IS NOT NULL) NOT VALID;
```

Set the version helios-migrate checks against (``pg_version`` in ``[tool.helios-migrate]`` or
``--pg-version``) to the oldest server the migration runs on.  In Alembic:
```python
op.create_check_constraint("orders_customer_id_not_null", "orders", "customer_id IS NOT NULL",
                           postgresql_not_valid=True)
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM308"
NAME = "unsupported-on-server-version"
SEVERITY = Severity.ERROR
KIND = RuleKind.OTHER


def check(ctx: RuleContext) -> Iterator[Violation]:
    if ctx.effect.unsupported:
        yield Violation(
            ctx.effect.unsupported,
            help=ctx.effect.safer_alternative or "Use a form this server version supports.",
        )
