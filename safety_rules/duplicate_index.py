"""Two indexes on the same table with the same definition.

## What it does
Reported by ``helios-migrate review`` (models and live database) when two valid indexes of a
table have the same key columns or expressions in the same order, the same access method,
operator classes, predicate and ``INCLUDE`` columns.  A unique index and a plain one on the same
columns count as duplicates too: the unique one serves every lookup the other does.  The index
kept is the one a constraint uses (primary key, unique), else the unique one, else the first by
name; the fix drops the other with ``DROP INDEX CONCURRENTLY`` (its downgrade builds it again,
concurrently).

## Why is this bad?
Every ``INSERT`` and every non-HOT ``UPDATE`` writes both indexes, and both take disk, cache,
WAL, vacuum and backup time, for no read that the other could not serve.

## Example
```sql
CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);
CREATE INDEX accounts_email_idx ON accounts (email);
CREATE INDEX accounts_email_idx1 ON accounts (email);
```

## Use instead
```sql
CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);
CREATE INDEX accounts_email_idx ON accounts (email);
```

In Alembic, on an existing table:
```python
with op.get_context().autocommit_block():
    op.drop_index("accounts_email_idx1", table_name="accounts",
                  postgresql_concurrently=True, if_exists=True)
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.review_context import ReviewContext, SchemaViolation
from helios_migrate.rule_context import RuleKind
from helios_migrate.schema_model import Index

from ._schema import (
    PARTITIONED_DROP,
    describe,
    drop_index_fix,
    index_label,
    keep_order,
    models_hint,
    same_definition,
)

CODE = "HM605"
NAME = "duplicate-index"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER


def review(ctx: ReviewContext) -> Iterator[SchemaViolation]:
    for table in ctx.schema.tables:
        groups: list[list[Index]] = []
        for ix in table.indexes:
            if not ix.valid:
                continue
            group = next((g for g in groups if same_definition(g[0], ix)), None)
            if group is None:
                groups.append([ix])
            else:
                group.append(ix)
        for group in groups:
            if len(group) < 2:
                continue
            keep, *extra = sorted(group, key=keep_order)
            for ix in extra:
                drops, recreate = drop_index_fix(table, ix)
                yield SchemaViolation(
                    f"{describe(table)}: index {index_label(ix)} duplicates {keep.name or 'the key'}: "
                    "every write maintains both",
                    table=table.name,
                    column=ix.elements[0] if len(ix.elements) == 1 else None,
                    help=(f"Drop {ix.name}." if drops else
                          f"Drop {ix.name}. {PARTITIONED_DROP}" if table.partitioned and ix.constraint is None else
                          f"Both {ix.name or 'indexes'} and {keep.name} back constraints: drop one "
                          "constraint, or keep both knowingly.")
                    + models_hint(ctx, "remove the duplicate Index (or index=True) from the table."),
                    fix=drops,
                    recreate=recreate,
                )
