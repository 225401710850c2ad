"""An ACCESS EXCLUSIVE lock held while more statements run in the same transaction.

## What it does
Flags a statement that takes ACCESS EXCLUSIVE on an existing table inside a transaction block when
a later statement of the same transaction must wait for a lock of its own: on another existing
table, or a stronger lock than the transaction already holds.  The finding is on the statement
that takes the lock and lists the statements that prolong it.  Slow work under locks already held
(a backfill or an index build on the same table) is reported by the rules for that work.

## Why is this bad?
Locks are released only at ``COMMIT``.  A quick ``ALTER TABLE`` followed by an index build or a
backfill in the same transaction blocks every read and write of the first table for the whole
build; waiting for a lock on a second table while holding the first is how lock queues (and
deadlocks) spread across tables.

## Example
```sql
BEGIN;
ALTER TABLE orders ADD COLUMN note text;
CREATE INDEX ix_users_email ON users (email);
COMMIT;
```

## Use instead
```sql
BEGIN;
ALTER TABLE orders ADD COLUMN note text;
COMMIT;
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_users_email ON users (email);
```

In Alembic, give each risky step its own transaction (``transaction_per_migration=True`` in
``env.py`` and separate revisions, or an autocommit block):
```python
op.add_column("orders", sa.Column("note", sa.Text()))
with op.get_context().autocommit_block():
    op.create_index("ix_users_email", "users", ["email"],
                    postgresql_concurrently=True, if_not_exists=True)
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import CreateTable, SetSetting, TransactionControl
from helios_migrate.effects import RelationLock, RelationRole, WorkClass
from helios_migrate.findings import Severity
from helios_migrate.locks import LockMode
from helios_migrate.rule_context import (
    RuleContext,
    RuleKind,
    StatementInfo,
    Violation,
    same_relation,
)

CODE = "HM403"
NAME = "lock-held-across-statements"
SEVERITY = Severity.WARNING
KIND = RuleKind.TRANSACTION


def _new_locks(later: StatementInfo, held: dict[str, list[RelationLock]], ctx: RuleContext) -> list[RelationLock]:
    """Locks ``later`` must wait for: on an existing relation, stronger than any this transaction
    already holds on it (an index of a table already held ACCESS EXCLUSIVE is no wait)."""
    if all(isinstance(ch, (SetSetting, TransactionControl)) for ch in later.changes):
        return []
    created = [ch.on for ch in later.changes if isinstance(ch, CreateTable)]
    found: list[RelationLock] = []
    for effect in later.effects:
        own = effect.table_lock
        table_held = own is not None and any(
            same_relation(own.relation, h.relation) and h.mode is LockMode.ACCESS_EXCLUSIVE
            for h in held.get(own.relation.name, ())
        )
        for lk in effect.locks:
            if lk.role is RelationRole.TYPE or not lk.blocking or ctx.is_new(lk.relation):
                continue
            if lk.role is RelationRole.INDEX and table_held:
                continue
            if any(same_relation(lk.relation, c) for c in created):
                continue
            if any(same_relation(lk.relation, h.relation) and h.mode >= lk.mode for h in held.get(lk.relation.name, ())):
                continue
            found.append(lk)
    return found


def _hold(held: dict[str, list[RelationLock]], statement: StatementInfo) -> None:
    for effect in statement.effects:
        for lk in effect.locks:
            held.setdefault(lk.relation.name, []).append(lk)


def _prolongs(later: StatementInfo, held: dict[str, list[RelationLock]], ctx: RuleContext) -> str | None:
    """Why ``later`` prolongs the lock (it waits for a lock of its own), or ``None``."""
    new = _new_locks(later, held, ctx)
    if not new:
        return None
    slow = [e for e in later.effects if e.work is not WorkClass.METADATA]
    if slow:
        return f"{later.verb} ({slow[0].work.value}, {later.where})"
    return f"{later.verb} locking {new[0].relation} ({later.where})"


def check(ctx: RuleContext) -> Iterator[Violation]:
    if ctx.change_index != 0 or not ctx.in_transaction or not ctx.later:
        return
    taken = [
        lk for e in ctx.statement.effects for lk in e.locks
        if lk.mode is LockMode.ACCESS_EXCLUSIVE and lk.role in (RelationRole.TABLE, RelationRole.PARENT)
        and not ctx.is_new(lk.relation) and not ctx.is_small(lk.relation)
        and not any(
            same_relation(lk.relation, h.relation) and h.mode is LockMode.ACCESS_EXCLUSIVE
            for h in ctx.held_locks
        )
    ]
    if not taken:
        return
    table = taken[0].relation
    held: dict[str, list[RelationLock]] = {}
    for lk in ctx.held_locks:
        held.setdefault(lk.relation.name, []).append(lk)
    _hold(held, ctx.statement)
    reasons = []
    for later in ctx.later:
        reason = _prolongs(later, held, ctx)
        if reason is not None:
            reasons.append(reason)
        _hold(held, later)
    if not reasons:
        return
    shown = ", ".join(reasons[:3]) + (f" and {len(reasons) - 3} more" if len(reasons) > 3 else "")
    yield Violation(
        f"ACCESS EXCLUSIVE on {ctx.describe_table(table)} is held until COMMIT while later statements run: "
        f"{shown}; reads and writes on {table} wait the whole time",
        help="Commit right after the statement that takes ACCESS EXCLUSIVE; run slow steps in their own "
        "transactions (Alembic: separate revisions or an autocommit block).",
        table=table,
    )
