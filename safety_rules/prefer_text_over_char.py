"""A ``char(n)`` column.

## What it does
Flags ``char(n)`` / ``character(n)`` columns in ``CREATE TABLE``, ``ADD COLUMN`` and type changes.

## Why is this bad?
``char(n)`` pads values with spaces to ``n`` characters, ignores trailing spaces in comparisons
and is no faster than ``text``: the padding surprises code and wastes space.

## Example
```sql
CREATE TABLE countries (code char(2) PRIMARY KEY);
```

## Use instead
```sql
CREATE TABLE countries (code text PRIMARY KEY CHECK (length(code) = 2));
```

In Alembic / SQLAlchemy:
```python
op.create_table("countries", sa.Column("code", sa.Text(), primary_key=True),
                sa.CheckConstraint("length(code) = 2", name="ck_countries_code_length"))
```
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

from ._columns import COLUMN_DEFINING_CHANGES, defined_columns

CODE = "HM505"
NAME = "prefer-text-over-char"
SEVERITY = Severity.INFO
KIND = RuleKind.OTHER
CHANGES = COLUMN_DEFINING_CHANGES

_CHAR = re.compile(r"^(char|bpchar|character)(\(\d+\))?$")


def check(ctx: RuleContext) -> Iterator[Violation]:
    for table, column, type_, _pk in defined_columns(ctx.change):
        if _CHAR.match(type_):
            yield Violation(
                f"{table}.{column} is {type_}: blank-padded; prefer text",
                help="Use text, with a CHECK on length() if the length matters.",
            )
