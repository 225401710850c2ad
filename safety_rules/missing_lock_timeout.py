"""A blocking lock requested with no ``lock_timeout``.

## What it does
Flags a statement that takes a lock blocking reads or writes on an existing table when no
``lock_timeout`` is in effect (``SET lock_timeout`` / ``SET LOCAL lock_timeout`` earlier in the
input; a ``SET LOCAL`` ends at ``COMMIT``).  Small tables are not exempt: the lock queue forms
whatever the table's size.  One ``SET`` fixes every statement after it, so the finding is on the
first statement of each unprotected run (and on every statement touching a ``hot`` table).

## Why is this bad?
A lock request waits behind every open transaction on the table, and while it waits, every new
query that conflicts with it queues behind it.  One long-running report plus a "quick" ``ALTER
TABLE`` stops all traffic on the table until the report ends.  With ``lock_timeout`` the statement
gives up after a moment instead, and can be retried.

## Example
```sql
ALTER TABLE orders ADD COLUMN note text;
```

## Use instead
```sql
SET lock_timeout = '2s';
ALTER TABLE orders ADD COLUMN note text;
```

In Alembic (or once for all revisions in ``env.py``, before ``context.run_migrations()``):
```python
op.execute("SET lock_timeout = '2s'")
op.add_column("orders", sa.Column("note", sa.Text()))
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.effects import RelationLock, RelationRole
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, StatementInfo, Violation

CODE = "HM401"
NAME = "missing-lock-timeout"
SEVERITY = Severity.WARNING
KIND = RuleKind.TRANSACTION


def _blocking(ctx: RuleContext, statement: StatementInfo) -> list[RelationLock]:
    found: list[RelationLock] = []
    for effect in statement.effects:
        for lk in effect.locks:
            if lk.role is RelationRole.TYPE or ctx.is_new(lk.relation):
                continue
            if lk.mode.blocks_reads or lk.mode.blocks_writes:
                found.append(lk)
    return found


def check(ctx: RuleContext) -> Iterator[Violation]:
    if ctx.change_index != 0 or ctx.statement.transaction.lock_timeout is not None:
        return
    locks = _blocking(ctx, ctx.statement)
    if not locks:
        return
    strongest = max(locks, key=lambda lk: lk.mode)
    previous = next((s for s in reversed(ctx.preceding) if _blocking(ctx, s)), None)
    if (
        previous is not None and previous.transaction.lock_timeout is None
        and not any(ctx.is_hot(lk.relation) for lk in locks)
    ):
        return  # the same missing SET was already reported at the start of this run
    yield Violation(
        f"{ctx.statement.verb} requests {ctx.lock_phrase(strongest)} with no lock_timeout set: "
        f"while it waits for the lock, every conflicting query on {strongest.relation} queues behind it",
        help=f"SET lock_timeout = '{ctx.config.lock_timeout}' before it and retry on timeout.",
        table=strongest.relation,
    )
