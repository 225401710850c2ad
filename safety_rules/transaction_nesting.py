"""``BEGIN`` inside a transaction, or ``COMMIT`` with none open.

## What it does
Flags ``BEGIN`` while a transaction block is already open, and ``COMMIT`` / ``ROLLBACK`` when none
is (in an Alembic revision, the migration's own transaction counts as open).

## Why is this bad?
PostgreSQL does not nest transactions: the inner ``BEGIN`` is ignored with a warning, and its
``COMMIT`` ends the outer transaction early -- so statements meant to be atomic, and Alembic's
version stamp, end up in different transactions.

## Example
```sql
BEGIN;
ALTER TABLE orders ADD COLUMN note text;
BEGIN;
ALTER TABLE orders ADD COLUMN memo text;
COMMIT;
COMMIT;
```

## Use instead
```sql
BEGIN;
ALTER TABLE orders ADD COLUMN note text;
ALTER TABLE orders ADD COLUMN memo text;
COMMIT;
```

In Alembic, do not issue ``BEGIN``/``COMMIT`` with ``op.execute``; use an autocommit block for
statements that must run outside the migration's transaction:
```python
with op.get_context().autocommit_block():
    op.execute("VACUUM (ANALYZE) orders")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import TransactionAction, TransactionControl
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, StatementInfo, Violation

CODE = "HM409"
NAME = "transaction-nesting"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER
CHANGES = (TransactionControl,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if not isinstance(ch, TransactionControl):
        return
    # For BEGIN/COMMIT the context describes the state before the statement.
    if ch.action is TransactionAction.BEGIN and ctx.in_transaction:
        yield Violation(
            "BEGIN inside an open transaction block is ignored; the next COMMIT ends the outer transaction",
            help="Remove the inner BEGIN/COMMIT.",
        )
    elif ch.action is not TransactionAction.BEGIN and not ctx.in_transaction:
        if _closes_early(ctx.preceding):
            return  # reported at the COMMIT/ROLLBACK that closed the block early
        yield Violation(
            f"{ch.action.value.upper()} with no transaction block open",
            help="Remove it, or add the BEGIN it belongs to.",
        )
    elif ch.action is not TransactionAction.BEGIN and _next_control(ctx.following) not in (
        None,
        TransactionAction.BEGIN,
    ):
        # Inside a block, but the block's own COMMIT follows (Alembic's, at the end of the
        # revision): this statement ends the migration's transaction early.
        yield Violation(
            f"{ch.action.value.upper()} ends the enclosing transaction early: the statements after "
            "it run in autocommit, and the transaction's own COMMIT finds no block open",
            help="Use op.get_context().autocommit_block() for statements that must run outside "
            "a transaction, instead of a COMMIT of your own.",
        )


def _next_control(statements: tuple[StatementInfo, ...]) -> TransactionAction | None:
    for st in statements:
        for ch in st.changes:
            if isinstance(ch, TransactionControl):
                return ch.action
    return None


def _closes_early(earlier: tuple[StatementInfo, ...]) -> bool:
    """Was the block closed by a COMMIT/ROLLBACK followed by no BEGIN (already reported)?"""
    for st in reversed(earlier):
        for ch in st.changes:
            if isinstance(ch, TransactionControl):
                return ch.action is not TransactionAction.BEGIN and st.transaction.in_block
    return False
