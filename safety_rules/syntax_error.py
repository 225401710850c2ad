"""SQL that does not parse.

## What it does
Reports a statement PostgreSQL's grammar (pglast, libpg_query) rejects, with the file, line,
column and the parser's message.  The rest of the file is still checked.

## Why is this bad?
The statement fails on the server, and helios-migrate cannot tell what it would lock.

## Example
```sql
ALTER TABEL orders ADD COLUMN note text;
```

## Use instead
```sql
ALTER TABLE orders ADD COLUMN note text;
```

In Alembic, check the SQL passed to ``op.execute``:
```python
op.execute("ALTER TABLE orders ADD COLUMN note text")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM901"
NAME = "syntax-error"
SEVERITY = Severity.ERROR
KIND = RuleKind.OTHER
CHANGES = ()  # reported over the whole run, never per change


def check(ctx: RuleContext) -> Iterator[Violation]:
    """Reported by the engine when parsing fails; a parsed statement never has one."""
    return iter(())
