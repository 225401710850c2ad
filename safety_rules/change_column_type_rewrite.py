"""Changing a column's type in a way that rewrites the table.

## What it does
Flags ``ALTER COLUMN ... TYPE`` when the knowledge base says the change rewrites the table
(``integer`` -> ``bigint``, ``text`` -> ``integer``, a ``USING`` expression, a shrinking typmod...).
Changes PostgreSQL makes in the catalog only -- ``varchar(50)`` -> ``varchar(100)``,
``varchar`` -> ``text``, a widening ``numeric`` precision -- are not flagged.  When the old type is
unknown (plain SQL, no database connection) the finding is a warning that says so.

## Why is this bad?
A rewrite copies every row into a new file and rebuilds every index on the table while holding
ACCESS EXCLUSIVE: reads and writes wait for the whole rewrite, which takes hours on a large table,
and needs the table's disk space twice.

## Example
```sql
ALTER TABLE orders ALTER COLUMN id TYPE bigint;
```

## Use instead
```sql
ALTER TABLE orders ADD COLUMN id_new bigint;
-- keep id_new in sync with a trigger, backfill in batches, then in a later revision swap the
-- columns (and the primary key, built concurrently) in one short transaction.
```

In Alembic, the same expand/contract steps across revisions:
```python
op.add_column("orders", sa.Column("id_new", sa.BigInteger()))
op.execute("CREATE TRIGGER orders_id_sync BEFORE INSERT OR UPDATE ON orders "
           "FOR EACH ROW EXECUTE FUNCTION orders_copy_id()")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import AlterColumnType
from helios_migrate.effects import Certainty
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM204"
NAME = "change-column-type-rewrite"
SEVERITY = Severity.ERROR
KIND = RuleKind.LOCKING
CHANGES = (AlterColumnType,)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if not isinstance(ch, AlterColumnType) or not ctx.effect.rewrites_table:
        return
    reason = ctx.effect.notes[0] if ctx.effect.notes else ""
    if ctx.effect.certainty is Certainty.CONSERVATIVE:
        # The old type, or the cast between the two, is unknown offline: only assumed to rewrite.
        unknown = "the old type is unknown offline" if ch.old_type is None else (
            f"the cast from {ch.old_type} is unknown offline"
        )
        yield Violation(
            f"could not tell whether changing {ch.on}.{ch.column} to {ch.new_type} rewrites "
            f"{ctx.describe_table(ch.on)}: {unknown}; if it does, it holds "
            f"{ctx.lock_phrase()} for the whole rewrite",
            help="Run with --database-url (read-only) or give the old type (Alembic existing_type=) "
            "so the change can be classified exactly.",
            severity=Severity.WARNING,
        )
        return
    yield Violation(
        f"changing {ch.on}.{ch.column} to {ch.new_type} rewrites {ctx.describe_table(ch.on)} and "
        f"rebuilds its indexes holding {ctx.lock_phrase()} ({reason})",
        help=ctx.effect.safer_alternative or "",
    )
