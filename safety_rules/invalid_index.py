"""An index left INVALID, usually by a failed ``CREATE INDEX CONCURRENTLY``.

## What it does
Reported by ``helios-migrate review`` on a live database for every index whose
``pg_index.indisvalid`` is false.  The fix drops it concurrently and builds it again
concurrently (for a unique index, the build fails again while duplicate rows remain).  On a
partitioned table the parent's index is invalid until every partition's index is attached; the
finding says how to finish it.

## Why is this bad?
When ``CREATE INDEX CONCURRENTLY`` fails (a deadlock, a unique violation, a cancelled
statement), the index stays behind, INVALID: queries never use it, yet every ``INSERT`` and
``UPDATE`` keeps maintaining it, and a unique one still rejects new duplicates.  A later
``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` sees the name taken and silently does nothing.

## Example
```sql
CREATE TABLE members (id bigint PRIMARY KEY, handle text);
INSERT INTO members VALUES (1, 'ann'), (2, 'ann');
CREATE UNIQUE INDEX CONCURRENTLY members_handle_key ON members (handle);
```

## Use instead
```sql
CREATE TABLE members (id bigint PRIMARY KEY, handle text);
INSERT INTO members VALUES (1, 'ann'), (2, 'bob');
CREATE UNIQUE INDEX CONCURRENTLY members_handle_key ON members (handle);
```

In Alembic, drop the leftover before building it again (the plugin's plans do this themselves):
```python
with op.get_context().autocommit_block():
    op.drop_index("members_handle_key", table_name="members",
                  postgresql_concurrently=True, if_exists=True)
    op.create_index("members_handle_key", "members", ["handle"], unique=True,
                    postgresql_concurrently=True)
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import DropIndex, QualifiedName
from helios_migrate.findings import Severity
from helios_migrate.review_context import ReviewContext, SchemaViolation
from helios_migrate.rule_context import RuleKind

from ._schema import as_create_index, describe, index_label

CODE = "HM607"
NAME = "invalid-index"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER


def review(ctx: ReviewContext) -> Iterator[SchemaViolation]:
    for table in ctx.schema.tables:
        for ix in table.indexes:
            if ix.valid or ix.name is None:
                continue
            unique = " (unique: it still rejects new duplicates)" if ix.unique else ""
            if table.partitioned:
                yield SchemaViolation(
                    f"{describe(table)}: partitioned index {index_label(ix)} is INVALID: some partition "
                    "has no attached index yet, so queries on the partitions without one scan",
                    table=table.name,
                    column=ix.elements[0] if len(ix.elements) == 1 else None,
                    help="Build the missing partitions' indexes CONCURRENTLY, then ALTER INDEX "
                    f"{ix.name} ATTACH PARTITION each (the parent's index turns valid once all are "
                    "attached); or drop it (not concurrently on a partitioned table) and plan it again."
                    + (f"\nIts definition: {ix.definition}" if ix.definition else ""),
                )
                continue
            yield SchemaViolation(
                f"{describe(table)}: index {index_label(ix)} is INVALID{unique}: no query uses it, "
                "every write still maintains it",
                table=table.name,
                column=ix.elements[0] if len(ix.elements) == 1 else None,
                help="Drop it and build it again concurrently"
                + (" once the duplicate rows are resolved." if ix.unique else ".")
                + (f"\nIts definition: {ix.definition}" if ix.definition else ""),
                fix=(DropIndex(QualifiedName(ix.name, table.name.schema), on=table.name), as_create_index(table, ix)),
            )
