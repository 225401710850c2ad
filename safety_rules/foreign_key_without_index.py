"""A foreign key whose columns no index leads with.

## What it does
Reported by ``check`` over a project's history: a foreign key added by a revision (``ADD
CONSTRAINT ... FOREIGN KEY``, or ``REFERENCES`` in ``CREATE TABLE``) when no index on the
referencing table leads with the key's columns in that revision or in any later one checked (a
``CREATE INDEX``, a primary key or a unique constraint counts).  With ``--database-url``, an index
the database already has on the referencing table counts too (one created outside the migrations,
or by a revision before those checked with ``--since``/``--range``); its key columns are
compared, so an expression index does not count.

## Why is this bad?
PostgreSQL indexes the referenced side of a foreign key, never the referencing side.  Every
``DELETE`` of a referenced row (and every update of its key) looks for referencing rows with a
sequential scan of the referencing table, holding its locks while it does; ``ON DELETE CASCADE``
turns a one-row delete into a full scan.  Joins from parent to children scan too.

## Example
```sql
ALTER TABLE order_lines ADD CONSTRAINT fk_order_lines_order_id
    FOREIGN KEY (order_id) REFERENCES orders (id) NOT VALID;
```

## Use instead
```sql
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_order_lines_order_id ON order_lines (order_id);
ALTER TABLE order_lines ADD CONSTRAINT fk_order_lines_order_id
    FOREIGN KEY (order_id) REFERENCES orders (id) NOT VALID;
```

In Alembic, ``index=True`` on the column or an ``op.create_index`` for the key's columns (in an
autocommit block with ``postgresql_concurrently=True`` on an existing table):
```python
with op.get_context().autocommit_block():
    op.create_index("ix_order_lines_order_id", "order_lines", ["order_id"],
                    postgresql_concurrently=True, if_not_exists=True)
op.create_foreign_key("fk_order_lines_order_id", "order_lines", "orders", ["order_id"], ["id"],
                      postgresql_not_valid=True)
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM507"
NAME = "foreign-key-without-index"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER
CHANGES = ()  # reported over the whole run, never per change
REVISION_ONLY = True
"""Reported by ``check`` over a project's revisions; its examples are migrations."""


def check(ctx: RuleContext) -> Iterator[Violation]:
    """Reported by the check command over the whole history, not per statement."""
    return iter(())
