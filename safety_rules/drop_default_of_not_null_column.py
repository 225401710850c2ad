"""Dropping the default of a NOT NULL column that running code inserts without.

## What it does
Flags ``ALTER COLUMN ... DROP DEFAULT`` on a column the same migration added ``NOT NULL`` with a
default (the usual "add with a default to fill existing rows, then drop the default" pattern), or
that the database reports ``NOT NULL`` (with ``--database-url``).  A default dropped from a
nullable column is not reported: inserts still succeed.

## Why is this bad?
The code deployed before the migration does not know the column, so its ``INSERT`` statements do
not name it.  While the column had a default, those inserts got it; once the default is gone they
fail with ``null value in column ... violates not-null constraint`` until every old process is
replaced — an outage for the length of the deploy.

## Example
```sql
ALTER TABLE orders ADD COLUMN source text NOT NULL DEFAULT 'web';
ALTER TABLE orders ALTER COLUMN source DROP DEFAULT;
```

## Use instead
Keep the default until no running code inserts without the column, then drop it in a later
revision:
```sql
ALTER TABLE orders ADD COLUMN source text NOT NULL DEFAULT 'web';
-- later, after the code that sets source everywhere is deployed:
ALTER TABLE orders ALTER COLUMN source DROP DEFAULT;  -- helios: ignore[HM311]
```

In Alembic, keep ``server_default`` in the revision that adds the column and remove it in a
contract revision shipped after the code:
```python
op.alter_column("orders", "source", server_default=None, existing_type=sa.Text(),
                existing_nullable=False)  # helios: ignore[HM311] -- v42 always sets source
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import AddColumn, DropDefault
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation, same_relation

CODE = "HM311"
NAME = "drop-default-of-not-null-column"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER
CHANGES = (DropDefault,)


def _added_not_null_with_default(ctx: RuleContext, drop: DropDefault) -> bool:
    for st in ctx.preceding:
        for ch in st.changes:
            if (
                isinstance(ch, AddColumn) and same_relation(ch.on, drop.on)
                and ch.column.name == drop.column and not ch.column.nullable
                and ch.column.default is not None
            ):
                return True
    return False


def _not_null_in_catalog(ctx: RuleContext, drop: DropDefault) -> bool:
    lookup = getattr(ctx.catalog, "column_not_null", None)
    if lookup is None:
        return False
    try:
        return bool(lookup(drop.on, drop.column))
    except Exception:
        return False


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if not isinstance(ch, DropDefault):
        return
    if not (_added_not_null_with_default(ctx, ch) or _not_null_in_catalog(ctx, ch)):
        return
    yield Violation(
        f"dropping the default of NOT NULL column {ch.on}.{ch.column}: inserts from code deployed "
        "before this migration do not name the column and fail until every old process is gone",
        help="Keep the default until the code that always sets the column is deployed, then drop "
        "it in a later revision.",
    )
