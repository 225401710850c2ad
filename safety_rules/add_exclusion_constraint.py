"""Adding an exclusion constraint to an existing table.

## What it does
Flags ``ADD CONSTRAINT ... EXCLUDE USING ...`` on a table that existed before the migration.

## Why is this bad?
The constraint's index is built while ACCESS EXCLUSIVE is held, so reads and writes wait for the
whole build, and unlike UNIQUE there is no ``USING INDEX`` form to build it concurrently first.

## Example
```sql
ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);
```

## Use instead
```sql
-- Create the constraint when the table is created, or on a new table that replaces it:
CREATE TABLE bookings_new (LIKE bookings INCLUDING ALL,
    CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&));
```

In Alembic, declare the ``ExcludeConstraint`` in ``op.create_table(...)`` of the new table, or run
the ``ALTER TABLE`` in a maintenance window with ``op.execute(...)`` and ``# helios: ignore[HM106]``:
```python
op.create_table("bookings_new", ..., ExcludeConstraint(("room", "="), ("during", "&&"), using="gist"))
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import AddConstraint, ConstraintKind
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM106"
NAME = "add-exclusion-constraint"
SEVERITY = Severity.WARNING
KIND = RuleKind.LOCKING
CHANGES = (AddConstraint,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if isinstance(ch, AddConstraint) and ch.constraint.kind is ConstraintKind.EXCLUDE:
        name = f" {ch.constraint.name}" if ch.constraint.name else ""
        yield Violation(
            f"ADD CONSTRAINT{name} EXCLUDE builds its index holding {ctx.lock_phrase()}; "
            "there is no concurrent form",
            help="Create exclusion constraints with the table, or schedule this for a maintenance window.",
        )
