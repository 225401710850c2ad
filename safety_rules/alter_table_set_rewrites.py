"""``ALTER TABLE ... SET LOGGED / SET UNLOGGED / SET TABLESPACE / SET ACCESS METHOD``: a rewrite.

## What it does
Flags these ``ALTER TABLE`` forms on an existing table.

## Why is this bad?
Each writes a new copy of the table and rebuilds every index while ACCESS EXCLUSIVE is held:
reads and writes wait for the whole rewrite.  ``SET LOGGED`` also writes the whole table to the
WAL (and to every replica); ``SET UNLOGGED`` makes the table's contents vanish after a crash and
on replicas.  A statement that reads as a flag flip is as long as ``VACUUM FULL``.

## Example
```sql
ALTER TABLE events SET UNLOGGED;
```

## Use instead
Create a new table with the wanted persistence, copy the rows in batches, keep it in sync with a
trigger and swap the names in a short transaction; or run the rewrite in a maintenance window with
a ``lock_timeout``.  For a tablespace move, ``pg_repack --tablespace`` works online.
```sql
CREATE UNLOGGED TABLE events_new (LIKE events INCLUDING ALL);
-- copy rows in batches, keep events_new in sync with a trigger, then in one short transaction:
ALTER TABLE events RENAME TO events_old;
ALTER TABLE events_new RENAME TO events;
```

In Alembic, the same statements through ``op.execute``:
```python
op.execute("CREATE UNLOGGED TABLE events_new (LIKE events INCLUDING ALL)")
```
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from helios_migrate.changes import RawStatement
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM208"
NAME = "alter-table-set-rewrites"
SEVERITY = Severity.ERROR
KIND = RuleKind.LOCKING
CHANGES = (RawStatement,)

_FORM = re.compile(r"\bSET\s+(UNLOGGED|LOGGED|TABLESPACE|ACCESS\s+METHOD)\b", re.IGNORECASE)


def check(ctx: RuleContext) -> Iterator[Violation]:
    ch = ctx.change
    if not isinstance(ch, RawStatement) or ch.statement_type != "AlterTableStmt":
        return
    if not ctx.effect.rewrites_table:
        return
    m = _FORM.search(ch.sql)
    form = "SET " + " ".join(m.group(1).upper().split()) if m else "this ALTER TABLE"
    table = ctx.effect.table_lock.relation if ctx.effect.table_lock is not None else ch.table
    yield Violation(
        f"{form} rewrites {ctx.describe_table(table)} and rebuilds its indexes holding "
        f"{ctx.lock_phrase()}",
        help="Copy into a new table with the wanted setting in batches and swap names in a short "
        "transaction, or run it in a maintenance window (pg_repack --tablespace moves a table online).",
        table=table,
    )
