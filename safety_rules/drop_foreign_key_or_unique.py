"""Dropping a foreign key or a unique constraint.

## What it does
Flags ``ALTER TABLE ... DROP CONSTRAINT`` of a foreign key or a unique constraint on an existing
table: one the same migration added as such, or one whose name says so (``fk_...``,
``..._fkey``, ``uq_...``, ``..._key``, as Alembic naming conventions and PostgreSQL's defaults
spell them).  A constraint the same migration adds again under its name (a foreign key recreated
with another ``ON DELETE``) is not flagged: the guarantee stays (how it is added back is the
concern of HM107 and HM104).

## Why is this bad?
Nothing fails when the constraint goes: the database silently stops refusing orphan rows or
duplicates, and the code that relied on it (``ON CONFLICT``, lookups by a natural key, cascades)
starts producing wrong data that is found much later.  A unique constraint also takes its index
with it, so queries that used it turn into scans.

## Example
```sql
ALTER TABLE orders DROP CONSTRAINT fk_orders_customer_id;
ALTER TABLE users DROP CONSTRAINT uq_users_email;
```

## Use instead
Drop it only when the guarantee has moved elsewhere, and say so:
```sql
-- the key moved to orders.account_id (revision 3f2a); nothing writes customer_id any more
ALTER TABLE orders DROP CONSTRAINT fk_orders_customer_id;  -- helios: ignore[HM309]
```

In Alembic:
```python
op.drop_constraint("fk_orders_customer_id", "orders", type_="foreignkey")  # helios: ignore[HM309]
```
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from helios_migrate.changes import AddConstraint, ConstraintKind, CreateTable, DropConstraint
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation, same_relation

CODE = "HM309"
NAME = "drop-foreign-key-or-unique"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER
CHANGES = (DropConstraint,)

_FOREIGN = re.compile(r"(^fk_|^fk\d|_fkey\d*$|_fk$)", re.IGNORECASE)
_UNIQUE = re.compile(r"(^uq_|^uq\d|^uniq_|_key\d*$|_uq$|_unique$|_uniq$)", re.IGNORECASE)
_WHAT = {ConstraintKind.FOREIGN_KEY: "foreign key", ConstraintKind.UNIQUE: "unique constraint"}


def _declared_kind(ctx: RuleContext, drop: DropConstraint) -> ConstraintKind | None:
    """The kind the migration itself gave the constraint, when it added it earlier."""
    for st in ctx.preceding:
        for ch in st.changes:
            constraints = (
                (ch.constraint,) if isinstance(ch, AddConstraint) and same_relation(ch.on, drop.on)
                else ch.constraints if isinstance(ch, CreateTable) and same_relation(ch.on, drop.on)
                else ()
            )
            for k in constraints:
                if k.name == drop.name:
                    return k.kind
    return None


def _added_again(ctx: RuleContext, drop: DropConstraint) -> bool:
    """The same migration adds a constraint of that name on that table again (a foreign key
    recreated with another ON DELETE, a unique constraint widened under its old name)."""
    return any(
        isinstance(ch, AddConstraint) and same_relation(ch.on, drop.on) and ch.constraint.name == drop.name
        for st in ctx.following
        for ch in st.changes
    )


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if not isinstance(ch, DropConstraint) or ctx.is_new(ch.on) or _added_again(ctx, ch):
        return
    kind = _declared_kind(ctx, ch)
    if kind is None:
        kind = (
            ConstraintKind.FOREIGN_KEY if _FOREIGN.search(ch.name)
            else ConstraintKind.UNIQUE if _UNIQUE.search(ch.name)
            else None
        )
    if kind not in _WHAT:
        return
    what = _WHAT[kind]
    lost = "orphan rows" if kind is ConstraintKind.FOREIGN_KEY else "duplicates (and its index goes too)"
    yield Violation(
        f"dropping {what} {ch.name} on {ch.on}: the database stops refusing {lost}, silently",
        help=f"Drop the {what} only once the guarantee lives elsewhere, and mark the drop as intended "
        "with a helios: ignore[HM309] comment saying where.",
    )
