"""A value added to an ordered enum without saying where it goes.

## What it does
Reported by ``check`` over a project's history: ``ALTER TYPE ... ADD VALUE`` without ``BEFORE`` or
``AFTER``, which appends the value after every existing one.

Whether an enum's order matters cannot be seen offline: the queries that sort or compare it
(``ORDER BY priority``, ``WHERE level >= 'warning'``, ``max(stage)``) live in the application.  So
the rule judges from what the revisions say of the enum, and says which:

* **warning** when the enum reads as an ordered scale: its existing values (from the
  ``CREATE TYPE ... AS ENUM`` and the ``ADD VALUE`` statements of the revisions checked before it)
  include two or more of a known scale in that scale's order (``low, medium, high``;
  ``debug, info, warning, error``; ``minor, major, critical``; ``small, medium, large``;
  ``bronze, silver, gold``; ``daily, weekly, monthly``...), or are numbered (``level_1, level_2``;
  ``p0, p1``), or the type's name is one of ordering (``priority``, ``severity``, ``level``,
  ``tier``, ``stage``, ``phase``, ``grade``, ``rank``, ``rating``, ``size``, ``step``,
  ``urgency``, ``risk``). When the new value belongs to the same scale and the scale puts it
  before the last existing value (``medium`` added to ``low, high``), the message says where;
* **info** otherwise, with the reason (the values read as no scale, or the enum was created
  outside the revisions checked): the append is reported once so a reviewer can decide.

A value whose order does not matter is marked with ``# helios: ignore[HM314]`` on the statement.
With ``--database-url`` the values still come from the revisions, not from ``pg_enum``.

## Why is this bad?
PostgreSQL orders enum values by their declaration position, not alphabetically: ``ORDER BY``,
``<``, ``>``, ``min()``, ``max()`` and range checks use it.  Appending ``'urgent'`` to
``low, medium, high`` happens to be right; appending ``'medium'`` to ``low, high`` silently sorts
medium above high, and ``WHERE priority >= 'high'`` starts returning medium rows.  The position
cannot be changed later without recreating the type (a rewrite of every column using it).

## Example
```sql
-- CREATE TYPE priority AS ENUM ('low', 'high');
ALTER TYPE priority ADD VALUE 'medium';
```

## Use instead
```sql
ALTER TYPE priority ADD VALUE IF NOT EXISTS 'medium' BEFORE 'high';
```

In Alembic (``ADD VALUE`` cannot run in a transaction block before PostgreSQL 12, and the new value
cannot be used in the transaction that added it):
```python
with op.get_context().autocommit_block():
    op.execute("ALTER TYPE priority ADD VALUE IF NOT EXISTS 'medium' BEFORE 'high'")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM314"
NAME = "enum-value-without-position"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER
CHANGES = ()  # reported over the whole run, never per change
REVISION_ONLY = True
"""Reported by ``check`` over a project's revisions (the enum's values come from its history)."""


def check(ctx: RuleContext) -> Iterator[Violation]:
    """Reported by the check command over the whole history, not per statement."""
    return iter(())
