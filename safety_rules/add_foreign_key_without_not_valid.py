"""Adding a foreign key that validates every row while both tables are locked.

## What it does
Flags ``ADD CONSTRAINT ... FOREIGN KEY`` without ``NOT VALID`` (and ``ADD COLUMN ... REFERENCES``) on
an existing table.

## Why is this bad?
Adding a foreign key takes SHARE ROW EXCLUSIVE on both the table and the referenced table, and
checks every existing row while holding them: writes to both tables wait for the whole check.
Added ``NOT VALID``, only new rows are checked and the lock is brief; ``VALIDATE CONSTRAINT`` later
checks old rows under SHARE UPDATE EXCLUSIVE, which lets reads and writes continue.

## Example
```sql
ALTER TABLE orders ADD CONSTRAINT fk_orders_customer
    FOREIGN KEY (customer_id) REFERENCES customers (id);
```

## Use instead
```sql
ALTER TABLE orders ADD CONSTRAINT fk_orders_customer
    FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
COMMIT;
ALTER TABLE orders VALIDATE CONSTRAINT fk_orders_customer;
```

In Alembic:
```python
op.create_foreign_key("fk_orders_customer", "orders", "customers", ["customer_id"], ["id"],
                      postgresql_not_valid=True)
with op.get_context().autocommit_block():
    op.execute("ALTER TABLE orders VALIDATE CONSTRAINT fk_orders_customer")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import AddColumn, AddConstraint, ConstraintKind
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM107"
NAME = "add-foreign-key-without-not-valid"
SEVERITY = Severity.ERROR
KIND = RuleKind.LOCKING
CHANGES = (AddConstraint, AddColumn)

_HELP = "Add it NOT VALID, then VALIDATE CONSTRAINT in a separate transaction."


def _locked(ctx: RuleContext) -> str:
    relations = list(dict.fromkeys(lk.relation for lk in ctx.effect.locks))  # a self-reference: once
    tables = " and ".join(ctx.describe_table(r) for r in relations)
    mode = ctx.effect.strongest
    what = mode.blocked_summary() if mode is not None else "writes"
    return f"{mode.sql_name if mode else 'SHARE ROW EXCLUSIVE'} on {tables} (blocks {what})"


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if isinstance(ch, AddConstraint):
        k = ch.constraint
        if k.kind is ConstraintKind.FOREIGN_KEY and not k.not_valid:
            name = f" {k.name}" if k.name else ""
            yield Violation(
                f"ADD CONSTRAINT{name} FOREIGN KEY checks every existing row holding {_locked(ctx)}",
                help=_HELP,
            )
    elif isinstance(ch, AddColumn) and ch.column.references is not None:
        yield Violation(
            f"ADD COLUMN {ch.column.name} ... REFERENCES {ch.column.references.table} checks every row "
            f"holding {_locked(ctx)}",
            help="Add the column without REFERENCES, then add the foreign key NOT VALID and "
            "VALIDATE it in a separate transaction.",
        )
