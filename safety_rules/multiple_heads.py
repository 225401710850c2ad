"""A migration history with several heads.

## What it does
Reported by ``check`` on each head revision when the project's history has more than one head:
two revisions name the same ``down_revision`` and nothing merges them.

## Why is this bad?
``alembic upgrade head`` refuses to run ("Multiple head revisions are present"), usually found
at deploy time; ``upgrade heads`` runs the branches in an order nobody chose, so two branches that
touch the same table can lock or conflict differently on each environment.

## Example
Two revisions of two pull requests, each written on revision 5e02:
```sql
-- 7a1c_add_note.py (down_revision = "5e02")
ALTER TABLE orders ADD COLUMN note text;
-- 9b3f_add_status.py (down_revision = "5e02")
ALTER TABLE orders ADD COLUMN status text;
```
```python
# 7a1c_add_note.py
revision = "7a1c"
down_revision = "5e02"
# 9b3f_add_status.py  (merged from another pull request)
revision = "9b3f"
down_revision = "5e02"
```

## Use instead
One line of history, each revision on the previous one:
```sql
-- 7a1c_add_note.py (down_revision = "5e02")
ALTER TABLE orders ADD COLUMN note text;
-- 9b3f_add_status.py (down_revision = "7a1c")
ALTER TABLE orders ADD COLUMN status text;
```
```python
# 9b3f_add_status.py, rebased on the current head
revision = "9b3f"
down_revision = "7a1c"
```
or join them with `alembic merge heads -m "merge"` when both have already run somewhere.
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM312"
NAME = "multiple-heads"
SEVERITY = Severity.ERROR
KIND = RuleKind.OTHER
CHANGES = ()  # reported over the whole run, never per change
REVISION_ONLY = True
"""Reported by ``check`` over a project's history; its examples are revision files."""


def check(ctx: RuleContext) -> Iterator[Violation]:
    """Reported by the check command over the whole history, not per statement."""
    return iter(())
