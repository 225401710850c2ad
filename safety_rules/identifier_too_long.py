"""An identifier longer than PostgreSQL's 63-byte limit.

## What it does
Flags a name longer than 63 bytes (UTF-8) in a statement that creates or renames a table, column,
index, constraint or type.

## Why is this bad?
PostgreSQL truncates longer names to 63 bytes with only a NOTICE.  The object then exists under a
name the migration never wrote: two long names sharing their first 63 bytes collide (the second
``CREATE`` fails, or a ``DROP`` removes the wrong one), tools that compare names outside SQL
(autogenerate, the ORM's naming conventions, monitoring) see a difference on every run, and
SQLAlchemy refuses some long names outright.

## Example
```sql
CREATE INDEX ix_subscription_billing_events_customer_account_identifier_created_at
    ON subscription_billing_events (customer_account_identifier, created_at);
```

## Use instead
```sql
CREATE INDEX ix_sub_billing_events_customer_created
    ON subscription_billing_events (customer_account_identifier, created_at);
```

In SQLAlchemy, give long constraints and indexes an explicit short ``name=`` (a naming
convention such as ``"ix": "ix_%(table_name)s_%(column_0_N_name)s"`` grows with columns):
```python
op.create_index("ix_sub_billing_events_customer_created", "subscription_billing_events",
                ["customer_account_identifier", "created_at"])
```
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import parser

from helios_migrate.changes import (
    AddColumn,
    AddConstraint,
    AddEnumValue,
    CreateEnum,
    CreateIndex,
    CreateTable,
    RenameColumn,
    RenameTable,
)
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "HM310"
NAME = "identifier-too-long"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER
CHANGES = (CreateTable, AddColumn, AddConstraint, CreateIndex, RenameColumn, RenameTable, CreateEnum, AddEnumValue)
LIMIT = 63
"""NAMEDATALEN - 1 in a default PostgreSQL build."""


def _names(ctx: RuleContext) -> Iterator[tuple[str, str]]:
    ch = ctx.change
    if isinstance(ch, CreateTable):
        yield "table", ch.on.name
        for col in ch.columns:
            yield "column", col.name
        for k in ch.constraints:
            if k.name:
                yield "constraint", k.name
    elif isinstance(ch, AddColumn):
        yield "column", ch.column.name
    elif isinstance(ch, AddConstraint) and ch.constraint.name:
        yield "constraint", ch.constraint.name
    elif isinstance(ch, CreateIndex) and ch.name:
        yield "index", ch.name
    elif isinstance(ch, RenameColumn):
        yield "column", ch.new_name
    elif isinstance(ch, RenameTable):
        yield "table", ch.new_name
    elif isinstance(ch, CreateEnum):
        yield "type", ch.name.name
        for value in ch.values:
            yield "enum label", value
    elif isinstance(ch, AddEnumValue):
        yield "enum label", ch.value


def _long_identifiers(sql: str) -> Iterator[str]:
    """Identifiers of more than 63 bytes as written (the parser has already truncated them)."""
    try:
        tokens = parser.scan(sql)
    except Exception:
        return
    for token in tokens:
        if token.name != "IDENT":
            continue
        text = sql[token.start:token.end + 1]  # offsets are in characters
        if text.startswith('"') and text.endswith('"'):
            text = text[1:-1].replace('""', '"')
        if len(text.encode("utf-8")) > LIMIT:
            yield text


def check(ctx: RuleContext) -> Iterator[Violation]:
    if not any(True for _ in _names(ctx)):
        return
    seen: set[str] = set()
    for name in _long_identifiers(ctx.statement.sql):
        if name in seen:
            continue
        seen.add(name)
        size = len(name.encode("utf-8"))
        kept = name.encode("utf-8")[:LIMIT].decode("utf-8", "ignore")
        yield Violation(
            f"name {name!r} is {size} bytes: PostgreSQL silently keeps only {kept!r} (63 bytes)",
            help="Use a name of at most 63 bytes (an explicit, shorter name= in SQLAlchemy).",
        )
