"""Making a column NOT NULL with a full scan under ACCESS EXCLUSIVE.

## What it does
Flags ``ALTER COLUMN ... SET NOT NULL`` on an existing table unless the input first proved the column
has no NULLs with a validated ``CHECK (col IS NOT NULL)``; on PostgreSQL 18, also
``ADD CONSTRAINT ... NOT NULL col`` without ``NOT VALID``.

## Why is this bad?
PostgreSQL reads every row to prove there is no NULL, holding ACCESS EXCLUSIVE: reads and writes
wait for the whole scan.  From PostgreSQL 12 the scan is skipped when a validated
``CHECK (col IS NOT NULL)`` exists, and that CHECK can be added ``NOT VALID`` and validated under a
weak lock.  PostgreSQL 18 can add the NOT NULL constraint itself ``NOT VALID`` and validate it later.

## Example
```sql
ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;
```

## Use instead
```sql
-- PostgreSQL 12-17
ALTER TABLE orders ADD CONSTRAINT orders_customer_id_not_null
    CHECK (customer_id IS NOT NULL) NOT VALID;
COMMIT;
ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_id_not_null;
ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;
ALTER TABLE orders DROP CONSTRAINT orders_customer_id_not_null;
```

On PostgreSQL 18: ``ADD CONSTRAINT orders_customer_id_not_null NOT NULL customer_id NOT VALID``,
then ``VALIDATE CONSTRAINT`` in a separate transaction.  In Alembic (12-17):
```python
op.create_check_constraint("orders_customer_id_not_null", "orders", "customer_id IS NOT NULL",
                           postgresql_not_valid=True)
with op.get_context().autocommit_block():
    op.execute("ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_id_not_null")
op.alter_column("orders", "customer_id", nullable=False)
op.drop_constraint("orders_customer_id_not_null", "orders", type_="check")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import AddConstraint, ConstraintKind, SetNotNull
from helios_migrate.effects import WorkClass
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM109"
NAME = "set-not-null-with-scan"
SEVERITY = Severity.ERROR
KIND = RuleKind.LOCKING
CHANGES = (SetNotNull, AddConstraint)


def _help(ctx: RuleContext, column: str) -> str:
    if ctx.version.major >= 18:
        return (
            f"On PostgreSQL 18: ADD CONSTRAINT <name> NOT NULL {column} NOT VALID, then "
            "VALIDATE CONSTRAINT <name> in a separate transaction."
        )
    return (
        f"ADD CONSTRAINT <name> CHECK ({column} IS NOT NULL) NOT VALID; VALIDATE it in a separate "
        "transaction; then SET NOT NULL (no scan) and drop the CHECK."
    )


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if ctx.effect.work is not WorkClass.SCAN:
        return
    if isinstance(ch, SetNotNull):
        if (ch.on.name, ch.column) in ctx.proven_not_null:
            return
        yield Violation(
            f"SET NOT NULL on {ch.on}.{ch.column} reads every row to prove there are no NULLs, "
            f"holding {ctx.lock_phrase()}",
            help=_help(ctx, ch.column),
        )
    elif isinstance(ch, AddConstraint):
        k = ch.constraint
        if k.kind is ConstraintKind.NOT_NULL and not k.not_valid and ctx.effect.unsupported is None:
            column = k.columns[0] if k.columns else "<column>"
            yield Violation(
                f"ADD CONSTRAINT NOT NULL {column} reads every row of {ch.on}, holding {ctx.lock_phrase()}",
                help=_help(ctx, column),
            )
