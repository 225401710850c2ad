"""A revision edited after it was merged (opt-in ``helios.sum``).

## What it does
With a ``helios.sum`` file beside the Alembic configuration (written by ``helios-migrate check
--write-sum`` and committed, like Atlas's ``atlas.sum``), reports a revision whose content no
longer matches the hash recorded for it.  Revisions not listed yet are new and not reported.

## Why is this bad?
A database records only that a revision ran, not what it contained.  Editing a revision that has
already been applied somewhere changes nothing there: staging and production silently diverge
from a fresh database built from the same history.

## Example
The SQL of revision 5e02 as it ran in production, and as the edited file now renders it:
```sql
CREATE TABLE orders (id bigint PRIMARY KEY, total integer);      -- ran
CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(12,2)); -- edited
```
```console
$ git diff migrations/versions/5e02_add_orders.py
-    sa.Column("total", sa.Integer()),
+    sa.Column("total", sa.Numeric(12, 2)),
```

## Use instead
Put the change in a new revision:
```sql
ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,2);
```
```python
op.alter_column("orders", "total", type_=sa.Numeric(12, 2), existing_type=sa.Integer())
```
and, for an edit that changes no SQL (a comment, a typo in a docstring), record it with
`helios-migrate check --write-sum`.
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM313"
NAME = "revision-edited"
SEVERITY = Severity.ERROR
KIND = RuleKind.OTHER
CHANGES = ()  # reported over the whole run, never per change
REVISION_ONLY = True
"""Reported by ``check`` for revision files listed in helios.sum."""


def check(ctx: RuleContext) -> Iterator[Violation]:
    """Reported by the check command from helios.sum, not per statement."""
    return iter(())
