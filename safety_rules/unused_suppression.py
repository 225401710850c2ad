"""A ``helios: ignore`` comment that suppresses nothing.

## What it does
Reports a suppression comment (``-- helios: ignore[...]``, ``# helios: ignore[...]`` or an
``ignore-file`` form) when no finding it covers was reported at its place, or when it names a
code that does not exist.

## Why is this bad?
Stale suppressions hide the next real problem on that line, and a misspelt code suppresses
nothing while looking like it does.

## Example
```sql
-- helios: ignore[HM101]
ALTER TABLE orders ADD COLUMN note text;
```

## Use instead
```sql
ALTER TABLE orders ADD COLUMN note text;
```

In Alembic, remove the comment from the ``op.*`` line:
```python
op.add_column("orders", sa.Column("note", sa.Text()))
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM902"
NAME = "unused-suppression"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER
CHANGES = ()  # reported over the whole run, never per change


def check(ctx: RuleContext) -> Iterator[Violation]:
    """Reported by the engine after all other rules ran."""
    return iter(())
