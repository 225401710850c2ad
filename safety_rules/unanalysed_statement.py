"""A statement helios-migrate could not analyse.

## What it does
Reports (information) a statement the lock knowledge base does not model, such as a ``DO`` block
or an ``ALTER TABLE`` form it does not know.  Its locks are assumed to be the worst case: ACCESS
EXCLUSIVE on every table it mentions.

## Why is this bad?
Nothing is known to be wrong, but nothing is known to be safe either: review it by hand, or run
``helios-migrate verify`` to observe its locks on a throwaway server.

## Example
```sql
DO $$ BEGIN PERFORM 1; END $$;
```

## Use instead
```sql
SELECT 1;
```

Prefer statements helios-migrate models (plain DDL, ``UPDATE`` with ``WHERE``), or suppress after
review.  In Alembic:
```python
op.execute("DO $$ BEGIN PERFORM 1; END $$")  # helios: ignore[HM903] -- reviewed
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import RawStatement
from helios_migrate.effects import Certainty
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM903"
NAME = "unanalysed-statement"
SEVERITY = Severity.INFO
KIND = RuleKind.OTHER
CHANGES = (RawStatement,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if isinstance(ch, RawStatement) and ctx.effect.certainty is Certainty.CONSERVATIVE:
        tables = ", ".join(str(r) for r in ch.relations)
        assumed = f"; assumed to lock {tables} ACCESS EXCLUSIVE" if tables else ""
        yield Violation(
            f"could not analyse {ch.statement_type or 'this statement'}{assumed}",
            help="Review its locks by hand or observe them with helios-migrate verify.",
        )
