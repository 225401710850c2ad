"""Validating a constraint in the transaction that added it ``NOT VALID``.

## What it does
Flags ``ALTER TABLE ... VALIDATE CONSTRAINT`` in the same transaction block as the
``ADD CONSTRAINT ... NOT VALID`` it validates.

## Why is this bad?
``NOT VALID`` exists so that the long check of existing rows runs under the weak lock of
``VALIDATE`` (SHARE UPDATE EXCLUSIVE).  In the same transaction, the ACCESS EXCLUSIVE (or SHARE ROW
EXCLUSIVE) lock of the ``ADD`` is still held, so the validation scan blocks reads and writes after
all: the long lock silently comes back.

## Example
```sql
BEGIN;
ALTER TABLE orders ADD CONSTRAINT ck_amount CHECK (amount > 0) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT ck_amount;
COMMIT;
```

## Use instead
```sql
BEGIN;
ALTER TABLE orders ADD CONSTRAINT ck_amount CHECK (amount > 0) NOT VALID;
COMMIT;
BEGIN;
ALTER TABLE orders VALIDATE CONSTRAINT ck_amount;
COMMIT;
```

In Alembic:
```python
op.create_check_constraint("ck_amount", "orders", "amount > 0", postgresql_not_valid=True)
with op.get_context().autocommit_block():
    op.execute("ALTER TABLE orders VALIDATE CONSTRAINT ck_amount")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import ValidateConstraint
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM405"
NAME = "validate-in-same-transaction"
SEVERITY = Severity.ERROR
KIND = RuleKind.TRANSACTION
CHANGES = (ValidateConstraint,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if not isinstance(ch, ValidateConstraint) or not ctx.in_transaction:
        return
    added = ctx.not_valid_constraints.get((ch.on.name, ch.name))
    if added is None or added.transaction.number != ctx.statement.transaction.number:
        return
    held = max((lk.mode for e in added.effects for lk in e.locks), default=None)
    lock = held.sql_name if held is not None else "the ADD's lock"
    yield Violation(
        f"VALIDATE CONSTRAINT {ch.name} runs in the transaction that added it NOT VALID ({added.where}): "
        f"{lock} on {ch.on} is still held, so the validation scan blocks "
        f"{held.blocked_summary() if held is not None else 'traffic'}",
        help="COMMIT after the ADD ... NOT VALID and validate in a separate transaction.",
    )
