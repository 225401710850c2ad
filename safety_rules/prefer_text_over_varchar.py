"""A ``varchar(n)`` column.

## What it does
Flags ``varchar(n)`` (``character varying(n)``) columns in ``CREATE TABLE``, ``ADD COLUMN`` and type
changes.

## Why is this bad?
In PostgreSQL ``varchar(n)`` stores exactly like ``text``; the length limit is the only difference,
and limits change.  Raising it is cheap, but lowering it -- or any change that is not a pure
widening -- rewrites the table under ACCESS EXCLUSIVE.  A CHECK constraint on ``length()`` can be
changed with ``NOT VALID`` and no rewrite.

## Example
```sql
CREATE TABLE users (id bigint PRIMARY KEY, email varchar(255));
```

## Use instead
```sql
CREATE TABLE users (id bigint PRIMARY KEY, email text CHECK (length(email) <= 255));
```

In Alembic / SQLAlchemy:
```python
op.create_table("users", sa.Column("id", sa.BigInteger(), primary_key=True),
                sa.Column("email", sa.Text()),
                sa.CheckConstraint("length(email) <= 255", name="ck_users_email_length"))
```
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

from ._columns import COLUMN_DEFINING_CHANGES, defined_columns

CODE = "HM503"
NAME = "prefer-text-over-varchar"
SEVERITY = Severity.INFO
KIND = RuleKind.OTHER
CHANGES = COLUMN_DEFINING_CHANGES

_VARCHAR_N = re.compile(r"^varchar\(\d+\)$")


def check(ctx: RuleContext) -> Iterator[Violation]:
    for table, column, type_, _pk in defined_columns(ctx.change):
        if _VARCHAR_N.match(type_):
            yield Violation(
                f"{table}.{column} is {type_}: prefer text with a CHECK on length()",
                help="Use text, with CHECK (length(col) <= n) if the limit matters.",
            )
