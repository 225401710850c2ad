"""A revision that could not be rendered to SQL offline, and was checked from its Python source.

## What it does
Reports an Alembic revision whose ``upgrade()`` (or, with ``--downgrade``, ``downgrade()``) could
not be run offline the way ``alembic upgrade --sql`` runs it: an import failed, it asked for a
database connection (``op.get_bind()``), or it raised.  The revision's ``op.*`` calls and the strings
passed to ``op.execute`` are then read from its source and checked as well as they can be; the
finding names the reason and the lines that could not be read.

Before giving up, ``check`` renders what it can without the application or a database: a module
that is not installed gets inert placeholders; ``sa.inspect(op.get_bind())`` (``has_table``,
``get_columns``, ``get_indexes``, reflection) is answered from the schema the earlier revisions
built; rows read through ``op.get_bind()`` are none (a result's ``rowcount`` is 0); an
application's helper called as a statement does nothing, and a loop over the application's data
runs zero times; a revision that refuses offline mode (``if context.is_offline_mode(): raise``) is
rendered as online, with the same bind.  Such a revision is rendered and checked, and this finding
lists, with their lines, what ran that could not be checked: the helpers, the loops, the rows
read, SQL defined by the application (``op.execute(app.SQL)``), and the operations of Alembic
plugins that are not installed.

This is a tool finding: it is reported by ``helios-migrate check`` for revisions, never for SQL.

## Why is this bad?
What is read from the source can miss statements the revision really runs (SQL built at run time,
loops, helpers in other modules), so the check of that revision is best effort.  A revision that
needs a database to produce its DDL also cannot be reviewed with ``alembic upgrade --sql``.

## Example
```sql
-- (revision-only finding) upgrade() calls op.get_bind() to decide what to run:
--     conn = op.get_bind()
--     op.create_index("ix_orders_a", "orders", ["a"])
```

## Use instead
```sql
-- Keep schema revisions renderable offline; put data-dependent work in a revision of its own.
```

In Alembic, make ``upgrade()`` deterministic and importable from the project root:
```python
def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index("ix_orders_a", "orders", ["a"], postgresql_concurrently=True, if_not_exists=True)
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM904"
NAME = "revision-not-rendered"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER
CHANGES = ()  # reported over the whole run, never per change
REVISION_ONLY = True
"""Reported by ``check`` for revision files; its examples are revisions, not SQL."""


def check(ctx: RuleContext) -> Iterator[Violation]:
    """Reported by the check command when rendering fails; a rendered statement never has one."""
    return iter(())
