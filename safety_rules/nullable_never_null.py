"""A nullable column in which a large, analysed table holds no NULL.

## What it does
Reported (info) by ``helios-migrate review`` on a live database for a nullable column whose
``pg_stats.null_frac`` is 0 -- ANALYZE's sample of the table found no NULL -- on a table of at least
10,000 rows (estimate).  Primary key columns, and partitioned tables, are left out.  The fix is
``SET NOT NULL`` through the lock-safe path the planner uses for every ``NOT NULL``: a
``CHECK (c IS NOT NULL) NOT VALID`` constraint, validated without blocking writes, then ``SET NOT
NULL`` (which skips its scan thanks to the valid check, PostgreSQL 12+) and the check dropped; on
PostgreSQL 18, ``NOT NULL ... NOT VALID`` then ``VALIDATE``.

## Why is this bad?
A column that is never NULL but may be is a promise the schema does not keep: every reader must
handle a NULL that never comes, the planner estimates with it, and one bad write can still store
it.  The sample is not proof (it reads about 30,000 rows by default): that is why the fix validates
first.  If a NULL exists, the validation fails and leaves the table as it was; decide then whether
NULL is a real value.

## Example
```sql
CREATE TABLE shipments (id bigint PRIMARY KEY, carrier text);
INSERT INTO shipments SELECT g, 'post' FROM generate_series(1, 20000) g;
ANALYZE shipments;
```

## Use instead
```sql
CREATE TABLE shipments (id bigint PRIMARY KEY, carrier text NOT NULL);
INSERT INTO shipments SELECT g, 'post' FROM generate_series(1, 20000) g;
ANALYZE shipments;
```

In SQLAlchemy, ``nullable=False`` on the column; autogenerate (or ``helios-migrate review
--write-revision --fix HM609``) writes the lock-safe steps:
```python
sa.Column("carrier", sa.Text, nullable=False)
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import SetNotNull
from helios_migrate.findings import Severity
from helios_migrate.review_context import ReviewContext, SchemaViolation
from helios_migrate.rule_context import RuleKind

from ._schema import describe

CODE = "HM609"
NAME = "nullable-never-null"
SEVERITY = Severity.INFO
KIND = RuleKind.OTHER

LARGE_TABLE_ROWS = 10_000
"""Below this estimate a sample of no NULL says too little, and a NOT NULL costs little later."""


def review(ctx: ReviewContext) -> Iterator[SchemaViolation]:
    if not ctx.live:
        return
    for table in ctx.schema.tables:
        if table.partitioned or table.row_estimate is None or table.row_estimate < LARGE_TABLE_ROWS:
            continue
        for col in table.columns:
            if not col.nullable or col.null_frac is None or col.null_frac > 0 or col.name in table.primary_key:
                continue
            yield SchemaViolation(
                f"{describe(table)}: column {col.name} is nullable, but ANALYZE's sample holds no NULL: "
                "if NULL is not a valid value, declare NOT NULL",
                table=table.name,
                column=col.name,
                help="Set NOT NULL the lock-safe way: the plan validates a NOT VALID check first (it "
                "fails, changing nothing, if a NULL exists), then SET NOT NULL skips its scan. In the "
                "models: nullable=False on the column.",
                fix=(SetNotNull(on=table.name, column=col.name),),
            )
