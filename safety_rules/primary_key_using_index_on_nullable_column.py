"""A PRIMARY KEY adopting an index over a nullable column: a hidden SET NOT NULL scan.

## What it does
Flags ``ADD CONSTRAINT ... PRIMARY KEY USING INDEX`` on an existing table when a column of the
adopted index is nullable (an error when the input shows it nullable, a warning when the index's
columns or their nullability are not known here).  No finding when every column of the index was
made NOT NULL first (created NOT NULL, ``SET NOT NULL`` or a validated ``CHECK (col IS NOT NULL)``
earlier in the input, or NOT NULL in the live catalog).

## Why is this bad?
Adopting a unique index built ``CONCURRENTLY`` avoids the index build, but a primary key also
makes its columns NOT NULL: PostgreSQL runs an implicit ``ALTER COLUMN ... SET NOT NULL`` on each
column not yet NOT NULL, which reads every row to prove there is no NULL while ACCESS EXCLUSIVE is
held.  Reads and writes wait for the whole scan, and the lock-safe index build bought nothing.

## Example
```sql
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS events_pkey_idx ON events (id);
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey_idx;
```

## Use instead
```sql
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS events_pkey_idx ON events (id);
ALTER TABLE events ADD CONSTRAINT events_id_not_null CHECK (id IS NOT NULL) NOT VALID;
COMMIT;
ALTER TABLE events VALIDATE CONSTRAINT events_id_not_null;
ALTER TABLE events ALTER COLUMN id SET NOT NULL;       -- no scan: the CHECK proves it (12+)
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey_idx;
ALTER TABLE events DROP CONSTRAINT events_id_not_null;
```

On PostgreSQL 18, ``ADD CONSTRAINT events_id_not_null NOT NULL id NOT VALID`` and a later
``VALIDATE CONSTRAINT`` replace the CHECK.  In Alembic:
```python
op.create_check_constraint("events_id_not_null", "events", "id IS NOT NULL",
                           postgresql_not_valid=True)
with op.get_context().autocommit_block():
    op.execute("ALTER TABLE events VALIDATE CONSTRAINT events_id_not_null")
op.alter_column("events", "id", nullable=False)
op.execute("ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey_idx")
op.drop_constraint("events_id_not_null", "events", type_="check")
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import (
    AddColumn,
    AddConstraint,
    ConstraintKind,
    CreateIndex,
    CreateTable,
    DropNotNull,
    QualifiedName,
    SetNotNull,
)
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation, same_relation

CODE = "HM114"
NAME = "primary-key-using-index-on-nullable-column"
SEVERITY = Severity.ERROR
KIND = RuleKind.LOCKING
CHANGES = (AddConstraint,)


def _index_columns(ctx: RuleContext, table: QualifiedName, index: str) -> tuple[str, ...] | None:
    """The columns of ``index`` when the input built it, or from the live catalog."""
    found: tuple[str, ...] | None = None
    for st in ctx.preceding:
        for ch in st.changes:
            if isinstance(ch, CreateIndex) and ch.name == index and same_relation(ch.on, table):
                found = ch.columns
    if found is None:
        lookup = getattr(ctx.catalog, "index_columns", None)
        if lookup is not None:
            try:
                found = lookup(QualifiedName(index, table.schema))
            except Exception:
                found = None
    return found


def _not_null(ctx: RuleContext, table: QualifiedName, column: str) -> bool | None:
    """Whether ``column`` is NOT NULL when the key is added: ``None`` when unknown here."""
    state: bool | None = None
    for st in ctx.preceding:
        for ch in st.changes:
            if isinstance(ch, CreateTable) and same_relation(ch.on, table):
                for col in ch.columns:
                    if col.name == column:
                        state = not col.nullable or col.primary_key
            elif isinstance(ch, AddColumn) and same_relation(ch.on, table) and ch.column.name == column:
                state = not ch.column.nullable or ch.column.primary_key
            elif isinstance(ch, SetNotNull) and same_relation(ch.on, table) and ch.column == column:
                state = True
            elif isinstance(ch, DropNotNull) and same_relation(ch.on, table) and ch.column == column:
                state = False
    if (table.name, column) in ctx.proven_not_null:
        return True
    if state is None:
        lookup = getattr(ctx.catalog, "column_not_null", None)
        if lookup is not None:
            try:
                return bool(lookup(table, column))
            except Exception:
                return None
    return state


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if not isinstance(ch, AddConstraint):
        return
    k = ch.constraint
    if k.kind is not ConstraintKind.PRIMARY_KEY or k.using_index is None:
        return
    help_text = (
        "Make the columns NOT NULL first without a long lock: a CHECK (col IS NOT NULL) NOT VALID, "
        "VALIDATE it in a separate transaction, then SET NOT NULL (no scan) "
        + ("or, on PostgreSQL 18, ADD CONSTRAINT ... NOT NULL col NOT VALID and VALIDATE it; "
           if ctx.version.major >= 18 else "; ")
        + "then ADD PRIMARY KEY USING INDEX."
    )
    columns = _index_columns(ctx, ch.on, k.using_index)
    if columns is None:
        yield Violation(
            f"ADD PRIMARY KEY USING INDEX {k.using_index} makes the index's columns NOT NULL: each one "
            f"still nullable is scanned holding {ctx.lock_phrase()} (the index's columns are not "
            "known here: check they are NOT NULL already)",
            help=help_text,
            severity=Severity.WARNING,
        )
        return
    states = {col: _not_null(ctx, ch.on, col) for col in columns}
    nullable = [col for col, known in states.items() if known is False]
    unknown = [col for col, known in states.items() if known is None]
    if nullable:
        listed = ", ".join(f"{ch.on}.{col}" for col in nullable)
        yield Violation(
            f"ADD PRIMARY KEY USING INDEX {k.using_index} makes {listed} NOT NULL: every row is read "
            f"to prove there is no NULL, holding {ctx.lock_phrase()}",
            help=help_text,
        )
    elif unknown:
        listed = ", ".join(f"{ch.on}.{col}" for col in unknown)
        yield Violation(
            f"ADD PRIMARY KEY USING INDEX {k.using_index} makes {listed} NOT NULL: if not NOT NULL "
            f"already, every row is read to prove it, holding {ctx.lock_phrase()}",
            help=help_text,
            severity=Severity.WARNING,
        )
