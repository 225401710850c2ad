"""Creating or dropping a trigger on an existing table.

## What it does
Reports ``CREATE TRIGGER`` and ``DROP TRIGGER`` on a table that existed before the migration
(information only) when no ``lock_timeout`` is in effect, and always on tables configured ``hot``.

## Why is this bad?
``CREATE TRIGGER`` takes SHARE ROW EXCLUSIVE (blocks writes) and ``DROP TRIGGER`` ACCESS EXCLUSIVE
(blocks reads and writes).  The statements are quick, but each must wait for every open
transaction on the table, and on a busy table the queue that forms behind it is an outage.
A trigger also adds work to every future write.

## Example
```sql
CREATE TRIGGER orders_audit AFTER UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION audit_row();
```

## Use instead
```sql
SET lock_timeout = '2s';
CREATE TRIGGER orders_audit AFTER UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION audit_row();
```

Run it with a short ``lock_timeout`` and retry.  In Alembic:
```python
op.execute("SET lock_timeout = '2s'")
op.execute("CREATE TRIGGER orders_audit AFTER UPDATE ON orders "
           "FOR EACH ROW EXECUTE FUNCTION audit_row()")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import CreateTrigger, DropTrigger
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM112"
NAME = "trigger-on-existing-table"
SEVERITY = Severity.INFO
KIND = RuleKind.LOCKING
CHANGES = (CreateTrigger, DropTrigger)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if isinstance(ch, (CreateTrigger, DropTrigger)):
        verb = "CREATE TRIGGER" if isinstance(ch, CreateTrigger) else "DROP TRIGGER"
        has_timeout = ctx.statement.transaction.lock_timeout is not None
        if has_timeout and not ctx.is_hot(ch.on):
            return
        timeout = "" if has_timeout else "; set a short lock_timeout so it cannot queue traffic behind it"
        yield Violation(
            f"{verb} {ch.name} takes {ctx.lock_phrase()} while it waits for open transactions{timeout}",
            help="Run it with SET lock_timeout and retry on timeout; schedule it away from peak traffic.",
        )
