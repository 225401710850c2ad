"""A foreign key between large tables that leaves ``ON DELETE`` at its default.

## What it does
Reported (info) by ``helios-migrate review`` on a live database for a foreign key declared
without an ``ON DELETE`` action (PostgreSQL's default, ``NO ACTION``) when the referenced or the
referencing table holds at least 100,000 rows (estimate).  An explicit ``ON DELETE NO ACTION`` is
stored the same way and cannot be told apart: write ``RESTRICT`` to record the decision.  No fix is
planned: which action is right is a decision about the data.

## Why is this bad?
On large tables the action decides what a single ``DELETE`` costs on a live system:
``NO ACTION``/``RESTRICT`` make each delete of a referenced row look for referencing rows (an
index scan with HM603's index, a sequential scan without it) and fail if any exist; ``CASCADE``
turns one delete into as many deletes as there are children, in one transaction, holding their
row locks; ``SET NULL`` rewrites each child row.  Left at the default, nobody decided which of
these the application relies on, and the first large cleanup finds out in production.

## Example
```sql
CREATE TABLE accounts (id bigint PRIMARY KEY);
CREATE TABLE logins (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts (id));
CREATE INDEX logins_account_id_idx ON logins (account_id);
INSERT INTO accounts SELECT generate_series(1, 1000);
INSERT INTO logins SELECT g, g % 1000 + 1 FROM generate_series(1, 100000) g;
ANALYZE accounts, logins;
```

## Use instead
```sql
CREATE TABLE accounts (id bigint PRIMARY KEY);
CREATE TABLE logins (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts (id) ON DELETE RESTRICT);
CREATE INDEX logins_account_id_idx ON logins (account_id);
INSERT INTO accounts SELECT generate_series(1, 1000);
INSERT INTO logins SELECT g, g % 1000 + 1 FROM generate_series(1, 100000) g;
ANALYZE accounts, logins;
```

In SQLAlchemy (or ``"CASCADE"``, ``"SET NULL"``); autogenerate re-creates the constraint
``NOT VALID`` and validates it without a long lock:
```python
sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id", ondelete="RESTRICT"))
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.review_context import ReviewContext, SchemaViolation
from helios_migrate.rule_context import RuleKind

from ._schema import describe

CODE = "HM611"
NAME = "foreign-key-on-delete-undecided"
SEVERITY = Severity.INFO
KIND = RuleKind.OTHER

LARGE_TABLE_ROWS = 100_000


def review(ctx: ReviewContext) -> Iterator[SchemaViolation]:
    if not ctx.live:
        return
    for table in ctx.schema.tables:
        for fk in table.foreign_keys:
            if fk.on_delete is not None:
                continue
            parent = ctx.schema.table(fk.references)
            sizes = [t.row_estimate or 0 for t in (table, parent) if t is not None]
            if max(sizes, default=0) < LARGE_TABLE_ROWS:
                continue
            name = f" {fk.name}" if fk.name else ""
            columns = ", ".join(fk.columns)
            yield SchemaViolation(
                f"{describe(table)}: foreign key{name} ({columns}) to "
                f"{describe(parent) if parent is not None else fk.references} has no ON DELETE action: "
                "what a delete of a referenced row does on these large tables was never decided",
                table=table.name,
                column=fk.columns[0] if len(fk.columns) == 1 else None,
                help="Decide and declare it: RESTRICT (deletes fail while children exist), CASCADE "
                "(each delete also deletes the children, in one transaction: delete in batches), or "
                "SET NULL. In the models: ondelete= on the ForeignKey; autogenerate re-creates the "
                "constraint NOT VALID and validates it without a long lock.",
            )
