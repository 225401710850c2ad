"""Adding a CHECK constraint that scans the table under ACCESS EXCLUSIVE.

## What it does
Flags ``ADD CONSTRAINT ... CHECK (...)`` without ``NOT VALID`` on an existing table, and
``ADD COLUMN`` with an inline ``CHECK``.

## Why is this bad?
PostgreSQL checks every existing row while holding ACCESS EXCLUSIVE: reads and writes wait for the
whole scan.  Added ``NOT VALID``, the constraint applies to new rows at once and the lock is
brief; ``VALIDATE CONSTRAINT`` then checks old rows under SHARE UPDATE EXCLUSIVE, which lets reads
and writes continue.

## Example
```sql
ALTER TABLE orders ADD CONSTRAINT ck_orders_amount_positive CHECK (amount > 0);
```

## Use instead
```sql
ALTER TABLE orders ADD CONSTRAINT ck_orders_amount_positive CHECK (amount > 0) NOT VALID;
COMMIT;
ALTER TABLE orders VALIDATE CONSTRAINT ck_orders_amount_positive;
```

In Alembic:
```python
op.create_check_constraint("ck_orders_amount_positive", "orders", "amount > 0",
                           postgresql_not_valid=True)
with op.get_context().autocommit_block():
    op.execute("ALTER TABLE orders VALIDATE CONSTRAINT ck_orders_amount_positive")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import AddColumn, AddConstraint, ConstraintKind
from helios_migrate.effects import WorkClass
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM108"
NAME = "add-check-without-not-valid"
SEVERITY = Severity.ERROR
KIND = RuleKind.LOCKING
CHANGES = (AddConstraint, AddColumn)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if isinstance(ch, AddConstraint):
        k = ch.constraint
        if k.kind is ConstraintKind.CHECK and not k.not_valid:
            name = f" {k.name}" if k.name else ""
            yield Violation(
                f"ADD CONSTRAINT{name} CHECK ({k.expression}) checks every row holding {ctx.lock_phrase()}",
                help="Add it NOT VALID, then VALIDATE CONSTRAINT in a separate transaction.",
            )
    elif (
        isinstance(ch, AddColumn) and ch.column.check is not None
        and ctx.effect.work is WorkClass.SCAN and ch.column.references is None
    ):
        yield Violation(
            f"ADD COLUMN {ch.column.name} ... CHECK ({ch.column.check}) checks every row holding "
            f"{ctx.lock_phrase()}",
            help="Add the column without the CHECK, then add the CHECK NOT VALID and VALIDATE it "
            "in a separate transaction.",
        )
